/// Writes JSON text with keys in the order given (people read responses and reports;
/// Foundation's `JSONEncoder` does not keep an order). Strings are escaped by
/// ``quoted(_:)``: quotes, backslashes and control characters escaped, other
/// characters written as UTF-8 — a Swift `String` always holds valid Unicode, so
/// the output is always valid JSON.
public struct JSONWriter: Sendable {
    public private(set) var text = ""
    /// Per open container: whether nothing has been written in it yet.
    private var isFirst: [Bool] = []
    /// A key was just written: the next value needs no comma.
    private var afterKey = false

    public init() {}

    // MARK: - Structure

    public mutating func beginObject() { separate(); text += "{"; isFirst.append(true) }
    public mutating func endObject() { isFirst.removeLast(); text += "}" }
    public mutating func beginArray() { separate(); text += "["; isFirst.append(true) }
    public mutating func endArray() { isFirst.removeLast(); text += "]" }

    public mutating func key(_ name: String) {
        separate()
        text += Self.quoted(name)
        text += ":"
        afterKey = true
    }

    /// `{ … }`, as a value or, with `key`, as a field of the enclosing object.
    public mutating func object(_ key: String? = nil, _ body: (inout JSONWriter) -> Void) {
        if let key { self.key(key) }
        beginObject()
        body(&self)
        endObject()
    }

    /// `[ … ]`, as a value or, with `key`, as a field of the enclosing object.
    public mutating func array(_ key: String? = nil, _ body: (inout JSONWriter) -> Void) {
        if let key { self.key(key) }
        beginArray()
        body(&self)
        endArray()
    }

    // MARK: - Values

    public mutating func string(_ value: String) { separate(); text += Self.quoted(value) }
    public mutating func int(_ value: Int) { separate(); text += String(value) }
    public mutating func double(_ value: Double) { separate(); text += Self.number(value) }
    public mutating func bool(_ value: Bool) { separate(); text += value ? "true" : "false" }
    public mutating func null() { separate(); text += "null" }

    /// A parsed value written back (object keys sorted, so the text is stable).
    public mutating func value(_ value: JSONValue) {
        switch value {
        case .null: null()
        case .bool(let b): bool(b)
        case .number(let d, let exact): if let exact { int(exact) } else { double(d) }
        case .string(let s): string(s)
        case .array(let items):
            array { w in for item in items { w.value(item) } }
        case .object(let fields):
            object { w in
                for k in fields.keys.sorted() {
                    w.key(k)
                    if let v = fields[k] { w.value(v) }
                }
            }
        }
    }

    public mutating func field(_ key: String, _ value: String) { self.key(key); string(value) }
    public mutating func field(_ key: String, _ value: Int) { self.key(key); int(value) }
    public mutating func field(_ key: String, _ value: Double) { self.key(key); double(value) }
    public mutating func field(_ key: String, _ value: Bool) { self.key(key); bool(value) }
    public mutating func nullField(_ key: String) { self.key(key); null() }

    private mutating func separate() {
        if afterKey {
            afterKey = false
            return
        }
        guard let first = isFirst.last else { return }
        if !first { text += "," }
        isFirst[isFirst.count - 1] = false
    }

    // MARK: - Escaping

    /// `value` as a JSON string literal, quotes included. Escapes `"`, `\`, every
    /// control character (U+0000–U+001F, U+007F) and U+2028/U+2029 (valid JSON,
    /// but line breaks to JavaScript); everything else is written as is (UTF-8).
    public static func quoted(_ value: String) -> String {
        var out = "\""
        out.reserveCapacity(value.utf8.count + 2)
        for scalar in value.unicodeScalars {
            switch scalar.value {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0x08: out += "\\b"
            case 0x0C: out += "\\f"
            case 0x00..<0x20, 0x7F, 0x2028, 0x2029: out += unicodeEscape(scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
        return out
    }

    /// Raw bytes (e.g. token pieces that need not be valid UTF-8) as a JSON string:
    /// each maximal invalid sequence becomes U+FFFD, as `String(decoding:as:)` does.
    public static func quoted<Bytes: Collection>(utf8 bytes: Bytes) -> String where Bytes.Element == UInt8 {
        quoted(String(decoding: bytes, as: UTF8.self))
    }

    /// A JSON number; NaN and infinities (not JSON) become `null`.
    public static func number(_ value: Double) -> String {
        guard value.isFinite else { return "null" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int(value)) }
        return "\(value)"  // Swift's shortest round-trip form ("0.1", "1e-05") is valid JSON
    }

    /// A short rendering of a client's value for error messages (at most ~60 characters).
    public static func abbreviated(_ value: JSONValue) -> String {
        // 1e400 parses to infinity, which ``number(_:)`` would write as null.
        if case .number(let d, _) = value, !d.isFinite { return "a number beyond the range of a double" }
        var w = JSONWriter()
        w.value(value)
        let limit = 60
        guard w.text.count > limit else { return w.text }
        return String(w.text.prefix(limit)) + "…"
    }

    private static func unicodeEscape(_ value: UInt32) -> String {
        let digits = Array("0123456789abcdef")
        var out = "\\u"
        for shift in stride(from: 12, through: 0, by: -4) { out.append(digits[Int((value >> UInt32(shift)) & 0xF)]) }
        return out
    }
}
