/// Upstream llama.cpp's ternary block formats (docs/FORMATS.md §5): 256-element
/// blocks with an f16 scale each. BitNet models have one scale per tensor,
/// so every non-zero block of a converted BitNet tensor carries the same d;
/// decoding yields ternary values plus that d (or a description of why not).
package enum TernaryBlockCodec {
    static let blockSize = 256

    /// TQ2_0: 64 bytes of 2-bit codes (byte 32h+m holds element 128h+m+32n at bits 2n, LSB first), then f16 d.
    static func decodeTQ2(block: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Int8>) -> Float {
        for h in 0..<2 {
            for m in 0..<32 {
                let byte = block[32 * h + m]
                for n in 0..<4 { out[128 * h + m + 32 * n] = Int8(Int((byte >> (2 * n)) & 3) - 1) }
            }
        }
        return Float(Float16(bitPattern: UInt16(block[64]) | UInt16(block[65]) << 8))
    }

    /// Trit n of a TQ1_0 byte: the byte stores ceil(v·256/243) for v in base 3,
    /// first trit most significant; multiplying by 3^n (mod 256) shifts trit n to the top.
    @inline(__always)
    static func trit(_ byte: UInt8, _ n: Int) -> Int8 {
        var b = byte
        for _ in 0..<n { b = b &* 3 }
        return Int8((Int(b) * 3) >> 8) - 1
    }

    /// TQ1_0: qs[0..<32] (elements m+32n, n<5), qs[32..<48] (160+m+16n, n<5), qh[0..<4] (240+j+4m, m<4), f16 d.
    static func decodeTQ1(block: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<Int8>) -> Float {
        for m in 0..<32 { for n in 0..<5 { out[m + 32 * n] = trit(block[m], n) } }
        for m in 0..<16 { for n in 0..<5 { out[160 + m + 16 * n] = trit(block[32 + m], n) } }
        for j in 0..<4 { for m in 0..<4 { out[240 + j + 4 * m] = trit(block[48 + j], m) } }
        return Float(Float16(bitPattern: UInt16(block[52]) | UInt16(block[53]) << 8))
    }

    /// TQ2_0 bytes of ternary values (count a multiple of 256) with scale d in every block.
    package static func encodeTQ2(_ t: UnsafeBufferPointer<Int8>, d: Float, into out: inout [UInt8]) {
        let bits = Float16(d).bitPattern
        for b in stride(from: 0, to: t.count, by: blockSize) {
            var qs = [UInt8](repeating: 0, count: 64)
            for h in 0..<2 { for m in 0..<32 { for n in 0..<4 {
                qs[32 * h + m] |= UInt8(Int(t[b + 128 * h + m + 32 * n]) + 1) << (2 * n)
            } } }
            out += qs
            out += [UInt8(bits & 0xff), UInt8(bits >> 8)]
        }
    }

    /// TQ1_0 bytes: five trits per byte in base 3, stored as ceil(v·256/243).
    package static func encodeTQ1(_ t: UnsafeBufferPointer<Int8>, d: Float, into out: inout [UInt8]) {
        let bits = Float16(d).bitPattern
        func pack(_ base: Int, _ stride: Int, _ count: Int) -> UInt8 {
            var v = 0
            for n in 0..<5 { v = v * 3 + (n < count ? Int(t[base + stride * n]) + 1 : 0) }
            return UInt8((v * 256 + 242) / 243)
        }
        for b in stride(from: 0, to: t.count, by: blockSize) {
            for m in 0..<32 { out.append(pack(b + m, 32, 5)) }
            for m in 0..<16 { out.append(pack(b + 160 + m, 16, 5)) }
            for j in 0..<4 { out.append(pack(b + 240 + j, 4, 4)) }
            out += [UInt8(bits & 0xff), UInt8(bits >> 8)]
        }
    }

    package static func byteCount(type: GGMLType, elements: Int) -> Int {
        elements / blockSize * (type == .tq2_0 ? 66 : 54)
    }

    /// Decodes a whole (rows, cols) tensor; returns ternary values and the
    /// common scale, or a reason the tensor is not a per-tensor ternary matrix.
    static func decode(_ data: UnsafeRawBufferPointer, type: GGMLType, rows: Int, cols: Int)
        -> Result<([Int8], Float), ReasonError> {
        let blockBytes = type == .tq2_0 ? 66 : 54
        guard cols % blockSize == 0 else {
            return .failure(ReasonError("\(type) rows must be a multiple of 256 elements, got \(cols)"))
        }
        let blocks = rows * cols / blockSize
        guard data.count >= blocks * blockBytes else {
            return .failure(ReasonError("holds \(data.count) bytes, \(blocks * blockBytes) needed"))
        }
        var values = [Int8](repeating: 0, count: rows * cols)
        var scale: Float = 0
        var failure: ReasonError?
        values.withUnsafeMutableBufferPointer { out in
            for b in 0..<blocks {
                let block = UnsafeRawBufferPointer(rebasing: data[(b * blockBytes)..<((b + 1) * blockBytes)])
                let slice = UnsafeMutableBufferPointer(rebasing: out[(b * blockSize)..<((b + 1) * blockSize)])
                let d = type == .tq2_0 ? decodeTQ2(block: block, into: slice) : decodeTQ1(block: block, into: slice)
                guard d.isFinite, d >= 0 else { failure = ReasonError("block \(b) has scale \(d)"); return }
                if slice.contains(where: { $0 > 1 }) { failure = ReasonError("block \(b) holds an invalid code"); return }
                if d == 0 || !slice.contains(where: { $0 != 0 }) { continue }
                if scale == 0 { scale = d } else if d != scale {
                    failure = ReasonError("block scales differ (\(scale) and \(d) in block \(b)): not a per-tensor ternary BitNet weight")
                    return
                }
            }
        }
        if let failure { return .failure(failure) }
        return .success((values, scale))
    }
}

/// An error that is only a sentence (wrapped into a ModelError by the caller).
struct ReasonError: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}
