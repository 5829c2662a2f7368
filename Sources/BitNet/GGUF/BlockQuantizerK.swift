/// Block quantizers for the head types the native kernels read: Q8_0, Q4_0, Q4_K and
/// Q6_K (test files and fidelity measurements; `convert --embedding-type` can use them).
/// In the engine library beside BlockDequantizer so the tests and tools that write
/// such files need nothing from the converter.
///
/// Q8_0 is the rule of the converter's BlockQuantizer.appendQ8_0 (ggml's reference:
/// d = max|x| / 127, q = round-half-away(x / d)), repeated here for that reason.
/// Q4_0 follows ggml's reference rule (d = the signed value of largest magnitude / -8,
/// q = min(15, trunc(x/d + 8.5))), which gguf-py also implements, so it is bit-exact
/// with both. Q4_K and Q6_K are ggml's reference quantizers, quantize_row_q4_K_ref and
/// quantize_row_q6_K_ref (ggml-org/llama.cpp, ggml/src/ggml-quants.c), reimplemented
/// here: per sub-block scale searches (make_qkx2_quants for Q4_K, make_qx_quants for
/// Q6_K) that keep the candidate scale with the lowest weighted squared error, then 6-bit
/// (Q4_K) or 8-bit (Q6_K) sub-scales against the block's f16 scale. Their bytes are
/// llama-quantize's for these types when it has no importance matrix (quantize_q4_K and
/// quantize_q6_K call the _ref functions then), checked block for block against ggml's
/// own code (Fixtures/dequant/quant_k.json, tools/gguf/make_k_quant_fixture.py); see the
/// K section below for builds that fuse multiply-adds. gguf-py 0.19 has no Q4_K / Q6_K
/// quantizer.
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

    // MARK: - K types: ggml's reference scale searches

    // Both K quantizers search each sub-block's scale on its own, so a block's sub-blocks
    // (Q6_K: 16 sub-blocks of 16 values, Q4_K: 8 of 32) are lanes here: the block is transposed into
    // rows of one element of every sub-block, and each loop over lanes runs innermost, where
    // the compiler vectorizes it (and where an unoptimized build still runs plain scalar
    // code). Each lane does exactly the float operations, in exactly the order, that the
    // reference does for its sub-block. Swift never fuses a*b+c, so every product and sum is
    // rounded on its own, as C's abstract machine and an x86-64 build of ggml-base (compiled
    // without -march, so without FMA) compute them. A build whose compiler contracts a*b+c
    // into FMAs (clang's default with -march=native, as bitnet.cpp builds ggml, or any
    // aarch64 build) rounds some sums differently, and a near-tie in the search then goes
    // the other way: bitnet.cpp's own build differs in 10 of the fixture's 104 blocks.
    // One core of an x86-64 VM (baseline SSE2 code) takes about 7 s for Q6_K and 10 s for Q4_K
    // on a 128256×2560 head (328 M values), 2.4-2.7x less than ggml's reference C (-O2).

    /// ggml's nearest_int (ggml-quants.c): add 12582912 (1.5·2^23) so the float addition
    /// rounds to an integer (to nearest even), then read that integer from the low 23
    /// mantissa bits. Exact for |v| ≤ 2^22; beyond that the reference gets a meaningless
    /// number, and so do we, the same one (Q4_K's search can reach such values).
    @inline(__always)
    private static func nearestInt(_ v: Float) -> Int32 {
        Int32(bitPattern: (v + 12_582_912).bitPattern & 0x007F_FFFF) &- 0x0040_0000
    }

    /// Float(min(hi, max(lo, nearest_int(v)))): the 23 mantissa bits (nearest_int + 2^22, an
    /// integer below 2^23, so exact as a float) clamped as floats (one max and one min
    /// instruction where vectorized), less 2^22.
    @inline(__always)
    private static func code(_ v: Float, _ lo: Float, _ hi: Float) -> Float {
        let m = Float(Int32(bitPattern: (v + 12_582_912).bitPattern & 0x007F_FFFF))
        let low = lo + 4_194_304, high = hi + 4_194_304
        let c = m < low ? low : m
        return (c > high ? high : c) - 4_194_304
    }

    @inline(__always)
    private static func half(_ v: Float) -> Float { Float(Float16(bitPattern: BlockDequantizer.halfBits(v))) }

    @inline(__always)
    private static func storeHalf(_ v: Float, _ p: UnsafeMutablePointer<UInt8>) {
        let h = BlockDequantizer.halfBits(v)
        p[0] = UInt8(truncatingIfNeeded: h)
        p[1] = UInt8(truncatingIfNeeded: h >> 8)
    }

    /// Below this largest magnitude a group counts as all zero: GROUP_MAX_EPS (ggml-quants.c).
    private static let groupMaxEps: Float = 1e-15

    /// Floats of scratch a K block uses: three planes of 256 values, then 128 floats of rows
    /// with one float per lane (8 rows of 16 for Q6_K, 16 rows of 8 for Q4_K).
    private static let scratchFloats = 3 * 256 + 128

    // MARK: Q6_K

    /// Q6_K (210 bytes per 256 values): ql[128], qh[64], int8 scales[16], f16 d. The bytes of
    /// ggml's quantize_row_q6_K_ref (ggml/src/ggml-quants.c), which llama-quantize writes
    /// without an importance matrix.
    package static func appendQ6_K(_ x: UnsafePointer<Float>, count: Int, to out: inout [UInt8]) {
        let blocks = count / 256, start = out.count
        out.append(contentsOf: repeatElement(0, count: blocks * 210))
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: scratchFloats)
        defer { scratch.deallocate() }
        out.withUnsafeMutableBufferPointer { o in
            for b in 0..<blocks {
                q6_KBlock(x + 256 * b, o.baseAddress! + start + 210 * b, scratch)
            }
        }
    }

    private static func q6_KBlock(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>,
                                  _ s: UnsafeMutablePointer<Float>) {
        // planes, element i of sub-block k at 16i + k: x, x², x³; rows, one float per sub-block:
        // max |x|, the signed max, a candidate's inverse scale, its sums, the kept scale, its
        // score and its inverse scale (the codes are recomputed from it at the end)
        let xt = s, w = s + 256, wx = s + 512
        let amax = s + 768, mx = s + 784, iscale = s + 800, sumlx = s + 816, suml2 = s + 832
        let scale = s + 848, best = s + 864, kept = s + 880
        var i = 0, k = 0
        while k < 16 {
            i = 0
            while i < 16 { xt[16 &* i &+ k] = x[16 &* k &+ i]; i &+= 1 }
            amax[k] = 0; mx[k] = 0
            k &+= 1
        }

        // make_qx_quants(16, nmax 32, x, L, rmse_type 1, no weights), one sub-block per lane:
        // the signed value of largest magnitude sets the first scale, -nmax / max; then 18
        // more, -(nmax + 0.1·is) / max for is in -9...9 but 0, are tried, each scored by the
        // weighted least-squares fit (weights x²) of x on its codes, sumlx²/suml2; the best
        // fit's scale sumlx/suml2 and codes are kept.
        i = 0
        while i < 16 {
            k = 0
            while k < 16 {
                let v = xt[16 &* i &+ k], a = abs(v)
                if a > amax[k] { amax[k] = a; mx[k] = v }
                k &+= 1
            }
            i &+= 1
        }
        i = 0
        while i < 256 { w[i] = xt[i] * xt[i]; wx[i] = w[i] * xt[i]; i &+= 1 }
        var step: Int32 = -10 // -10: the first scale, -nmax / max
        while step <= 9 {
            defer { step &+= 1 }
            if step == 0 { continue }
            let numerator: Float = step == -10 ? -32 : -(32 + 0.1 * Float(step))
            k = 0
            while k < 16 { iscale[k] = numerator / mx[k]; sumlx[k] = 0; suml2[k] = 0; k &+= 1 }
            i = 0
            while i < 16 {
                k = 0
                while k < 16 {
                    let j = 16 &* i &+ k
                    let l = code(iscale[k] * xt[j], -32, 31)
                    sumlx[k] += wx[j] * l
                    suml2[k] += w[j] * l * l
                    k &+= 1
                }
                i &+= 1
            }
            k = 0
            while k < 16 {
                if step == -10 {
                    scale[k] = suml2[k] != 0 ? sumlx[k] / suml2[k] : 0
                    best[k] = scale[k] * sumlx[k]
                    kept[k] = iscale[k]
                } else if suml2[k] > 0 && sumlx[k] * sumlx[k] > best[k] * suml2[k] {
                    scale[k] = sumlx[k] / suml2[k]
                    best[k] = scale[k] * sumlx[k]
                    kept[k] = iscale[k]
                }
                k &+= 1
            }
        }
        // an all-zero sub-block: scale 0, codes 0 (stored as is, not as 32, if it keeps them)
        k = 0
        while k < 16 { scale[k] = amax[k] < groupMaxEps ? 0 : scale[k]; k &+= 1 }

        // the block's scale: the sub-scale of largest magnitude (the first on a tie) maps to -128
        var maxScale: Float = 0, maxAbs: Float = 0
        k = 0
        while k < 16 {
            if abs(scale[k]) > maxAbs { maxAbs = abs(scale[k]); maxScale = scale[k] }
            k &+= 1
        }
        if maxAbs < groupMaxEps { return } // the whole block zero: every byte 0, d = 0
        let inverse: Float = -128 / maxScale
        storeHalf(1 / inverse, y + 208)
        let d = half(1 / inverse)
        let dsub = iscale // reused: each sub-block's decoded step
        k = 0
        while k < 16 {
            let sc = Int8(truncatingIfNeeded: min(127, nearestInt(inverse * scale[k])))
            y[192 &+ k] = UInt8(bitPattern: sc)
            dsub[k] = d * Float(sc)
            k &+= 1
        }
        // the codes, as 0...63 (l + 32): requantized with the stored scales, except in a
        // sub-block whose scale is 0, which keeps the search's (0 for an all-zero one); both
        // computed and one selected, a loop the compiler vectorizes. Written over x², unused now.
        let codes = w
        i = 0
        while i < 256 {
            k = 0
            while k < 16 {
                let v = xt[i &+ k]
                let requantized = code(v / dsub[k], -32, 31), searched = code(kept[k] * v, -32, 31)
                let l = dsub[k] != 0 ? requantized : amax[k] < groupMaxEps ? -32 : searched
                codes[i &+ k] = l + 32
                k &+= 1
            }
            i &+= 16
        }

        // ql: low nibbles, two 128-value halves of 64 bytes each (values l and l + 64 share a
        // byte, l + 32 and l + 96 the next 32); qh: the high 2 bits of l, l + 32, l + 64, l + 96
        @inline(__always) func q(_ n: Int) -> UInt8 { UInt8(codes[16 &* (n & 15) &+ (n >> 4)]) }
        var h = 0
        while h < 2 {
            var l = 0
            while l < 32 {
                let n = 128 &* h &+ l
                let q0 = q(n), q1 = q(n &+ 32), q2 = q(n &+ 64), q3 = q(n &+ 96)
                y[64 &* h &+ l] = (q0 & 0xF) | (q2 & 0xF) << 4
                y[64 &* h &+ 32 &+ l] = (q1 & 0xF) | (q3 & 0xF) << 4
                y[128 &+ 32 &* h &+ l] = q0 >> 4 | (q1 >> 4) << 2 | (q2 >> 4) << 4 | (q3 >> 4) << 6
                l &+= 1
            }
            h &+= 1
        }
    }

    // MARK: Q4_K

    /// Q4_K (144 bytes per 256 values): f16 d, f16 dmin, 12 bytes of 6-bit scales and
    /// mins (8 sub-blocks of 32), 128 bytes of nibbles; value = d·sc·q - dmin·mn. The bytes
    /// of ggml's quantize_row_q4_K_ref (ggml/src/ggml-quants.c), which llama-quantize writes
    /// without an importance matrix.
    package static func appendQ4_K(_ x: UnsafePointer<Float>, count: Int, to out: inout [UInt8]) {
        let blocks = count / 256, start = out.count
        out.append(contentsOf: repeatElement(0, count: blocks * 144))
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: scratchFloats)
        defer { scratch.deallocate() }
        out.withUnsafeMutableBufferPointer { o in
            for b in 0..<blocks {
                q4_KBlock(x + 256 * b, o.baseAddress! + start + 144 * b, scratch)
            }
        }
    }

    private static func q4_KBlock(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<UInt8>,
                                  _ s: UnsafeMutablePointer<Float>) {
        // planes, element i of sub-block j at 8i + j: x, the weights, a candidate's codes; rows,
        // one float per sub-block: min (the offset found so far), max, sum of weights, of
        // weight·x, a candidate's inverse scale, its sums, the kept scale and its error, the
        // candidate's scale, offset and error, whether all x are equal, and the inverse scale
        // and offset the kept codes came from (they are recomputed from those at the end)
        let xt = s, w = s + 256, aux = s + 512
        let mn = s + 768, mx = s + 776, sumw = s + 784, sumx = s + 792, iscale = s + 800
        let suml = s + 808, suml2 = s + 816, sumxl = s + 824, scale = s + 832, best = s + 840
        let tscale = s + 848, tmin = s + 856, error = s + 864, flat = s + 872
        let keptScale = s + 880, keptMin = s + 888
        var i = 0, j = 0
        while j < 8 {
            i = 0
            while i < 32 { xt[8 &* i &+ j] = x[32 &* j &+ i]; i &+= 1 }
            j &+= 1
        }
        // weights (quantize_row_q4_K_ref): the sub-block's RMS plus |x|
        j = 0
        while j < 8 { iscale[j] = 0; j &+= 1 } // sum of x² for now
        i = 0
        while i < 32 {
            j = 0
            while j < 8 { iscale[j] += xt[8 &* i &+ j] * xt[8 &* i &+ j]; j &+= 1 }
            i &+= 1
        }
        j = 0
        while j < 8 { iscale[j] = (iscale[j] / 32).squareRoot(); j &+= 1 }
        i = 0
        while i < 256 {
            j = 0
            while j < 8 { w[i &+ j] = iscale[j] + abs(xt[i &+ j]); j &+= 1 }
            i &+= 8
        }

        // make_qkx2_quants(32, nmax 15, x, w, ..., rmin -1, rdelta 0.1, nstep 20, use_mad
        // false), one sub-block per lane: codes over [min(0, min x), max x] first, then 21
        // more scales, (rmin + rdelta·is + nmax) / (max - min) for is in 0...20, each followed
        // by the weighted least-squares scale and offset for its codes (offset capped at 0);
        // whichever has the smallest weighted squared error is kept, and the offset it found
        // is where the next candidate's codes start from.
        j = 0
        while j < 8 { mn[j] = xt[j]; mx[j] = xt[j]; sumw[j] = w[j]; sumx[j] = sumw[j] * xt[j]; j &+= 1 }
        i = 1
        while i < 32 {
            j = 0
            while j < 8 {
                let v = xt[8 &* i &+ j]
                mn[j] = v < mn[j] ? v : mn[j]
                mx[j] = v > mx[j] ? v : mx[j]
                sumw[j] += w[8 &* i &+ j]
                sumx[j] += w[8 &* i &+ j] * v
                j &+= 1
            }
            i &+= 1
        }
        j = 0
        while j < 8 {
            mn[j] = mn[j] > 0 ? 0 : mn[j]
            flat[j] = mx[j] == mn[j] ? 1 : 0 // its search keeps nothing: the first error is 0
            iscale[j] = 15 / (mx[j] - mn[j])
            scale[j] = 1 / iscale[j]
            keptScale[j] = iscale[j]; keptMin[j] = mn[j]
            best[j] = 0
            j &+= 1
        }
        i = 0
        while i < 32 {
            j = 0
            while j < 8 {
                let n = 8 &* i &+ j
                let l = code(iscale[j] * (xt[n] - mn[j]), 0, 15)
                let diff = scale[j] * l + mn[j] - xt[n]
                best[j] += w[n] * (diff * diff)
                j &+= 1
            }
            i &+= 1
        }
        var step = 0
        while step <= 20 {
            defer { step &+= 1 }
            let numerator = -1 + 0.1 * Float(step) + 15
            j = 0
            while j < 8 {
                iscale[j] = numerator / (mx[j] - mn[j])
                suml[j] = 0; suml2[j] = 0; sumxl[j] = 0; error[j] = 0
                j &+= 1
            }
            i = 0
            while i < 32 {
                j = 0
                while j < 8 {
                    let n = 8 &* i &+ j
                    let l = code(iscale[j] * (xt[n] - mn[j]), 0, 15)
                    aux[n] = l
                    let wl = w[n] * l
                    suml[j] += wl
                    suml2[j] += wl * l
                    sumxl[j] += wl * xt[n]
                    j &+= 1
                }
                i &+= 1
            }
            var solvable = false
            j = 0
            while j < 8 {
                let D = sumw[j] * suml2[j] - suml[j] * suml[j]
                solvable = solvable || D > 0
                var ts = (sumw[j] * sumxl[j] - sumx[j] * suml[j]) / D
                var tm = (suml2[j] * sumx[j] - suml[j] * sumxl[j]) / D
                if tm > 0 { tm = 0; ts = sumxl[j] / suml2[j] }
                tscale[j] = ts; tmin[j] = tm
                j &+= 1
            }
            if !solvable { continue }
            i = 0
            while i < 32 {
                j = 0
                while j < 8 {
                    let n = 8 &* i &+ j
                    let diff = tscale[j] * aux[n] + tmin[j] - xt[n]
                    error[j] += w[n] * (diff * diff)
                    j &+= 1
                }
                i &+= 1
            }
            j = 0
            while j < 8 {
                if sumw[j] * suml2[j] - suml[j] * suml[j] > 0 && error[j] < best[j] {
                    best[j] = error[j]; scale[j] = tscale[j]
                    keptScale[j] = iscale[j]; keptMin[j] = mn[j]
                    mn[j] = tmin[j]
                }
                j &+= 1
            }
        }
        // an all-equal sub-block (after the cap at 0): scale 0, codes 0, its min as it is
        j = 0
        while j < 8 { scale[j] = flat[j] != 0 ? 0 : scale[j]; j &+= 1 }

        // 6-bit sub-scales and sub-mins (the negated offsets) against the largest of each
        var maxScale: Float = 0, maxMin: Float = 0
        j = 0
        while j < 8 {
            if scale[j] > maxScale { maxScale = scale[j] }
            if -mn[j] > maxMin { maxMin = -mn[j] }
            j &+= 1
        }
        let inverseScale: Float = maxScale > 0 ? 63 / maxScale : 0
        let inverseMin: Float = maxMin > 0 ? 63 / maxMin : 0
        storeHalf(maxScale / 63, y)
        storeHalf(maxMin / 63, y + 2)
        let d = half(maxScale / 63), dmin = half(maxMin / 63)
        let dsub = tscale, msub = tmin // reused: each sub-block's decoded step and offset
        // scales[12] at y + 4: bytes 0-3 the scales of sub-blocks 0-3, 4-7 their mins, 8-11 the
        // low nibbles of sub-blocks 4-7's scale (low) and min (high), whose top 2 bits go into
        // the top 2 bits of bytes 0-3 (scales) and 4-7 (mins)
        j = 0
        while j < 8 {
            let ls = min(63, UInt8(truncatingIfNeeded: nearestInt(inverseScale * scale[j])))
            let lm = min(63, UInt8(truncatingIfNeeded: nearestInt(inverseMin * -mn[j])))
            if j < 4 {
                y[4 &+ j] = ls
                y[8 &+ j] = lm
            } else {
                y[8 &+ j] = (ls & 0xF) | (lm & 0xF) << 4
                y[j] |= (ls >> 4) << 6
                y[4 &+ j] |= (lm >> 4) << 6
            }
            dsub[j] = d * Float(ls)
            msub[j] = dmin * Float(lm)
            j &+= 1
        }
        // the codes: requantized with the stored scales, except in a sub-block whose scale is
        // 0, which keeps the search's (0 for an all-equal one); both computed and one
        // selected, a loop the compiler vectorizes
        let codes = aux
        i = 0
        while i < 256 {
            j = 0
            while j < 8 {
                let v = xt[i &+ j]
                let requantized = code((v + msub[j]) / dsub[j], 0, 15)
                let searched = code(keptScale[j] * (v - keptMin[j]), 0, 15)
                codes[i &+ j] = dsub[j] != 0 ? requantized : flat[j] != 0 ? 0 : searched
                j &+= 1
            }
            i &+= 8
        }
        // qs: 4 groups of 64 values, byte l of group g holds value 64g + l (sub-block 2g) low
        // and value 64g + 32 + l (sub-block 2g + 1) high
        var g = 0
        while g < 4 {
            var l = 0
            while l < 32 {
                y[16 &+ 32 &* g &+ l] = UInt8(codes[8 &* l &+ 2 &* g]) | UInt8(codes[8 &* l &+ 2 &* g &+ 1]) << 4
                l &+= 1
            }
            g &+= 1
        }
    }
}
