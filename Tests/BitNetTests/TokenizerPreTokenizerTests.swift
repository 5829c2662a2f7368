import XCTest
@testable import BitNet

/// Pre-tokenizer splits on tricky strings. Expected pieces follow from the regexes'
/// semantics (leftmost-first alternation with backtracking); the Llama-3 ones agree
/// with the golden ids of `ggml-vocab-llama-bpe.gguf`.
final class TokenizerPreTokenizerTests: XCTestCase {
    private func check(_ pre: PreTokenizer, _ text: String, _ expected: [String],
                       file: StaticString = #filePath, line: UInt = #line) {
        // Compared as bytes: String equality would accept a different normalization.
        XCTAssertEqual(pre.pieces(of: Array(text.utf8)), expected.map { Array($0.utf8) },
                       "\(pre) split of \(text.debugDescription): \(pre.pieces(of: text))", file: file, line: line)
    }

    // MARK: - Llama-3

    func testLlama3Contractions() {
        check(.llama3, "I'm sure they're", ["I", "'m", " sure", " they", "'re"])
        check(.llama3, "DON'T WE'LL", ["DON", "'T", " WE", "'LL"])
        check(.llama3, "y'all", ["y", "'all"])  // 'a is no contraction: the apostrophe leads the word
        check(.llama3, "' era", ["'", " era"])
        check(.llama3, "'sup", ["'s", "up"])
        check(.llama3, "it\u{17F}'\u{17F}", ["it\u{17F}", "'\u{17F}"])  // long s folds to s under (?i)
    }

    func testLlama3Numbers() {
        check(.llama3, "1234567", ["123", "456", "7"])
        check(.llama3, "w048 7tuijk", ["w", "048", " ", "7", "tuijk"])
        check(.llama3, "ied 4 ½ months", ["ied", " ", "4", " ", "½", " months"])
        check(.llama3, "$100.50", ["$", "100", ".", "50"])
        check(.llama3, "٣٤٥٦", ["٣٤٥", "٦"])  // Arabic-Indic digits are \p{N}
    }

    func testLlama3Whitespace() {
        check(.llama3, "  \n\n  ", ["  \n\n", "  "])
        check(.llama3, "  Hello", [" ", " Hello"])
        check(.llama3, "    Hello\n    Hello", ["   ", " Hello", "\n", "   ", " Hello"])
        check(.llama3, "\n =", ["\n", " ="])
        check(.llama3, " \t\tfoo", [" \t", "\tfoo"])
        check(.llama3, "a\r\nb", ["a", "\r\n", "b"])
        check(.llama3, "x   ", ["x", "   "])
        check(.llama3, "x \n\t y", ["x", " \n", "\t", " y"])
        check(.llama3, String(repeating: " ", count: 1000) + "x", [String(repeating: " ", count: 999), " x"])
        check(.llama3, "a\u{3000}\u{3000}b", ["a", "\u{3000}", "\u{3000}b"])  // ideographic space is \s
    }

    func testLlama3Punctuation() {
        check(.llama3, "Hello, world!", ["Hello", ",", " world", "!"])
        check(.llama3, "(hello) ...done", ["(hello", ")", " ...", "done"])
        check(.llama3, "!!!!!!", ["!!!!!!"])
        check(.llama3, "end.\n\nNext", ["end", ".\n\n", "Next"])
        check(.llama3, "a ?\r\nb", ["a", " ?\r\n", "b"])
    }

    func testLlama3Scripts() {
        check(.llama3, "нещо на Български", ["нещо", " на", " Български"])
        check(.llama3, "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～",
              ["Hello", ",", " y", "'all", "!", " How", " are", " you", " 😁", " ?", "我想在apple工作",
               "131", "415", "1", "天", "～"])
        check(.llama3, " this is 🦙.cpp", [" this", " is", " 🦙.", "cpp"])
        check(.llama3, "🚀 (normal) 😶‍🌫️", ["🚀", " (", "normal", ")", " 😶‍🌫️"])
        // Combining marks are not letters: the mark starts the next word, or stands alone.
        check(.llama3, "e\u{301}t", ["e", "\u{301}t"])
        check(.llama3, "cafe\u{301}", ["cafe", "\u{301}"])
        check(.llama3, "नमस्ते", ["नमस", "्त", "े"])
        check(.llama3, "Cửa Việt", ["Cửa", " Việt"])
    }

