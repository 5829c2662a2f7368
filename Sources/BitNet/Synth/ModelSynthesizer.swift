import CKernels

/// Writes a model with random ternary weights, laid out exactly like
/// bitnet.cpp's official `ggml-model-i2_s.gguf` (arch, tensor names, I2_S
/// with the f32 scale tail, F16 embedding, metadata keys). Streams tensor by
/// tensor, so a 100B-shaped file needs only a few MB of memory.
public struct ModelSynthesizer {
    public enum ProjectionType: Sendable {
        case i2s
        /// F16 latent weights, ternarized at load (exercises that path in tests).
        case f16
    }

    public var config: ModelConfig
    public var seed: UInt64
    public var projectionType: ProjectionType = .i2s
    /// `tokenizer.*` keys to copy (from a vocabulary GGUF); none by default.
    public var tokenizerMetadata: [(String, GGUFValue)] = []
    /// Scale of the random F16 embedding values.
    public var embeddingScale: Float = 1

    public init(config: ModelConfig, seed: UInt64 = 1) {
        self.config = config
        self.seed = seed
    }

    /// Every (name, rows M, cols K) ternary projection in file order.
    private func projections(layer i: Int) -> [(String, Int, Int)] {
        let c = config
        return [(TensorName.attnQ, c.qDim, c.hiddenSize), (TensorName.attnK, c.kvDim, c.hiddenSize),
                (TensorName.attnV, c.kvDim, c.hiddenSize), (TensorName.attnOutput, c.hiddenSize, c.qDim),
                (TensorName.ffnGate, c.ffnSize, c.hiddenSize), (TensorName.ffnUp, c.ffnSize, c.hiddenSize),
                (TensorName.ffnDown, c.hiddenSize, c.ffnSize)]
    }

    /// The GGUF writer with every key and tensor declared (no data yet).
    public func declare() throws -> GGUFWriter {
        let c = config, a = c.architectureName
        var w = GGUFWriter(alignment: 32)
        w.set("general.architecture", .string(a))
        w.set("general.name", .string("bitnet.swift synthetic \(a)"))
        w.set("general.file_type", .uint32(projectionType == .i2s ? 40 : 1)) // 40 = I2_S in bitnet.cpp's llama.h
        w.set("general.quantization_version", .uint32(2))
        w.set("\(a).vocab_size", .uint32(UInt32(c.vocabSize)))
        w.set("\(a).context_length", .uint32(UInt32(c.contextLength)))
        w.set("\(a).embedding_length", .uint32(UInt32(c.hiddenSize)))
        w.set("\(a).block_count", .uint32(UInt32(c.layerCount)))
        w.set("\(a).feed_forward_length", .uint32(UInt32(c.ffnSize)))
        w.set("\(a).rope.dimension_count", .uint32(UInt32(c.headDim)))
        w.set("\(a).attention.head_count", .uint32(UInt32(c.headCount)))
        w.set("\(a).attention.head_count_kv", .uint32(UInt32(c.kvHeadCount)))
        w.set("\(a).attention.layer_norm_rms_epsilon", .float32(c.normEpsilon))
        w.set("\(a).rope.freq_base", .float32(c.ropeTheta))
        if c.activation != c.architecture.defaultActivation {
            w.set("\(a).hidden_activation", .string(c.activation.rawValue))
        }
        for (key, value) in tokenizerMetadata { w.set(key, value) }

        try w.addTensor(name: TensorName.tokenEmbedding, dims: [c.hiddenSize, c.vocabSize], type: .f16)
        try w.addTensor(name: TensorName.outputNorm, dims: [c.hiddenSize], type: .f32)
        if c.architecture == .llama {
            try w.addTensor(name: TensorName.output, dims: [c.hiddenSize, c.vocabSize], type: .f16)
        }
        for i in 0..<c.layerCount {
            let names = [TensorName.attnNorm, TensorName.attnQ, TensorName.attnK, TensorName.attnV,
                         TensorName.attnOutput, TensorName.attnSubNorm, TensorName.ffnNorm, TensorName.ffnGate,
                         TensorName.ffnUp, TensorName.ffnDown, TensorName.ffnSubNorm]
            let shapes = Dictionary(uniqueKeysWithValues: projections(layer: i).map { ($0.0, ($0.1, $0.2)) })
            for name in names {
                let full = TensorName.layer(i, name)
                if let (m, k) = shapes[name] {
                    switch projectionType {
                    case .i2s:
                        try w.addTensor(name: full, dims: [k, m], type: .i2_s,
                                        byteCount: TernaryMatrix.canonicalByteCount(rows: m, cols: k) + 32)
                    case .f16:
                        try w.addTensor(name: full, dims: [k, m], type: .f16)
                    }
                } else if name == TensorName.attnSubNorm || name == TensorName.ffnSubNorm {
                    guard c.architecture.hasSubNorms else { continue }
                    try w.addTensor(name: full, dims: [name == TensorName.attnSubNorm ? c.qDim : c.ffnSize], type: .f32)
                } else {
                    try w.addTensor(name: full, dims: [c.hiddenSize], type: .f32)
                }
            }
        }
        return w
    }

