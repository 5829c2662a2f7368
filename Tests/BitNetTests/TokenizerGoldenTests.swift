import Foundation
import XCTest
@testable import BitNet

/// The golden pairs shipped with llama.cpp (`Fixtures/tokenizers/README.md`):
/// vocab-only GGUF files, test texts (`.inp`) and the ids the Hugging Face
/// tokenizer gives for them without BOS (`.out`). Encoding must match exactly, and
/// decoding the ids must give back the text exactly.
final class TokenizerGoldenTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tokenizers")

    /// Tokenizers are expensive to build (the Llama-3 one has 280k merges): build each once.
    nonisolated(unsafe) private static var cache: [String: Tokenizer] = [:]
    private static let lock = NSLock()

    static func tokenizer(_ name: String) throws -> Tokenizer {
        lock.lock()
        defer { lock.unlock() }
        if let t = cache[name] { return t }
        let t = try Tokenizer(path: fixtures.appendingPathComponent("ggml-vocab-\(name).gguf").path)
        cache[name] = t
        return t
    }

    /// (text, expected ids) pairs of a fixture, split as llama.cpp's test-tokenizer-0
    /// does. Split as bytes: as `String`s, "\r" + "\n__ggml…" would fuse into one
    /// Character and texts would compare equal up to Unicode normalization.
    static func goldenPairs(_ name: String) throws -> [([UInt8], [Int32])] {
        let base = name.hasSuffix(".gguf") || !name.contains("quicktok")
            ? fixtures.appendingPathComponent("ggml-vocab-\(name).gguf")
            : fixtures.appendingPathComponent(name)
        let input = try [UInt8](Data(contentsOf: base.appendingPathExtension("inp")))
        let output = try String(contentsOf: base.appendingPathExtension("out"), encoding: .utf8)
        var texts = split(input, separator: Array("\n__ggml_vocab_test__\n".utf8))
        if texts.last == [] { texts.removeLast() }  // the file ends with a separator
        var lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        guard texts.count == lines.count else {
            throw NSError(domain: "golden", code: 1,
                          userInfo: [NSLocalizedDescriptionKey: "\(name): \(texts.count) texts, \(lines.count) id lines"])
        }
        return zip(texts, lines).map { text, line in
            (text, line.split(separator: " ").compactMap { Int32($0) })
        }
    }

    private static func split(_ bytes: [UInt8], separator: [UInt8]) -> [[UInt8]] {
        var parts: [[UInt8]] = []
        var start = 0
        var i = 0
        while i + separator.count <= bytes.count {
            if bytes[i..<(i + separator.count)].elementsEqual(separator) {
                parts.append(Array(bytes[start..<i]))
                i += separator.count
                start = i
            } else {
                i += 1
            }
        }
        parts.append(Array(bytes[start...]))
        return parts
    }

    private func checkGolden(_ name: String, tokenizer tokenizerName: String? = nil, expectedCount: Int) throws {
        let tokenizer = try Self.tokenizer(tokenizerName ?? name)
        let pairs = try Self.goldenPairs(name)
        XCTAssertEqual(pairs.count, expectedCount)
        var encodePassed = 0, decodePassed = 0
        for (text, expected) in pairs {
            let shown = String(decoding: text, as: UTF8.self).debugDescription
            let ids = tokenizer.encode(bytes: text, addSpecial: false)
            if ids == expected {
                encodePassed += 1
            } else {
                XCTFail("\(name) encode \(shown):\n got      \(ids)\n expected \(expected)")
            }
            let decoded = try tokenizer.decodeBytes(expected)
            if decoded == text {
                decodePassed += 1
            } else {
                XCTFail("\(name) decode \(expected): got \(String(decoding: decoded, as: UTF8.self).debugDescription), expected \(shown)")
            }
        }
        print("golden \(name): encode \(encodePassed)/\(pairs.count), decode \(decodePassed)/\(pairs.count)")
    }

    func testLlamaBPEGolden() throws {
        try checkGolden("llama-bpe", expectedCount: 46)
    }

    func testGPT2Golden() throws {
        try checkGolden("gpt-2", expectedCount: 46)
    }

    func testLlamaSPMGolden() throws {
        try checkGolden("llama-spm", expectedCount: 46)
    }

    /// Our own texts (code, many scripts, numbers, whitespace and punctuation stress,
    /// emoji, combining marks, random mixes) with ids from quicktok-v1, an independent
    /// Llama-3 implementation: `tools/tokenizer/make_llama3_golden.py`.
    func testLlama3QuicktokGolden() throws {
        try checkGolden("llama3-quicktok", tokenizer: "llama-bpe", expectedCount: 515)
    }

    func testLlamaBPEMetadata() throws {
        let t = try Self.tokenizer("llama-bpe")
        XCTAssertEqual(t.model, .gpt2)
        XCTAssertEqual(t.preTokenizer, .llama3)
        XCTAssertTrue(t.ignoresMerges)
        XCTAssertEqual(t.vocabularySize, 128_256)
        XCTAssertEqual(t.bosID, 128_000)
        XCTAssertEqual(t.eosID, 128_001)
        XCTAssertEqual(t.eotID, 128_009)  // found by its text <|eot_id|>
        XCTAssertTrue(t.endOfGenerationIDs.isSuperset(of: [128_001, 128_009]))
        XCTAssertTrue(t.addBOS)
        XCTAssertEqual(t.encode("Hello"), [128_000, 9906])
        XCTAssertEqual(t.encode("<|start_header_id|>user<|end_header_id|>", addSpecial: false, parseSpecial: true),
                       [128_006, 882, 128_007])
        XCTAssertEqual(try t.tokenPiece(9906), "Hello")
        XCTAssertEqual(try t.tokenText(22691), "ĠHello")
    }

    /// The official 2B4T file has no `tokenizer.ggml.pre`: the 128256-token vocabulary
    /// must still get the Llama-3 pre-tokenizer (docs/FORMATS.md §6.3).
    func testMissingPreWithLlama3VocabularyUsesLlamaBPE() throws {
        let file = try GGUFFile(path: Self.fixtures.appendingPathComponent("ggml-vocab-llama-bpe.gguf").path)
        var vocabulary = try TokenizerVocabulary(gguf: file)
        vocabulary.pre = nil
        let t = try Tokenizer(vocabulary: vocabulary)
        XCTAssertEqual(t.preTokenizer, .llama3)
        XCTAssertTrue(t.addBOS)
        for (text, expected) in try Self.goldenPairs("llama-bpe") {
            XCTAssertEqual(t.encode(bytes: text, addSpecial: false), expected)
        }
    }

    func testLlamaSPMMetadata() throws {
        let t = try Self.tokenizer("llama-spm")
        XCTAssertEqual(t.model, .llama)
        XCTAssertEqual(t.bosID, 1)
        XCTAssertEqual(t.eosID, 2)
        XCTAssertEqual(t.unknownID, 0)
        XCTAssertTrue(t.addBOS)
        XCTAssertEqual(t.encode("Hello world"), [1, 15043, 3186])
        XCTAssertEqual(try t.decode([1, 15043, 3186]), "Hello world")
        XCTAssertEqual(try t.decode([1, 15043, 3186], renderSpecial: true), "<s>Hello world")
    }

    /// Decoding any golden id list token by token through the streaming decoder
    /// gives the same text as decoding it whole, and never a broken character.
    func testStreamingDecodeOfGoldenIDs() throws {
        for name in ["llama-bpe", "gpt-2", "llama-spm"] {
            let t = try Self.tokenizer(name)
            for (text, ids) in try Self.goldenPairs(name) {
                var stream = t.makeStreamingDecoder()
                var out = ""
                for id in ids {
                    let piece = try stream.append(id)
                    XCTAssertFalse(piece.unicodeScalars.contains("\u{FFFD}"), "\(name): \(text)")
                    out += piece
                }
                out += stream.finish()
                XCTAssertEqual(Array(out.utf8), text, name)
            }
        }
    }

    /// Merging word by word (with the per-call cache) gives exactly what merging the
    /// whole text at once gives, as SentencePiece and llama.cpp do.
    func testSentencePieceWordSplittingIsExact() throws {
        let t = try Self.tokenizer("llama-spm")
        guard case .sentencePiece(let split) = t.engine else { return XCTFail("not SentencePiece") }
        XCTAssertTrue(split.splitsAtWordStarts)
        let whole = split.mergingWholeTexts()
        var texts = try Self.goldenPairs("llama-spm").map { String(decoding: $0.0, as: UTF8.self) }
        texts.append(texts.joined(separator: " "))
        texts.append("  leading and trailing   spaces  \n\n  tabs\t\tand ▁ literal marks▁▁x ")
        for text in texts {
            var a: [Int32] = [], b: [Int32] = []
            var scratchA = SentencePieceEncoder.Scratch(), scratchB = SentencePieceEncoder.Scratch()
            Array(text.utf8).withUnsafeBufferPointer { bytes in
                split.encode(bytes, addPrefix: true, into: &a, scratch: &scratchA)
                whole.encode(bytes, addPrefix: true, into: &b, scratch: &scratchB)
            }
            XCTAssertEqual(a, b, text.debugDescription)
        }
    }

    /// One tokenizer serves many threads at once with identical results.
    func testConcurrentEncode() throws {
        let t = try Self.tokenizer("llama-bpe")
        let pairs = try Self.goldenPairs("llama3-quicktok")
        let failures = Failures()
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for (i, (text, expected)) in pairs.enumerated() where i % 8 == worker {
                if t.encode(bytes: text, addSpecial: false) != expected { failures.add(i) }
            }
        }
        XCTAssertEqual(failures.indices, [])
    }

    /// Random bytes (mostly invalid UTF-8) never crash and round-trip exactly.
    func testRandomBytesRoundTrip() throws {
        var rng = TokenizerTestRNG(seed: 7)
        for name in ["llama-bpe", "gpt-2", "llama-spm"] {
            let t = try Self.tokenizer(name)
            for _ in 0..<200 {
                let count = Int(rng.next() % 64)
                let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                let ids = t.encode(bytes: bytes, addSpecial: false)
                // SentencePiece's dummy prefix is decoded away again, so all three round-trip.
                XCTAssertEqual(try t.decodeBytes(ids), bytes, "\(name): \(bytes)")
            }
        }
    }
}

private final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [Int] = []
    func add(_ i: Int) { lock.lock(); list.append(i); lock.unlock() }
    var indices: [Int] { lock.lock(); defer { lock.unlock() }; return list.sorted() }
}
