import CKernels

/// Packs ternary rows into this engine's TL1 / TL2 tiles (layout in bitnet_kernels.h),
/// byte for byte what `bn_tl_pack` writes, for synth: `bn_tl_pack` gathers every weight
/// into a code block first and ran at ~150 MB/s on one core, the bottleneck of a TL synth.
/// Here a group whose 8 slots and 32 rows are all inside the matrix is packed straight from
/// the rows; a group holding padding (columns past K, rows past M in the last tile) is
/// packed by `bn_tl_pack` as a one-group matrix, so the edge rules stay the kernel's own.
enum SynthLookupTable {
    /// TL2 slot value v = 9w0 + 3w1 + w2 ∈ −13..13, at index v + 13: |v| | (v < 0) << 4.
    private static let tl2Codes: [UInt8] = (0..<27).map { (i: Int) -> UInt8 in
        let v = i - 13
        return UInt8(abs(v)) | (v < 0 ? 16 : 0)
    }

    /// Bytes of the tiles of `rows` rows of K = `k` columns (rows rounded up to 32), without
    /// TL2's negative-slot counts.
    static func tileBytes(type: Int32, rows: Int, cols k: Int) -> Int {
        let groups = Int(bn_tl_slots(type, Int32(k))) / 8
        return (rows + 31) / 32 * groups * (type == 1 ? 128 : 160)
    }

    /// Packs `rows` rows of ternary `values` (row-major, K = `k`; rows a multiple of 32 except
    /// for a matrix's last piece) into `out` (`tileBytes`), and for TL2 their negative-slot
    /// counts, padded to a multiple of 32 rows, into `negCounts`.
    static func pack(type: Int32, values: UnsafePointer<Int8>, rows: Int, cols k: Int,
                     into out: UnsafeMutableRawPointer, negCounts: UnsafeMutablePointer<Int32>) {
        let width = type == 1 ? 2 : 3, groupCols = 8 * width
        let groups = Int(bn_tl_slots(type, Int32(k))) / 8, groupBytes = type == 1 ? 128 : 160
        let fullGroups = k / groupCols // groups with no column past K
        let edgeValues = UnsafeMutablePointer<Int8>.allocate(capacity: 32 * groupCols)
        let edgeBytes = UnsafeMutablePointer<UInt8>.allocate(capacity: 160 + 4 * 32)
        let negs = UnsafeMutablePointer<Int32>.allocate(capacity: 32)
        let codes = UnsafeMutablePointer<UInt8>.allocate(capacity: 27)
        defer { edgeValues.deallocate(); edgeBytes.deallocate(); negs.deallocate(); codes.deallocate() }
        codes.initialize(from: tl2Codes, count: 27)
        for tile in 0..<((rows + 31) / 32) {
            let tileRows = min(32, rows - 32 * tile)
            let tileValues = values + 32 * tile * k
            negs.initialize(repeating: 0, count: 32)
            for g in 0..<groups {
                let group = (out + (tile * groups + g) * groupBytes).assumingMemoryBound(to: UInt8.self)
                if tileRows == 32 && g < fullGroups {
                    if type == 1 {
                        packTL1Group(tileValues + g * groupCols, stride: k, into: group)
                    } else {
                        packTL2Group(tileValues + g * groupCols, stride: k, codes: codes, into: group, negs: negs)
                    }
                } else {
                    let cols = min(groupCols, k - g * groupCols)
                    for r in 0..<tileRows {
                        (edgeValues + r * cols).update(from: tileValues + r * k + g * groupCols, count: cols)
                    }
                    bn_tl_pack(type, edgeValues, Int32(tileRows), Int32(cols), edgeBytes)
                    group.update(from: edgeBytes, count: groupBytes)
                    if type == 2 {
                        let counts = UnsafeRawPointer(edgeBytes + groupBytes).assumingMemoryBound(to: Int32.self)
                        for r in 0..<32 { negs[r] &+= counts[r] }
                    }
                }
            }
            if type == 2 { (negCounts + 32 * tile).update(from: negs, count: 32) }
        }
    }

    /// Slot j of row r is in pair p = j/2, whose index byte is 64(p/2) + q with
    /// q = 32(r/16) + 16(p%2) + r%16 (bn_tl_index_byte), low nibble for even j.
    @inline(__always)
    private static func indexByte(_ p: Int, _ r: Int) -> Int { (p >> 1) << 6 | (r >> 4) << 5 | (p & 1) << 4 | (r & 15) }

    /// TL1: 16 columns, slot index 3(w0+1) + (w1+1).
    @inline(__always)
    private static func packTL1Group(_ v: UnsafePointer<Int8>, stride: Int, into group: UnsafeMutablePointer<UInt8>) {
        for r in 0..<32 {
            let row = v + r * stride
            for p in 0..<4 {
                let c = row + 4 * p
                let lo = 3 &* Int(c[0]) &+ Int(c[1]) &+ 4, hi = 3 &* Int(c[2]) &+ Int(c[3]) &+ 4
                group[indexByte(p, r)] = UInt8(truncatingIfNeeded: lo | hi << 4)
            }
        }
    }

    /// TL2: 24 columns, |v| in the index nibble and the sign of slot j at bit q (as above)
    /// of sign word 2(p/2) + j%2, the words after the 128 index bytes (bn_tl_sign_bit).
    @inline(__always)
    private static func packTL2Group(_ v: UnsafePointer<Int8>, stride: Int, codes: UnsafePointer<UInt8>,
                                     into group: UnsafeMutablePointer<UInt8>, negs: UnsafeMutablePointer<Int32>) {
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        for r in 0..<32 {
            let row = v + r * stride
            var negatives: Int32 = 0
            for p in 0..<4 {
                let c = row + 6 * p
                let lo = codes[9 &* Int(c[0]) &+ 3 &* Int(c[1]) &+ Int(c[2]) &+ 13]
                let hi = codes[9 &* Int(c[3]) &+ 3 &* Int(c[4]) &+ Int(c[5]) &+ 13]
                group[indexByte(p, r)] = (lo & 15) | (hi & 15) << 4
                let q = UInt64(truncatingIfNeeded: (r >> 4) << 5 | (p & 1) << 4 | (r & 15))
                let sl = UInt64(lo >> 4) << q, sh = UInt64(hi >> 4) << q
                if p < 2 { words.0 |= sl; words.1 |= sh } else { words.2 |= sl; words.3 |= sh }
                negatives &+= Int32(lo >> 4) &+ Int32(hi >> 4)
            }
            negs[r] &+= negatives
        }
        let signs = UnsafeMutableRawPointer(group + 128)
        signs.storeBytes(of: words.0.littleEndian, toByteOffset: 0, as: UInt64.self)
        signs.storeBytes(of: words.1.littleEndian, toByteOffset: 8, as: UInt64.self)
        signs.storeBytes(of: words.2.littleEndian, toByteOffset: 16, as: UInt64.self)
        signs.storeBytes(of: words.3.littleEndian, toByteOffset: 24, as: UInt64.self)
    }
}
