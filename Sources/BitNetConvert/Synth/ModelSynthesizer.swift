import BitNet
import CKernels

/// Writes a model with random ternary weights, laid out exactly like
/// bitnet.cpp's official `ggml-model-i2_s.gguf` (arch, tensor names, I2_S
/// with the f32 scale tail, F16 embedding, metadata keys). Streams tensor by
/// tensor, so a 100B-shaped file needs only a few MB of memory.
public struct ModelSynthesizer {
    /// Shared with the converter (`GGUFModelLayout`), so both write the same table.
    public typealias ProjectionType = GGUFModelLayout.ProjectionType

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

    /// Keys and tensor table, exactly as `HFConverter` declares them for a checkpoint of this shape.
    public var layout: GGUFModelLayout {
        GGUFModelLayout(config: config, name: "bitnet.swift synthetic \(config.architectureName)",
                        projectionType: projectionType)
    }

    /// The GGUF writer with every key and tensor declared (no data yet).
    package func declare() throws -> GGUFWriter {
        try layout.declare(extraMetadata: tokenizerMetadata)
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
            } else if tensor.type.lookupTableType != nil || tensor.type == .tq2_0 || tensor.type == .tq1_0
                        || BitNetCppTLLayout.Kind(tensor.type) != nil {
                // whole matrix of random ternary values, encoded like the converter does
                let m = tensor.rows, k = tensor.cols
                let values = (0..<(m * k)).map { _ in Int8(Int(rng.next() % 3) - 1) }
                let scale = 1 / Float(k).squareRoot()
                var bytes: [UInt8] = []
                if let kind = BitNetCppTLLayout.Kind(tensor.type),
                   let tiling = BitNetCppTLLayout.tiling(type: kind, rows: m, cols: k) {
                    bytes = BitNetCppTLLayout.tensorBytes(values, type: kind, rows: m, cols: k, tiling: tiling, scale: scale)
                } else if let type = tensor.type.lookupTableType {
                    bytes = [UInt8](repeating: 0, count: Int(bn_tl_bytes(type, Int32(m), Int32(k))))
                    values.withUnsafeBufferPointer { v in
                        bytes.withUnsafeMutableBufferPointer { bn_tl_pack(type, v.baseAddress!, Int32(m), Int32(k), $0.baseAddress!) }
                    }
                    bytes += [UInt8](repeating: 0, count: 32)
                    withUnsafeBytes(of: scale.bitPattern.littleEndian) { bytes.replaceSubrange((bytes.count - 32)..<(bytes.count - 28), with: $0) }
                } else {
                    values.withUnsafeBufferPointer { v in
                        if tensor.type == .tq2_0 {
                            TernaryBlockCodec.encodeTQ2(v, d: scale, into: &bytes)
                        } else {
                            TernaryBlockCodec.encodeTQ1(v, d: scale, into: &bytes)
                        }
                    }
                }
                try sink.write(bytes)
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
