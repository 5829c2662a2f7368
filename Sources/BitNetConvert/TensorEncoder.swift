import BitNet
import CKernels

/// Produces one GGUF tensor's bytes from checkpoint tensors, streaming: the
/// source is read through the map a chunk (or row) at a time, converted, and
/// written to the sink, and each chunk's pages are released once consumed
/// (file-backed pages count toward the resident set). Memory beyond that is
/// a few chunk buffers of about 1 M elements, so the peak stays far below the
/// largest single tensor.
struct TensorEncoder {
    let checkpoint: SafetensorsCheckpoint
    /// Elements per chunk of work.
    static let chunkElements = 1 << 20

    /// `written(n)` reports the bytes of this tensor written so far.
    func write(_ step: ConversionStep, to sink: inout GGUFWriter.Sink, written: (Int) -> Void) throws {
        defer { for s in step.sources { checkpoint.release(s) } }
        let entry = step.entry
        switch step.recipe {
        case .floats(let t):
            try writeFloats(t, as: entry.type, to: &sink, written: written)
        case .ternarize(let t):
            guard case .projection(_, _, let rows, let cols) = entry.role else { throw misplaced(entry) }
            try writeTernarized(t, rows: rows, cols: cols, entry: entry, permuteHeads: step.permuteHeads, to: &sink,
                                written: written)
        case .packed(let t, let scaleTensor, let multiply):
            guard case .projection(_, _, let rows, let cols) = entry.role else { throw misplaced(entry) }
            try writeUnpacked(t, scaleTensor: scaleTensor, multiply: multiply, rows: rows, cols: cols, entry: entry,
                              permuteHeads: step.permuteHeads, to: &sink, written: written)
        }
    }

    private func misplaced(_ entry: GGUFModelLayout.Entry) -> ConvertError {
        .verificationFailed(path: checkpoint.folder, reason: "tensor '\(entry.name)' planned with a recipe that does not fit its role")
    }

    // MARK: - Element access

