/// How byte-level BPE cuts text into words before merging: each case reproduces
/// one of llama.cpp's `tokenizer.ggml.pre` regex sets (`llama-vocab.cpp`) with a
/// hand-written scanner over Unicode scalars instead of a regex engine.
///
/// A regex alternation picks, at each position, the first alternative that matches
/// (leftmost-first, with backtracking inside the alternative); the scanners test
/// the alternatives in the same order and compute what the backtracking would
/// settle on. Text no alternative matches becomes a piece of its own, as in
/// Hugging Face's `Split` with `Isolated` behaviour and in llama.cpp.
package enum PreTokenizer: String, Sendable, CaseIterable {
    /// Llama-3 (also `falcon3`, `falcon_e`):
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3 = "llama-bpe"
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    case gpt2 = "gpt-2"
    /// llama.cpp's `falcon` set, three regexes applied one after another:
    /// ``[\p{P}\$\+<=>\^~\|`]+``, the GPT-2 regex, `[0-9][0-9][0-9]`.
    case falcon = "falcon"
    /// llama.cpp's fallback set (what bitnet.cpp uses when `pre` is missing):
    /// `[\p{P}\$\+<=>\^~\|]+`, the GPT-2 regex, `\p{N}+`, `[0-9][0-9][0-9]`.
    case bpeDefault = "default"

    /// Size of Llama-3's vocabulary (128000 BPE tokens + 256 specials).
    package static let llama3VocabularySize = 128_256

    /// The pre-tokenizer for a `tokenizer.ggml.pre` value, and whether whole words
    /// found in the vocabulary skip the merges (`ignore_merges` in the Llama-3
    /// `tokenizer.json`; llama.cpp sets it for the same names).
    ///
    /// A missing `pre` with Llama-3's 128256 tokens means the official BitNet
    /// b1.58 2B4T file, whose converter never wrote the key (docs/FORMATS.md §6.3).
    /// bitnet.cpp then falls back to `default`, but the model was trained with the
    /// Llama-3 tokenizer, so we use `llama-bpe` to match training and Hugging Face.
    /// Unknown names fall back to `default` (llama.cpp refuses to load them).
    package static func resolve(pre: String?, vocabularySize: Int) -> (preTokenizer: PreTokenizer, ignoreMerges: Bool, known: Bool) {
        guard let pre else {
            if vocabularySize == llama3VocabularySize { return (.llama3, true, true) }
            return (.bpeDefault, false, true)
        }
        switch pre {
        case "llama-bpe", "llama3", "llama-v3", "falcon3", "falcon_e", "falcon-h1":
            return (.llama3, true, true)
        case "gpt-2", "gpt2", "phi-2", "roberta-bpe":
            return (.gpt2, false, true)
        case "falcon":
            return (.falcon, false, true)
        case "default":
            return (.bpeDefault, false, true)
        default:
            return (.bpeDefault, false, false)
        }
    }

    /// Calls `emit` with the scalar-index range of each piece, in order; the pieces
    /// cover `text` exactly.
    func split(_ text: ScalarText, emit: (Range<Int>) -> Void) {
        let count = text.count
        guard count > 0 else { return }
        text.scalars.withUnsafeBufferPointer { scalars in
            text.classes.withUnsafeBufferPointer { classes in
                switch self {
                case .llama3:
                    PreTokenizer.scanLlama3(scalars, classes, 0, count, emit)
                case .gpt2:
                    PreTokenizer.scanGPT2(scalars, classes, 0, count, emit)
                case .falcon, .bpeDefault:
                    PreTokenizer.splitInPasses(self, scalars, classes, count, emit)
                }
            }
        }
    }
}

extension PreTokenizer {
    /// The pieces of `bytes` as byte arrays (for tests and `bitnet tokenize --pieces`).
    package func pieces(of bytes: [UInt8]) -> [[UInt8]] {
        var text = ScalarText()
        var out: [[UInt8]] = []
        bytes.withUnsafeBufferPointer { buffer in
            text.load(buffer)
            let offsets = text.offsets
            split(text) { range in
                out.append(Array(buffer[offsets[range.lowerBound]..<offsets[range.upperBound]]))
            }
        }
        return out
    }

    /// The pieces of `string`, each as a string.
    package func pieces(of string: String) -> [String] {
        pieces(of: Array(string.utf8)).map { String(decoding: $0, as: UTF8.self) }
    }
}
