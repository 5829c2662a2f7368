#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Owns zero-filled, 64-byte-aligned memory (one cache line, one zmm
/// register), so SIMD kernels see aligned rows regardless of the Swift
/// allocator. Buffers of 1 MiB and more come from anonymous mmap: the kernel
/// supplies zero pages lazily, so a KV cache sized for 4096 positions costs
/// neither load time nor resident memory until positions are used.
package final class AlignedBuffer: @unchecked Sendable {
    package static let alignment = 64
    static let mmapThreshold = 1 << 20
    package let byteCount: Int
    package let pointer: UnsafeMutableRawPointer
    private let mapped: Bool

    package init(byteCount: Int) {
        self.byteCount = byteCount
        if byteCount >= Self.mmapThreshold,
           let p = mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
           p != MAP_FAILED {
            pointer = p
            mapped = true
        } else {
            pointer = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: Self.alignment)
            pointer.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 1))
            mapped = false
        }
    }

    deinit {
        if mapped { munmap(pointer, byteCount) } else { pointer.deallocate() }
    }

    package var bytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: pointer, count: byteCount) }

    package func typed<T>(_ type: T.Type) -> UnsafeMutableBufferPointer<T> {
        UnsafeMutableBufferPointer(start: pointer.assumingMemoryBound(to: T.self), count: byteCount / MemoryLayout<T>.stride)
    }
}
