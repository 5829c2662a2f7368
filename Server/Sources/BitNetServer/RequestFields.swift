import BitNet
import BitNetJSON

/// Typed access to the fields of a request's JSON object. Every accessor returns
/// nil for an absent field or `null`, and throws a 400 ``ServerError`` naming the
/// field, what it must be, and what was sent.
struct RequestFields {
    let object: [String: JSONValue]

    /// Parses a request body that must be one JSON object.
    init(body: [UInt8]) throws {
        guard !body.isEmpty else {
            throw ServerError.badRequest("the request body is empty (expected a JSON object)")
        }
        let value: JSONValue
        do {
            value = try JSONValue.parse(body, path: "request body")
        } catch {
            throw ServerError.badRequest("\(error)")
        }
        guard let object = value.object else {
            throw ServerError.badRequest("the request body must be a JSON object, got \(JSONWriter.abbreviated(value))")
        }
        self.object = object
    }

    init(object: [String: JSONValue]) {
        self.object = object
    }

    /// The field's value, nil when absent or null.
    func value(_ key: String) -> JSONValue? {
        guard let v = object[key], !v.isNull else { return nil }
        return v
    }

    func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        guard let s = v.string else { throw ServerError.invalidField(key, "a string", got: v) }
        return s
    }

    func bool(_ key: String) throws -> Bool? {
        guard let v = value(key) else { return nil }
        guard let b = v.bool else { throw ServerError.invalidField(key, "true or false", got: v) }
        return b
    }

    /// An integer in `range` (an integral number such as 10.0 counts).
    func int(_ key: String, in range: ClosedRange<Int>, requirement: String) throws -> Int? {
        guard let v = value(key) else { return nil }
        guard let i = Self.integer(v), range.contains(i) else { throw ServerError.invalidField(key, requirement, got: v) }
        return i
    }

    /// A finite number in `range`.
    func number(_ key: String, in range: ClosedRange<Double>, requirement: String) throws -> Double? {
        guard let v = value(key) else { return nil }
        guard let d = v.double, d.isFinite, range.contains(d) else { throw ServerError.invalidField(key, requirement, got: v) }
        return d
    }

    static func integer(_ v: JSONValue) -> Int? {
        if let i = v.int { return i }
        if let d = v.double, d.isFinite, d == d.rounded(), abs(d) < 9.0e15 { return Int(d) }
        return nil
    }
}
