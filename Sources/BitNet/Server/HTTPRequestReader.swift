/// Reads one HTTP/1.x request from a connection, within the limits of a
/// ``ServerConfiguration``: the header block and the body are bounded (431, 413
/// before the body is read), the whole request must arrive before
/// `requestTimeout` (408), and anything that is not HTTP gets 400 — the
/// connection thread answers and moves on, it never waits forever or traps.
struct HTTPRequestReader {
    let configuration: ServerConfiguration

    /// The request, or nil when the client closed (or failed) before sending a byte.
    /// Throws ``ServerError`` with the status to answer.
    func read(from connection: HTTPConnection) throws -> HTTPRequest? {
        let deadline = ServerClock.now() + configuration.requestTimeout
        var buffer: [UInt8] = []
        var searchFrom = 0
        var headerEnd: (end: Int, bodyStart: Int)? = nil
        while headerEnd == nil {
            switch connection.read(into: &buffer, maxCount: 8192, deadline: deadline) {
            case .data:
                headerEnd = Self.findHeaderEnd(buffer, from: searchFrom)
                searchFrom = max(0, buffer.count - 3)
                if headerEnd == nil, buffer.count > configuration.maxHeaderBytes {
                    throw ServerError(status: 431, message: "the request line and headers exceed \(configuration.maxHeaderBytes) bytes")
                }
            case .closed, .failed:
                if buffer.isEmpty { return nil }
                throw ServerError.badRequest("the connection closed before the end of the request headers")
            case .timedOut:
                if buffer.isEmpty { return nil }  // an idle connection: nothing to answer
                throw ServerError(status: 408, message: "the request headers did not arrive within \(Self.seconds(configuration.requestTimeout))")
            }
        }
        guard let (end, bodyStart) = headerEnd else { return nil }
        if end > configuration.maxHeaderBytes {
            throw ServerError(status: 431, message: "the request line and headers exceed \(configuration.maxHeaderBytes) bytes")
        }
        var request = try Self.parseHead(buffer[..<end])

        // The body: Content-Length only (every OpenAI client sends it for JSON).
        if let encoding = request.header("transfer-encoding"), encoding.lowercased() != "identity" {
            throw ServerError(status: 501, message: "Transfer-Encoding '\(encoding)' is not supported for requests: send a Content-Length")
        }
        var length = 0
        if let field = request.header("content-length") {
            // Repeated fields were joined with ", "; they must agree.
            let values = Set(field.split(separator: ",").map { $0.trimmingSpaces })
            guard values.count == 1, let text = values.first, !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                throw ServerError.badRequest("invalid Content-Length '\(field)'")
            }
            guard text.count <= 18, let value = Int(text), value <= configuration.maxBodyBytes else {
                throw ServerError(status: 413, message: "the request body (\(text) bytes) exceeds the limit of \(configuration.maxBodyBytes) bytes")
            }
            length = value
        } else if request.method == "POST" || request.method == "PUT" {
            throw ServerError(status: 411, message: "a \(request.method) request needs a Content-Length header")
        }
        if let expect = request.header("expect") {
            // curl sends `Expect: 100-continue` for bodies over 1 KiB and waits a second for this.
            guard expect.lowercased() == "100-continue" else {
                throw ServerError(status: 417, message: "unsupported Expect '\(expect)'")
            }
            if buffer.count == bodyStart, length > 0 { connection.write("HTTP/1.1 100 Continue\r\n\r\n") }
        }
        while buffer.count - bodyStart < length {
            switch connection.read(into: &buffer, maxCount: min(1 << 16, length - (buffer.count - bodyStart)), deadline: deadline) {
            case .data:
                continue
            case .closed, .failed:
                throw ServerError.badRequest("the connection closed after \(buffer.count - bodyStart) of \(length) body bytes")
            case .timedOut:
                throw ServerError(status: 408, message: "the request body did not arrive within \(Self.seconds(configuration.requestTimeout)) "
                                  + "(\(buffer.count - bodyStart) of \(length) bytes)")
            }
        }
        request.body = Array(buffer[bodyStart..<(bodyStart + length)])
        return request
    }

    /// Where the header block ends: after the first empty line (CRLF CRLF, or bare
    /// LF LF from lenient clients). Returns the end of the headers and the body start.
    static func findHeaderEnd(_ bytes: [UInt8], from start: Int) -> (end: Int, bodyStart: Int)? {
        var i = max(0, start)
        while i < bytes.count {
            if bytes[i] == 0x0A {
                if i + 1 < bytes.count, bytes[i + 1] == 0x0A { return (i + 1, i + 2) }
                if i + 2 < bytes.count, bytes[i + 1] == 0x0D, bytes[i + 2] == 0x0A { return (i + 1, i + 3) }
            }
            i += 1
        }
        return nil
    }

    /// Parses the request line and header fields (without the empty line).
    static func parseHead(_ bytes: ArraySlice<UInt8>) throws -> HTTPRequest {
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw ServerError.badRequest("the request headers are not valid UTF-8")
        }
        // Lines end with LF, optionally preceded by CR. Split the bytes: in a Swift
        // String "\r\n" is one Character and would not split at "\n".
        var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map { line in
            String(decoding: line.last == 0x0D ? line.dropLast() : line, as: UTF8.self)
        }
        while let last = lines.last, last.isEmpty { lines.removeLast() }
        guard let requestLine = lines.first else { throw ServerError.badRequest("empty request") }

        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3 else {
            throw ServerError.badRequest("malformed request line '\(Self.clip(requestLine))' (expected 'METHOD /path HTTP/1.1')")
        }
        let method = String(parts[0]), target = String(parts[1]), version = String(parts[2])
        guard !method.isEmpty, method.utf8.allSatisfy(isTokenByte) else {
            throw ServerError.badRequest("malformed method '\(Self.clip(method))'")
        }
        guard version.hasPrefix("HTTP/") else {
            throw ServerError.badRequest("malformed request line '\(Self.clip(requestLine))' (expected 'METHOD /path HTTP/1.1')")
        }
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else {
            throw ServerError(status: 505, message: "HTTP version '\(Self.clip(version))' is not supported (HTTP/1.1 or HTTP/1.0)")
        }
        guard target.hasPrefix("/") || (target == "*" && method == "OPTIONS"),
              target.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            throw ServerError.badRequest("malformed request target '\(Self.clip(target))' (expected a path such as /v1/models)")
        }

        var headers: [String: String] = [:]
        for (index, line) in lines.dropFirst().enumerated() {
            guard let first = line.first else {
                throw ServerError.badRequest("empty header line \(index + 1)")
            }
            if first == " " || first == "\t" {
                throw ServerError.badRequest("folded header line \(index + 1) is not allowed (RFC 9112)")
            }
            guard let colon = line.firstIndex(of: ":") else {
                throw ServerError.badRequest("malformed header line \(index + 1) '\(Self.clip(line))' (expected 'Name: value')")
            }
            let name = line[..<colon]
            guard !name.isEmpty, name.utf8.allSatisfy(isTokenByte) else {
                throw ServerError.badRequest("malformed header name '\(Self.clip(name))' on line \(index + 1)")
            }
            let value = line[line.index(after: colon)...].trimmingSpaces
            if value.unicodeScalars.contains(where: { ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7F }) {
                throw ServerError.badRequest("header '\(Self.clip(name))' holds a control character")
            }
            let key = name.lowercased()
            if let previous = headers[key] {
                headers[key] = previous + ", " + value
            } else {
                headers[key] = value
            }
        }
        return HTTPRequest(method: method, target: target, version: version, headers: headers)
    }

    /// RFC 9110 token characters (methods, header names).
    private static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return Array("!#$%&'*+-.^_`|~".utf8).contains(b)
        }
    }

    /// A client's text for an error message: shortened, control characters escaped
    /// (it also goes to the log, one line per request).
    private static func clip<S: StringProtocol>(_ text: S) -> String {
        let short = text.count > 80 ? String(text.prefix(80)) + "…" : String(text)
        return String(JSONWriter.quoted(short).dropFirst().dropLast())
    }

    private static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value)) s" : "\(value) s"
    }
}

fileprivate extension StringProtocol {
    /// Without leading and trailing spaces and tabs (Foundation-free `trimmingCharacters`).
    var trimmingSpaces: String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" { s.removeLast() }
        return String(s)
    }
}
