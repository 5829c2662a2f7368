/// Keys and values of every layer for up to `capacity` positions, in f32
/// (exact; halves the error budget against references compared to f16).
public final class KVCache: @unchecked Sendable {
    public let capacity: Int
    public let layerCount: Int
    public let kvDim: Int
    /// Positions filled so far; the next token goes at `count`.
    public internal(set) var count = 0
    let keys: [AlignedBuffer] // per layer (capacity, kvDim) f32
    let values: [AlignedBuffer] // per layer (capacity, kvDim) f32

    public init(capacity: Int, layerCount: Int, kvDim: Int) {
        self.capacity = capacity
        self.layerCount = layerCount
        self.kvDim = kvDim
        keys = (0..<layerCount).map { _ in AlignedBuffer(byteCount: capacity * kvDim * 4) }
        values = (0..<layerCount).map { _ in AlignedBuffer(byteCount: capacity * kvDim * 4) }
    }

    public static func byteCount(capacity: Int, layerCount: Int, kvDim: Int) -> Int {
        2 * capacity * layerCount * kvDim * 4
    }

    public var byteCount: Int { Self.byteCount(capacity: capacity, layerCount: layerCount, kvDim: kvDim) }

    /// Forget everything (a new conversation).
    public func reset() { count = 0 }

    /// Keep the first `length` positions (e.g. to drop a rejected continuation).
    public func truncate(to length: Int) { count = max(0, min(count, length)) }

    func keyRow(layer: Int, position: Int) -> UnsafeMutablePointer<Float> {
        keys[layer].typed(Float.self).baseAddress! + position * kvDim
    }

    func valueRow(layer: Int, position: Int) -> UnsafeMutablePointer<Float> {
        values[layer].typed(Float.self).baseAddress! + position * kvDim
    }
}
