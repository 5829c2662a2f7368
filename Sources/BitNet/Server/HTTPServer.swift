#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A small HTTP/1.1 server over POSIX sockets (no dependencies): one accept loop,
/// one thread per connection (bounded by `maxConnections`), one request per
/// connection (`Connection: close`). Each connection thread reads and parses its
/// request within the configured limits and timeouts, calls the handler, and
/// writes one log line. What may run concurrently is the handler's business
/// (``BitNetServer`` serializes the model behind a ``RequestGate``).
public final class HTTPServer: @unchecked Sendable {
    public typealias Handler = @Sendable (HTTPRequest, HTTPResponseWriter) -> Void

    public let configuration: ServerConfiguration
    private let handler: Handler
    /// Receives one line per request (and a few about the server); stderr in the CLI.
    private let log: @Sendable (String) -> Void

    private let lock = Lock()
    private var listenFD: Int32 = -1
    private var stopping = false
    private var running = false
    private var nextConnectionID = 0
    /// Open connections, and which of them are still reading their request.
    private var connections: [Int: HTTPConnection] = [:]
    private var reading: Set<Int> = []

    /// The port listened on (the system's choice when configured with 0); 0 before ``start()``.
    public private(set) var port = 0

    public init(configuration: ServerConfiguration, log: @escaping @Sendable (String) -> Void = { _ in },
                handler: @escaping Handler) {
        self.configuration = configuration
        self.handler = handler
        self.log = log
    }

    deinit {
        if listenFD >= 0 { _ = closeSocket(listenFD) }
    }

    /// True once ``stop()`` was called: handlers should wind down (stop generating).
    public var isStopping: Bool { lock.withLock { stopping } }

    /// `http://host:port`, IPv6 literals in brackets.
    public var url: String {
        let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
        return "http://\(host):\(port)"
    }

    // MARK: - Listening

