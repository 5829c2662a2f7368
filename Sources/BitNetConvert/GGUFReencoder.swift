import BitNet
import CKernels

/// Rewrites a GGUF model with its ternary projections stored in another type —
/// e.g. a llama.cpp TQ2_0 file or a bitnet.cpp TL2 file as bitnet.cpp's I2_S,
/// or an I2_S file as TQ2_0 for llama.cpp — without Python or the original
/// checkpoint. Every other tensor and every metadata key is copied as is
/// (`general.file_type` follows the new type); a projection's separate
/// per-tensor output scale (1bitLLM's `blk.N.*.scale`) is folded into the
/// weight scale, as the engine applies it at load. Streams tensor by tensor
/// to a temporary name, renamed when complete. The embedding and head can be
/// rewritten as Q8_0 (or F16) on the way.
public struct GGUFReencoder {
    public let source: GGUFFile
    public let projectionType: GGUFModelLayout.ProjectionType
    public let config: ModelConfig
    private let layout: GGUFModelLayout
    /// Projection tensor name → (layer, short name, rows M, cols K).
    private let projections: [String: (Int, String, Int, Int)]

    /// Q8_0 to requantize the embedding and head (from F16/F32/BF16), nil to copy them.
    public let embeddingType: GGMLType?

    public init(source: GGUFFile, projectionType: GGUFModelLayout.ProjectionType, embeddingType: GGMLType? = nil) throws {
        self.source = source
        self.projectionType = projectionType
        self.embeddingType = embeddingType
        config = try ModelConfig(gguf: source)
        layout = GGUFModelLayout(config: config, name: "", projectionType: projectionType)
        let key = "--type \(projectionType.name)"
        if let problem = layout.unsupportedShapes {
            throw ConvertError.invalidConfig(path: source.path, key: key, reason: problem)
        }
        if projectionType == .tq2_0 || projectionType == .tq1_0,
           let odd = layout.projections().first(where: { $0.2 % 256 != 0 }) {
            throw ConvertError.invalidConfig(path: source.path, key: key, reason: "TQ blocks need every input width " +
                                             "to be a multiple of 256 (\(odd.0) has \(odd.2)); use i2_s")
        }
        if let e = embeddingType {
            guard [.q8_0, .q6_K, .q4_K, .q4_0, .f16].contains(e) else {
                throw ConvertError.notSupported(what: "--embedding-type \(e) (written: f16, q8_0, q6_k, q4_k, q4_0)")
            }
            if let block = e.blockSize, config.hiddenSize % block != 0 {
                throw ConvertError.invalidConfig(path: source.path, key: "--embedding-type \(e.name.lowercased())",
                                                 reason: "hidden size \(config.hiddenSize) is not a multiple of \(block)")
            }
        }
        var map: [String: (Int, String, Int, Int)] = [:]
        for layer in 0..<config.layerCount {
            for (name, rows, cols) in layout.projections() { map[TensorName.layer(layer, name)] = (layer, name, rows, cols) }
        }
        projections = map
    }

    /// Tensors folded into a projection's scale, so not written.
    private var folded: Set<String> {
        Set(projections.values.map { TensorName.layerScale($0.0, $0.1) })
    }

    private func isHead(_ name: String) -> Bool { name == TensorName.tokenEmbedding || name == TensorName.output }

    /// Writes the re-encoded model; `progress(bytesWritten, totalBytes)`.
    public func write(to path: String, progress: ((Int, Int) -> Void)? = nil) throws {
        var writer = GGUFWriter(alignment: source.alignment)
        // same keys in the same order; only the file type changes
        for key in source.metadataKeys {
            if let value = source.metadata[key] {
                writer.set(key, key == "general.file_type" ? .uint32(layout.fileType) : value)
            }
        }
        if source.metadata["general.file_type"] == nil { writer.set("general.file_type", .uint32(layout.fileType)) }
        let entries = Dictionary(uniqueKeysWithValues: layout.tensors.map { ($0.name, $0) })
        let skip = folded
        var order: [GGUFTensorInfo] = []
        for t in source.tensors where !skip.contains(t.name) {
            if projections[t.name] != nil, let e = entries[t.name] {
                let explicit = e.type == .i2_s || e.type == .tl1 || e.type == .tl2
                try writer.addTensor(name: t.name, dims: e.dims, type: e.type, byteCount: explicit ? e.byteCount : nil)
            } else if let e = embeddingType, isHead(t.name) {
                try writer.addTensor(name: t.name, dims: [config.hiddenSize, config.vocabSize], type: e)
            } else {
                try writer.addTensor(name: t.name, dims: t.dims, type: t.type,
                                     byteCount: t.type.hasKnownSize ? nil : t.extent)
            }
            order.append(t)
        }
        let loader = TensorLoader(file: source)
        var index = 0
        try writer.write(to: path, progress: progress) { info, sink in
            let t = order[index]
            index += 1
            if let e = embeddingType, isHead(t.name) {
                // through the loader (any float or block type → F16), then to the requested type
                let half = try loader.half(t.name, rows: config.vocabSize, cols: config.hiddenSize)
                var row = [Float](repeating: 0, count: config.hiddenSize)
                var bytes: [UInt8] = []
                for r in 0..<config.vocabSize {
                    let h = half.row(r)
                    bytes.removeAll(keepingCapacity: true)
                    if e == .q8_0 {
                        for c in 0..<config.hiddenSize { row[c] = Float(Float16(bitPattern: h[c])) }
                        row.withUnsafeBufferPointer { BlockQuantizer.appendQ8_0($0.baseAddress!, count: $0.count, to: &bytes) }
                    } else if e != .f16 { // Q6_K, Q4_K, Q4_0: one row is whole blocks (checked above)
                        for c in 0..<config.hiddenSize { row[c] = Float(Float16(bitPattern: h[c])) }
                        bytes = KBlockQuantizer.encode(row, type: e) ?? []
                    } else {
                        for c in 0..<config.hiddenSize { bytes.append(UInt8(h[c] & 0xFF)); bytes.append(UInt8(h[c] >> 8)) }
                    }
                    try sink.write(bytes)
                }
                return
            }
            guard let (layer, name, rows, cols) = projections[t.name], let entry = entries[t.name] else {
                let bytes = source.data(for: t)
                try sink.write(UnsafeRawBufferPointer(rebasing: bytes[0..<(info.byteCount ?? t.extent)]))
                return
            }
            let matrix = try loader.ternary(layer: layer, name: name, rows: rows, cols: cols)
            let values = matrix.ternaryValues() // (rows, cols) row-major
            try TensorEncoder.emitTernary(rows: rows, cols: cols, scale: matrix.scale, entry: entry, to: &sink,
                                          written: { _ in }) { r, out in
                values.withUnsafeBufferPointer { v in out.update(from: v.baseAddress! + r * cols, count: cols) }
            }
        }
    }
}
