import CKernels
/// A ggml tensor type id as stored in a GGUF tensor-info record.
///
/// A struct rather than an enum: files carry ids we do not know (new upstream
/// types, other forks), and a reader that can still list such tensors is more
/// useful than one that rejects the whole file. Ids follow ggml's append-only
/// numbering; removed ids (4, 5, 31–33) are left unnamed and never reused here.
///
/// Ids 36–39 are where bitnet.cpp's fork and upstream ggml disagree (see
/// docs/FORMATS.md §1.5): 36 is I2_S in the fork and a removed, never-stored type
/// upstream; 39 is TL2 in the fork but MXFP4 upstream. This type follows the
/// fork, because BitNet files are what this engine reads.
public struct GGMLType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let f32 = GGMLType(rawValue: 0)
    public static let f16 = GGMLType(rawValue: 1)
    public static let q4_0 = GGMLType(rawValue: 2)
    public static let q4_1 = GGMLType(rawValue: 3)
    public static let q5_0 = GGMLType(rawValue: 6)
    public static let q5_1 = GGMLType(rawValue: 7)
    public static let q8_0 = GGMLType(rawValue: 8)
    public static let q8_1 = GGMLType(rawValue: 9)
    public static let q2_K = GGMLType(rawValue: 10)
    public static let q3_K = GGMLType(rawValue: 11)
    public static let q4_K = GGMLType(rawValue: 12)
    public static let q5_K = GGMLType(rawValue: 13)
    public static let q6_K = GGMLType(rawValue: 14)
    public static let q8_K = GGMLType(rawValue: 15)
    public static let iq2_xxs = GGMLType(rawValue: 16)
    public static let iq2_xs = GGMLType(rawValue: 17)
    public static let iq3_xxs = GGMLType(rawValue: 18)
    public static let iq1_s = GGMLType(rawValue: 19)
    public static let iq4_nl = GGMLType(rawValue: 20)
    public static let iq3_s = GGMLType(rawValue: 21)
    public static let iq2_s = GGMLType(rawValue: 22)
    public static let iq4_xs = GGMLType(rawValue: 23)
    public static let i8 = GGMLType(rawValue: 24)
    public static let i16 = GGMLType(rawValue: 25)
    public static let i32 = GGMLType(rawValue: 26)
    public static let i64 = GGMLType(rawValue: 27)
    public static let f64 = GGMLType(rawValue: 28)
    public static let iq1_m = GGMLType(rawValue: 29)
    public static let bf16 = GGMLType(rawValue: 30)
    public static let tq1_0 = GGMLType(rawValue: 34)
    public static let tq2_0 = GGMLType(rawValue: 35)
    /// bitnet.cpp's 2-bit ternary type: `M*K/4` packed bytes plus a 32-byte tail
    /// whose first 4 bytes are the f32 per-tensor scale (docs/FORMATS.md §3.3).
    public static let i2_s = GGMLType(rawValue: 36)
    /// bitnet.cpp's int8 activation type; it only exists in memory, never in files.
    public static let i8_s = GGMLType(rawValue: 37)
    /// bitnet.cpp's ARM LUT type (docs/FORMATS.md §4.2).
    public static let tl1 = GGMLType(rawValue: 38)
    /// bitnet.cpp's x86 LUT type. Upstream ggml uses the same id 39 for MXFP4,
    /// so a file from upstream llama.cpp with type 39 is *not* TL2; callers that
    /// may see upstream files must decide from the architecture and file type.
    public static let tl2 = GGMLType(rawValue: 39)
    /// This engine's own load-time ternary layout (I2_R16, documented in
    /// CKernels/include/bitnet_kernels.h), for files we write pre-repacked.
    /// The id lies far above ggml's append-only range (0–42 in 2026) and above
    /// every fork id we know of, so no ggml reader can mistake it for a real
    /// type: they reject the file instead of misreading it.
    public static let i2r16 = GGMLType(rawValue: 1016)
    /// This engine's TL1 / TL2 lookup-table layouts (bitnet_kernels.h, "TL1 / TL2"),
    /// written by `bitnet convert --type tl1|tl2`: `bn_tl_bytes(type, M, K)` bytes and
    /// the same 32-byte f32 scale tail as I2_S. Not bitnet.cpp's TL1/TL2 (ids 38/39),
    /// whose layouts depend on kernels generated per model.
    public static let bnTL1 = GGMLType(rawValue: 1017)
    public static let bnTL2 = GGMLType(rawValue: 1018)

    /// 1 or 2 for this engine's TL types (bn_tl_matrix.type), else nil.
    public var lookupTableType: Int32? {
        switch rawValue {
        case 1017: return 1
        case 1018: return 2
        default: return nil
        }
    }

    /// Elements per block and bytes per block, for types whose size follows
    /// ggml's traits (`bytes = elements / blockSize * typeSize`). nil for types
    /// whose size does not (I2_S, TL1, TL2, I2_R16) or is not pinned down (Q8_1:
    /// gguf-py and ggml-common.h disagree; it is never stored in files anyway).
    public var blockLayout: (blockSize: Int, typeSize: Int)? {
        switch rawValue {
        case 0: return (1, 4)
        case 1: return (1, 2)
        case 2: return (32, 18)
        case 3: return (32, 20)
        case 6: return (32, 22)
        case 7: return (32, 24)
        case 8: return (32, 34)
        case 10: return (256, 84)
        case 11: return (256, 110)
        case 12: return (256, 144)
        case 13: return (256, 176)
        case 14: return (256, 210)
        case 15: return (256, 292)
        case 16: return (256, 66)
        case 17: return (256, 74)
        case 18: return (256, 98)
        case 19: return (256, 50)
        case 20: return (32, 18)
        case 21: return (256, 110)
        case 22: return (256, 82)
        case 23: return (256, 136)
        case 24: return (1, 1)
        case 25: return (1, 2)
        case 26: return (1, 4)
        case 27: return (1, 8)
        case 28: return (1, 8)
        case 29: return (256, 56)
        case 30: return (1, 2)
        case 34: return (256, 54)
        case 35: return (256, 66)
        default: return nil
        }
    }

    public var blockSize: Int? { blockLayout?.blockSize }
    public var typeSize: Int? { blockLayout?.typeSize }

    /// Whether `byteCount(dims:)` can compute a size for this type.
    public var hasKnownSize: Bool { blockLayout != nil || self == .i2_s || self == .i2r16 || lookupTableType != nil }

    /// ggml's spelling (upper case), or `type(<id>)` for ids we do not know.
    public var name: String {
        switch rawValue {
        case 0: return "F32"
        case 1: return "F16"
        case 2: return "Q4_0"
        case 3: return "Q4_1"
        case 6: return "Q5_0"
        case 7: return "Q5_1"
        case 8: return "Q8_0"
        case 9: return "Q8_1"
        case 10: return "Q2_K"
        case 11: return "Q3_K"
        case 12: return "Q4_K"
        case 13: return "Q5_K"
        case 14: return "Q6_K"
        case 15: return "Q8_K"
        case 16: return "IQ2_XXS"
        case 17: return "IQ2_XS"
        case 18: return "IQ3_XXS"
        case 19: return "IQ1_S"
        case 20: return "IQ4_NL"
        case 21: return "IQ3_S"
        case 22: return "IQ2_S"
        case 23: return "IQ4_XS"
        case 24: return "I8"
        case 25: return "I16"
        case 26: return "I32"
        case 27: return "I64"
        case 28: return "F64"
        case 29: return "IQ1_M"
        case 30: return "BF16"
        case 34: return "TQ1_0"
        case 35: return "TQ2_0"
        case 36: return "I2_S"
        case 37: return "I8_S"
        case 38: return "TL1"
        case 39: return "TL2"
        case 1016: return "I2_R16"
        case 1017: return "BN_TL1"
        case 1018: return "BN_TL2"
        default: return "type(\(rawValue))"
        }
    }

    public var description: String { name }

    /// Bytes a tensor of this type and shape occupies (`dims[0]` = ne0 = K, the
    /// contiguous dimension). Throws `GGUFError` (with empty path and tensor
    /// name, which callers fill in via `GGUFError.withContext(path:tensor:)`) when the
    /// size is unknown, the shape is invalid for the type, or it overflows.
    ///
    /// - I2_S: `n/4 + 32` for n = product of all dims, as bitnet.cpp's
    ///   `ggml_nbytes` computes it; the 32-byte tail holds the f32 scale.
    /// - I2_R16: `roundup(M, 32) * roundup(K, 32) / 4 + 32` with M = product of
    ///   dims[1...]: the packed layout plus the same 32-byte scale tail as I2_S.
    public func byteCount(dims: [Int]) throws -> Int {
        let elements = try Self.elementCount(dims)
        if self == .i2_s {
            return try Self.checked(elements / 4, plus: 32, dims: dims)
        }
        if self == .i2r16 {
            let k = dims.first ?? 1
            let m = elements / k
            let (kPad, o1) = Self.roundUp(k, 32)
            let (mPad, o2) = Self.roundUp(m, 32)
            let (product, o3) = kPad.multipliedReportingOverflow(by: mPad)
            if o1 || o2 || o3 { throw GGUFError.sizeOverflow(path: "", tensor: "", dims: dims) }
            return try Self.checked(product / 4, plus: 32, dims: dims)
        }
        if let type = lookupTableType {
            let k = dims.first ?? 1
            let m = k > 0 ? elements / k : 0
            guard k >= 1, k <= Int(bn_i2s_max_k()), m >= 1, m <= Int(Int32.max) - 32 else {
                throw GGUFError.sizeOverflow(path: "", tensor: "", dims: dims)
            }
            return try Self.checked(Int(bn_tl_bytes(type, Int32(m), Int32(k))), plus: 32, dims: dims)
        }
        guard let (blockSize, typeSize) = blockLayout else {
            throw GGUFError.unknownTypeSize(path: "", tensor: "", type: self)
        }
        let ne0 = dims.first ?? 1
        guard ne0 % blockSize == 0 else {
            throw GGUFError.rowNotBlockMultiple(path: "", tensor: "", type: self, ne0: ne0, blockSize: blockSize)
        }
        let (bytes, overflow) = (elements / blockSize).multipliedReportingOverflow(by: typeSize)
        if overflow { throw GGUFError.sizeOverflow(path: "", tensor: "", dims: dims) }
        return bytes
    }

    static func elementCount(_ dims: [Int]) throws -> Int {
        var product = 1
        for (index, d) in dims.enumerated() {
            guard d > 0 else { throw GGUFError.invalidDimension(path: "", tensor: "", index: index, value: String(d)) }
            let (p, overflow) = product.multipliedReportingOverflow(by: d)
            if overflow { throw GGUFError.sizeOverflow(path: "", tensor: "", dims: dims) }
            product = p
        }
        return product
    }

    private static func roundUp(_ x: Int, _ multiple: Int) -> (Int, Bool) {
        let (sum, overflow) = x.addingReportingOverflow(multiple - 1)
        return (sum / multiple * multiple, overflow)
    }

    private static func checked(_ a: Int, plus b: Int, dims: [Int]) throws -> Int {
        let (sum, overflow) = a.addingReportingOverflow(b)
        if overflow { throw GGUFError.sizeOverflow(path: "", tensor: "", dims: dims) }
        return sum
    }
}
