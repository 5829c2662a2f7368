import CKernels

/// An instruction-set level of the kernels. Levels are ordered within an
/// architecture; `BITNET_ISA` (or ``Kernels/init(isa:)``) may only lower them.
public enum ISA: Int, CaseIterable, Sendable, CustomStringConvertible {
    case scalar = 0
    case avx2 = 1
    case avx512 = 2
    case avx512VNNI = 3
    case neon = 4
    case neonDotProd = 5
    /// x86-64 above ``avx512VNNI``: AMX-INT8 tiles for the ternary GEMM
    /// (prompts and batched decoding). Ranked above VNNI although its raw
    /// value is the largest: the value order is not the level order.
    case amx = 6

    var raw: bn_isa { bn_isa(rawValue: UInt32(rawValue)) }

    /// The name used by `BITNET_ISA`, `--isa` and reports ("avx512vnni", …).
    public var description: String { String(cString: bn_isa_name(raw)) }

    public init?(name: String) {
        let value = bn_isa_parse(name)
        guard value >= 0, let isa = ISA(rawValue: Int(value)) else { return nil }
        self = isa
    }

    /// Whether this CPU, OS and build can run the level.
    public var isSupported: Bool { bn_isa_supported(raw) != 0 }

    /// The best level the CPU and OS support, ignoring `BITNET_ISA`.
    public static var detected: ISA { ISA(rawValue: Int(bn_isa_detected().rawValue)) ?? .scalar }

    /// Every level this machine can run, lowest first.
    public static var supported: [ISA] { allCases.filter(\.isSupported) }

    /// What was detected and chosen, and why (`bitnet inspect --cpu`).
    public static var report: String {
        let needed = bn_dispatch_report(nil, 0)
        var buffer = [CChar](repeating: 0, count: needed + 1)
        _ = bn_dispatch_report(&buffer, buffer.count)
        return String(decoding: buffer.prefix(needed).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
