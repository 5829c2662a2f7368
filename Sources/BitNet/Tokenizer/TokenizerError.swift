/// Why a vocabulary could not be turned into a tokenizer, or ids into text.
public enum TokenizerError: Error, Sendable, Equatable, CustomStringConvertible {
    case emptyVocabulary
    /// A per-token array (scores, types) whose length differs from the token count.
    case arrayLengthMismatch(key: String, expected: Int, found: Int)
    /// A special-token id (bos, eos, …) outside the vocabulary.
    case specialTokenOutOfRange(name: String, id: Int32, vocabularySize: Int)
    /// `gpt2` model without merges.
    case missingMerges
    case unsupportedModel(String)
    /// Decoding an id that is not in the vocabulary.
    case tokenIDOutOfRange(id: Int32, vocabularySize: Int)
    /// One of the errors above, met while reading a GGUF file's tokenizer: the vocabulary
    /// itself knows neither the file nor the metadata key, and a message must name both.
    indirect case inFile(path: String, key: String, error: TokenizerError)

    public var description: String {
        switch self {
        case .emptyVocabulary:
            return "tokenizer vocabulary is empty"
        case .arrayLengthMismatch(let key, let expected, let found):
            return "tokenizer array '\(key)' has \(found) entries, expected \(expected) (one per token)"
        case .specialTokenOutOfRange(let name, let id, let n):
            return "special token '\(name)' id \(id) is outside the vocabulary of \(n) tokens"
        case .missingMerges:
            return "byte-level BPE vocabulary (tokenizer.ggml.model = gpt2) has no merges"
        case .unsupportedModel(let m):
            return "unsupported tokenizer model '\(m)' (supported: gpt2, llama)"
        case .tokenIDOutOfRange(let id, let n):
            return "token id \(id) is outside the vocabulary of \(n) tokens"
        case .inFile(let path, let key, let error):
            return "\(path): metadata key '\(key)': \(error.description)"
        }
    }

    /// This error as met reading `path`'s metadata, with the key it concerns.
    func inFile(_ path: String) -> TokenizerError {
        let key: String
        switch self {
        case .inFile: return self
        case .emptyVocabulary: key = TokenizerKey.tokens
        case .arrayLengthMismatch(let name, _, _): key = "tokenizer.ggml.\(name)"
        case .specialTokenOutOfRange(let name, _, _):
            key = ["pad": TokenizerKey.padID, "unknown": TokenizerKey.unknownID][name] ?? "tokenizer.ggml.\(name)_token_id"
        case .missingMerges: key = TokenizerKey.merges
        case .unsupportedModel: key = TokenizerKey.model
        case .tokenIDOutOfRange: key = TokenizerKey.tokens
        }
        return .inFile(path: path, key: key, error: self)
    }
}
