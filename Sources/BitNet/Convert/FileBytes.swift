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

    /// Opens a regular file read-only; the caller closes the descriptor.
    /// `what` describes the file for the "not found" message (e.g. "config.json").
    static func openRegular(path: String, what: String) throws -> (fd: Int32, size: Int) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
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
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw ConvertError.io(path: path, operation: "open (not a regular file)", errno: EISDIR)
        }
        return (fd, Int(st.st_size))
    }

    static func contents(path: String, what: String) throws -> [UInt8] {
        let (fd, size) = try openRegular(path: path, what: what)
        defer { close(fd) }
        // st_size is only a hint: /proc files report 0
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
        }
        bytes.removeSubrange(done...)
        return bytes
    }
}
