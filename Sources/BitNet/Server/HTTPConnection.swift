#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One accepted TCP connection: reads with a deadline, whole writes with a send
/// timeout, and a cheap check whether the client has gone. Owned by one
/// connection thread; ``shutdown()`` may be called from another (server stop).
public final class HTTPConnection: @unchecked Sendable {
    public let peer: String
    private let fd: Int32
    private let lock = Lock()
    private var isClosed = false
    /// A send failed or timed out: the client is gone, stop writing.
    public private(set) var isBroken = false

    public enum ReadResult: Equatable {
        case data(Int)
        case closed
        case timedOut
        case failed(Int32)
    }

    init(fd: Int32, peer: String, writeTimeout: Double) {
        self.fd = fd
        self.peer = peer
        var one: Int32 = 1
        // Stream pieces should leave at once, not wait for Nagle's algorithm.
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        #if canImport(Darwin)
        // Darwin has no MSG_NOSIGNAL: a write to a closed peer must not raise SIGPIPE.
        setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
        #endif
        var timeout = Self.makeTimeval(seconds: writeTimeout)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close() }

    /// Reads up to `maxCount` bytes onto the end of `buffer`, waiting until
    /// `deadline` (a ``ServerClock`` time) at most.
    public func read(into buffer: inout [UInt8], maxCount: Int, deadline: Double) -> ReadResult {
        while true {
            let remaining = deadline - ServerClock.now()
            if remaining <= 0 { return .timedOut }
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(min(remaining * 1000, 60_000).rounded(.up)))
            if ready < 0 {
                if errno == EINTR { continue }
                return .failed(errno)
            }
            if ready == 0 { continue }  // the loop re-checks the deadline
            let start = buffer.count
            buffer += repeatElement(0, count: maxCount)
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + start, maxCount, 0) }
            buffer.removeLast(maxCount - max(0, n))
            if n > 0 { return .data(n) }
            if n == 0 { return .closed }
            if errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK { continue }
            return .failed(errno)
        }
    }

    /// Writes all of `bytes`; false (and ``isBroken``) when the client has gone or
    /// did not read for the send timeout.
    @discardableResult
    public func write(_ bytes: [UInt8]) -> Bool {
        guard !isBroken else { return false }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, $0.count - offset, Self.sendFlags) }
            if n > 0 {
                offset += n
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                isBroken = true  // EPIPE, ECONNRESET, or EAGAIN after SO_SNDTIMEO
                return false
            }
        }
        return true
    }

    @discardableResult
    public func write(_ text: String) -> Bool { write(Array(text.utf8)) }

    /// True when the client closed its side or the connection failed. Checked
    /// between generated tokens, so a client that hangs up stops the work it asked
    /// for. (A client that half-closes after its request counts as gone; HTTP
    /// clients do not do that.)
    public var isPeerGone: Bool {
        if isBroken { return true }
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, 0)
        if ready <= 0 { return false }
        if descriptor.revents & Int16(POLLERR | POLLHUP | POLLNVAL) != 0 { return true }
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT))
        if n == 0 { return true }
        if n < 0 { return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR }
        return false  // more bytes from the client (pipelined): still there
    }

    /// Ends the response: sends FIN, then reads (and drops) what the client still
    /// sends until it closes or `linger` seconds pass, then closes. Closing with
    /// unread input at once would make the kernel send a reset that can destroy the
    /// response before the client reads it (e.g. a 413 sent before the body).
    func finish(linger: Double) {
        let open = lock.withLock { !isClosed }
        guard open else { return }
        _ = socketShutdown(fd, Self.shutWrite)
        let deadline = ServerClock.now() + linger
        var scratch: [UInt8] = []
        var drained = 0
        while drained < 1 << 20 {
            scratch.removeAll(keepingCapacity: true)
            guard case .data(let n) = read(into: &scratch, maxCount: 16384, deadline: deadline) else { break }
            drained += n
        }
        close()
    }

    /// Wakes a thread blocked on this connection (server stop): reads return and
    /// writes fail from now on.
    func shutdown() {
        lock.withLock {
            if !isClosed { _ = socketShutdown(fd, Self.shutBoth) }
        }
    }

    func close() {
        lock.withLock {
            if !isClosed {
                isClosed = true
                _ = closeSocket(fd)
            }
        }
    }

    // MARK: - Platform differences

    #if canImport(Darwin)
    private static let sendFlags: Int32 = 0
    private static let shutWrite = SHUT_WR
    private static let shutBoth = SHUT_RDWR
    #else
    private static let sendFlags = Int32(MSG_NOSIGNAL)
    private static let shutWrite = Int32(SHUT_WR)
    private static let shutBoth = Int32(SHUT_RDWR)
    #endif

    static func makeTimeval(seconds: Double) -> timeval {
        let s = max(0, seconds)
        #if canImport(Darwin)
        return Darwin.timeval(tv_sec: Int(s), tv_usec: Int32((s - s.rounded(.down)) * 1e6))
        #else
        return timeval(tv_sec: Int(s), tv_usec: Int((s - s.rounded(.down)) * 1e6))
        #endif
    }
}

/// `shutdown(2)`, named apart from ``HTTPConnection/shutdown()``, which would shadow it in the class.
private func socketShutdown(_ fd: Int32, _ how: Int32) -> Int32 {
    shutdown(fd, how)
}
