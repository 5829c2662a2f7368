/// BPE merge ranks: (left id, right id) → (rank, merged id), keyed by the two ids
/// packed in one `UInt64` in an open-addressing table. Lookups are the inner loop
/// of every merge, so the table avoids `Dictionary`'s hashing and boxing.
struct MergeTable: Sendable {
    private static let empty = UInt64.max
    private var keys: [UInt64]
    /// High 32 bits: rank; low 32 bits: merged token id.
    private var values: [UInt64]
    private var mask: Int
    private(set) var count = 0

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = [UInt64](repeating: MergeTable.empty, count: size)
        values = [UInt64](repeating: 0, count: size)
        mask = size - 1
    }

    @inline(__always)
    private static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    @inline(__always)
    private static func slot(_ key: UInt64, _ mask: Int) -> Int {
        let h = (key ^ (key >> 29)) &* 0xBF58_476D_1CE4_E5B9
        return Int(truncatingIfNeeded: h ^ (h >> 32)) & mask
    }

    /// Adds a merge unless the pair already has one (the lower rank, seen first, wins).
    mutating func insert(left: Int32, right: Int32, rank: Int32, merged: Int32) {
        let k = MergeTable.key(left, right)
        var s = MergeTable.slot(k, mask)
        while keys[s] != MergeTable.empty {
            if keys[s] == k { return }
            s = (s + 1) & mask
        }
        keys[s] = k
        values[s] = UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(UInt32(bitPattern: merged))
        count += 1
    }

    /// `(rank << 32) | merged` for the pair, or nil when the pair never merges.
    @inline(__always)
    func lookup(_ left: Int32, _ right: Int32) -> UInt64? {
        let k = MergeTable.key(left, right)
        var s = MergeTable.slot(k, mask)
        return keys.withUnsafeBufferPointer { keys in
            while true {
                let found = keys[s]
                if found == k { return values[s] }
                if found == MergeTable.empty { return nil }
                s = (s + 1) & mask
            }
        }
    }
}
