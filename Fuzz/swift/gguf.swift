// Fuzz target `gguf`: the GGUF reader (header, metadata, tensor table) and what
// is built from metadata alone — ModelConfig (+ validate), the tokenizer
// vocabulary and Tokenizer, chat-template detection — on small vocabulary-only
// files, so one execution stays well under a millisecond. Weights: `gguf_model`.
@testable import BitNet

enum Target: FuzzTarget {
    static func run(_ data: UnsafeRawBufferPointer) {
        let path = Fuzz.write(data, name: "input.gguf")
        guard let file = try? GGUFFile(path: path) else { return }
        // every accessor on every key: type conversions and range checks
        for key in file.metadataKeys {
            _ = try? file.optionalString(key)
            _ = try? file.optionalInteger(key)
            _ = try? file.optionalFloat(key)
            _ = try? file.optionalBool(key)
            _ = try? file.optionalStringArray(key)
            _ = try? file.optionalInt32Array(key)
            _ = try? file.optionalFloat32Array(key)
            _ = file[key]?.description
        }
        // each tensor view must lie inside the mapping: touch its first and last byte
        var sum = 0
        for t in file.tensors {
            let view = file.data(for: t)
            if view.count > 0 { sum &+= Int(view[0]) &+ Int(view[view.count - 1]) }
            _ = t.type.description
        }
        if let config = try? ModelConfig(gguf: file) { _ = try? config.validate(path: path) }
        guard let tokenizer = try? Tokenizer(gguf: file) else { return }
        Fuzz.exercise(tokenizer)
        let detection = ChatTemplate.detect(gguf: file, tokenizer: tokenizer)
        _ = try? detection.template.tokens(for: [.system("s"), .user("Hi <|eot_id|> there")], addGenerationPrompt: true,
                                           tokenizer: tokenizer)
        withExtendedLifetime(sum) {}
    }

    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        var out: [(String, [UInt8])] = []
        out.append(("bytelevel-vocab.gguf", try Fuzz.ggufBytes(metadata: Fuzz.tinyByteLevelMetadata())))
        out.append(("bytelevel-llama3-chat.gguf", try Fuzz.ggufBytes(metadata: [("general.architecture", .string("llama"))]
            + Fuzz.tinyByteLevelMetadata(extraControl: ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
                                         chatTemplate: "{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>{% endfor %}"))))
        out.append(("spm-vocab.gguf", try Fuzz.ggufBytes(metadata: Fuzz.tinySentencePieceMetadata())))
        // every value type, nested arrays, hyperparameters of a config, one tensor of each small type
        let config: [(String, GGUFValue)] = [
            ("general.architecture", .string("bitnet-b1.58")),
            ("general.alignment", .uint32(64)),
            ("bitnet-b1.58.vocab_size", .uint32(259)),
            ("bitnet-b1.58.context_length", .uint32(16)),
            ("bitnet-b1.58.embedding_length", .uint32(32)),
            ("bitnet-b1.58.block_count", .uint32(1)),
            ("bitnet-b1.58.feed_forward_length", .uint32(32)),
            ("bitnet-b1.58.attention.head_count", .uint32(1)),
            ("bitnet-b1.58.attention.head_count_kv", .uint32(1)),
            ("bitnet-b1.58.rope.freq_base", .float32(500000)),
            ("bitnet-b1.58.attention.layer_norm_rms_epsilon", .float32(1e-5)),
            ("t.u8", .uint8(200)), ("t.i8", .int8(-5)), ("t.u16", .uint16(60000)), ("t.i16", .int16(-3)),
            ("t.i32", .int32(-7)), ("t.bool", .bool(true)), ("t.u64", .uint64(1 << 40)), ("t.i64", .int64(-1)),
            ("t.f64", .float64(2.5)), ("t.nested", .array(.array([.uint8([1, 2]), .string(["a", "bc"])]))),
            ("t.empty", .array(.float64([]))), ("t.i64s", .array(.int64([1, -1]))),
        ]
        let tensors: [(name: String, dims: [Int], type: GGMLType, data: [UInt8])] = [
            ("a.f32", [4], .f32, [UInt8](repeating: 0x3f, count: 16)),
            ("b.f16", [2, 2], .f16, [UInt8](repeating: 0x3c, count: 8)),
            ("c.q8_0", [32], .q8_0, [UInt8](repeating: 1, count: 34)),
        ]
        out.append(("typed-metadata-tensors.gguf",
                    try Fuzz.ggufBytes(metadata: config + Fuzz.tinyByteLevelMetadata(), tensors: tensors, alignment: 64)))
        out.append(("empty.gguf", try Fuzz.ggufBytes(metadata: [])))
        return out
    }
}
