import BitNet
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Small whole-file reads (JSON configs, tokenizer files) and existence checks,
/// with errors that name the file.
enum FileBytes {
    static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Whole-file reads (config.json, tokenizer.json, tokenizer.model) above this
    /// are refused: the largest real tokenizer.json files are tens of MB, and the
    /// bound keeps a wrong path (a disk image, a shard) from being read into memory.
    static let maxContentsBytes = 512 << 20

    /// Opens a regular file read-only; the caller closes the descriptor.
    /// `what` describes the file for the "not found" message (e.g. "config.json").
    static func openRegular(path: String, what: String) throws -> (fd: Int32, size: Int) {
        // O_NONBLOCK so that a FIFO is refused below instead of blocking the open
        // until some writer appears; regular files ignore the flag.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT { throw ConvertError.missingFile(path: path, what: what) }
            throw ConvertError.io(path: path, operation: "open", errno: code)
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let code = errno
            close(fd)
            throw ConvertError.io(path: path, operation: "fstat", errno: code)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG, let size = Int(exactly: st.st_size) else {
            close(fd)
            throw ConvertError.notARegularFile(path: path, what: what)
        }
        return (fd, size)
    }

    static func contents(path: String, what: String, limit: Int = maxContentsBytes) throws -> [UInt8] {
        let (fd, size) = try openRegular(path: path, what: what)
        defer { close(fd) }
        guard size <= limit else { throw ConvertError.fileTooLarge(path: path, what: what, size: size, limit: limit) }
        // st_size is only a hint: /proc files report 0, and a file may grow while read
        var bytes = [UInt8](repeating: 0, count: size + 1)
        var done = 0
        while true {
            if done == bytes.count { bytes.append(contentsOf: repeatElement(0, count: max(4096, bytes.count))) }
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ConvertError.io(path: path, operation: "read", errno: errno)
            }
            if n == 0 { break }
            done += n
            guard done <= limit else { throw ConvertError.fileTooLarge(path: path, what: what, size: done, limit: limit) }
        }
        bytes.removeSubrange(done...)
        return bytes
    }
}
