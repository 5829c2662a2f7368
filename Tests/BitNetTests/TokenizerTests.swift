import Foundation
import XCTest
@testable import BitNet

/// Encoding and decoding with small vocabularies built in memory.
final class TokenizerTests: XCTestCase {
    // MARK: - Toy vocabularies

    /// 256 byte tokens in byte order, then `extra` (byte-level spelling), then specials.
    private func byteLevelVocabulary(extra: [String], merges: [String], pre: String? = "gpt-2",
                                     specials: [(String, TokenType)] = [], bos: Int32? = nil,
                                     addBOS: Bool? = nil) -> TokenizerVocabulary {
        var tokens = (0..<256).map { ByteLevel.text(of: [UInt8($0)]) }
        tokens += extra
        var types = [Int32](repeating: TokenType.normal.rawValue, count: tokens.count)
        for (text, type) in specials {
            tokens.append(text)
            types.append(type.rawValue)
        }
        return TokenizerVocabulary(model: .gpt2, pre: pre, tokens: tokens, merges: merges, tokenTypes: types,
                                   bosID: bos, eosID: bos, addBOS: addBOS)
    }

    private func id(_ tokenizer: Tokenizer, _ text: String) -> Int32 {
        tokenizer.tokenID(forText: text) ?? -1
    }

    // MARK: - Byte-level BPE

    func testBPEMergesByRank() throws {
        let v = byteLevelVocabulary(extra: ["Ġt", "he", "Ġthe", "ll", "llo"],
                                    merges: ["Ġ t", "h e", "Ġt he", "l l", "ll o"])
        let t = try Tokenizer(vocabulary: v)
        let ids = t.encode(" the hello", addSpecial: false)
        XCTAssertEqual(ids.map { try! t.tokenText($0) }, ["Ġthe", "Ġ", "he", "llo"])
        XCTAssertEqual(try t.decode(ids), " the hello")
    }

    func testBPELeftmostFirstAmongEqualRanks() throws {
        let v = byteLevelVocabulary(extra: ["aa"], merges: ["a a"])
        let t = try Tokenizer(vocabulary: v)
        XCTAssertEqual(t.encode("aaa", addSpecial: false).map { try! t.tokenText($0) }, ["aa", "a"])
        XCTAssertEqual(t.encode("aaaa", addSpecial: false).map { try! t.tokenText($0) }, ["aa", "aa"])
    }

    func testBPELongWordUsesMerges() throws {
        // A 5000-byte word exercises the heap path and must stay exact.
        let v = byteLevelVocabulary(extra: ["ab", "abab"], merges: ["a b", "ab ab"])
        let t = try Tokenizer(vocabulary: v)
        let word = String(repeating: "ab", count: 2500) + "a"
        let ids = t.encode(word, addSpecial: false)
        XCTAssertEqual(ids.count, 1250 + 1)
        XCTAssertEqual(try t.decode(ids), word)
    }

    func testIgnoreMergesTakesWholeWords() throws {
        // "xyz" is a token no merge can reach: only Llama-3's ignore_merges finds it.
        let llama = try Tokenizer(vocabulary: byteLevelVocabulary(extra: ["xyz"], merges: ["x y"], pre: "llama-bpe"))
        XCTAssertTrue(llama.ignoresMerges)
        XCTAssertEqual(llama.encode("xyz", addSpecial: false), [256])
        let gpt2 = try Tokenizer(vocabulary: byteLevelVocabulary(extra: ["xyz"], merges: ["x y"], pre: "gpt-2"))
        XCTAssertEqual(gpt2.encode("xyz", addSpecial: false), [120, 121, 122])
    }

    func testInvalidUTF8GoesThroughByteTokens() throws {
        let t = try Tokenizer(vocabulary: byteLevelVocabulary(extra: [], merges: ["a b"], pre: "llama-bpe"))
        let bytes: [UInt8] = [0xFF, 0x41, 0xC3, 0x28, 0xED, 0xA0, 0x80, 0xF4, 0x90, 0x80, 0x80, 0xE2, 0x82]
        let ids = t.encode(bytes: bytes, addSpecial: false)
        XCTAssertEqual(ids, bytes.map { Int32($0) })
        XCTAssertEqual(try t.decodeBytes(ids), bytes)
    }

