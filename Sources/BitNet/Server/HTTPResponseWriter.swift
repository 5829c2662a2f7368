/// How a handler answers: one whole response (``send(_:)``), or a stream
/// (``beginStream(status:contentType:)``, ``writeChunk(_:)``, ``endStream()``) sent
/// with chunked transfer encoding, so the client can tell a finished stream from
/// a dropped connection. Also carries what the request log line should say.
public final class HTTPResponseWriter: @unchecked Sendable {
    public let connection: HTTPConnection
    /// HEAD: headers only.
    let omitsBody: Bool
    /// The status sent (nil: nothing sent yet).
    public private(set) var status: Int?
    private var streaming = false
    /// Extra text for the request's log line (token counts, speed).
    public var logDetail: String?

    init(connection: HTTPConnection, omitsBody: Bool) {
        self.connection = connection
        self.omitsBody = omitsBody
    }

    /// Whether anything was sent yet.
    public var hasResponded: Bool { status != nil }

    /// Records that the client left before it was answered (logged as nginx's 499).
    public func markClientGone() {
        if status == nil { status = 499 }
    }

    /// Sends a complete response with `Content-Length`. Only the first response counts.
    @discardableResult
    public func send(_ response: HTTPResponse) -> Bool {
        guard status == nil else { return false }
        status = response.status
        var bytes = response.head(contentLength: response.body.count)
        if !omitsBody { bytes += response.body }
        return connection.write(bytes)
    }

    /// Sends the head of a chunked response (Server-Sent Events by default).
    @discardableResult
    public func beginStream(status: Int = 200, contentType: String = "text/event-stream; charset=utf-8") -> Bool {
        guard self.status == nil else { return false }
        self.status = status
        streaming = true
        let head = HTTPResponse(status: status, headers: [("Content-Type", contentType), ("Cache-Control", "no-cache")])
        return connection.write(head.head(contentLength: nil))
    }

    /// One chunk of a stream; false when the client is gone.
    @discardableResult
    public func writeChunk(_ text: String) -> Bool {
        guard streaming else { return false }
        let payload = Array(text.utf8)
        guard !payload.isEmpty else { return !connection.isBroken }  // an empty chunk would end the body
        return connection.write(Array(String(payload.count, radix: 16).utf8) + [0x0D, 0x0A] + payload + [0x0D, 0x0A])
    }

    /// The last chunk.
    @discardableResult
    public func endStream() -> Bool {
        guard streaming else { return false }
        streaming = false
        return connection.write("0\r\n\r\n")
    }
}
