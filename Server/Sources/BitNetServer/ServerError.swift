import BitNet
import BitNetJSON

/// An error the server answers with: an HTTP status and an OpenAI-shaped body
/// `{"error":{"message":…,"type":…,"param":…,"code":null}}`. Messages name the
/// field and the value at fault so a client can fix its request.
///
/// No HTTP framework here: the request parser that throws these compiles without
/// Hummingbird or NIO (the `request` fuzz target builds it alone). The status line
/// and the `Response` are in ServerError+HTTP.swift.
public struct ServerError: Error, Sendable, Equatable {
    public var status: Int
    public var message: String
    /// OpenAI's error type: `invalid_request_error`, `authentication_error`, …
    public var type: String
    /// The request field at fault, when there is one.
    public var param: String?

    public init(status: Int, message: String, type: String = "invalid_request_error", param: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
    }

    /// The JSON body of the error response.
    public var json: String {
        var w = JSONWriter()
        w.object { w in
            w.object("error") { e in
                e.field("message", message)
                e.field("type", type)
                if let param { e.field("param", param) } else { e.nullField("param") }
                e.nullField("code")
            }
        }
        return w.text
    }

    // MARK: - The usual cases

    public static func badRequest(_ message: String, param: String? = nil) -> ServerError {
        ServerError(status: 400, message: message, param: param)
    }

    /// 400 for a field of the wrong type or out of range: "field 'max_tokens' must be …, got …".
    public static func invalidField(_ field: String, _ requirement: String, got value: JSONValue? = nil) -> ServerError {
        var message = "field '\(field)' must be \(requirement)"
        if let value { message += ", got \(JSONWriter.abbreviated(value))" }
        return ServerError(status: 400, message: message, param: field)
    }

    public static func unavailable(_ message: String) -> ServerError {
        ServerError(status: 503, message: message, type: "unavailable_error")
    }

    public static func internalError(_ message: String) -> ServerError {
        ServerError(status: 500, message: message, type: "server_error")
    }
}
