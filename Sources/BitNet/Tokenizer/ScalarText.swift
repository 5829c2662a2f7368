/// A byte string decoded once into parallel per-scalar arrays, so the
/// pre-tokenizer scanners can look ahead and behind by index and map their
/// matches back to byte ranges.
///
/// Invalid UTF-8 never stops the scan: each byte that does not start a well-formed
/// sequence becomes one pseudo-scalar `invalidMarker | byte` with no class (it
/// behaves like U+FFFD in the regexes) and keeps its original byte, so byte-level
/// BPE or byte fallback still encodes it.
struct ScalarText {
    static let invalidMarker: UInt32 = 0x11_0000

    private(set) var scalars: [UInt32] = []
    private(set) var classes: [UInt8] = []
    /// Byte offset of each scalar, plus one final entry: the byte length.
    private(set) var offsets: [Int] = []

    var count: Int { scalars.count }

    mutating func load(_ bytes: UnsafeBufferPointer<UInt8>) {
        scalars.removeAll(keepingCapacity: true)
        classes.removeAll(keepingCapacity: true)
        offsets.removeAll(keepingCapacity: true)
        scalars.reserveCapacity(bytes.count)
        classes.reserveCapacity(bytes.count)
        offsets.reserveCapacity(bytes.count + 1)
        CharacterClass.basicPlane.withUnsafeBufferPointer { table in
            var i = 0
            let n = bytes.count
            while i < n {
                let (value, length) = ScalarText.decode(bytes, at: i)
                scalars.append(value)
                classes.append(value < 0x10000 ? table[Int(value)] : CharacterClass.of(value))
                offsets.append(i)
                i += length
            }
        }
        offsets.append(bytes.count)
    }

    /// The scalar starting at `i`, or an invalid-byte marker of length 1.
    @inline(__always)
    static func decode(_ b: UnsafeBufferPointer<UInt8>, at i: Int) -> (UInt32, Int) {
        let b0 = b[i]
        if b0 < 0x80 { return (UInt32(b0), 1) }
        let n = b.count
        let invalid = (invalidMarker | UInt32(b0), 1)
        @inline(__always) func cont(_ k: Int) -> UInt32? {
            guard k < n else { return nil }
            let c = b[k]
            return c & 0xC0 == 0x80 ? UInt32(c & 0x3F) : nil
        }
        switch b0 {
        case 0xC2...0xDF:
            guard let c1 = cont(i + 1) else { return invalid }
            return ((UInt32(b0 & 0x1F) << 6) | c1, 2)
        case 0xE0...0xEF:
            guard let c1 = cont(i + 1), let c2 = cont(i + 2) else { return invalid }
            let v = (UInt32(b0 & 0x0F) << 12) | (c1 << 6) | c2
            // Overlong forms and UTF-16 surrogates are not scalars.
            guard v >= 0x800, !(0xD800...0xDFFF).contains(v) else { return invalid }
            return (v, 3)
        case 0xF0...0xF4:
            guard let c1 = cont(i + 1), let c2 = cont(i + 2), let c3 = cont(i + 3) else { return invalid }
            let v = (UInt32(b0 & 0x07) << 18) | (c1 << 12) | (c2 << 6) | c3
            guard v >= 0x1_0000, v <= 0x10_FFFF else { return invalid }
            return (v, 4)
        default:
            return invalid
        }
    }
}
