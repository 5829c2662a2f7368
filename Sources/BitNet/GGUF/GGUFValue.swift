/// The 13 metadata value type ids of the GGUF format.
public enum GGUFValueType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5
    case float32 = 6, bool = 7, string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// Encoded size of one value, or nil for strings and arrays.
    public var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: return 1
        case .uint16, .int16: return 2
        case .uint32, .int32, .float32: return 4
        case .uint64, .int64, .float64: return 8
        case .string, .array: return nil
        }
    }

    /// The fewest bytes one value of this type can take in a file (an empty
    /// string is its 8-byte length; an empty array its 4-byte type and 8-byte
    /// count). Used to reject hostile counts before allocating.
    var minimumEncodedSize: Int {
        switch self {
        case .string: return 8
        case .array: return 12
        default: return fixedSize ?? 1
        }
    }

    /// The short names gguf tools print (u8, i32, f32, string, ...).
    public var description: String {
        switch self {
        case .uint8: return "u8"
        case .int8: return "i8"
        case .uint16: return "u16"
        case .int16: return "i16"
        case .uint32: return "u32"
        case .int32: return "i32"
        case .float32: return "f32"
        case .bool: return "bool"
        case .string: return "string"
        case .array: return "array"
        case .uint64: return "u64"
        case .int64: return "i64"
        case .float64: return "f64"
        }
    }
}

/// One metadata value. Arrays are typed (`GGUFArray`) so a 280k-entry string
/// array is one `[String]`, not 280k boxed enum values.
public enum GGUFValue: Sendable, Hashable, CustomStringConvertible {
    case uint8(UInt8)
    case int8(Int8)
    case uint16(UInt16)
    case int16(Int16)
    case uint32(UInt32)
    case int32(Int32)
    case float32(Float)
    case bool(Bool)
    case string(String)
    case array(GGUFArray)
    case uint64(UInt64)
    case int64(Int64)
    case float64(Double)

    public var type: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .float32: return .float32
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        case .uint64: return .uint64
        case .int64: return .int64
        case .float64: return .float64
        }
    }

    /// The value of any integer case, when it fits in Int.
    public var intValue: Int? {
        switch self {
        case .uint8(let v): return Int(v)
        case .int8(let v): return Int(v)
        case .uint16(let v): return Int(v)
        case .int16(let v): return Int(v)
        case .uint32(let v): return Int(v)
        case .int32(let v): return Int(v)
        case .uint64(let v): return Int(exactly: v)
        case .int64(let v): return Int(exactly: v)
        default: return nil
        }
    }

    public var isInteger: Bool {
        switch self {
        case .uint8, .int8, .uint16, .int16, .uint32, .int32, .uint64, .int64: return true
        default: return false
        }
    }

    /// Type name as used in error messages: `u32`, `string`, `array[string]`.
    public var typeName: String {
        if case .array(let a) = self { return a.typeName }
        return type.description
    }

    public var description: String {
        switch self {
        case .uint8(let v): return "\(v)"
        case .int8(let v): return "\(v)"
        case .uint16(let v): return "\(v)"
        case .int16(let v): return "\(v)"
        case .uint32(let v): return "\(v)"
        case .int32(let v): return "\(v)"
        case .float32(let v): return "\(v)"
        case .bool(let v): return "\(v)"
        case .string(let v): return Self.quoted(v)
        case .array(let a): return a.description
        case .uint64(let v): return "\(v)"
        case .int64(let v): return "\(v)"
        case .float64(let v): return "\(v)"
        }
    }

    /// Quotes a string for display, shortening it: chat templates run to kilobytes.
    static func quoted(_ s: String, limit: Int = 60) -> String {
        var shown = s.count > limit ? String(s.prefix(limit)) + "…" : s
        shown = shown.replacingNewlines()
        return "\"\(shown)\""
    }
}

/// A homogeneous metadata array, one case per element type. Nested arrays
/// (allowed by the format, unused by any model we know) are `.array`.
public enum GGUFArray: Sendable, Hashable, CustomStringConvertible {
    case uint8([UInt8])
    case int8([Int8])
    case uint16([UInt16])
    case int16([Int16])
    case uint32([UInt32])
    case int32([Int32])
    case float32([Float])
    case bool([Bool])
    case string([String])
    case array([GGUFArray])
    case uint64([UInt64])
    case int64([Int64])
    case float64([Double])

    public var elementType: GGUFValueType {
        switch self {
        case .uint8: return .uint8
        case .int8: return .int8
        case .uint16: return .uint16
        case .int16: return .int16
        case .uint32: return .uint32
        case .int32: return .int32
        case .float32: return .float32
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        case .uint64: return .uint64
        case .int64: return .int64
        case .float64: return .float64
        }
    }

    public var count: Int {
        switch self {
        case .uint8(let a): return a.count
        case .int8(let a): return a.count
        case .uint16(let a): return a.count
        case .int16(let a): return a.count
        case .uint32(let a): return a.count
        case .int32(let a): return a.count
        case .float32(let a): return a.count
        case .bool(let a): return a.count
        case .string(let a): return a.count
        case .array(let a): return a.count
        case .uint64(let a): return a.count
        case .int64(let a): return a.count
        case .float64(let a): return a.count
        }
    }

    public var isEmpty: Bool { count == 0 }

    /// Every element as Int, for integer arrays whose elements all fit; nil otherwise.
    public var intValues: [Int]? {
        switch self {
        case .uint8(let a): return a.map { Int($0) }
        case .int8(let a): return a.map { Int($0) }
        case .uint16(let a): return a.map { Int($0) }
        case .int16(let a): return a.map { Int($0) }
        case .uint32(let a): return a.map { Int($0) }
        case .int32(let a): return a.map { Int($0) }
        case .uint64(let a):
            var out = [Int]()
            out.reserveCapacity(a.count)
            for v in a {
                guard let i = Int(exactly: v) else { return nil }
                out.append(i)
            }
            return out
        case .int64(let a): return a.map { Int($0) }
        default: return nil
        }
    }

    public var typeName: String {
        if case .array(let inner) = self, let first = inner.first {
            return "array[\(first.typeName)]"
        }
        return "array[\(elementType)]"
    }

    /// Type, count and the first few elements; never the whole 128k-entry vocabulary.
    public var description: String {
        let head: [String]
        switch self {
        case .uint8(let a): head = a.prefix(5).map { "\($0)" }
        case .int8(let a): head = a.prefix(5).map { "\($0)" }
        case .uint16(let a): head = a.prefix(5).map { "\($0)" }
        case .int16(let a): head = a.prefix(5).map { "\($0)" }
        case .uint32(let a): head = a.prefix(5).map { "\($0)" }
        case .int32(let a): head = a.prefix(5).map { "\($0)" }
        case .float32(let a): head = a.prefix(5).map { "\($0)" }
        case .bool(let a): head = a.prefix(5).map { "\($0)" }
        case .string(let a): head = a.prefix(5).map { GGUFValue.quoted($0, limit: 24) }
        case .array(let a): head = a.prefix(2).map { $0.description }
        case .uint64(let a): head = a.prefix(5).map { "\($0)" }
        case .int64(let a): head = a.prefix(5).map { "\($0)" }
        case .float64(let a): head = a.prefix(5).map { "\($0)" }
        }
        let more = count > head.count ? ", …" : ""
        return "\(typeName) × \(count) [\(head.joined(separator: ", "))\(more)]"
    }
}

extension String {
    fileprivate func replacingNewlines() -> String {
        var out = ""
        out.reserveCapacity(utf8.count)
        for ch in unicodeScalars {
            switch ch {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }
}
