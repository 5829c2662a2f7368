import Dispatch

/// Dequantizes llama.cpp's block-quantized types to f32 / F16: the token embeddings
/// and output heads of files made with bitnet.cpp's `--quant-embd` or llama-quantize
/// (Q6_K, Q4_K, Q8_0, ...). Layouts follow ggml's `block_*` structs (ggml-common.h),
/// little-endian, f16 scales; block sizes come from `GGMLType.blockLayout`.
///
/// The arithmetic is done in f32 in the same order as ggml's reference
/// `dequantize_row_*` and gguf-py's `gguf.quants` (`scale = d · sc`, then
/// `scale · q − min`, never fused), so results are bit-identical to them
/// (Tests/BitNetTests/Fixtures/dequant, tools/gguf/make_dequant_fixture.py).
package enum BlockDequantizer {
    /// The types `dequantizeRow` understands, in ggml id order.
    static let supportedTypes: [GGMLType] = [.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K,
                                             .iq4_nl, .iq4_xs]

    static func supports(_ type: GGMLType) -> Bool {
        switch type {
        case .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_nl, .iq4_xs: return true
        default: return false
        }
    }

    enum Failure: Error, Equatable, CustomStringConvertible {
        case unsupportedType(GGMLType)
        case invalidShape(rows: Int, cols: Int)
        case rowNotBlockMultiple(type: GGMLType, cols: Int, blockSize: Int)
        case truncated(type: GGMLType, have: Int, need: Int)
        /// A block scale (d, or dmin / m) is infinite or NaN.
        case nonFiniteScale(type: GGMLType, row: Int, block: Int)
        /// A finite value too large for the F16 matrix it is converted into.
        case beyondHalfRange(row: Int, col: Int, value: Float)

        var description: String {
            switch self {
            case .unsupportedType(let t): return "\(t) cannot be dequantized (supported: \(BlockDequantizer.supportedNames))"
            case .invalidShape(let rows, let cols): return "invalid shape \(rows)×\(cols)"
            case .rowNotBlockMultiple(let t, let cols, let bs):
                return "\(t) rows must be whole blocks of \(bs) elements, got \(cols) columns"
            case .truncated(let t, let have, let need): return "holds \(have) bytes, \(need) needed for \(t)"
            case .nonFiniteScale(let t, let row, let block): return "row \(row), \(t) block \(block) has a non-finite scale"
            case .beyondHalfRange(let row, let col, let value):
                return "row \(row), element \(col) is \(value), beyond the F16 range"
            }
        }
    }

    /// "Q4_0, Q4_1, ..." for error messages.
    static var supportedNames: String { supportedTypes.map(\.name).joined(separator: ", ") }

    /// Bytes a (rows, cols) tensor of `type` occupies; checks the type and shape.
    static func byteCount(_ type: GGMLType, rows: Int, cols: Int) throws -> Int {
        guard supports(type), let (blockSize, typeSize) = type.blockLayout else { throw Failure.unsupportedType(type) }
        guard rows > 0, cols > 0 else { throw Failure.invalidShape(rows: rows, cols: cols) }
        guard cols % blockSize == 0 else {
            throw Failure.rowNotBlockMultiple(type: type, cols: cols, blockSize: blockSize)
        }
        let (perRow, o1) = (cols / blockSize).multipliedReportingOverflow(by: typeSize)
        let (total, o2) = perRow.multipliedReportingOverflow(by: rows)
        guard !o1, !o2 else { throw Failure.invalidShape(rows: rows, cols: cols) }
        return total
    }

    /// Dequantizes `count` elements (a whole number of `type`'s blocks) starting at `src`.
    /// The caller has checked the type (`supports`) and that `src` holds the blocks.
    static func dequantizeRow(_ type: GGMLType, _ src: UnsafeRawPointer, count: Int,
                              into y: UnsafeMutablePointer<Float>) {
        guard let (blockSize, typeSize) = type.blockLayout else { preconditionFailure("\(type) has no block layout") }
        precondition(count % blockSize == 0, "\(count) elements is not a whole number of \(type) blocks")
        let blocks = count / blockSize
        let f: (UnsafeRawPointer, UnsafeMutablePointer<Float>) -> Void
        switch type {
        case .q4_0: f = q4_0
        case .q4_1: f = q4_1
        case .q5_0: f = q5_0
        case .q5_1: f = q5_1
        case .q8_0: f = q8_0
        case .q2_K: f = q2_K
        case .q3_K: f = q3_K
        case .q4_K: f = q4_K
        case .q5_K: f = q5_K
        case .q6_K: f = q6_K
        case .iq4_nl: f = iq4_nl
        case .iq4_xs: f = iq4_xs
        default: preconditionFailure("\(type) cannot be dequantized")
        }
        for b in 0..<blocks { f(src + b * typeSize, y + b * blockSize) }
    }

    /// A whole tensor as f32 (rows × cols, row-major), every value checked finite.
    static func dequantize(_ type: GGMLType, _ data: UnsafeRawBufferPointer, rows: Int, cols: Int) throws -> [Float] {
        let need = try byteCount(type, rows: rows, cols: cols)
        guard data.count >= need, let base = data.baseAddress else {
            throw Failure.truncated(type: type, have: data.count, need: need)
        }
        let rowBytes = need / rows
        let out = [Float](unsafeUninitializedCapacity: rows * cols) { buffer, initialized in
            for r in 0..<rows { dequantizeRow(type, base + r * rowBytes, count: cols, into: buffer.baseAddress! + r * cols) }
            initialized = rows * cols
        }
        for r in 0..<rows where !out[(r * cols)..<((r + 1) * cols)].allSatisfy({ $0.isFinite }) {
            throw diagnose(type, base + r * rowBytes, row: r, cols: cols)
        }
        return out
    }

    /// A whole tensor converted to IEEE half (rows × cols, row-major) at `out`, rows split
    /// over cores. Throws the first bad row's failure (non-finite scale, or beyond F16).
    static func dequantizeToHalf(_ type: GGMLType, _ data: UnsafeRawBufferPointer, rows: Int, cols: Int,
                                 into out: UnsafeMutablePointer<UInt16>) throws {
        let need = try byteCount(type, rows: rows, cols: cols)
        guard data.count >= need, let base = data.baseAddress else {
            throw Failure.truncated(type: type, have: data.count, need: need)
        }
        let rowBytes = need / rows
        // ~64 chunks keep cores busy without tiny tasks; each reuses one f32 row of scratch
        let chunkRows = max(1, min(rows, (rows + 63) / 64))
        let chunks = (rows + chunkRows - 1) / chunkRows
        // each chunk records its first bad row (or -1) in its own slot
        let badRows = UnsafeMutablePointer<Int>.allocate(capacity: chunks)
        badRows.initialize(repeating: -1, count: chunks)
        defer { badRows.deallocate() }
        let output = UnsafeSendablePointer(out), bad = UnsafeSendablePointer(badRows)
        let source = UnsafeSendableRawPointer(base)
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: cols)
            defer { scratch.deallocate() }
            for r in (c * chunkRows)..<min(rows, (c + 1) * chunkRows) {
                dequantizeRow(type, source.pointer + r * rowBytes, count: cols, into: scratch)
                if !toHalf(scratch, output.pointer + r * cols, count: cols) {
                    bad.pointer[c] = r
                    return
                }
            }
        }
        if let r = (0..<chunks).lazy.map({ badRows[$0] }).first(where: { $0 >= 0 }) {
            throw diagnose(type, base + r * rowBytes, row: r, cols: cols)
        }
    }

    /// Why row `row` failed: the first block with a non-finite value (so a non-finite
    /// scale: with finite f16 scales every ggml formula stays finite in f32), else the
    /// first value beyond F16's range.
    private static func diagnose(_ type: GGMLType, _ src: UnsafeRawPointer, row: Int, cols: Int) -> Failure {
        var values = [Float](repeating: 0, count: cols)
        values.withUnsafeMutableBufferPointer { dequantizeRow(type, src, count: cols, into: $0.baseAddress!) }
        let blockSize = type.blockSize ?? 1
        if let c = values.firstIndex(where: { !$0.isFinite }) {
            return .nonFiniteScale(type: type, row: row, block: c / blockSize)
        }
        let c = values.firstIndex { !Float16($0).isFinite } ?? 0
        return .beyondHalfRange(row: row, col: c, value: values[c])
    }

    /// f32 → IEEE half, round to nearest even (bit-identical to `Float16(x)`, written out because on
    /// x86-64 without F16C Swift calls compiler-rt per element). False when some result is not finite.
    @inline(__always)
    static func toHalf(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<UInt16>, count: Int) -> Bool {
        var bad: UInt32 = 0
        for i in 0..<count {
            let h = halfBits(src[i])
            bad |= UInt32(h & 0x7C00) &+ 0x0400 // carries into bit 15 only for exponent 31 (inf / NaN)
            dst[i] = h
        }
        return bad & 0x8000 == 0
    }

    /// Float16(x).bitPattern for every x (NaNs become the quiet NaN 0x7E00 with x's sign).
    @inline(__always)
    package static func halfBits(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        let sign = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
        let a = bits & 0x7FFF_FFFF
        if a >= 0x3880_0000 && a < 0x4780_0000 {
            // normal half (or rounds up to inf at ≥ 65520): rebias the exponent, round the
            // 13 dropped mantissa bits to nearest even; a carry moves into the exponent
            let odd = (a >> 13) & 1
            return sign | UInt16(truncatingIfNeeded: (a &- 0x3800_0000 &+ 0x0FFF &+ odd) >> 13)
        }
        if a < 0x3880_0000 {
            // subnormal half or zero: adding 0.5 lines the half's ulp (2^-24) up with f32's last
            // mantissa bit, so the f32 addition itself rounds to nearest even
            let f = Float(bitPattern: a) + 0.5
            return sign | UInt16(truncatingIfNeeded: f.bitPattern &- 0x3F00_0000)
        }
        return sign | (a > 0x7F80_0000 ? 0x7E00 : 0x7C00)
    }

    // MARK: - block formats (ggml-common.h), one block in, blockSize floats out

    @inline(__always)
    private static func f16(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
        Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
    }

    /// block_q4_0 (18 bytes): f16 d, qs[16]; x[j] = d·(lo(qs[j]) − 8), x[j+16] = d·(hi(qs[j]) − 8).
    private static func q4_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = f16(p, 0)
        let qs = p.assumingMemoryBound(to: UInt8.self) + 2
        for j in 0..<16 {
            y[j] = d * Float(Int32(qs[j] & 0x0F) &- 8)
            y[j + 16] = d * Float(Int32(qs[j] >> 4) &- 8)
        }
    }

    /// block_q4_1 (20 bytes): f16 d, f16 m, qs[16]; x = d·q + m, q unsigned 4-bit.
    private static func q4_1(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = f16(p, 0), m = f16(p, 2)
        let qs = p.assumingMemoryBound(to: UInt8.self) + 4
        for j in 0..<16 {
            y[j] = d * Float(qs[j] & 0x0F) + m
            y[j + 16] = d * Float(qs[j] >> 4) + m
        }
    }

    /// block_q5_0 (22 bytes): f16 d, u32 qh (bit j = 5th bit of element j), qs[16] low nibbles
    /// as in Q4_0; x = d·(q − 16).
    private static func q5_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = f16(p, 0)
        let qh = p.loadUnaligned(fromByteOffset: 2, as: UInt32.self)
        let qs = p.assumingMemoryBound(to: UInt8.self) + 6
        for j in 0..<16 {
            let lo = Int32(qs[j] & 0x0F) | Int32((qh >> UInt32(j)) & 1) << 4
            let hi = Int32(qs[j] >> 4) | Int32((qh >> UInt32(j + 16)) & 1) << 4
            y[j] = d * Float(lo &- 16)
            y[j + 16] = d * Float(hi &- 16)
        }
    }

    /// block_q5_1 (24 bytes): f16 d, f16 m, u32 qh, qs[16]; x = d·q + m, q unsigned 5-bit.
    private static func q5_1(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = f16(p, 0), m = f16(p, 2)
        let qh = p.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
        let qs = p.assumingMemoryBound(to: UInt8.self) + 8
        for j in 0..<16 {
            let lo = UInt32(qs[j] & 0x0F) | ((qh >> UInt32(j)) & 1) << 4
            let hi = UInt32(qs[j] >> 4) | ((qh >> UInt32(j + 16)) & 1) << 4
            y[j] = d * Float(lo) + m
            y[j + 16] = d * Float(hi) + m
        }
    }

    /// block_q8_0 (34 bytes): f16 d, int8 qs[32]; x = d·q.
    private static func q8_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = f16(p, 0)
        let qs = (p + 2).assumingMemoryBound(to: Int8.self)
        for j in 0..<32 { y[j] = d * Float(qs[j]) }
    }

    /// block_q2_K (84 bytes): scales[16] (low nibble scale, high nibble min, per 16 elements),
    /// qs[64] (2-bit: byte 32h+l holds element 128h+32s+l at bits 2s), f16 d, f16 dmin.
    private static func q2_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let bytes = p.assumingMemoryBound(to: UInt8.self)
        let scales = bytes, qs = bytes + 16
        let d = f16(p, 80), dmin = f16(p, 82)
        for h in 0..<2 {
            for s in 0..<4 {
                let shift = UInt8(2 * s)
                for half in 0..<2 {
                    let sc = scales[8 * h + 2 * s + half]
                    let dl = d * Float(sc & 0x0F), ml = dmin * Float(sc >> 4)
                    let q = qs + 32 * h + 16 * half
                    let out = y + 128 * h + 32 * s + 16 * half
                    for l in 0..<16 { out[l] = dl * Float((q[l] >> shift) & 3) - ml }
                }
            }
        }
    }

    /// block_q3_K (110 bytes): hmask[32] (bit b of byte l: high bit of element 32b+l, set means
    /// no −4), qs[64] (2-bit low bits as in Q2_K), scales[12] (16 6-bit scales, offset 32), f16 d.
    private static func q3_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let bytes = p.assumingMemoryBound(to: UInt8.self)
        let hmask = bytes, qs = bytes + 32, packed = bytes + 96
        let d = f16(p, 108)
        // scale i: low 4 bits from byte i%8 (low nibble for i<8, high for i≥8),
        // high 2 bits from byte 8 + i%4 at bits 2·(i/4)
        var dl = (Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0),
                  Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0))
        withUnsafeMutableBytes(of: &dl) { raw in
            let out = raw.baseAddress!.assumingMemoryBound(to: Float.self)
            for i in 0..<16 {
                let low = (packed[i & 7] >> (i < 8 ? 0 : 4)) & 0x0F
                let high = (packed[8 + (i & 3)] >> UInt8(2 * (i >> 2))) & 3
                out[i] = d * Float(Int32(low | high << 4) &- 32)
            }
        }
        withUnsafeBytes(of: &dl) { raw in
            let scale = raw.baseAddress!.assumingMemoryBound(to: Float.self)
            for h in 0..<2 {
                for s in 0..<4 {
                    let shift = UInt8(2 * s), bit = UInt8(4 * h + s)
                    for half in 0..<2 {
                        let sc = scale[8 * h + 2 * s + half]
                        let q = qs + 32 * h + 16 * half, m = hmask + 16 * half
                        let out = y + 128 * h + 32 * s + 16 * half
                        for l in 0..<16 {
                            let low = Int32((q[l] >> shift) & 3)
                            let minus = Int32(((m[l] >> bit) & 1) ^ 1) << 2
                            out[l] = sc * Float(low &- minus)
                        }
                    }
                }
            }
        }
    }

    /// The 6-bit (scale, min) pair j of a Q4_K/Q5_K block's 12 scale bytes.
    @inline(__always)
    private static func scaleMinK4(_ j: Int, _ s: UnsafePointer<UInt8>) -> (UInt8, UInt8) {
        if j < 4 { return (s[j] & 63, s[j + 4] & 63) }
        return ((s[j + 4] & 0x0F) | (s[j - 4] >> 6) << 4, (s[j + 4] >> 4) | (s[j] >> 6) << 4)
    }

    /// block_q4_K (144 bytes): f16 d, f16 dmin, scales[12] (eight 6-bit scale/min pairs),
    /// qs[128] (byte 32g+l: element 64g+l low nibble, 64g+32+l high nibble); x = d·sc·q − dmin·m.
    private static func q4_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let bytes = p.assumingMemoryBound(to: UInt8.self)
        let d = f16(p, 0), dmin = f16(p, 2)
        let scales = bytes + 4, qs = bytes + 16
        for g in 0..<4 {
            let (s1, m1) = scaleMinK4(2 * g, scales), (s2, m2) = scaleMinK4(2 * g + 1, scales)
            let d1 = d * Float(s1), n1 = dmin * Float(m1), d2 = d * Float(s2), n2 = dmin * Float(m2)
            let q = qs + 32 * g, out = y + 64 * g
            for l in 0..<32 {
                out[l] = d1 * Float(q[l] & 0x0F) - n1
                out[l + 32] = d2 * Float(q[l] >> 4) - n2
            }
        }
    }

    /// block_q5_K (176 bytes): as Q4_K plus qh[32] before qs (bit 2g of byte l: 5th bit of element
    /// 64g+l, bit 2g+1: of 64g+32+l).
    private static func q5_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let bytes = p.assumingMemoryBound(to: UInt8.self)
        let d = f16(p, 0), dmin = f16(p, 2)
        let scales = bytes + 4, qh = bytes + 16, qs = bytes + 48
        for g in 0..<4 {
            let (s1, m1) = scaleMinK4(2 * g, scales), (s2, m2) = scaleMinK4(2 * g + 1, scales)
            let d1 = d * Float(s1), n1 = dmin * Float(m1), d2 = d * Float(s2), n2 = dmin * Float(m2)
            let q = qs + 32 * g, out = y + 64 * g
            let b1 = UInt8(2 * g), b2 = UInt8(2 * g + 1)
            for l in 0..<32 {
                let lo = (q[l] & 0x0F) | ((qh[l] >> b1) & 1) << 4
                let hi = (q[l] >> 4) | ((qh[l] >> b2) & 1) << 4
                out[l] = d1 * Float(lo) - n1
                out[l + 32] = d2 * Float(hi) - n2
            }
        }
    }

    /// block_q6_K (210 bytes): ql[128] (low nibbles), qh[64] (2 high bits), int8 scales[16]
    /// (per 16 elements), f16 d; x = (d·sc)·(q − 32). In each half h of 128 elements, l < 32:
    /// elements l, l+32, l+64, l+96 take ql[64h+l] lo, ql[64h+32+l] lo, ql[64h+l] hi,
    /// ql[64h+32+l] hi and bits 0-1, 2-3, 4-5, 6-7 of qh[32h+l].
    private static func q6_K(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let bytes = p.assumingMemoryBound(to: UInt8.self)
        let qlAll = bytes, qhAll = bytes + 128
        let scAll = (p + 192).assumingMemoryBound(to: Int8.self)
        let d = f16(p, 208)
        for h in 0..<2 {
            let ql = qlAll + 64 * h, qh = qhAll + 32 * h, sc = scAll + 8 * h, out = y + 128 * h
            for half in 0..<2 {
                let s0 = d * Float(sc[half]), s1 = d * Float(sc[half + 2])
                let s2 = d * Float(sc[half + 4]), s3 = d * Float(sc[half + 6])
                for l in (16 * half)..<(16 * half + 16) {
                    let a = ql[l], b = ql[l + 32], c = qh[l]
                    out[l] = s0 * Float(Int32((a & 0x0F) | (c & 3) << 4) &- 32)
                    out[l + 32] = s1 * Float(Int32((b & 0x0F) | ((c >> 2) & 3) << 4) &- 32)
                    out[l + 64] = s2 * Float(Int32((a >> 4) | ((c >> 4) & 3) << 4) &- 32)
                    out[l + 96] = s3 * Float(Int32((b >> 4) | (c >> 6) << 4) &- 32)
                }
            }
        }
    }

    /// IQ4_NL / IQ4_XS's non-linear 4-bit code book (ggml's kvalues_iq4nl).
    private static let iq4Values: (Float, Float, Float, Float, Float, Float, Float, Float,
                                   Float, Float, Float, Float, Float, Float, Float, Float) =
        (-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113)

    /// block_iq4_nl (18 bytes): f16 d, qs[16] as Q4_0; x = d·kvalues[q].
    private static func iq4_nl(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let d = f16(p, 0)
        let qs = p.assumingMemoryBound(to: UInt8.self) + 2
        var table = iq4Values
        withUnsafeBytes(of: &table) { raw in
            let kv = raw.baseAddress!.assumingMemoryBound(to: Float.self)
            for j in 0..<16 {
                y[j] = d * kv[Int(qs[j] & 0x0F)]
                y[j + 16] = d * kv[Int(qs[j] >> 4)]
            }
        }
    }

    /// block_iq4_xs (136 bytes): f16 d, u16 scales_h, scales_l[4], qs[128]; sub-block i of 32
    /// has 6-bit scale (lo nibble i of scales_l | 2 bits i of scales_h << 4) − 32 and its 16
    /// qs bytes laid out as IQ4_NL; x = (d·scale)·kvalues[q].
    private static func iq4_xs(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>) {
        let bytes = p.assumingMemoryBound(to: UInt8.self)
        let d = f16(p, 0)
        let scalesH = p.loadUnaligned(fromByteOffset: 2, as: UInt16.self)
        let scalesL = bytes + 4, qsAll = bytes + 8
        var table = iq4Values
        withUnsafeBytes(of: &table) { raw in
            let kv = raw.baseAddress!.assumingMemoryBound(to: Float.self)
            for i in 0..<8 {
                let low = UInt16((scalesL[i >> 1] >> UInt8(4 * (i & 1))) & 0x0F)
                let high = (scalesH >> UInt16(2 * i)) & 3
                let dl = d * Float(Int32(low | high << 4) &- 32)
                let qs = qsAll + 16 * i, out = y + 32 * i
                for j in 0..<16 {
                    out[j] = dl * kv[Int(qs[j] & 0x0F)]
                    out[j + 16] = dl * kv[Int(qs[j] >> 4)]
                }
            }
        }
    }
}

private struct UnsafeSendablePointer<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>
    init(_ p: UnsafeMutablePointer<T>) { pointer = p }
}

private struct UnsafeSendableRawPointer: @unchecked Sendable {
    let pointer: UnsafeRawPointer
    init(_ p: UnsafeRawPointer) { pointer = p }
}
