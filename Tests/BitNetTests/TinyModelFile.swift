import Foundation
@testable import BitNet
@testable import BitNetConvert

/// A complete model file small enough to corrupt and reload thousands of times
/// (≈ 130 KB): one BitNet b1.58 layer, hidden 128, and a 259-token byte-level
/// BPE tokenizer (the 256 byte tokens, one merge, BOS 257 and EOS 258).
enum TinyModelFile {
    static let config = ModelConfig(architecture: .bitnetB158, vocabSize: 259, contextLength: 16, hiddenSize: 128,
                                    layerCount: 1, ffnSize: 256, headCount: 2, kvHeadCount: 1)

    static var tokenizerMetadata: [(String, GGUFValue)] {
        var tokens = (0..<256).map { String(UnicodeScalar(ByteLevel.byteToScalar[$0])!) }
        tokens += ["Ġt", "<s>", "</s>"]
        var types = [Int32](repeating: 1, count: tokens.count)
        types[257] = 3
        types[258] = 3
        return [
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string("llama-bpe")),
            ("tokenizer.ggml.tokens", .array(.string(tokens))),
            ("tokenizer.ggml.token_type", .array(.int32(types))),
            ("tokenizer.ggml.merges", .array(.string(["Ġ t"]))),
            ("tokenizer.ggml.bos_token_id", .uint32(257)),
            ("tokenizer.ggml.eos_token_id", .uint32(258)),
        ]
    }

    /// Writes the file; the same seed gives the same bytes.
    static func write(to path: String, seed: UInt64 = 3) throws {
        var synth = ModelSynthesizer(config: config, seed: seed)
        synth.tokenizerMetadata = tokenizerMetadata
        try synth.write(to: path)
    }

    /// Copies a GGUF file with its metadata edited (tensor table and bytes unchanged).
    static func rewrite(_ source: String, to path: String, edit: (inout [(String, GGUFValue)]) -> Void) throws {
        let file = try GGUFFile(path: source)
        var metadata = file.metadataKeys.map { ($0, file.metadata[$0]!) }
        edit(&metadata)
        try withExtendedLifetime(file) {
            try GGUFWriter.write(to: path, alignment: file.alignment, metadata: metadata,
                                 tensors: file.tensors.map { ($0.name, $0.dims, $0.type, Array(file.data(for: $0))) })
        }
    }

    /// Sets (or adds) one key.
    static func rewrite(_ source: String, to path: String, setting key: String, to value: GGUFValue) throws {
        try rewrite(source, to: path) { metadata in
            if let i = metadata.firstIndex(where: { $0.0 == key }) { metadata[i].1 = value } else { metadata.append((key, value)) }
        }
    }
}
