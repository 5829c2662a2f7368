import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns GGUF tensors into the engine's weight types, checking shape, type
/// and data before use. Every failure names the file and the tensor.
package struct TensorLoader {
    let file: GGUFFile
    var path: String { file.path }
    /// TL1/TL2 projections: held in place or repacked to I2_R16.
    let lookupTables: LookupTableLoading

    package init(file: GGUFFile, lookupTables: LookupTableLoading = .inPlace) {
        self.file = file
        self.lookupTables = lookupTables
    }

    private func info(_ name: String, dims: [Int]) throws -> GGUFTensorInfo {
        guard let t = file.tensor(named: name) else { throw ModelError.missingTensor(path: path, tensor: name) }
        let actual = t.dims.count == 1 && dims.count == 1 ? t.dims : Array(t.dims.prefix(2))
        // trailing singleton dims (e.g. [K, M, 1]) are harmless
        guard actual == dims, t.dims.dropFirst(dims.count).allSatisfy({ $0 == 1 }) else {
            throw ModelError.tensorShape(path: path, tensor: name, expected: dims, actual: t.dims)
        }
        return t
    }

    private func data(_ t: GGUFTensorInfo, bytes: Int) throws -> UnsafeRawBufferPointer {
        let d = file.data(for: t)
        guard d.count >= bytes else {
            throw ModelError.invalidTensorData(path: path, tensor: t.name,
                                               reason: "holds \(d.count) bytes, \(bytes) needed for \(t.type) \(t.dims)")
        }
        return d
    }

    /// Float values of a tensor of `count` elements (F32, F16 or BF16).
    private func floats(_ t: GGUFTensorInfo, count: Int) throws -> [Float] {
        switch t.type {
        case .f32:
            let d = try data(t, bytes: count * 4)
            return (0..<count).map { d.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
        case .f16:
            let d = try data(t, bytes: count * 2)
            return (0..<count).map { Float(Float16(bitPattern: d.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))) }
        case .bf16:
            let d = try data(t, bytes: count * 2)
            return (0..<count).map {
                Float(bitPattern: UInt32(d.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) << 16)
            }
        default:
            throw ModelError.unsupportedTensorType(path: path, tensor: t.name, type: t.type.description,
                                                   reason: "expected F32, F16 or BF16")
        }
    }

    func vector(_ name: String, count: Int) throws -> [Float] {
        let values = try floats(try info(name, dims: [count]), count: count)
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw ModelError.invalidTensorData(path: path, tensor: name, reason: "element \(bad) is \(values[bad])")
        }
        return values
    }

    /// An F16 matrix: used in place from the map, or converted once from F32 /
    /// BF16 (bitnet.cpp's converters have written F32 embeddings in some versions)
    /// or dequantized once from llama.cpp's block types (Q4_0 ... Q6_K, IQ4_NL, IQ4_XS:
    /// bitnet.cpp's --quant-embd, llama-quantize's embeddings and heads).
    package func half(_ name: String, rows: Int, cols: Int) throws -> HalfMatrix {
        let t = try info(name, dims: [cols, rows])
        switch t.type {
        case .f16:
            let d = try data(t, bytes: rows * cols * 2)
            guard let base = d.baseAddress, Int(bitPattern: base) % 2 == 0 else {
                throw ModelError.invalidTensorData(path: path, tensor: name, reason: "misaligned F16 data")
            }
            prefault(UnsafeRawBufferPointer(rebasing: d[0..<(rows * cols * 2)]))
            return HalfMatrix(rows: rows, cols: cols, pointer: base.assumingMemoryBound(to: UInt16.self), owner: file)
        case .f32, .bf16:
            let wide = t.type == .f32
            let d = try data(t, bytes: rows * cols * (wide ? 4 : 2))
            let buffer = AlignedBuffer(byteCount: rows * cols * 2, hugePages: true)
            let out = buffer.typed(UInt16.self)
            for i in 0..<(rows * cols) {
                let v = wide ? d.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
                    : Float(bitPattern: UInt32(d.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
                let h = BlockDequantizer.halfBits(v)
                guard h & 0x7C00 != 0x7C00 else { // not finite, or beyond F16's range
                    throw ModelError.invalidTensorData(path: path, tensor: name,
                                                       reason: "element \(i) is \(v), not representable as F16")
                }
                out[i] = h
            }
            return HalfMatrix(rows: rows, cols: cols, pointer: UnsafePointer(out.baseAddress!), owner: buffer)
        case let type where BlockDequantizer.supports(type):
            // llama.cpp block types (--quant-embd, llama-quantize): dequantized once to F16
            let need: Int
            do { need = try BlockDequantizer.byteCount(type, rows: rows, cols: cols) } catch {
                throw ModelError.invalidTensorData(path: path, tensor: name, reason: "\(error)")
            }
            let d = try data(t, bytes: need)
            let buffer = AlignedBuffer(byteCount: rows * cols * 2, hugePages: true)
            do {
                try BlockDequantizer.dequantizeToHalf(type, UnsafeRawBufferPointer(rebasing: d[0..<need]), rows: rows,
                                                      cols: cols, into: buffer.typed(UInt16.self).baseAddress!)
            } catch {
                throw ModelError.invalidTensorData(path: path, tensor: name, reason: "\(error)")
            }
            release(UnsafeRawBufferPointer(rebasing: d[0..<need])) // the F16 copy replaces the file's bytes
            return HalfMatrix(rows: rows, cols: cols, pointer: UnsafePointer(buffer.typed(UInt16.self).baseAddress!),
                              owner: buffer)
        default:
            throw ModelError.unsupportedTensorType(
                path: path, tensor: name, type: t.type.description,
                reason: "the embedding/output head must be F16, F32, BF16 or \(BlockDequantizer.supportedNames)")
        }
    }

    /// The matrix in its file's block type for the native block kernels, or nil when
    /// the tensor's type has none (then `half` expands it). Used in place from the map.
    func blocks(_ name: String, rows: Int, cols: Int) throws -> BlockQuantizedMatrix? {
        let t = try info(name, dims: [cols, rows])
        guard BlockQuantizedMatrix.isNative(t.type) else { return nil }
        let d = file.data(for: t)
        let m = try BlockQuantizedMatrix(tensor: name, path: path, type: t.type, data: d, rows: rows, cols: cols, owner: file)
        prefault(UnsafeRawBufferPointer(start: m.pointer, count: m.byteCount))
        return m
    }

    /// Maps the head's pages now, so the first generated token does not pay
    /// ~160k page faults (656 MB for 2B4T): load time, not first-token time.
    private func prefault(_ d: UnsafeRawBufferPointer) {
        guard let base = d.baseAddress, d.count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = Int(bitPattern: base) / page * page
        let length = Int(bitPattern: base) + d.count - start
        let madvPopulateRead: Int32 = 22 // Linux ≥ 5.14; older kernels return EINVAL
        if madvise(UnsafeMutableRawPointer(bitPattern: start), length, madvPopulateRead) == 0 { return }
        var sink: UInt8 = 0
        for offset in stride(from: 0, to: d.count, by: page) { sink ^= d[offset] }
        withExtendedLifetime(sink) {}
    }

    /// A ternary projection of `rows` outputs × `cols` inputs (GGUF dims [cols, rows]).
    package func ternary(layer: Int, name: String, rows: Int, cols: Int) throws -> TernaryMatrix {
        let full = TensorName.layer(layer, name)
        let t = try info(full, dims: [cols, rows])
        var matrix: TernaryMatrix
        switch t.type {
        case .i2_s:
            // canonical codes, then the f32 per-tensor scale in the tail (docs/FORMATS.md §3.3)
            let packed = TernaryMatrix.canonicalByteCount(rows: rows, cols: cols)
            let d = try data(t, bytes: packed + 4)
            let scale = d.loadUnaligned(fromByteOffset: packed, as: Float.self)
            guard scale.isFinite, scale >= 0 else {
                throw ModelError.invalidTensorData(path: path, tensor: full, reason: "I2_S scale is \(scale)")
            }
            do {
                matrix = try TernaryMatrix(canonicalI2S: UnsafeRawBufferPointer(rebasing: d[0..<packed]), rows: rows,
                                           cols: cols, scale: scale)
            } catch let e as KernelError {
                throw ModelError.invalidTensorData(path: path, tensor: full, reason: e.description)
            }
            release(d)
        case .f32, .f16, .bf16:
            let (values, scale) = Self.ternarize(try floats(t, count: rows * cols))
            matrix = try TernaryMatrix(ternary: values, rows: rows, cols: cols, scale: scale)
        case .tq1_0, .tq2_0:
            // llama.cpp's own ternary types: repacked to I2_R16 like I2_S — except TQ1_0 (1.69 bits
            // per weight) kept as TL2 (1.67) unless repacking was asked for, so it does not grow ~18%
            switch TernaryBlockCodec.decode(file.data(for: t), type: t.type, rows: rows, cols: cols) {
            case .success(let (values, scale)):
                if t.type == .tq1_0 && lookupTables == .inPlace {
                    matrix = try TernaryMatrix(lookupTableOnly: 2, ternary: values, rows: rows, cols: cols, scale: scale)
                } else {
                    matrix = try TernaryMatrix(ternary: values, rows: rows, cols: cols, scale: scale)
                }
            case .failure(let e):
                throw ModelError.invalidTensorData(path: path, tensor: full, reason: e.reason)
            }
        case .bnTL1, .bnTL2:
            // our own lookup-table files: decoded to I2_R16 (prompts use the I2_S GEMM; the decode
            // kernel is then picked with --kernel, as for any other file)
            let type = t.type.lookupTableType ?? 1
            let packed = Int(bn_tl_bytes(type, Int32(rows), Int32(cols)))
            let d = try data(t, bytes: packed + 4)
            let scale = d.loadUnaligned(fromByteOffset: packed, as: Float.self)
            guard scale.isFinite, scale >= 0 else {
                throw ModelError.invalidTensorData(path: path, tensor: full, reason: "\(t.type) scale is \(scale)")
            }
            let bytes = UnsafeRawBufferPointer(rebasing: d[0..<packed])
            // in place needs the 4-byte alignment the kernels load with (GGUF's default alignment is 32;
            // a file declaring less falls back to the copy)
            let inPlace = lookupTables == .inPlace && Int(bitPattern: bytes.baseAddress) % 4 == 0
            do {
                if inPlace {
                    matrix = try TernaryMatrix(inPlaceLookupTable: type, bytes: bytes, rows: rows, cols: cols,
                                               scale: scale, owner: file)
                } else {
                    matrix = try TernaryMatrix(lookupTable: type, bytes: bytes, rows: rows, cols: cols, scale: scale,
                                               owner: file)
                }
            } catch let e as KernelError {
                throw ModelError.invalidTensorData(path: path, tensor: full, reason: e.description)
            }
            // in place, the pages are the weights; otherwise a matching --kernel reads them again
            // (from the page cache) to copy them
            if !inPlace { release(d) }
        case .tl1, .tl2:
            // bitnet.cpp's own TL layouts are permuted for kernels generated per shape; the file does
            // not record the tiling, so only the shapes bitnet.cpp publishes one for can be read
            let kind = BitNetCppTLLayout.Kind(t.type)!
            guard let tiling = BitNetCppTLLayout.tiling(type: kind, rows: rows, cols: cols) else {
                throw ModelError.unsupportedTensorType(
                    path: path, tensor: full, type: t.type.description,
                    reason: "bitnet.cpp lays out \(kind) for the kernels it generated for this model, and publishes " +
                            "their tiling only for the shapes of bitnet_b1_58-large, bitnet_b1_58-3B and " +
                            "Llama3-8B-1.58 (\(rows)×\(cols) is not one of them); use the model's I2_S file " +
                            "(ggml-model-i2_s.gguf) or `bitnet convert` the Hugging Face checkpoint — this engine " +
                            "picks TL kernels itself (--kernel)")
            }
            let d = file.data(for: t)
            do {
                let scale = try BitNetCppTLLayout.scale(d, type: kind, rows: rows, cols: cols, tiling: tiling,
                                                        alignment: file.alignment)
                guard scale.isFinite, scale >= 0 else {
                    throw ModelError.invalidTensorData(path: path, tensor: full, reason: "\(kind) scale is \(scale)")
                }
                let values = try BitNetCppTLLayout.decode(d, type: kind, rows: rows, cols: cols, tiling: tiling)
                // bitnet.cpp's TL2 is ~1.67 bits per weight: kept as this engine's TL2 so loading does not grow it
                if kind == .tl2 && lookupTables == .inPlace {
                    matrix = try TernaryMatrix(lookupTableOnly: 2, ternary: values, rows: rows, cols: cols, scale: scale)
                } else {
                    matrix = try TernaryMatrix(ternary: values, rows: rows, cols: cols, scale: scale)
                }
            } catch let e as BitNetCppTLError {
                throw ModelError.invalidTensorData(path: path, tensor: full, reason: e.description)
            }
            release(d)
        default:
            throw ModelError.unsupportedTensorType(path: path, tensor: full, type: t.type.description,
                                                   reason: "ternary projections must be I2_S, TL1, TL2, TQ1_0, TQ2_0, F32, F16 or BF16")
        }
        // 1bitLLM files may scale each projection's output by an extra F32 [1] tensor
        let scaleName = TensorName.layerScale(layer, name)
        if file.tensor(named: scaleName) != nil {
            let extra = try vector(scaleName, count: 1)[0]
            matrix = try matrix.rescaled(by: extra)
        }
        return matrix
    }

    /// BitNet b1.58 weight quantization. A tensor that is already ternary
    /// (values in {-a, 0, a}, as bitnet.cpp's f32 exports store them) keeps a
    /// as its scale; latent weights get s = max(mean|W|, 1e-5), t = clamp(round(W/s), -1, 1).
    static func ternarize(_ w: [Float]) -> ([Int8], Float) {
        var magnitude: Float = 0
        var alreadyTernary = true
        for v in w where v != 0 {
            if magnitude == 0 { magnitude = abs(v) } else if abs(v) != magnitude { alreadyTernary = false; break }
        }
        if alreadyTernary {
            return (w.map { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) }, magnitude)
        }
        var sum: Double = 0
        for v in w { sum += Double(abs(v)) }
        let s = max(Float(sum / Double(w.count)), 1e-5)
        return (w.map { Int8(max(-1, min(1, ($0 / s).rounded(.toNearestOrEven)))) }, s)
    }

    /// The repacked copy replaces the file's bytes: drop those pages from this
    /// process (they are re-read from disk only if touched again).
    private func release(_ d: UnsafeRawBufferPointer) {
        guard let base = d.baseAddress, d.count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: base) + page - 1) / page * page
        let end = (Int(bitPattern: base) + d.count) / page * page
        if end > start {
            _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, Int32(MADV_DONTNEED))
        }
    }
}
