import BitNet
/// Element types of the safetensors format, by their header spelling.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case bf16 = "BF16"
    case f16 = "F16"
    case f32 = "F32"
    case f64 = "F64"
    case u8 = "U8"
    case i8 = "I8"
    case i16 = "I16"
    case i32 = "I32"
    case i64 = "I64"
    case bool = "BOOL"

    public var byteSize: Int {
        switch self {
        case .u8, .i8, .bool: return 1
        case .bf16, .f16, .i16: return 2
        case .f32, .i32: return 4
        case .f64, .i64: return 8
        }
    }

    /// Floating types whose values we convert (weights, norms, scales).
    public var isFloat: Bool { self == .bf16 || self == .f16 || self == .f32 }

    /// Byte types that hold packed 2-bit ternary codes (four per byte).
    public var isPackedByte: Bool { self == .u8 || self == .i8 }
}
