/// Block quantizers for the head types the native kernels read: Q8_0, Q4_0, Q4_K and
/// Q6_K (test files and fidelity measurements; `convert --embedding-type` can use them).
/// In the engine library beside BlockDequantizer so the tests and tools that write
/// such files need nothing from the converter.
///
/// Q8_0 is the rule of the converter's BlockQuantizer.appendQ8_0 (ggml's reference:
/// d = max|x| / 127, q = round-half-away(x / d)), repeated here for that reason.
/// Q4_0 follows ggml's reference rule (d = the signed value of largest magnitude / -8,
/// q = min(15, trunc(x/d + 8.5))), which gguf-py also implements, so it is bit-exact
/// with both. Q4_K and Q6_K are a plain max-based rule, NOT ggml's reference
/// quantizers (those search over candidate scales, make_qkx2_quants / make_qx_quants,
/// for a lower squared error): the bytes are valid blocks that every GGUF reader
/// decodes the same way, but differ from llama-quantize's, with a somewhat larger
/// error. gguf-py 0.19 has no Q4_K / Q6_K quantizer to check against.
package enum KBlockQuantizer {
    /// The blocks of `values` (a multiple of the type's block size) in `type`, or nil for a
    /// type without a quantizer here.
    package static func encode(_ values: [Float], type: GGMLType) -> [UInt8]? {
        var out: [UInt8] = []
        values.withUnsafeBufferPointer { x in
            let p = x.baseAddress!
            switch type {
            case .q8_0: appendQ8_0(p, count: x.count, to: &out)
            case .q4_0: appendQ4_0(p, count: x.count, to: &out)
            case .q4_K: appendQ4_K(p, count: x.count, to: &out)
            case .q6_K: appendQ6_K(p, count: x.count, to: &out)
            default: break
            }
        }
        return out.isEmpty && !values.isEmpty ? nil : out
    }

    private static func appendHalf(_ v: Float, _ out: inout [UInt8]) {
        let h = BlockDequantizer.halfBits(v)
        out.append(UInt8(h & 0xFF))
        out.append(UInt8(h >> 8))
    }

    private static func roundClamp(_ v: Float, _ lo: Float, _ hi: Float) -> Int {
        guard v.isFinite else { return Int(lo) }
        return Int(min(hi, max(lo, v.rounded(.toNearestOrAwayFromZero))))
    }

    /// Q8_0 (34 bytes per 32 values): f16 d, then 32 int8.
    package static func appendQ8_0(_ x: UnsafePointer<Float>, count: Int, to out: inout [UInt8]) {
        for b in stride(from: 0, to: count - 31, by: 32) {
            var amax: Float = 0
            for i in 0..<32 { amax = max(amax, abs(x[b + i])) }
            let d = amax / 127
            let id: Float = d == 0 ? 0 : 1 / d
            appendHalf(d, &out)
            for i in 0..<32 { out.append(UInt8(bitPattern: Int8(roundClamp(x[b + i] * id, -127, 127)))) }
        }
    }

    /// Q4_0 (18 bytes per 32 values): f16 d, then byte i = q[i] | q[i + 16] << 4.
    package static func appendQ4_0(_ x: UnsafePointer<Float>, count: Int, to out: inout [UInt8]) {
        for b in stride(from: 0, to: count - 31, by: 32) {
            var amax: Float = 0, mx: Float = 0
            for i in 0..<32 where abs(x[b + i]) > amax { amax = abs(x[b + i]); mx = x[b + i] }
            let d = mx / -8
            let id: Float = d == 0 ? 0 : 1 / d
            appendHalf(d, &out)
            func code(_ v: Float) -> UInt8 {
                let t = v * id + 8.5
                guard t.isFinite else { return 8 }
                return UInt8(min(15, max(0, Int(t)))) // trunc, as ggml's (int8_t) cast
            }
            for i in 0..<16 { out.append(code(x[b + i]) | code(x[b + i + 16]) << 4) }
        }
    }

    /// Q6_K (210 bytes per 256 values): ql[128], qh[64], int8 scales[16], f16 d.
    package static func appendQ6_K(_ x: UnsafePointer<Float>, count: Int, to out: inout [UInt8]) {
        for b in stride(from: 0, to: count - 255, by: 256) {
            // per 16 values: the signed value of largest magnitude maps to code -32
            var sub = [Float](repeating: 0, count: 16)
            for j in 0..<16 {
                var amax: Float = 0
                for i in 0..<16 where abs(x[b + 16 * j + i]) > amax {
                    amax = abs(x[b + 16 * j + i])
                    sub[j] = x[b + 16 * j + i] / -32
                }
            }
            var smax: Float = 0
            for s in sub where abs(s) > abs(smax) { smax = s }
            let iscale: Float = smax == 0 ? 0 : -128 / smax
            let d = iscale == 0 ? 0 : 1 / iscale
            let dh = Float(Float16(bitPattern: BlockDequantizer.halfBits(d)))
            var sc = [Int8](repeating: 0, count: 16)
            var q = [UInt8](repeating: 32, count: 256) // code + 32
            for j in 0..<16 {
                sc[j] = Int8(roundClamp(iscale * sub[j], -128, 127))
                let step = dh * Float(sc[j])
                guard step != 0, step.isFinite else { continue }
                for i in 0..<16 { q[16 * j + i] = UInt8(roundClamp(x[b + 16 * j + i] / step, -32, 31) + 32) }
            }
            var ql = [UInt8](repeating: 0, count: 128), qh = [UInt8](repeating: 0, count: 64)
            for h in 0..<2 {
                for l in 0..<32 {
                    let q0 = q[128 * h + l], q1 = q[128 * h + 32 + l], q2 = q[128 * h + 64 + l], q3 = q[128 * h + 96 + l]
                    ql[64 * h + l] = (q0 & 0xF) | (q2 & 0xF) << 4
                    ql[64 * h + 32 + l] = (q1 & 0xF) | (q3 & 0xF) << 4
                    qh[32 * h + l] = (q0 >> 4) | (q1 >> 4) << 2 | (q2 >> 4) << 4 | (q3 >> 4) << 6
                }
            }
            out += ql
            out += qh
            out += sc.map { UInt8(bitPattern: $0) }
            appendHalf(d, &out)
        }
    }

    /// Q4_K (144 bytes per 256 values): f16 d, f16 dmin, 12 bytes of 6-bit scales and
    /// mins (8 sub-blocks of 32), 128 bytes of nibbles; value = d·sc·q - dmin·mn.
    package static func appendQ4_K(_ x: UnsafePointer<Float>, count: Int, to out: inout [UInt8]) {
        for b in stride(from: 0, to: count - 255, by: 256) {
            var scale = [Float](repeating: 0, count: 8), minus = [Float](repeating: 0, count: 8)
            for j in 0..<8 {
                var lo: Float = 0, hi: Float = 0
                for i in 0..<32 { lo = min(lo, x[b + 32 * j + i]); hi = max(hi, x[b + 32 * j + i]) }
                scale[j] = (hi - lo) / 15
                minus[j] = -lo
            }
            let d = (scale.max() ?? 0) / 63, dmin = (minus.max() ?? 0) / 63
            let dh = Float(Float16(bitPattern: BlockDequantizer.halfBits(d)))
            let mh = Float(Float16(bitPattern: BlockDequantizer.halfBits(dmin)))
            var sc = [UInt8](repeating: 0, count: 8), mn = [UInt8](repeating: 0, count: 8)
            var q = [UInt8](repeating: 0, count: 256)
            for j in 0..<8 {
                sc[j] = d == 0 ? 0 : UInt8(roundClamp(scale[j] / d, 0, 63))
                mn[j] = dmin == 0 ? 0 : UInt8(roundClamp(minus[j] / dmin, 0, 63))
                let step = dh * Float(sc[j]), shift = mh * Float(mn[j])
                guard step != 0, step.isFinite else { continue }
                for i in 0..<32 { q[32 * j + i] = UInt8(roundClamp((x[b + 32 * j + i] + shift) / step, 0, 15)) }
            }
            appendHalf(d, &out)
            appendHalf(dmin, &out)
            var s = [UInt8](repeating: 0, count: 12)
            for j in 0..<4 {
                s[j] = sc[j] | (sc[j + 4] >> 4) << 6
                s[j + 4] = mn[j] | (mn[j + 4] >> 4) << 6
                s[j + 8] = (sc[j + 4] & 0xF) | (mn[j + 4] & 0xF) << 4
            }
            out += s
            for jj in 0..<4 {
                for l in 0..<32 { out.append(q[64 * jj + l] | q[64 * jj + 32 + l] << 4) }
            }
        }
    }
}
