import Hummingbird

/// What of ``ServerError`` needs the HTTP framework: the reason phrase of its status
/// and the response itself (kept apart so the parser compiles without Hummingbird).
extension ServerError: CustomStringConvertible {
    public var description: String { "\(status) \(HTTPResponse.Status(code: status).reasonPhrase): \(message)" }

    /// The whole response: the status, the JSON body, and `WWW-Authenticate` on a 401.
    public var response: Response {
        var headers: HTTPFields = [.contentType: JSONResponse.contentType]
        if status == 401 { headers[.wwwAuthenticate] = "Bearer" }
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(string: json)))
    }
}