    func testLlama3InvalidBytes() {
        let pieces = PreTokenizer.llama3.pieces(of: [0x61, 0xFF, 0xFE, 0x62, 0x20, 0xC3])
        XCTAssertEqual(pieces, [[0x61], [0xFF, 0xFE], [0x62], [0x20, 0xC3]])
    }

    // MARK: - GPT-2

    func testGPT2() {
        check(.gpt2, "Hello world", ["Hello", " world"])
        check(.gpt2, "I'm I'M", ["I", "'m", " I", "'", "M"])  // contractions are case-sensitive
        check(.gpt2, "1234567 abc", ["1234567", " abc"])
        check(.gpt2, "  \n\n  ", ["  \n\n  "])
        check(.gpt2, "a  b", ["a", " ", " b"])
        check(.gpt2, " 123 ½", [" 123", " ½"])
        check(.gpt2, "\tfoo", ["\t", "foo"])
        check(.gpt2, "hello\n\nworld", ["hello", "\n", "\n", "world"])
        check(.gpt2, "(hello) ...", ["(", "hello", ")", " ..."])
        check(.gpt2, "нещо 🦙.cpp", ["нещо", " 🦙.", "cpp"])
    }

    // MARK: - llama.cpp's regex lists

    func testDefault() {
        check(.bpeDefault, "Hello, world! 12345", ["Hello", ",", " world", "!", " ", "123", "45"])
        check(.bpeDefault, "a+b=c", ["a", "+", "b", "=", "c"])
        check(.bpeDefault, "x `y`", ["x", " `", "y", "`"])
    }

    func testFalcon() {
        check(.falcon, "x `y`", ["x", " ", "`", "y", "`"])
        check(.falcon, " 12345", [" ", "123", "45"])
    }

    func testPreTokenizerResolution() {
        XCTAssertEqual(PreTokenizer.resolve(pre: nil, vocabularySize: 128_256).preTokenizer, .llama3)
        XCTAssertTrue(PreTokenizer.resolve(pre: nil, vocabularySize: 128_256).ignoreMerges)
        XCTAssertEqual(PreTokenizer.resolve(pre: nil, vocabularySize: 50_257).preTokenizer, .bpeDefault)
        XCTAssertEqual(PreTokenizer.resolve(pre: "falcon3", vocabularySize: 131_072).preTokenizer, .llama3)
        XCTAssertEqual(PreTokenizer.resolve(pre: "falcon_e", vocabularySize: 32_768).preTokenizer, .llama3)
        XCTAssertEqual(PreTokenizer.resolve(pre: "gpt-2", vocabularySize: 50_257).preTokenizer, .gpt2)
        let unknown = PreTokenizer.resolve(pre: "something-new", vocabularySize: 100)
        XCTAssertEqual(unknown.preTokenizer, .bpeDefault)
        XCTAssertFalse(unknown.known)
    }

    /// Pieces always tile the input exactly, whatever it is.
    func testPiecesCoverRandomInput() {
        var rng = TokenizerTestRNG(seed: 42)
        let alphabet: [String] = ["a", "Z", " ", "  ", "\n", "\r", "\t", "'", "s", "1", "½", "é", "\u{301}", "я",
                                  "中", "😀", "!", ".", "$", "\u{3000}", "\u{200D}", "'S", "ll"]
        for pre in PreTokenizer.allCases {
            for _ in 0..<300 {
                var s = ""
                for _ in 0..<Int(rng.next() % 20) { s += alphabet[Int(rng.next() % UInt64(alphabet.count))] }
                let pieces = pre.pieces(of: s)
                XCTAssertEqual(Array(pieces.joined().utf8), Array(s.utf8))
                XCTAssertFalse(pieces.contains(""))
            }
        }
    }
}

/// Deterministic generator for randomized tests.
struct TokenizerTestRNG: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
