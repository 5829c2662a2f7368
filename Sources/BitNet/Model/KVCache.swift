/// Keys and values of every layer for up to `capacity` positions, in f32
/// (exact; halves the error budget against references compared to f16).
/// Head-major: each kv head's positions are contiguous, so attention streams
/// one head's keys and values sequentially (position-major rows interleave
/// every head and made the reads strided: decoding 2B4T at 1,500 cached
/// positions ran at 10 GB/s instead of the machine's ~40).
public final class KVCache: @unchecked Sendable {
    /// Element type of the cache: f32 (exact, default) or f16 (half the memory and
    /// half the bytes attention reads per token; logits move by ~1e-3).
    public enum Precision: String, Sendable, CaseIterable {
        case f32, f16
        public var bytes: Int { self == .f32 ? 4 : 2 }
    }

    public let precision: Precision
    public let capacity: Int
    public let layerCount: Int
    public let kvHeads: Int
    public let headDim: Int
    public var kvDim: Int { kvHeads * headDim }
    /// Positions filled so far; the next token goes at `count`. Changed only by
    /// the session that owns the cache, under its model's lock.
    public internal(set) var count = 0
    let keys: [AlignedBuffer] // per layer (kvHeads, capacity, headDim) f32 or f16
    let values: [AlignedBuffer] // per layer (kvHeads, capacity, headDim) f32 or f16

    public init(capacity: Int, layerCount: Int, kvHeads: Int, headDim: Int, precision: Precision = .f32) {
        self.capacity = capacity
        self.layerCount = layerCount
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.precision = precision
        let bytes = capacity * kvHeads * headDim * precision.bytes
        keys = (0..<layerCount).map { _ in AlignedBuffer(byteCount: bytes) }
        values = (0..<layerCount).map { _ in AlignedBuffer(byteCount: bytes) }
    }

    public static func byteCount(capacity: Int, layerCount: Int, kvDim: Int, precision: Precision = .f32) -> Int {
        2 * capacity * layerCount * kvDim * precision.bytes
    }

    public var byteCount: Int {
        Self.byteCount(capacity: capacity, layerCount: layerCount, kvDim: kvDim, precision: precision)
    }

    /// Floats between the first rows of consecutive kv heads.
    var headStride: Int { capacity * headDim }

    /// Stores one position's keys and values, (kvHeads · headDim) floats each, head by head.
    func store(layer: Int, position: Int, keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>) {
        for g in 0..<kvHeads {
            let at = g * headStride + position * headDim
            switch precision {
            case .f32:
                (keys[layer].typed(Float.self).baseAddress! + at).update(from: k + g * headDim, count: headDim)
                (values[layer].typed(Float.self).baseAddress! + at).update(from: v + g * headDim, count: headDim)
            case .f16:
                let kh = keys[layer].typed(UInt16.self).baseAddress! + at
                let vh = values[layer].typed(UInt16.self).baseAddress! + at
                for i in 0..<headDim {
                    kh[i] = BlockDequantizer.halfBits(k[g * headDim + i])
                    vh[i] = BlockDequantizer.halfBits(v[g * headDim + i])
                }
            }
        }
    }

    /// Base of a layer's keys / values (elements of `precision`): head g's (capacity, headDim)
    /// block starts at element g · headStride.
    func keyBase(layer: Int) -> UnsafeMutableRawPointer { keys[layer].pointer }
    func valueBase(layer: Int) -> UnsafeMutableRawPointer { values[layer].pointer }
}
