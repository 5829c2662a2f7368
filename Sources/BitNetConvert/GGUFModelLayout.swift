import BitNet
/// The metadata keys and tensor table of a bitnet.cpp-compatible model GGUF,
/// declared once for both writers that need it: `ModelSynthesizer` (random
/// weights) and `HFConverter` (real checkpoints). Sharing it is what makes a
/// converted 2B4T file and a `bitnet synth` file of the same shape carry the
/// same tensor table and key set as the official `ggml-model-i2_s.gguf`
/// (docs/FORMATS.md §2.3): arch keys, I2_S projections with the 32-byte scale tail,
/// F16 embedding, F32 norms.
public struct GGUFModelLayout: Sendable {
    /// How ternary projections are stored.
    public enum ProjectionType: String, Sendable, Equatable, CaseIterable {
        /// Canonical I2_S codes plus the f32 scale tail (bitnet.cpp's official format).
        case i2s = "i2_s"
        /// F16 values (t·s, or latent weights), ternarized again at load time.
        case f16
        /// llama.cpp's ternary block formats (K must be a multiple of 256).
        case tq2_0
        case tq1_0
        /// This engine's lookup-table layouts (types BN_TL1 / BN_TL2).
        case tl1
        case tl2
        /// bitnet.cpp's own TL1 / TL2 layouts (ggml types 38 / 39) for the shapes it
        /// publishes a tiling for (`BitNetCppTLLayout`), with the hidden scale slot.
        case bitnetcppTL1 = "bitnetcpp-tl1"
        case bitnetcppTL2 = "bitnetcpp-tl2"

        /// From the CLI spelling (`--type` of convert and synth; `i2s` also accepted).
        public init?(name: String) {
            let lower = name.lowercased()
            self.init(rawValue: lower == "i2s" ? "i2_s" : lower)
        }

        /// The CLI spelling.
        public var name: String { rawValue }

        /// bitnet.cpp's layout kind, for the two types written in its TL layouts.
        package var bitnetCppKind: BitNetCppTLLayout.Kind? {
            self == .bitnetcppTL1 ? .tl1 : (self == .bitnetcppTL2 ? .tl2 : nil)
        }

        public static let names = allCases.map(\.name).joined(separator: ", ")
    }

    /// What a tensor of the table holds, so a writer can find its data.
    public enum Role: Sendable, Equatable {
        case tokenEmbedding
        case output
        case outputNorm
        /// A norm vector of layer `layer` (`attn_norm`, `attn_sub_norm`, ...), `count` long.
        case norm(layer: Int, name: String, count: Int)
        /// A ternary projection of layer `layer`: `rows` outputs × `cols` inputs.
        case projection(layer: Int, name: String, rows: Int, cols: Int)
    }

    public struct Entry: Sendable, Equatable {
        public let name: String
        /// GGUF order: ne0 (contiguous) first.
        public let dims: [Int]
        public let type: GGMLType
        /// Bytes of data (before alignment padding).
        public let byteCount: Int
        public let role: Role
    }

    public var config: ModelConfig
    public var projectionType: ProjectionType = .i2s
    /// Storage of the embedding and the output head: F16 (default) or Q8_0.
    public var embeddingType: GGMLType = .f16
    /// `general.name`.
    public var name: String
    /// Whether the table has a separate `output.weight` (llama files do; the
    /// bitnet graphs tie the head to `token_embd`).
    public var hasOutput: Bool

    public init(config: ModelConfig, name: String, projectionType: ProjectionType = .i2s, hasOutput: Bool? = nil) {
        self.config = config
        self.name = name
        self.projectionType = projectionType
        self.hasOutput = hasOutput ?? (config.architecture == .llama)
    }

    /// `general.file_type` values of bitnet.cpp's llama.h: 40 = I2_S, 1 = mostly F16, 36/37 = TQ1_0/TQ2_0.
    public var fileType: UInt32 {
        switch projectionType {
        case .i2s: return 40
        case .f16: return 1
        case .tq1_0: return 36
        case .tq2_0: return 37
        case .tl1: return 1017 // our own, like the tensor type ids
        case .tl2: return 1018
        case .bitnetcppTL1: return 38 // bitnet.cpp's llama.h
        case .bitnetcppTL2: return 39
        }
    }