    func testBOSAndSpecialTokenParsing() throws {
        let v = byteLevelVocabulary(extra: [], merges: ["a b"], pre: "llama-bpe",
                                    specials: [("<|begin_of_text|>", .control), ("<|eot_id|>", .control),
                                               ("[PAD0]", .userDefined)],
                                    bos: 256)
        let t = try Tokenizer(vocabulary: v)
        XCTAssertTrue(t.addBOS)  // the Llama-3 family adds BOS unless the file says otherwise
        XCTAssertEqual(t.eotID, 257)
        XCTAssertEqual(t.endOfGenerationIDs, [256, 257])

        let plain = t.encode("a<|eot_id|>b")
        XCTAssertEqual(plain.first, 256)
        XCTAssertFalse(plain.dropFirst().contains(257), "control tokens are text unless parseSpecial")
        XCTAssertEqual(try t.decode(plain), "a<|eot_id|>b")

        let parsed = t.encode("a<|eot_id|>b", parseSpecial: true)
        XCTAssertEqual(parsed, [256, 97, 257, 98])
        XCTAssertEqual(try t.decode(parsed), "ab")
        XCTAssertEqual(try t.decode(parsed, renderSpecial: true), "<|begin_of_text|>a<|eot_id|>b")

        // User-defined tokens are always matched, as Hugging Face's non-special added tokens.
        XCTAssertEqual(t.encode("x[PAD0]", addSpecial: false), [120, 258])
        XCTAssertEqual(try t.decode([120, 258]), "x[PAD0]")

        let noBOS = try Tokenizer(vocabulary: byteLevelVocabulary(extra: [], merges: ["a b"], pre: "llama-bpe",
                                                                  specials: [("<s>", .control)], bos: 256, addBOS: false))
        XCTAssertEqual(noBOS.encode("a"), [97])
    }

    func testDecodeRejectsOutOfRangeIDs() throws {
        let t = try Tokenizer(vocabulary: byteLevelVocabulary(extra: [], merges: ["a b"]))
        XCTAssertThrowsError(try t.decode([97, 256])) { error in
            XCTAssertEqual(error as? TokenizerError, .tokenIDOutOfRange(id: 256, vocabularySize: 256))
        }
        XCTAssertThrowsError(try t.decode([-1]))
        XCTAssertThrowsError(try t.tokenPiece(Int32.max))
        var stream = t.makeStreamingDecoder()
        XCTAssertThrowsError(try stream.append(1000))
    }

    func testInvalidVocabulariesThrow() {
        XCTAssertThrowsError(try Tokenizer(vocabulary: TokenizerVocabulary(model: .gpt2, tokens: [])))
        XCTAssertThrowsError(try Tokenizer(vocabulary: TokenizerVocabulary(model: .gpt2, tokens: ["a"])))  // no merges
        XCTAssertThrowsError(try Tokenizer(vocabulary: TokenizerVocabulary(model: .llama, tokens: ["a", "b"], scores: [0])))
        XCTAssertThrowsError(try Tokenizer(vocabulary: TokenizerVocabulary(model: .llama, tokens: ["a"], bosID: 5)))
    }

    // MARK: - Streaming decode

    func testStreamingHoldsBackIncompleteCharacters() throws {
        let t = try Tokenizer(vocabulary: byteLevelVocabulary(extra: [], merges: ["a b"]))
        var stream = t.makeStreamingDecoder()
        // "é" = C3 A9 and "🦙" = F0 9F A6 99, one byte token each.
        XCTAssertEqual(try stream.append(0x61), "a")
        XCTAssertEqual(try stream.append(0xC3), "")
        XCTAssertEqual(stream.pendingByteCount, 1)
        XCTAssertEqual(try stream.append(0xA9), "é")
        XCTAssertEqual(try stream.append(0xF0), "")
        XCTAssertEqual(try stream.append(0x9F), "")
        XCTAssertEqual(try stream.append(0xA6), "")
        XCTAssertEqual(try stream.append(0x99), "🦙")
        XCTAssertEqual(stream.pendingByteCount, 0)
        // A byte that can never start a character is not held.
        XCTAssertEqual(try stream.append(0xFF), "\u{FFFD}")
        // An unfinished character is flushed as U+FFFD at the end.
        XCTAssertEqual(try stream.append(0xE2), "")
        XCTAssertEqual(stream.finish(), "\u{FFFD}")
    }

    func testStreamingMatchesWholeDecode() throws {
        let t = try Tokenizer(vocabulary: byteLevelVocabulary(extra: [], merges: ["a b"]))
        let text = "héllo 🦙 wörld — 中文 😶‍🌫️"
        let ids = t.encode(text, addSpecial: false)
        var stream = t.makeStreamingDecoder()
        var out = ""
        for id in ids {
            let piece = try stream.append(id)
            XCTAssertFalse(piece.contains("\u{FFFD}"))
            out += piece
        }
        out += stream.finish()
        XCTAssertEqual(out, text)
    }