    /// Writes the file (to a temporary name, renamed when complete).
    /// `progress(bytesWritten, totalBytes)`.
    public func write(to path: String, progress: ((Int, Int) -> Void)? = nil) throws {
        let writer = try declare()
        var rng = SeededGenerator(seed: seed)
        // the 81 bytes whose four 2-bit fields are all valid codes (0, 1, 2)
        var validBytes: [UInt8] = []
        for a in 0..<3 { for b in 0..<3 { for d in 0..<3 { for e in 0..<3 { validBytes.append(UInt8(a << 6 | b << 4 | d << 2 | e)) } } } }
        let chunk = 1 << 20
        try writer.write(to: path, progress: progress) { tensor, sink in
            let name = tensor.name
            if tensor.type == .i2_s {
                let m = tensor.rows, k = tensor.cols
                let packed = TernaryMatrix.canonicalByteCount(rows: m, cols: k)
                var buffer = [UInt8](repeating: 0, count: min(chunk, packed))
                var left = packed
                while left > 0 {
                    let n = min(left, buffer.count)
                    for i in 0..<n { buffer[i] = validBytes[Int(rng.next() % 81)] }
                    try buffer.withUnsafeBytes { try sink.write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                    left -= n
                }
                // tail: f32 scale then zeros; ≈ 1/sqrt(K) keeps random activations in a sane range
                var tail = [UInt8](repeating: 0, count: 32)
                let scale = 1 / Float(k).squareRoot()
                withUnsafeBytes(of: scale.bitPattern.littleEndian) { tail.replaceSubrange(0..<4, with: $0) }
                try sink.write(tail)
            } else if tensor.type == .f16 {
                let count = tensor.elementCount
                let scale: Float = name == TensorName.tokenEmbedding || name == TensorName.output
                    ? embeddingScale : 1 / Float(tensor.cols).squareRoot()
                var buffer = [UInt16](repeating: 0, count: min(chunk / 2, count))
                var left = count
                while left > 0 {
                    let n = min(left, buffer.count)
                    for i in 0..<n { buffer[i] = Float16(rng.nextSigned() * scale).bitPattern }
                    try buffer.withUnsafeBytes { try sink.write(UnsafeRawBufferPointer(rebasing: $0[0..<(2 * n)])) }
                    left -= n
                }
            } else {
                // norm weights around 1, so layers neither vanish nor explode
                let values = (0..<tensor.elementCount).map { _ in 1 + 0.1 * rng.nextSigned() }
                try sink.write(contentsOf: values)
            }
        }
    }
}

/// SplitMix64: small, fast and reproducible across platforms (same seed, same file).
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    public mutating func nextSigned() -> Float { Float(Double(next() >> 11) / Double(1 << 52) - 1) }
}
