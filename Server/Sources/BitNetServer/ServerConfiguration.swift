/// Settings of ``BitNetServer``: where to listen, who may call, and the limits
/// that keep a bad, slow or departed client from holding the server.
public struct ServerConfiguration: Sendable {
    /// Address to listen on: an IPv4 or IPv6 literal or a host name.
    public var host = "127.0.0.1"
    /// TCP port; 0 lets the system pick a free one (reported to `onRunning`).
    public var port = 8080
    /// When set, every endpoint but `/health` and `/ready` wants `Authorization: Bearer <apiKey>`,
    /// checked before the request body is read.
    public var apiKey: String?
    /// Request body in bytes; a larger `Content-Length` gets 413 before the body is
    /// read, and a chunked body is cut off at this size with 413.
    public var maxBodyBytes = 8 * 1024 * 1024
    /// Request line plus headers, in bytes (NIO's HTTP decoder enforces it while reading).
    public var maxHeaderBytes = 32 * 1024
    /// Seconds a connection may sit without reading or writing before it is closed
    /// (an idle keep-alive connection, or a client that trickles its request).
    public var idleTimeout = 30.0
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT; then their
    /// generations end and streams get a last error event.
    public var shutdownGrace = 10.0
    /// Text pieces a stream may have waiting for a slow reader; when they are all
    /// unread, that request's generation thread waits (bounded memory per request).
    public var streamBuffer = 32

    public init() {}
}
