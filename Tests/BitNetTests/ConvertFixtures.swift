import Foundation
import XCTest
@testable import BitNet
@testable import BitNetConvert

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes tiny Hugging Face checkpoints (safetensors, config.json, tokenizer
/// files) for the converter tests, and remembers the ternary values and scale
/// each projection must convert to.
struct TinyCheckpoint {
    enum Family { case b158, oneBit, llama }
    enum Storage: Equatable {
        /// Latent/master float weights in this dtype, ternarized by the converter.
        case latent(SafetensorsDType)
        /// uint8 [out/4, in] codes + bf16 weight_scale; `multiply`: AutoBitLinear semantics.
        case packed(multiply: Bool)
    }

    struct Tensor { let name: String; let dtype: String; let shape: [Int]; let data: [UInt8] }

    let family: Family
    let storage: Storage
    var hidden = 64, heads = 4, kvHeads = 2, ffn = 96, layers = 2, vocab = 48
    var headDim: Int { hidden / heads }
    var tensors: [Tensor] = []
    /// GGUF name → (ternary values in HF row order, scale the GGUF must carry).
    var expected: [String: (values: [Int8], scale: Float)] = [:]
    /// GGUF name → f32 values the embedding/norms must read back as (before F16 rounding of the embedding).
    var expectedFloats: [String: [Float]] = [:]
    var rng: SeededGenerator

    init(family: Family, storage: Storage, seed: UInt64 = 11, hidden: Int = 64, ffn: Int = 96) {
        self.family = family
        self.storage = storage
        self.hidden = hidden
        self.ffn = ffn
        rng = SeededGenerator(seed: seed)
        if family == .oneBit { kvHeads = heads; vocab = 32 }
        build()
    }

    // MARK: - Values

    static func bf16Bits(_ x: Float) -> UInt16 {
        let b = x.bitPattern
        return UInt16((b &+ 0x7FFF &+ ((b >> 16) & 1)) >> 16) // round to nearest even
    }

    /// Encodes floats in `dtype`; returns the bytes and the values as stored.
    static func encode(_ values: [Float], _ dtype: SafetensorsDType) -> ([UInt8], [Float]) {
        var bytes: [UInt8] = []
        var stored: [Float] = []
        for v in values {
            switch dtype {
            case .bf16:
                let h = bf16Bits(v)
                withUnsafeBytes(of: h.littleEndian) { bytes += $0 }
                stored.append(Float(bitPattern: UInt32(h) << 16))
            case .f16:
                let h = Float16(v)
                withUnsafeBytes(of: h.bitPattern.littleEndian) { bytes += $0 }
                stored.append(Float(h))
            default:
                withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 }
                stored.append(v)
            }
        }
        return (bytes, stored)
    }

    /// The converter's rule, restated: s = max(mean|W|, 1e-5), t = clamp(round(W/s)).
    static func ternarize(_ w: [Float]) -> ([Int8], Float) {
        var sum = 0.0
        for v in w { sum += Double(abs(v)) }
        let s = max(Float(sum / Double(w.count)), 1e-5)
        return (w.map { Int8(max(-1, min(1, ($0 / s).rounded(.toNearestOrEven)))) }, s)
    }

    var floatType: SafetensorsDType {
        if case .latent(let t) = storage { return t }
        return .bf16
    }

    mutating func addFloats(_ name: String, shape: [Int], gguf: String?, around center: Float, spread: Float,
                            dtype: SafetensorsDType? = nil) {
        let n = shape.reduce(1, *)
        let values = (0..<n).map { _ in center + spread * rng.nextSigned() }
        let type = dtype ?? floatType
        let (bytes, stored) = Self.encode(values, type)
        tensors.append(Tensor(name: name, dtype: type.rawValue, shape: shape, data: bytes))
        if let gguf { expectedFloats[gguf] = stored }
    }

    mutating func addProjection(_ hfBase: String, gguf: String, rows: Int, cols: Int) {
        switch storage {
        case .latent(let dtype):
            let values = (0..<(rows * cols)).map { _ in 0.05 * rng.nextSigned() }
            let (bytes, stored) = Self.encode(values, dtype)
            tensors.append(Tensor(name: "\(hfBase).weight", dtype: dtype.rawValue, shape: [rows, cols], data: bytes))
            expected[gguf] = Self.ternarize(stored)
        case .packed(let multiply):
            let t = (0..<(rows * cols)).map { _ in Int8(Int(rng.next() % 3) - 1) }
            let quarter = rows / 4
            var packed = [UInt8](repeating: 0, count: quarter * cols)
            for r in 0..<rows {
                for c in 0..<cols {
                    packed[(r % quarter) * cols + c] |= UInt8(t[r * cols + c] + 1) << UInt8(2 * (r / quarter))
                }
            }
            tensors.append(Tensor(name: "\(hfBase).weight", dtype: "U8", shape: [quarter, cols], data: packed))
            // a bf16-exact scale, so the expected value is exact; BitLinear stores the
            // inverse (1/mean|W|), so the effective scale is ~0.02-0.09 either way
            let s = Float(0.02 + 0.01 * Double(rng.next() % 8))
            let raw = Float(bitPattern: UInt32(Self.bf16Bits(multiply ? s : 1 / s)) << 16)
            let (bytes, _) = Self.encode([raw], .bf16)
            tensors.append(Tensor(name: "\(hfBase).weight_scale", dtype: "BF16", shape: [1], data: bytes))
            expected[gguf] = (t, multiply ? raw : 1 / raw)
        }
    }

    mutating func build() {
        let qDim = heads * headDim, kvDim = kvHeads * headDim
        addFloats("model.embed_tokens.weight", shape: [vocab, hidden], gguf: TensorName.tokenEmbedding, around: 0, spread: 1)
        addFloats("model.norm.weight", shape: [hidden], gguf: TensorName.outputNorm, around: 1, spread: 0.1)
        if family == .llama {
            addFloats("lm_head.weight", shape: [vocab, hidden], gguf: TensorName.output, around: 0, spread: 1)
        }
        for i in 0..<layers {
            let p = "model.layers.\(i)"
            addFloats("\(p).input_layernorm.weight", shape: [hidden], gguf: TensorName.layer(i, TensorName.attnNorm), around: 1, spread: 0.1)
            addFloats("\(p).post_attention_layernorm.weight", shape: [hidden], gguf: TensorName.layer(i, TensorName.ffnNorm), around: 1, spread: 0.1)
            switch family {
            case .b158:
                addFloats("\(p).self_attn.attn_sub_norm.weight", shape: [qDim], gguf: TensorName.layer(i, TensorName.attnSubNorm), around: 1, spread: 0.1)
                addFloats("\(p).mlp.ffn_sub_norm.weight", shape: [ffn], gguf: TensorName.layer(i, TensorName.ffnSubNorm), around: 1, spread: 0.1)
            case .oneBit:
                addFloats("\(p).self_attn.inner_attn_ln.weight", shape: [qDim], gguf: TensorName.layer(i, TensorName.attnSubNorm), around: 1, spread: 0.1)
                addFloats("\(p).mlp.ffn_layernorm.weight", shape: [ffn], gguf: TensorName.layer(i, TensorName.ffnSubNorm), around: 1, spread: 0.1)
                // old transformers saved RoPE buffers; the converter must skip them
                addFloats("\(p).self_attn.rotary_emb.inv_freq", shape: [headDim / 2], gguf: nil, around: 0.5, spread: 0.5, dtype: .f32)
            case .llama:
                break
            }
            for (hf, gguf, rows, cols) in [("self_attn.q_proj", TensorName.attnQ, qDim, hidden),
                                           ("self_attn.k_proj", TensorName.attnK, kvDim, hidden),
                                           ("self_attn.v_proj", TensorName.attnV, kvDim, hidden),
                                           ("self_attn.o_proj", TensorName.attnOutput, hidden, qDim),
                                           ("mlp.gate_proj", TensorName.ffnGate, ffn, hidden),
                                           ("mlp.up_proj", TensorName.ffnUp, ffn, hidden),
                                           ("mlp.down_proj", TensorName.ffnDown, hidden, ffn)] {
                addProjection("\(p).\(hf)", gguf: TensorName.layer(i, gguf), rows: rows, cols: cols)
            }
        }
    }

    // MARK: - Files

    var configJSON: String {
        var fields: [String] = [
            "\"hidden_size\": \(hidden)", "\"intermediate_size\": \(ffn)", "\"num_hidden_layers\": \(layers)",
            "\"num_attention_heads\": \(heads)", "\"num_key_value_heads\": \(kvHeads)", "\"vocab_size\": \(vocab)",
            "\"rms_norm_eps\": 1e-05", "\"bos_token_id\": \(family == .oneBit ? 1 : 40)",
            "\"eos_token_id\": \(family == .oneBit ? 2 : 41)",
        ]
        switch family {
        case .b158:
            fields += ["\"architectures\": [\"BitNetForCausalLM\"]", "\"model_type\": \"bitnet\"", "\"hidden_act\": \"relu2\"",
                       "\"max_position_embeddings\": 4096", "\"rope_theta\": 500000.0", "\"tie_word_embeddings\": true"]
            if case .packed(let multiply) = storage {
                fields.append(multiply
                    ? "\"quantization_config\": {\"quant_method\": \"bitnet\", \"linear_class\": \"autobitlinear\", \"quantization_mode\": \"offline\"}"
                    : "\"quantization_config\": {\"quant_method\": \"bitnet\"}")
            } else {
                fields.append("\"quantization_config\": {\"quant_method\": \"bitnet\", \"linear_class\": \"autobitlinear\", \"quantization_mode\": \"online\"}")
            }
        case .oneBit:
            fields += ["\"architectures\": [\"BitnetForCausalLM\"]", "\"model_type\": \"llama\"", "\"hidden_act\": \"silu\"",
                       "\"max_position_embeddings\": 2048", "\"rope_theta\": 10000.0", "\"input_bits\": 8", "\"weight_bits\": 1"]
        case .llama:
            fields += ["\"architectures\": [\"LlamaForCausalLM\"]", "\"model_type\": \"llama\"", "\"hidden_act\": \"silu\"",
                       "\"max_position_embeddings\": 8192", "\"rope_theta\": 500000.0", "\"tie_word_embeddings\": false",
                       "\"rope_scaling\": null", "\"quantization_config\": {\"quant_method\": \"bitnet\"}"]
        }
        return "{" + fields.joined(separator: ", ") + "}"
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    /// Byte-level BPE: ids 0–39 in the model vocab, 40–42 added specials; the
    /// config's vocabulary (48) leaves 43–47 for [PADi].
    static var bpeTokenizerJSON: String {
        var vocab = (0..<26).map { String(UnicodeScalar(UInt8(97 + $0))) } + ["Ġ"]
        let pairs = stride(from: 0, to: 26, by: 2).map { vocab[$0] + vocab[$0 + 1] }
        vocab += pairs
        let vocabJSON = vocab.enumerated().map { "\(jsonString($0.element)): \($0.offset)" }.joined(separator: ", ")
        // both spellings of merges: "a b" and ["c", "d"]
        let merges = stride(from: 0, to: 26, by: 2).map { i -> String in
            let a = vocab[i], b = vocab[i + 1]
            return i % 4 == 0 ? jsonString("\(a) \(b)") : "[\(jsonString(a)), \(jsonString(b))]"
        }.joined(separator: ", ")
        let added = [(40, "<|begin_of_text|>"), (41, "<|end_of_text|>"), (42, "<|eot_id|>")].map {
            "{\"id\": \($0.0), \"content\": \(jsonString($0.1)), \"single_word\": false, \"special\": true}"
        }.joined(separator: ", ")
        return """
        {"version": "1.0", "added_tokens": [\(added)],
         "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": \(jsonString(HFTokenizerMetadata.llama3Regex))}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]},
         "post_processor": {"type": "Sequence", "processors": [
            {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
            {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}]}]},
         "model": {"type": "BPE", "ignore_merges": true, "vocab": {\(vocabJSON)}, "merges": [\(merges)]}}
        """
    }

    static let bpeTokenizerConfig = """
    {"bos_token": "<|begin_of_text|>", "eos_token": {"content": "<|eot_id|>", "special": true},
     "chat_template": "{% for m in messages %}{{ m['role'] | capitalize }}: {{ m['content'] }}<|eot_id|>{% endfor %}"}
    """

    // protobuf encoding for the SentencePiece model
    static func varint(_ v: UInt64) -> [UInt8] {
        var v = v, out: [UInt8] = []
        repeat { out.append(UInt8(v & 0x7F) | (v >= 0x80 ? 0x80 : 0)); v >>= 7 } while v != 0
        return out
    }
    static func field(_ n: Int, bytes: [UInt8]) -> [UInt8] { varint(UInt64(n << 3 | 2)) + varint(UInt64(bytes.count)) + bytes }
    static func field(_ n: Int, varint v: UInt64) -> [UInt8] { varint(UInt64(n << 3)) + varint(v) }
    static func field(_ n: Int, float f: Float) -> [UInt8] {
        varint(UInt64(n << 3 | 5)) + withUnsafeBytes(of: f.bitPattern.littleEndian) { Array($0) }
    }

    /// 30 pieces (unk, s, /s, 4 byte pieces, 23 normal) + added "<pad>" = 30; vocab 32 → [PAD31].
    static var sentencePieceModel: [UInt8] {
        var pieces: [(String, Float, Int)] = [("<unk>", 0, 2), ("<s>", 0, 3), ("</s>", 0, 3)]
        pieces += (0..<4).map { (String(format4: $0), 0, 6) }
        pieces += (0..<23).map { ("▁" + String(UnicodeScalar(UInt8(97 + $0))), -Float($0) - 1, 1) }
        var out: [UInt8] = []
        for (text, score, type) in pieces {
            var msg = field(1, bytes: Array(text.utf8)) + field(2, float: score)
            if type != 1 { msg += field(3, varint: UInt64(type)) }
            out += field(1, bytes: msg)
        }
        let trainer = field(40, varint: 0) + field(41, varint: 1) + field(42, varint: 2) + field(43, varint: UInt64(bitPattern: -1))
            + field(99, bytes: [1, 2, 3]) // an unknown field, to be skipped
        out += field(2, bytes: trainer)
        out += field(3, bytes: field(3, varint: 1))
        return out
    }

    static func write(_ path: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    static func write(_ path: String, _ text: String) throws { try write(path, Array(text.utf8)) }

    /// A safetensors file: u64 header length, JSON header padded with spaces to 8 bytes, data.
    static func safetensors(_ tensors: [Tensor], dtypeOverride: [String: String] = [:]) -> [UInt8] {
        var offset = 0
        var entries: [String] = ["\"__metadata__\": {\"format\": \"pt\"}"]
        var data: [UInt8] = []
        for t in tensors {
            let dtype = dtypeOverride[t.name] ?? t.dtype
            entries.append("\(jsonString(t.name)): {\"dtype\": \"\(dtype)\", \"shape\": \(t.shape), \"data_offsets\": [\(offset), \(offset + t.data.count)]}")
            offset += t.data.count
            data += t.data
        }
        var header = Array(("{" + entries.joined(separator: ", ") + "}").utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        return varint64(UInt64(header.count)) + header + data
    }

    static func varint64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

    /// Writes the folder; `shards` > 1 splits the tensors and writes model.safetensors.index.json.
    func write(to folder: String, shards: Int = 1) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Self.write("\(folder)/config.json", configJSON)
        if shards <= 1 {
            try Self.write("\(folder)/model.safetensors", Self.safetensors(tensors))
        } else {
            var map: [String] = []
            let per = (tensors.count + shards - 1) / shards
            for s in 0..<shards {
                let name = String(format5: s + 1, of: shards)
                let part = Array(tensors[(s * per)..<min(tensors.count, (s + 1) * per)])
                try Self.write("\(folder)/\(name)", Self.safetensors(part))
                map += part.map { "\(Self.jsonString($0.name)): \(Self.jsonString(name))" }
            }
            try Self.write("\(folder)/model.safetensors.index.json",
                           "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {\(map.joined(separator: ", "))}}")
        }
        if family == .oneBit {
            try Self.write("\(folder)/tokenizer.model", Self.sentencePieceModel)
            try Self.write("\(folder)/added_tokens.json", "{\"<pad>\": 30}")
            try Self.write("\(folder)/tokenizer_config.json", "{\"add_bos_token\": true, \"add_eos_token\": false}")
        } else {
            try Self.write("\(folder)/tokenizer.json", Self.bpeTokenizerJSON)
            try Self.write("\(folder)/tokenizer_config.json", Self.bpeTokenizerConfig)
            try Self.write("\(folder)/generation_config.json", "{\"bos_token_id\": 40, \"eos_token_id\": [41, 42]}")
        }
    }

    /// llama.cpp's permute, restated from its definition: rows viewed as
    /// (heads, 2, d/2) are transposed to (heads, d/2, 2). Returns new[r] = old[perm[r]].
    static func permutation(rows: Int, heads: Int) -> [Int] {
        let d = rows / heads
        var perm = [Int](repeating: 0, count: rows)
        for h in 0..<heads { for a in 0..<2 { for b in 0..<(d / 2) { perm[h * d + b * 2 + a] = h * d + a * (d / 2) + b } } }
        return perm
    }
}

private extension String {
    init(format4 byte: Int) {
        let hex = String(byte, radix: 16, uppercase: true)
        self = "<0x" + (hex.count < 2 ? "0" : "") + hex + ">"
    }
    init(format5 index: Int, of count: Int) {
        self = "model-\(shardNumber(index))-of-\(shardNumber(count)).safetensors"
    }
}

private func shardNumber(_ n: Int) -> String {
    let s = String(n)
    return String(repeating: "0", count: max(0, 5 - s.count)) + s
}

/// A fresh scratch folder per test, removed afterwards.
func makeScratchFolder(_ name: String) -> String {
    let path = "\(NSTemporaryDirectoryPath())/bitnet-convert-\(getpid())-\(name)"
    removeTree(path)
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func removeTree(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

func fileExists(_ path: String) -> Bool {
    FileManager.default.fileExists(atPath: path)
}