    func testCompletePrefixLength() {
        XCTAssertEqual(StreamingDecoder.completePrefixLength([]), 0)
        XCTAssertEqual(StreamingDecoder.completePrefixLength([0x61, 0xE4, 0xB8]), 1)
        XCTAssertEqual(StreamingDecoder.completePrefixLength([0x61, 0xE4, 0xB8, 0xAD]), 4)
        XCTAssertEqual(StreamingDecoder.completePrefixLength([0xE0, 0x80]), 2)  // overlong: never valid
        XCTAssertEqual(StreamingDecoder.completePrefixLength([0xED, 0xA0]), 2)  // surrogate: never valid
        XCTAssertEqual(StreamingDecoder.completePrefixLength([0xF4, 0x8F, 0xBF]), 0)
        XCTAssertEqual(StreamingDecoder.completePrefixLength([0x80, 0x80, 0x80]), 3)
    }

    // MARK: - SentencePiece

    private func sentencePieceVocabulary() -> TokenizerVocabulary {
        var tokens = ["<unk>", "<s>", "</s>"]
        var types: [Int32] = [2, 3, 3]
        var scores: [Float] = [0, 0, 0]
        for b in 0..<256 {
            tokens.append(String(format: "<0x%02X>", b))
            types.append(TokenType.byte.rawValue)
            scores.append(0)
        }
        let pieces: [(String, Float)] = [
            ("▁", -10), ("h", -11), ("e", -12), ("l", -13), ("o", -14), ("w", -15), ("r", -16), ("d", -17),
            ("▁h", -1), ("ll", -2), ("▁he", -3), ("llo", -4), ("▁hello", -5), ("he", -6),
            ("▁w", -7), ("or", -8), ("▁wor", -9), ("ld", -9.5),
        ]
        for (piece, score) in pieces {
            tokens.append(piece)
            types.append(TokenType.normal.rawValue)
            scores.append(score)
        }
        return TokenizerVocabulary(model: .llama, pre: "default", tokens: tokens, scores: scores, tokenTypes: types,
                                   bosID: 1, eosID: 2, unknownID: 0, addBOS: true, addEOS: false)
    }

    func testSentencePieceMergesByScore() throws {
        let t = try Tokenizer(vocabulary: sentencePieceVocabulary())
        let ids = t.encode("hello world", addSpecial: false)
        XCTAssertEqual(ids.map { try! t.tokenText($0) }, ["▁hello", "▁wor", "ld"])
        XCTAssertEqual(try t.decode(ids), "hello world")

        let withBOS = t.encode("hello")
        XCTAssertEqual(withBOS.first, 1)
        XCTAssertEqual(try t.decode(withBOS), "hello")
    }

    func testSentencePieceByteFallbackAndSpaces() throws {
        let t = try Tokenizer(vocabulary: sentencePieceVocabulary())
        let ids = t.encode("hé  \n", addSpecial: false)
        XCTAssertEqual(ids.map { try! t.tokenText($0) }, ["▁h", "<0xC3>", "<0xA9>", "▁", "▁", "<0x0A>"])
        XCTAssertEqual(try t.decode(ids), "hé  \n")
        // Only the dummy prefix is removed: a leading space of the text survives.
        let leading = t.encode(" hello", addSpecial: false)
        XCTAssertEqual(leading.map { try! t.tokenText($0) }, ["▁", "▁hello"])
        XCTAssertEqual(try t.decode(leading), " hello")
        XCTAssertEqual(t.encode("", addSpecial: false), [])
    }

    func testSentencePieceInvalidUTF8() throws {
        let t = try Tokenizer(vocabulary: sentencePieceVocabulary())
        let bytes: [UInt8] = [0x68, 0xFF, 0xC3]
        let ids = t.encode(bytes: bytes, addSpecial: false)
        XCTAssertEqual(ids.map { try! t.tokenText($0) }, ["▁h", "<0xFF>", "<0xC3>"])
        XCTAssertEqual(try t.decodeBytes(ids), bytes)
    }

    func testSentencePieceSpecialTokens() throws {
        let t = try Tokenizer(vocabulary: sentencePieceVocabulary())
        XCTAssertEqual(t.encode("hello</s>", addSpecial: false, parseSpecial: true).last, 2)
        XCTAssertFalse(t.encode("hello</s>", addSpecial: false).contains(2))
        // Text after a special token gets the dummy prefix again (llama.cpp).
        let ids = t.encode("<s>hello", addSpecial: false, parseSpecial: true)
        XCTAssertEqual(ids.map { try! t.tokenText($0) }, ["<s>", "▁hello"])
    }

    func testSentencePieceStreamingStripsOnlyFirstSpace() throws {
        let t = try Tokenizer(vocabulary: sentencePieceVocabulary())
        let ids = t.encode("hello hello")
        var stream = t.makeStreamingDecoder()
        var out = ""
        for id in ids { out += try stream.append(id) }
        XCTAssertEqual(out, "hello hello")
    }
}