    /// The model's metadata, in file order (no tokenizer keys).
    public var metadata: [(String, GGUFValue)] {
        let c = config, a = c.architectureName
        var m: [(String, GGUFValue)] = [
            ("general.architecture", .string(a)),
            ("general.name", .string(name)),
            ("general.file_type", .uint32(fileType)),
            ("general.quantization_version", .uint32(2)),
            ("\(a).vocab_size", .uint32(UInt32(c.vocabSize))),
            ("\(a).context_length", .uint32(UInt32(c.contextLength))),
            ("\(a).embedding_length", .uint32(UInt32(c.hiddenSize))),
            ("\(a).block_count", .uint32(UInt32(c.layerCount))),
            ("\(a).feed_forward_length", .uint32(UInt32(c.ffnSize))),
            ("\(a).rope.dimension_count", .uint32(UInt32(c.headDim))),
            ("\(a).attention.head_count", .uint32(UInt32(c.headCount))),
            ("\(a).attention.head_count_kv", .uint32(UInt32(c.kvHeadCount))),
            ("\(a).attention.layer_norm_rms_epsilon", .float32(c.normEpsilon)),
            ("\(a).rope.freq_base", .float32(c.ropeTheta)),
        ]
        // only when it differs from what readers assume for the arch (the official file has no such key)
        if c.activation != c.architecture.defaultActivation {
            m.append(("\(a).hidden_activation", .string(c.activation.rawValue)))
        }
        return m
    }

    /// The ternary projections of a layer in file order: (name, rows M, cols K).
    public func projections() -> [(String, Int, Int)] {
        let c = config
        return [(TensorName.attnQ, c.qDim, c.hiddenSize), (TensorName.attnK, c.kvDim, c.hiddenSize),
                (TensorName.attnV, c.kvDim, c.hiddenSize), (TensorName.attnOutput, c.hiddenSize, c.qDim),
                (TensorName.ffnGate, c.ffnSize, c.hiddenSize), (TensorName.ffnUp, c.ffnSize, c.hiddenSize),
                (TensorName.ffnDown, c.hiddenSize, c.ffnSize)]
    }

    /// Why this projection type cannot store the model's projections (nil when it can):
    /// bitnet.cpp's TL layouts exist only for the shapes it publishes a tiling for.
    public var unsupportedShapes: String? {
        guard let kind = projectionType.bitnetCppKind else { return nil }
        let missing = projections().filter { BitNetCppTLLayout.tiling(type: kind, rows: $0.1, cols: $0.2) == nil }
        guard !missing.isEmpty else { return nil }
        let shapes = Set(missing.map { "\($0.1)×\($0.2)" }).sorted().joined(separator: ", ")
        return "bitnet.cpp publishes no \(kind) tiling for \(shapes) (only the shapes of bitnet_b1_58-large, " +
               "bitnet_b1_58-3B and Llama3-8B-1.58 have one)"
    }

    /// Byte count of an I2_S projection: canonical codes plus the 32-byte scale tail (docs/FORMATS.md §3.3).
    public static func i2sByteCount(rows: Int, cols: Int) -> Int {
        TernaryMatrix.canonicalByteCount(rows: rows, cols: cols) + 32
    }

    /// Bytes of the embedding (and of a separate head) in `embeddingType`.
    private var embeddingBytes: Int {
        let n = config.hiddenSize * config.vocabSize
        guard let (blockSize, typeSize) = embeddingType.blockLayout else { return n * 2 }
        return n / blockSize * typeSize
    }