    /// Binds and listens; returns the port. Throws ``ServerError`` naming the address
    /// and the system's reason (address in use, permission denied, unknown host).
    @discardableResult
    public func start() throws -> Int {
        guard listenFD < 0 else { return port }
        guard (0...65535).contains(configuration.port) else {
            throw ServerError.internalError("port \(configuration.port) is outside 0...65535")
        }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Self.streamType
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>? = nil
        let rc = getaddrinfo(configuration.host, String(configuration.port), &hints, &list)
        guard rc == 0, let first = list else {
            throw ServerError.internalError("cannot listen on \(configuration.host):\(configuration.port): "
                                            + "unknown host (\(String(cString: gai_strerror(rc))))")
        }
        defer { freeaddrinfo(list) }
        var failure = "no address"
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            candidate = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
            if fd < 0 { failure = String(cString: strerror(errno)); continue }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            if bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 || listen(fd, 128) != 0 {
                failure = String(cString: strerror(errno))
                _ = closeSocket(fd)
                continue
            }
            listenFD = fd
            port = Self.localPort(fd) ?? configuration.port
            return port
        }
        throw ServerError.internalError("cannot listen on \(configuration.host):\(configuration.port): \(failure)")
    }

    /// Accepts connections until ``stop()`` (or `shouldStop` returns true; it is
    /// polled ten times a second, e.g. for a flag set by a signal handler), then
    /// lets open requests finish for a moment, closes the rest, and returns.
    public func run(shouldStop: (() -> Bool)? = nil) throws {
        try start()
        lock.withLock { running = true }
        while !isStopping {
            if let shouldStop, shouldStop() { stop(); break }
            var descriptor = pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 100)
            if ready <= 0 { continue }
            let fd = accept(listenFD, nil, nil)
            if fd < 0 {
                // Out of descriptors: the pending connection stays ready, so back off
                // instead of spinning; EINTR, ECONNABORTED: just go on.
                if errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM { usleep(50_000) }
                continue
            }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            serve(fd)
        }
        _ = closeSocket(listenFD)
        listenFD = -1
        drain()
        lock.withLock { running = false; lock.broadcast() }
    }

    /// Runs ``run(shouldStop:)`` on a thread of its own (for tests and embedders).
    public func runInBackground() throws {
        try start()
        guard DetachedThread.spawn({ [self] in
            do { try run() } catch { log("server stopped: \(error)") }
        }) else {
            throw ServerError.internalError("cannot start the server thread")
        }
    }

    /// Stops accepting; safe from any thread. ``run(shouldStop:)`` returns once
    /// open connections are done (at most a few seconds).
    public func stop() {
        lock.withLock {
            stopping = true
            // Connections still waiting for their request are not worth waiting for.
            for id in reading { connections[id]?.shutdown() }
        }
    }

    /// Blocks until a ``run(shouldStop:)`` that was running has returned (or `timeout` passed).
    public func waitUntilStopped(timeout: Double = 10) {
        let deadline = ServerClock.now() + timeout
        lock.withLock {
            while running, ServerClock.now() < deadline { lock.wait(seconds: 0.1) }
        }
    }

    // MARK: - Connections

    private func serve(_ fd: Int32) {
        let connection = HTTPConnection(fd: fd, peer: Self.peerName(fd), writeTimeout: configuration.writeTimeout)
        let id: Int? = lock.withLock {
            guard connections.count < configuration.maxConnections else { return nil }
            nextConnectionID += 1
            connections[nextConnectionID] = connection
            reading.insert(nextConnectionID)
            return nextConnectionID
        }
        guard let id else {
            refuse(connection, ServerError.unavailable("too many open connections (\(configuration.maxConnections)); try again later"))
            return
        }
        let started = DetachedThread.spawn { [self] in
            handle(connection, id: id)
        }
        if !started {
            lock.withLock {
                connections[id] = nil
                reading.remove(id)
            }
            refuse(connection, ServerError.unavailable("cannot start a thread for this connection; try again later"))
        }
    }

    /// Answers on the accept thread without reading the request; used when no
    /// thread can be spared, so it must not wait on the client.
    private func refuse(_ connection: HTTPConnection, _ error: ServerError) {
        connection.write(error.response.head(contentLength: error.response.body.count) + error.response.body)
        connection.close()
        log("\(connection.peer) - - \(error.status) \(error.message)")
    }

    private func handle(_ connection: HTTPConnection, id: Int) {
        defer {
            connection.finish(linger: configuration.lingerTimeout)
            lock.withLock {
                connections[id] = nil
                reading.remove(id)
                lock.broadcast()
            }
        }
        let request: HTTPRequest
        do {
            guard let r = try HTTPRequestReader(configuration: configuration).read(from: connection) else { return }
            request = r
        } catch {
            let failure = error as? ServerError ?? ServerError.badRequest("\(error)")
            HTTPResponseWriter(connection: connection, omitsBody: false).send(failure.response)
            log("\(connection.peer) - - \(failure.status) \(failure.message)")
            return
        }
        let stillRunning = lock.withLock { () -> Bool in
            reading.remove(id)
            return !stopping
        }
        let writer = HTTPResponseWriter(connection: connection, omitsBody: request.method == "HEAD")
        let start = ServerClock.now()
        if stillRunning {
            handler(request, writer)
        }
        if !writer.hasResponded {
            writer.send(stillRunning ? ServerError.internalError("the handler sent no response").response
                                     : ServerError.unavailable("the server is shutting down").response)
        }
        var line = "\(connection.peer) \(request.method) \(request.target) \(writer.status ?? 0)"
        if let detail = writer.logDetail { line += " | \(detail)" }
        line += " | " + Self.milliseconds(ServerClock.now() - start)
        log(line)
    }

    /// After the accept loop: handlers get a few seconds to wind down (they see
    /// ``isStopping``), then every connection is shut and the threads are waited for.
    private func drain() {
        lock.withLock {
            let deadline = ServerClock.now() + 3
            while !connections.isEmpty, ServerClock.now() < deadline { lock.wait(seconds: 0.05) }
            for connection in connections.values { connection.shutdown() }
            let hardDeadline = ServerClock.now() + 2 + configuration.lingerTimeout
            while !connections.isEmpty, ServerClock.now() < hardDeadline { lock.wait(seconds: 0.05) }
        }
    }

    // MARK: - Sockets

    #if canImport(Glibc)
    private static let streamType = Int32(SOCK_STREAM.rawValue)  // an enum in Glibc's headers
    #else
    private static let streamType = SOCK_STREAM
    #endif

    private static func localPort(_ fd: Int32) -> Int? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard rc == 0 else { return nil }
        return withUnsafePointer(to: &storage) { pointer -> Int? in
            switch Int32(pointer.pointee.ss_family) {
            case AF_INET:
                return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
            case AF_INET6:
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            default:
                return nil
            }
        }
    }

    /// "address:port" of the client, for the log.
    private static func peerName(_ fd: Int32) -> String {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
        }
        guard rc == 0 else { return "?" }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        return withUnsafePointer(to: &storage) { pointer -> String in
            switch Int32(pointer.pointee.ss_family) {
            case AF_INET:
                return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin -> String in
                    var address = sin.pointee.sin_addr
                    guard inet_ntop(AF_INET, &address, &text, socklen_t(text.count)) != nil else { return "?" }
                    return "\(cText(text)):\(UInt16(bigEndian: sin.pointee.sin_port))"
                }
            case AF_INET6:
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 -> String in
                    var address = sin6.pointee.sin6_addr
                    guard inet_ntop(AF_INET6, &address, &text, socklen_t(text.count)) != nil else { return "?" }
                    return "[\(cText(text))]:\(UInt16(bigEndian: sin6.pointee.sin6_port))"
                }
            default:
                return "?"
            }
        }
    }

    /// A NUL-terminated C string buffer as text.
    private static func cText(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func milliseconds(_ seconds: Double) -> String {
        let ms = (seconds * 10_000).rounded() / 10
        return "\(ms) ms"
    }
}

/// `close(2)` for a socket, named apart from the methods that would shadow it.
func closeSocket(_ fd: Int32) -> Int32 {
    close(fd)
}