    /// Converts `count` elements starting at element `start` to Float.
    static func load(_ bytes: UnsafeRawBufferPointer, dtype: SafetensorsDType, start: Int, count: Int,
                     into out: UnsafeMutablePointer<Float>) {
        guard let base = bytes.baseAddress else { return }
        switch dtype {
        case .bf16:
            let p = base + 2 * start
            for i in 0..<count { out[i] = Float(bitPattern: UInt32(p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16) }
        case .f16:
            let p = base + 2 * start
            for i in 0..<count { out[i] = Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) }
        case .f32:
            let p = base + 4 * start
            for i in 0..<count { out[i] = p.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) }
        default:
            // planning admits only float dtypes here
            for i in 0..<count { out[i] = .nan }
        }
    }

    /// Row `r` of the output reads source row `source(r)`: identity, or llama.cpp's Q/K permutation.
    static func rowMap(rows: Int, permuteHeads: Int?) -> (Int) -> Int {
        guard let heads = permuteHeads, heads > 0, rows % heads == 0, (rows / heads) % 2 == 0 else { return { $0 } }
        let d = rows / heads, half = d / 2
        // output (head h, j) holds source (h, j % 2, j / 2) of the (heads, 2, d/2) view
        return { r in
            let h = r / d, j = r % d
            return h * d + (j % 2) * half + j / 2
        }
    }

    // MARK: - Float tensors

    private func writeFloats(_ t: SafetensorsTensor, as type: GGMLType, to sink: inout GGUFWriter.Sink,
                             written: (Int) -> Void) throws {
        let bytes = checkpoint.bytes(of: t)
        let n = t.elementCount
        let chunk = min(n, Self.chunkElements)
        var buffer = [Float](repeating: 0, count: max(chunk, 1))
        var half = [UInt16](repeating: 0, count: type == .f16 ? max(chunk, 1) : 0)
        var start = 0
        while start < n {
            let count = min(chunk, n - start)
            buffer.withUnsafeMutableBufferPointer { Self.load(bytes, dtype: t.dtype, start: start, count: count, into: $0.baseAddress!) }
            for i in 0..<count where !buffer[i].isFinite {
                throw ConvertError.invalidTensorData(path: t.path, tensor: t.name, reason: "element \(start + i) is \(buffer[i])")
            }
            if type == .q8_0 {
                // chunks are whole rows of whole 32-element blocks (hidden % 32 == 0, checked when planning)
                var blocks: [UInt8] = []
                buffer.withUnsafeBufferPointer { BlockQuantizer.appendQ8_0($0.baseAddress!, count: count, to: &blocks) }
                try sink.write(blocks)
            } else if type == .q6_K || type == .q4_K || type == .q4_0 {
                // chunks are whole blocks: chunkElements is a multiple of 256, hidden of the block (checked when planning)
                try sink.write(KBlockQuantizer.encode(Array(buffer[0..<count]), type: type) ?? [])
            } else if type == .f16 {
                for i in 0..<count {
                    let h = Float16(buffer[i])
                    guard h.isFinite else {
                        throw ConvertError.invalidTensorData(path: t.path, tensor: t.name,
                                                             reason: "element \(start + i) = \(buffer[i]) does not fit in F16")
                    }
                    half[i] = h.bitPattern
                }
                try half.withUnsafeBytes { try sink.write(UnsafeRawBufferPointer(rebasing: $0[0..<(2 * count)])) }
            } else {
                try buffer.withUnsafeBytes { try sink.write(UnsafeRawBufferPointer(rebasing: $0[0..<(4 * count)])) }
            }
            // the embedding is the largest tensor: keep its pages from piling up
            checkpoint.release(t, elements: start, count: count)
            start += count
            written(sink.written)
        }
    }

    // MARK: - Ternary projections

    /// Ternarizes per tensor (docs/FORMATS.md §7a): s = max(mean|W|, 1e-5),
    /// t = clamp(round(W/s), -1, 1), rounding half to even. A tensor already
    /// in {-a, 0, a} (a preprocessed export) keeps s = a, as the model loader does.
    private func writeTernarized(_ t: SafetensorsTensor, rows: Int, cols: Int, entry: GGUFModelLayout.Entry,
                                 permuteHeads: Int?, to sink: inout GGUFWriter.Sink, written: (Int) -> Void) throws {
        let bytes = checkpoint.bytes(of: t)
        let n = rows * cols
        // pass 1: scale
        var buffer = [Float](repeating: 0, count: max(min(n, Self.chunkElements), cols))
        var sum = 0.0
        var magnitude: Float = 0
        var alreadyTernary = true
        var start = 0
        while start < n {
            let count = min(Self.chunkElements, n - start)
            buffer.withUnsafeMutableBufferPointer { Self.load(bytes, dtype: t.dtype, start: start, count: count, into: $0.baseAddress!) }
            for i in 0..<count {
                let v = buffer[i]
                guard v.isFinite else {
                    throw ConvertError.invalidTensorData(path: t.path, tensor: t.name, reason: "element \(start + i) is \(v)")
                }
                let a = abs(v)
                sum += Double(a)
                if a != 0 && alreadyTernary {
                    if magnitude == 0 { magnitude = a } else if a != magnitude { alreadyTernary = false }
                }
            }
            checkpoint.release(t, elements: start, count: count)
            start += count
        }
        let scale = alreadyTernary ? magnitude : max(Float(sum / Double(n)), 1e-5)
        let source = Self.rowMap(rows: rows, permuteHeads: permuteHeads)

        // pass 2: codes, row by row in output order
        try Self.emitTernary(rows: rows, cols: cols, scale: scale, entry: entry, to: &sink, written: written) { r, out in
            buffer.withUnsafeMutableBufferPointer {
                Self.load(bytes, dtype: t.dtype, start: source(r) * cols, count: cols, into: $0.baseAddress!)
            }
            checkpoint.release(t, elements: source(r) * cols, count: cols)
            if alreadyTernary {
                for c in 0..<cols { out[c] = buffer[c] > 0 ? 1 : (buffer[c] < 0 ? -1 : 0) }
            } else {
                for c in 0..<cols { out[c] = Int8(max(-1, min(1, (buffer[c] / scale).rounded(.toNearestOrEven)))) }
            }
        }
    }

    /// Unpacks [out/4, in] bytes: output row r is packed row r mod (out/4), bits 2·(r div (out/4)), code − 1.
    private func writeUnpacked(_ t: SafetensorsTensor, scaleTensor: SafetensorsTensor, multiply: Bool, rows: Int, cols: Int,
                               entry: GGUFModelLayout.Entry, permuteHeads: Int?, to sink: inout GGUFWriter.Sink,
                               written: (Int) -> Void) throws {
        var raw: Float = .nan
        Self.load(checkpoint.bytes(of: scaleTensor), dtype: scaleTensor.dtype, start: 0, count: 1, into: &raw)
        guard raw.isFinite, raw > 0 else {
            throw ConvertError.invalidTensorData(path: scaleTensor.path, tensor: scaleTensor.name,
                                                 reason: "weight_scale is \(raw); it must be a positive number")
        }
        let scale = multiply ? raw : 1 / raw
        let bytes = checkpoint.bytes(of: t)
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            throw ConvertError.invalidTensorData(path: t.path, tensor: t.name, reason: "no data")
        }
        let quarter = rows / 4
        let source = Self.rowMap(rows: rows, permuteHeads: permuteHeads)
        try Self.emitTernary(rows: rows, cols: cols, scale: scale, entry: entry, to: &sink, written: written) { r, out in
            let s = source(r)
            let row = base + (s % quarter) * cols
            let shift = UInt8(2 * (s / quarter))
            for c in 0..<cols {
                let code = (row[c] >> shift) & 3
                guard code != 3 else {
                    throw ConvertError.invalidTensorData(path: t.path, tensor: t.name,
                                                         reason: "packed code 3 (not a ternary value) for row \(s), column \(c)")
                }
                out[c] = Int8(code) - 1
            }
        }
    }

    /// Writes ternary rows as I2_S (canonical codes + 32-byte tail holding the
    /// f32 scale), as TQ2_0/TQ1_0 blocks (f16 d = the scale), or as F16 values t·s. `fill(r, out)` writes output row r's
    /// `cols` values. Chunks hold whole 128-element I2_S blocks, so each is
    /// packed independently.
    static func emitTernary(rows: Int, cols: Int, scale: Float, entry: GGUFModelLayout.Entry,
                             to sink: inout GGUFWriter.Sink, written: (Int) -> Void,
                             fill: (Int, UnsafeMutablePointer<Int8>) throws -> Void) throws {
        if let kind = BitNetCppTLLayout.Kind(entry.type) {
            // bitnet.cpp's layouts permute whole BM-row tiles: the whole matrix at once
            guard let tiling = BitNetCppTLLayout.tiling(type: kind, rows: rows, cols: cols) else {
                throw ConvertError.notSupported(what: "bitnet.cpp \(kind) for a \(rows)×\(cols) matrix")
            }
            var values = [Int8](repeating: 0, count: rows * cols)
            try values.withUnsafeMutableBufferPointer { v in
                for r in 0..<rows { try fill(r, v.baseAddress! + r * cols) }
            }
            try sink.write(BitNetCppTLLayout.tensorBytes(values, type: kind, rows: rows, cols: cols, tiling: tiling,
                                                         scale: scale))
            written(sink.written)
            return
        }
        if let tlType = entry.type.lookupTableType {
            // TL layouts tile 32 rows × all columns, with per-row data after the tiles:
            // pack the whole matrix at once (M·K bytes of ternary values)
            var values = [Int8](repeating: 0, count: rows * cols)
            try values.withUnsafeMutableBufferPointer { v in
                for r in 0..<rows { try fill(r, v.baseAddress! + r * cols) }
            }
            var packed = [UInt8](repeating: 0, count: Int(bn_tl_bytes(tlType, Int32(rows), Int32(cols))))
            values.withUnsafeBufferPointer { v in
                packed.withUnsafeMutableBufferPointer { bn_tl_pack(tlType, v.baseAddress!, Int32(rows), Int32(cols), $0.baseAddress!) }
            }
            try sink.write(packed)
            var tail = [UInt8](repeating: 0, count: 32)
            withUnsafeBytes(of: scale.bitPattern.littleEndian) { tail.replaceSubrange(0..<4, with: $0) }
            try sink.write(tail)
            written(sink.written)
            return
        }
        var g = 128, k = cols
        while k != 0 { (g, k) = (k, g % k) } // gcd(cols, 128)
        let unit = 128 / g // rows per whole number of blocks
        let chunkRows = max(unit, Self.chunkElements / max(cols, 1) / unit * unit)
        var values = [Int8](repeating: 0, count: chunkRows * cols)
        let i2s = entry.type == .i2_s, tq = entry.type == .tq2_0 || entry.type == .tq1_0
        var packed = [UInt8](repeating: 0, count: i2s ? TernaryMatrix.canonicalByteCount(rows: chunkRows, cols: cols) : 0)
        var half = [UInt16](repeating: 0, count: i2s || tq ? 0 : cols)
        var blocks: [UInt8] = []
        let h0 = Float16(0).bitPattern, hp = Float16(scale).bitPattern, hn = Float16(-scale).bitPattern
        var r0 = 0
        while r0 < rows {
            let n = min(chunkRows, rows - r0)
            try values.withUnsafeMutableBufferPointer { v in
                for r in 0..<n { try fill(r0 + r, v.baseAddress! + r * cols) }
            }
            if i2s {
                let bytes = TernaryMatrix.canonicalByteCount(rows: n, cols: cols)
                values.withUnsafeBufferPointer { v in
                    packed.withUnsafeMutableBufferPointer { p in
                        bn_i2s_canonical_pack(v.baseAddress!, Int32(n), Int32(cols), p.baseAddress!)
                    }
                }
                try packed.withUnsafeBytes { try sink.write(UnsafeRawBufferPointer(rebasing: $0[0..<bytes])) }
            } else if tq {
                // whole rows are whole 256-element blocks (checked when planning); d = the tensor scale
                blocks.removeAll(keepingCapacity: true)
                values.withUnsafeBufferPointer { v in
                    let rowsValues = UnsafeBufferPointer(rebasing: v[0..<(n * cols)])
                    if entry.type == .tq2_0 {
                        TernaryBlockCodec.encodeTQ2(rowsValues, d: scale, into: &blocks)
                    } else {
                        TernaryBlockCodec.encodeTQ1(rowsValues, d: scale, into: &blocks)
                    }
                }
                try sink.write(blocks)
            } else {
                for r in 0..<n {
                    for c in 0..<cols {
                        let t = values[r * cols + c]
                        half[c] = t > 0 ? hp : (t < 0 ? hn : h0)
                    }
                    try sink.write(contentsOf: half)
                }
            }
            r0 += n
            written(sink.written)
        }
        if i2s {
            var tail = [UInt8](repeating: 0, count: 32)
            withUnsafeBytes(of: scale.bitPattern.littleEndian) { tail.replaceSubrange(0..<4, with: $0) }
            try sink.write(tail)
        }
    }
}
