/// Owns 64-byte-aligned memory (one cache line, one zmm register), so SIMD
/// kernels see aligned rows regardless of the Swift allocator.
public final class AlignedBuffer: @unchecked Sendable {
    public static let alignment = 64
    public let byteCount: Int
    public let pointer: UnsafeMutableRawPointer

    /// Zero-filled; `byteCount` may be 0.
    public init(byteCount: Int) {
        self.byteCount = byteCount
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: Self.alignment)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 1))
    }

    deinit { pointer.deallocate() }

    public var bytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: pointer, count: byteCount) }

    public func typed<T>(_ type: T.Type) -> UnsafeMutableBufferPointer<T> {
        UnsafeMutableBufferPointer(start: pointer.assumingMemoryBound(to: T.self), count: byteCount / MemoryLayout<T>.stride)
    }
}
