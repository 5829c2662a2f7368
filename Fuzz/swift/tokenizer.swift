// Fuzz target `tokenizer`: encoding arbitrary bytes (not only valid UTF-8) and
// decoding arbitrary ids, plain and streaming, on the fixture vocabularies
// (Llama-3 and GPT-2 byte-level BPE, Llama SentencePiece) and a 259-token one.
//
// Input: byte 0 picks the tokenizer, byte 1 the operation and flags, the rest is
// the text to encode or the ids to decode (3 bytes each). Checked, beyond "no crash":
// - byte-level BPE without special-token parsing: decodeBytes(encode(bytes)) == bytes,
//   for any bytes (every byte has a token, so nothing may be lost or altered);
// - streaming decode, token by token, concatenates to exactly decode(ids);
// - an id outside the vocabulary is refused (throws), never read.
@testable import BitNet

enum Target: FuzzTarget {
    nonisolated(unsafe) static var tokenizers: [(tokenizer: Tokenizer, byteLevel: Bool)] = []

    static func setUp() {
        tokenizers = [
            (Fuzz.fixtureTokenizer("ggml-vocab-llama-bpe.gguf"), true),
            (Fuzz.fixtureTokenizer("ggml-vocab-gpt-2.gguf"), true),
            (Fuzz.fixtureTokenizer("ggml-vocab-llama-spm.gguf"), false),
            (Fuzz.tinyByteLevelTokenizer(), true),
        ]
    }

    static func run(_ data: UnsafeRawBufferPointer) {
        var reader = ByteReader(data)
        let (tokenizer, byteLevel) = tokenizers[Int(reader.u8()) % tokenizers.count]
        let op = reader.u8()
        let rest = reader.rest()
        let addSpecial = op & 2 != 0, parseSpecial = op & 4 != 0, renderSpecial = op & 8 != 0
        if op & 1 == 0 {
            let bytes = Array(rest)
            let ids = tokenizer.encode(bytes: bytes, addSpecial: addSpecial, parseSpecial: parseSpecial)
            guard let decoded = try? tokenizer.decodeBytes(ids, renderSpecial: true) else {
                fatalError("encode produced an id outside the vocabulary: \(ids)")
            }
            if byteLevel && !addSpecial && !parseSpecial {
                precondition(decoded == bytes, "byte-level round trip lost bytes: \(bytes) -> \(ids) -> \(decoded)")
            }
            checkStreaming(tokenizer, ids, renderSpecial: renderSpecial)
        } else {
            // ids: 3 bytes each, spread over the vocabulary plus a few past each end
            let n = tokenizer.vocabularySize
            var ids: [Int32] = []
            var i = 0
            while i + 3 <= rest.count {
                let v = Int(rest[i]) | Int(rest[i + 1]) << 8 | Int(rest[i + 2]) << 16
                ids.append(Int32(v % (n + 8)) - 4)
                i += 3
            }
            let valid = ids.allSatisfy { $0 >= 0 && Int($0) < n }
            let decoded = try? tokenizer.decode(ids, renderSpecial: renderSpecial)
            precondition((decoded != nil) == valid, "decode of \(ids) \(valid ? "failed" : "accepted an id outside 0..<\(n)")")
            if valid { checkStreaming(tokenizer, ids, renderSpecial: renderSpecial) }
        }
    }

    static func checkStreaming(_ tokenizer: Tokenizer, _ ids: [Int32], renderSpecial: Bool) {
        guard let whole = try? tokenizer.decode(ids, renderSpecial: renderSpecial) else { return }
        var stream = tokenizer.makeStreamingDecoder(renderSpecial: renderSpecial)
        var text = ""
        for id in ids {
            guard let piece = try? stream.append(id) else { fatalError("streaming decode refused valid id \(id)") }
            text += piece
        }
        text += stream.finish()
        precondition(text == whole, "streaming \(text.debugDescription) != decode \(whole.debugDescription) for \(ids)")
    }

    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        let texts = ["Hello, world! How're you?", "  leading  spaces\n\n\ttabs\r\n", "中文 日本語 한국어 Ελληνικά",
                     "e\u{301} 🙂👍🏽 🇫🇷", "<|begin_of_text|>x<|eot_id|><s></s>", "123456789 3.14 ’s I'LL"]
        var out: [(String, [UInt8])] = []
        for t in 0..<4 {
            for (i, s) in texts.enumerated() { out.append(("t\(t)-encode-\(i)", [UInt8(t), UInt8(i % 2 == 0 ? 0 : 4)] + Array(s.utf8))) }
            out.append(("t\(t)-encode-invalid-utf8", [UInt8(t), 0, 0xff, 0xc3, 0x28, 0xe2, 0x82, 0xf0, 0x9f, 0x98, 0x41]))
            var ids: [UInt8] = []
            for v in [0, 1, 2, 100, 255, 256, 1000, 128000, 128009] { ids += [UInt8(v & 255), UInt8(v >> 8 & 255), UInt8(v >> 16)] }
            out.append(("t\(t)-decode", [UInt8(t), 1 | 8] + ids))
        }
        return out
    }
}
