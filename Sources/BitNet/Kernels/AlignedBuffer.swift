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
///
/// Weights ask for `hugePages`: on Linux the mapping is aligned to the
/// transparent huge page size (2 MiB on x86-64) and marked MADV_HUGEPAGE, which
/// distributions' default THP mode ("madvise") requires. A decoding step streams
/// every weight once, ~1.2 GB for 2B4T: on 4 KiB pages that is ~290,000 page
/// walks per step, and the two cores' walks compete. On the 2-core Zen 4 host,
/// interleaved with the 4 KiB build, 8 sequences at 2 threads went 97–111 →
/// 110–117 tok/s (F16 head) and 138–141 → 149–151 (`--head q8`); one thread
/// and single-stream decoding were unchanged within noise. KV caches keep 4 KiB
/// pages: a huge page would make each slot's partly used tail resident 2 MiB at
/// a time. Weights are written whole at load, so huge pages add no residency.
package final class AlignedBuffer: @unchecked Sendable {
    package static let alignment = 64
    static let mmapThreshold = 1 << 20
    package let byteCount: Int
    package let pointer: UnsafeMutableRawPointer
    private let mapped: Bool

    /// - Parameter hugePages: for buffers streamed whole and often (weights); see the type's note.
    package init(byteCount: Int, hugePages: Bool = false) {
        self.byteCount = byteCount
        if hugePages, let huge = SystemMemory.hugePageSize, byteCount >= huge, let p = Self.mapAligned(byteCount, to: huge) {
            pointer = p
            mapped = true
        } else if byteCount >= Self.mmapThreshold,
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

    /// An anonymous mapping of byteCount bytes starting on a multiple of `alignment`
    /// (a power of two, a multiple of the page size), marked for huge pages: mapped
    /// with `alignment` bytes to spare, then the unaligned head and the tail unmapped.
    private static func mapAligned(_ byteCount: Int, to alignment: Int) -> UnsafeMutableRawPointer? {
        #if os(Linux)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard page > 0, alignment % page == 0 else { return nil }
        let length = (byteCount + page - 1) / page * page // what munmap(pointer, byteCount) releases
        guard let raw = mmap(nil, length + alignment, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              raw != MAP_FAILED else { return nil }
        let start = Int(bitPattern: raw), aligned = (start + alignment - 1) & ~(alignment - 1)
        if aligned > start { munmap(raw, aligned - start) }
        let tail = start + length + alignment - (aligned + length)
        if tail > 0 { munmap(UnsafeMutableRawPointer(bitPattern: aligned + length), tail) }
        let p = UnsafeMutableRawPointer(bitPattern: aligned)!
        _ = madvise(p, length, Int32(MADV_HUGEPAGE)) // advice only: without it the pages are 4 KiB
        return p
        #else
        return nil
        #endif
    }

    deinit {
        if mapped { munmap(pointer, byteCount) } else { pointer.deallocate() }
    }

    package var bytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: pointer, count: byteCount) }

    package func typed<T>(_ type: T.Type) -> UnsafeMutableBufferPointer<T> {
        UnsafeMutableBufferPointer(start: pointer.assumingMemoryBound(to: T.self), count: byteCount / MemoryLayout<T>.stride)
    }
}
