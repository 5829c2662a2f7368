/// Settings of ``BitNetServer`` and ``HTTPServer``: where to listen, who may call,
/// and the limits that keep a bad or slow client from holding the server.
public struct ServerConfiguration: Sendable {
    /// Address to listen on: an IPv4 or IPv6 literal or a host name.
    public var host = "127.0.0.1"
    /// TCP port; 0 lets the system pick a free one (read it back from ``HTTPServer/port``).
    public var port = 8080
    /// When set, every endpoint but `/health` wants `Authorization: Bearer <apiKey>`.
    public var apiKey: String?
    /// Open connections at once (reading, waiting or being served); more get 503 at once.
    /// Each costs a thread, so this bounds the threads too.
    public var maxConnections = 64
    /// Request line plus headers, in bytes; more gets 431.
    public var maxHeaderBytes = 32 * 1024
    /// Request body in bytes; more gets 413 (before the body is read).
    public var maxBodyBytes = 8 * 1024 * 1024
    /// Seconds a client has to send its whole request (headers and body) — a
    /// client that trickles bytes (slowloris) or sends nothing gets 408 after this.
    public var requestTimeout = 30.0
    /// Seconds one send may block on a client that does not read its response;
    /// after that the client counts as gone and generation stops.
    public var writeTimeout = 30.0
    /// Seconds a closing connection waits for the client to read the response
    /// before the socket is closed (closing with unread input would reset it).
    public var lingerTimeout = 1.0

    public init() {}
}