    /// The tensor table in file order (the order of the official file's loader table).
    public var tensors: [Entry] {
        let c = config, h = c.hiddenSize
        var out: [Entry] = [
            Entry(name: TensorName.tokenEmbedding, dims: [h, c.vocabSize], type: embeddingType,
                  byteCount: embeddingBytes, role: .tokenEmbedding),
            Entry(name: TensorName.outputNorm, dims: [h], type: .f32, byteCount: h * 4, role: .outputNorm),
        ]
        if hasOutput {
            out.append(Entry(name: TensorName.output, dims: [h, c.vocabSize], type: embeddingType,
                             byteCount: embeddingBytes, role: .output))
        }
        let shapes = Dictionary(uniqueKeysWithValues: projections().map { ($0.0, ($0.1, $0.2)) })
        let names = [TensorName.attnNorm, TensorName.attnQ, TensorName.attnK, TensorName.attnV, TensorName.attnOutput,
                     TensorName.attnSubNorm, TensorName.ffnNorm, TensorName.ffnGate, TensorName.ffnUp,
                     TensorName.ffnDown, TensorName.ffnSubNorm]
        for i in 0..<c.layerCount {
            for name in names {
                let full = TensorName.layer(i, name)
                if let (m, k) = shapes[name] {
                    let role = Role.projection(layer: i, name: name, rows: m, cols: k)
                    switch projectionType {
                    case .i2s:
                        out.append(Entry(name: full, dims: [k, m], type: .i2_s,
                                         byteCount: Self.i2sByteCount(rows: m, cols: k), role: role))
                    case .f16:
                        out.append(Entry(name: full, dims: [k, m], type: .f16, byteCount: m * k * 2, role: role))
                    case .tl1, .tl2:
                        let type: GGMLType = projectionType == .tl1 ? .bnTL1 : .bnTL2
                        let bytes = (try? type.byteCount(dims: [k, m])) ?? 0
                        out.append(Entry(name: full, dims: [k, m], type: type, byteCount: bytes, role: role))
                    case .bitnetcppTL1, .bitnetcppTL2:
                        // planned only for published shapes (checked by `unsupportedShapes`); 0 bytes otherwise
                        let kind = projectionType.bitnetCppKind!
                        let bytes = BitNetCppTLLayout.tiling(type: kind, rows: m, cols: k).map {
                            BitNetCppTLLayout.tensorByteCount(type: kind, rows: m, cols: k, tiling: $0)
                        } ?? 0
                        out.append(Entry(name: full, dims: [k, m], type: kind.ggmlType, byteCount: bytes, role: role))
                    case .tq2_0, .tq1_0:
                        let type: GGMLType = projectionType == .tq2_0 ? .tq2_0 : .tq1_0
                        out.append(Entry(name: full, dims: [k, m], type: type,
                                         byteCount: TernaryBlockCodec.byteCount(type: type, elements: m * k), role: role))
                    }
                } else if name == TensorName.attnSubNorm || name == TensorName.ffnSubNorm {
                    guard c.architecture.hasSubNorms else { continue }
                    let n = name == TensorName.attnSubNorm ? c.qDim : c.ffnSize
                    out.append(Entry(name: full, dims: [n], type: .f32, byteCount: n * 4,
                                     role: .norm(layer: i, name: name, count: n)))
                } else {
                    out.append(Entry(name: full, dims: [h], type: .f32, byteCount: h * 4,
                                     role: .norm(layer: i, name: name, count: h)))
                }
            }
        }
        return out
    }

    /// A writer with the model's keys, then `extraMetadata` (tokenizer keys),
    /// then every tensor declared; no data yet.
    package func declare(extraMetadata: [(String, GGUFValue)] = []) throws -> GGUFWriter {
        var w = GGUFWriter(alignment: 32)
        for (key, value) in metadata { w.set(key, value) }
        for (key, value) in extraMetadata { w.set(key, value) }
        for e in tensors {
            let explicit = e.type == .i2_s || e.type == .tl1 || e.type == .tl2 // sizes ggml's traits get wrong
            try w.addTensor(name: e.name, dims: e.dims, type: e.type, byteCount: explicit ? e.byteCount : nil)
        }
        return w
    }
}
