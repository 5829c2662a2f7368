import BitNet

/// The random streams `bitnet synth` fills tensors from, written for speed: a 100B shape is
/// ~25 GB of random bytes, so the bulk loops inline the generator and avoid divisions.
///
/// Two kinds of stream. The file's own stream is `SeededGenerator(seed:)`'s, one draw per
/// I2_S byte, F16 value and norm value, tensor after tensor (what synth always wrote, so a
/// seed keeps its file); SplitMix64 is counter-based, so a piece starting at draw n starts
/// its generator there (`init(seed:position:)`) and pieces are made on any thread. Data new
/// to the parallel writer (TL/TQ values, block heads) takes one generator per piece, seeded
/// from (file seed, tensor, piece).
struct SynthRandom {
    private var state: UInt64

    /// SplitMix64, as `SeededGenerator` (a local copy so that the bulk loops inline it).
    init(seed: UInt64) { state = seed }

    /// `SeededGenerator(seed: seed)` after `position` draws.
    init(seed: UInt64, position: Int) { state = seed &+ UInt64(truncatingIfNeeded: position) &* Self.gamma }

    /// The generator of piece `piece` of tensor `tensor`.
    init(seed: UInt64, tensor: Int, piece: Int) {
        var mix = SynthRandom(seed: seed)
        let a = mix.next()
        var t = SynthRandom(seed: a ^ UInt64(truncatingIfNeeded: tensor) &* 0xD6E8_FEB8_6659_FD93)
        let b = t.next()
        var p = SynthRandom(seed: b ^ UInt64(truncatingIfNeeded: piece) &* 0xA076_1D64_78BD_642F)
        state = p.next()
    }

    private static let gamma: UInt64 = 0x9E37_79B9_7F4A_7C15

    @inline(__always)
    mutating func next() -> UInt64 {
        state &+= Self.gamma
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    @inline(__always)
    mutating func nextSigned() -> Float { Float(Double(next() >> 11) / Double(1 << 52) - 1) }

    /// `count` uniformly random bytes.
    mutating func fillBytes(_ dst: UnsafeMutableRawPointer, count: Int) {
        var i = 0
        while i + 8 <= count {
            dst.storeBytes(of: next(), toByteOffset: i, as: UInt64.self)
            i += 8
        }
        if i < count {
            var r = next()
            while i < count {
                dst.storeBytes(of: UInt8(truncatingIfNeeded: r), toByteOffset: i, as: UInt8.self)
                r >>= 8
                i += 1
            }
        }
    }

    /// The 81 I2_S bytes whose four 2-bit fields are all valid codes (0, 1, 2).
    static let i2sBytes: [UInt8] = (0..<81).map { (v: Int) -> UInt8 in
        let a = UInt8(v / 27), b = UInt8(v / 9 % 3), c = UInt8(v / 3 % 3), d = UInt8(v % 3)
        return a << 6 | b << 4 | c << 2 | d
    }

    /// The 81 runs of four ternary values (−1, 0, 1 as Int8 bytes) as little-endian UInt32s.
    static let ternaryQuads: [UInt32] = (0..<81).map { (v: Int) -> UInt32 in
        var word: UInt32 = 0, rest = v
        for j in 0..<4 {
            let byte = UInt8(bitPattern: Int8(rest % 3 - 1))
            word |= UInt32(byte) << UInt32(8 * j)
            rest /= 3
        }
        return word
    }

    /// `count` random entries of `table` (81 of them): 8 base-81 digits per random word,
    /// each the high word of r·81 while the low word carries the rest (51 of 64 bits used).
    @inline(__always)
    mutating func fillBase81<T: FixedWidthInteger>(_ dst: UnsafeMutableRawPointer, count: Int,
                                                           table: UnsafePointer<T>) {
        let size = MemoryLayout<T>.size
        var i = 0
        while i + 8 <= count {
            var r = next()
            for j in 0..<8 {
                let (digit, rest) = r.multipliedFullWidth(by: 81)
                dst.storeBytes(of: table[Int(digit)], toByteOffset: (i + j) * size, as: T.self)
                r = rest
            }
            i += 8
        }
        var r = next()
        while i < count {
            let (digit, rest) = r.multipliedFullWidth(by: 81)
            dst.storeBytes(of: table[Int(digit)], toByteOffset: i * size, as: T.self)
            r = rest
            i += 1
        }
    }

    /// `count` F16 values `Float16(nextSigned() · scale)`, bit for bit (`halfBits`: on x86-64
    /// without F16C, `Float16(x)` is a compiler-rt call per value).
    mutating func fillHalves(_ dst: UnsafeMutableRawPointer, count: Int, scale: Float) {
        let out = dst.assumingMemoryBound(to: UInt16.self)
        for i in 0..<count { out[i] = Self.halfBits(nextSigned() * scale) }
    }

    /// `count` I2_S bytes, `i2sBytes[next() % 81]` each (every 2-bit code valid: 0, 1 or 2).
    mutating func fillI2S(_ dst: UnsafeMutableRawPointer, count: Int) {
        Self.i2sBytes.withUnsafeBufferPointer { table in
            let out = dst.assumingMemoryBound(to: UInt8.self)
            for i in 0..<count { out[i] = table[Int(truncatingIfNeeded: next() % 81)] }
        }
    }

    /// Float16(x).bitPattern, round to nearest even (BlockDequantizer.halfBits, inlined here).
    @inline(__always)
    static func halfBits(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        let sign = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
        let a = bits & 0x7FFF_FFFF
        if a >= 0x3880_0000 && a < 0x4780_0000 {
            let odd = (a >> 13) & 1
            return sign | UInt16(truncatingIfNeeded: (a &- 0x3800_0000 &+ 0x0FFF &+ odd) >> 13)
        }
        if a < 0x3880_0000 {
            let f = Float(bitPattern: a) + 0.5
            return sign | UInt16(truncatingIfNeeded: f.bitPattern &- 0x3F00_0000)
        }
        return sign | (a > 0x7F80_0000 ? 0x7E00 : 0x7C00)
    }

    /// `count` random ternary values (−1, 0, 1), uniform.
    mutating func fillTernary(_ dst: UnsafeMutablePointer<Int8>, count: Int) {
        let quads = count / 4
        Self.ternaryQuads.withUnsafeBufferPointer { fillBase81(UnsafeMutableRawPointer(dst), count: quads,
                                                               table: $0.baseAddress!) }
        var r = next()
        for i in (4 * quads)..<count {
            dst[i] = Int8(truncatingIfNeeded: Int(r % 3) - 1)
            r /= 3
        }
    }
}
