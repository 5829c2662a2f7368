import BitNet
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A read-only memory map of a checkpoint shard. The converter reads each
/// tensor through the map and then `release`s its pages: file-backed pages
/// count toward the resident set, so without this a 5 GB checkpoint would
/// leave 5 GB resident by the end of the conversion.
final class MappedFile: @unchecked Sendable {
    let path: String
    let size: Int
    let base: UnsafeRawPointer?

    init(path: String, what: String) throws {
        self.path = path
        let (fd, size) = try FileBytes.openRegular(path: path, what: what)
        defer { close(fd) }
        self.size = size
        if size == 0 { base = nil; return }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw ConvertError.io(path: path, operation: "mmap", errno: errno) }
        base = UnsafeRawPointer(p)
    }

    deinit {
        if let base { munmap(UnsafeMutableRawPointer(mutating: base), size) }
    }

    /// `count` bytes at `offset`; the caller has checked the range against `size`.
    func bytes(offset: Int, count: Int) -> UnsafeRawBufferPointer {
        guard let base, count > 0 else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: base + offset, count: count)
    }

    /// Drops the pages of [offset, offset+count) from this process's resident set
    /// (they are re-read from disk if touched again).
    func release(offset: Int, count: Int) {
        guard let base, count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: base) + offset) / page * page
        let end = (Int(bitPattern: base) + offset + count + page - 1) / page * page
        _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, Int32(MADV_DONTNEED))
    }
}
