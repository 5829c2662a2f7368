/// One parsed HTTP/1.x request (see ``HTTPRequestReader``).
public struct HTTPRequest: Sendable {
    /// `GET`, `POST`, … as sent (methods are case-sensitive).
    public var method: String
    /// The request target as sent (`/v1/models?x=1`).
    public var target: String
    /// The target without its query string.
    public var path: String
    /// `HTTP/1.1` or `HTTP/1.0`.
    public var version: String
    /// Header fields by lowercased name; repeated fields are joined with ", ".
    public var headers: [String: String]
    public var body: [UInt8]

    public init(method: String, target: String, version: String = "HTTP/1.1", headers: [String: String] = [:],
                body: [UInt8] = []) {
        self.method = method
        self.target = target
        path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? target
        self.version = version
        self.headers = headers
        self.body = body
    }

    /// The value of a header field, by case-insensitive name.
    public func header(_ name: String) -> String? { headers[name.lowercased()] }
}
