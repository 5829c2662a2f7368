/// A parsed JSON document, parsed here rather than by Foundation (which the library does not
/// import: it uses Dispatch and the C library only) so that errors can give the byte offset
/// of a syntax error in a multi-megabyte tokenizer.json.
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

    /// Parses `bytes` (UTF-8). Throws `ConvertError.invalidJSON` naming `path`.
    public static func parse(_ bytes: UnsafeRawBufferPointer, path: String) throws -> JSONValue {
        var parser = JSONParser(bytes: bytes.bindMemory(to: UInt8.self), path: path)
        return try parser.parseDocument()
    }

    public static func parse(_ bytes: [UInt8], path: String) throws -> JSONValue {
        try bytes.withUnsafeBytes { try parse($0, path: path) }
    }

    /// Reads and parses a whole file.
    public static func read(path: String, what: String) throws -> JSONValue {
        let bytes = try FileBytes.contents(path: path, what: what)
        return try parse(bytes, path: path)
    }
}
