/// A parsed JSON document. Parsed here rather than by Foundation's JSONSerialization so that
/// errors give the byte offset of a syntax error in a multi-megabyte tokenizer.json, integers
/// keep their exact value next to the double, and nesting is bounded for hostile input.
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// `exact` holds the value when the literal is an integer that fits Int
    /// (token ids, dimensions); `double` is always set.
    case number(double: Double, exact: Int?)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public var string: String? { if case .string(let s) = self { return s }; return nil }
    public var bool: Bool? { if case .bool(let b) = self { return b }; return nil }
    public var int: Int? { if case .number(_, let i) = self { return i }; return nil }
    public var double: Double? { if case .number(let d, _) = self { return d }; return nil }
    public var array: [JSONValue]? { if case .array(let a) = self { return a }; return nil }
    public var object: [String: JSONValue]? { if case .object(let o) = self { return o }; return nil }
    public var isNull: Bool { self == .null }

    public subscript(key: String) -> JSONValue? { object?[key] }

    /// Parses `bytes` (UTF-8). Throws `JSONSyntaxError` naming `path`.
    public static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws -> JSONValue {
        var parser = JSONParser(bytes: bytes.bindMemory(to: UInt8.self), path: path)
        return try parser.parseDocument()
    }

    public static func parse(_ bytes: [UInt8], path: String) throws -> JSONValue {
        try bytes.withUnsafeBytes { try parse($0, path: path) }
    }
}
