/// An open-addressing hash map from byte strings to `Int32`, with all keys in one
/// arena: looking up a word needs no `String` or `Array` allocation, which is what
/// keeps encoding fast (a Swift `Dictionary<[UInt8], Int32>` would allocate and
/// SipHash every probe).
struct ByteStringTable: Sendable {
    private var arena: [UInt8] = []
    private var keyStart: [Int] = []
    private var keyLength: [Int32] = []
    private var values: [Int32] = []
    /// High 32 bits: hash tag; low 32 bits: entry index + 1 (0 = empty slot).
    private var slots: [UInt64]
    private var mask: Int

    init(capacity: Int = 16) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [UInt64](repeating: 0, count: size)
        mask = size - 1
        keyStart.reserveCapacity(capacity)
        keyLength.reserveCapacity(capacity)
        values.reserveCapacity(capacity)
    }

    var count: Int { values.count }
    var arenaBytes: Int { arena.count }

    @inline(__always)
    static func hash(_ key: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(key.count)
        let n = key.count
        var i = 0
        if let base = key.baseAddress {
            let raw = UnsafeRawPointer(base)
            while i + 8 <= n {
                h = (h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
                h ^= h >> 29
                i += 8
            }
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while i < n {
                tail |= UInt64(base[i]) << shift
                shift += 8
                i += 1
            }
            h = (h ^ tail) &* 0x94D0_49BB_1331_11EB
        }
        h ^= h >> 31
        h = h &* 0xD6E8_FEB8_6659_FD93
        return h ^ (h >> 32)
    }

    /// The value stored for `key`, or nil.
    @inline(__always)
    func value(for key: UnsafeBufferPointer<UInt8>) -> Int32? {
        let h = ByteStringTable.hash(key)
        let tag = h >> 32
        var slot = Int(truncatingIfNeeded: h) & mask
        return slots.withUnsafeBufferPointer { slots in
            arena.withUnsafeBufferPointer { arena in
                while true {
                    let entry = slots[slot]
                    if entry == 0 { return nil }
                    if entry >> 32 == tag {
                        let index = Int(entry & 0xFFFF_FFFF) - 1
                        if Int(keyLength[index]) == key.count,
                           ByteStringTable.equal(arena, keyStart[index], key) {
                            return values[index]
                        }
                    }
                    slot = (slot + 1) & mask
                }
            }
        }
    }

    func value(for key: [UInt8]) -> Int32? {
        key.withUnsafeBufferPointer { value(for: $0) }
    }

    /// Inserts `key` unless it is already present (the first value wins, as a
    /// vocabulary's first spelling of a duplicate token does). Returns whether it inserted.
    @discardableResult
    mutating func insert(_ key: UnsafeBufferPointer<UInt8>, value: Int32) -> Bool {
        if self.value(for: key) != nil { return false }
        if (values.count + 1) * 2 > slots.count { grow() }
        let index = values.count
        keyStart.append(arena.count)
        keyLength.append(Int32(key.count))
        values.append(value)
        arena.append(contentsOf: key)
        place(hash: ByteStringTable.hash(key), index: index)
        return true
    }

    @discardableResult
    mutating func insert(_ key: [UInt8], value: Int32) -> Bool {
        key.withUnsafeBufferPointer { insert($0, value: value) }
    }

    mutating func removeAll() {
        arena.removeAll(keepingCapacity: true)
        keyStart.removeAll(keepingCapacity: true)
        keyLength.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
        for i in slots.indices { slots[i] = 0 }
    }

    private mutating func place(hash h: UInt64, index: Int) {
        var slot = Int(truncatingIfNeeded: h) & mask
        while slots[slot] != 0 { slot = (slot + 1) & mask }
        slots[slot] = (h >> 32) << 32 | UInt64(index + 1)
    }

    private mutating func grow() {
        slots = [UInt64](repeating: 0, count: slots.count * 2)
        mask = slots.count - 1
        for index in values.indices {
            let start = keyStart[index]
            let length = Int(keyLength[index])
            let h = arena.withUnsafeBufferPointer {
                ByteStringTable.hash(UnsafeBufferPointer(rebasing: $0[start..<(start + length)]))
            }
            place(hash: h, index: index)
        }
    }

    @inline(__always)
    private static func equal(_ arena: UnsafeBufferPointer<UInt8>, _ start: Int, _ key: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        while i < key.count {
            if arena[start + i] != key[i] { return false }
            i += 1
        }
        return true
    }
}
