/// Keys and values of every layer for up to `capacity` positions, in f32
/// (exact; halves the error budget against references compared to f16).
/// Head-major: each kv head's positions are contiguous, so attention streams
/// one head's keys and values sequentially (position-major rows interleave
/// every head and made the reads strided: decoding 2B4T at 1,500 cached
/// positions ran at 10 GB/s instead of the machine's ~40).
public final class KVCache: @unchecked Sendable {
    public let capacity: Int
    public let layerCount: Int
    public let kvHeads: Int
    public let headDim: Int
    public var kvDim: Int { kvHeads * headDim }
    /// Positions filled so far; the next token goes at `count`.
    public internal(set) var count = 0
    let keys: [AlignedBuffer] // per layer (kvHeads, capacity, headDim) f32
    let values: [AlignedBuffer] // per layer (kvHeads, capacity, headDim) f32

    public init(capacity: Int, layerCount: Int, kvHeads: Int, headDim: Int) {
        self.capacity = capacity
        self.layerCount = layerCount
        self.kvHeads = kvHeads
        self.headDim = headDim
        let bytes = capacity * kvHeads * headDim * 4
        keys = (0..<layerCount).map { _ in AlignedBuffer(byteCount: bytes) }
        values = (0..<layerCount).map { _ in AlignedBuffer(byteCount: bytes) }
    }

    public static func byteCount(capacity: Int, layerCount: Int, kvDim: Int) -> Int {
        2 * capacity * layerCount * kvDim * 4
    }

    public var byteCount: Int { Self.byteCount(capacity: capacity, layerCount: layerCount, kvDim: kvDim) }

    /// Forget everything (a new conversation).
    public func reset() { count = 0 }

    /// Keep the first `length` positions (e.g. to drop a rejected continuation).
    public func truncate(to length: Int) { count = max(0, min(count, length)) }

    /// Floats between the first rows of consecutive kv heads.
    var headStride: Int { capacity * headDim }

    /// Stores one position's keys and values, (kvHeads · headDim) floats each, head by head.
    func store(layer: Int, position: Int, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>) {
        let kb = keys[layer].typed(Float.self).baseAddress!, vb = values[layer].typed(Float.self).baseAddress!
        for g in 0..<kvHeads {
            let at = g * headStride + position * headDim
            (kb + at).update(from: k + g * headDim, count: headDim)
            (vb + at).update(from: v + g * headDim, count: headDim)
        }
    }

    /// Base of a layer's keys / values: head g's (capacity, headDim) block starts at g · headStride.
    func keyBase(layer: Int) -> UnsafeMutablePointer<Float> { keys[layer].typed(Float.self).baseAddress! }
    func valueBase(layer: Int) -> UnsafeMutablePointer<Float> { values[layer].typed(Float.self).baseAddress! }
}
