/// Which ternary kernel family runs a matrix when decoding (one activation
/// row). Prompts (several rows) use I2_S — its VNNI GEMM is 3-4× the
/// lookup-table GEMMs on every CPU measured — except for a TL file's matrices
/// held in place (``LookupTableLoading/inPlace``), which have no I2_S copy.
public enum MatrixKernel: String, Sendable, CaseIterable, CustomStringConvertible {
    case i2s = "i2_s"
    case tl1
    case tl2

    public var description: String { rawValue }

    /// bn_tl_matrix.type for the lookup-table kernels.
    var tlType: Int32? {
        switch self {
        case .i2s: return nil
        case .tl1: return 1
        case .tl2: return 2
        }
    }
}

/// How a model picks its decode kernels: one family for every matrix, or the
/// fastest per matrix shape, measured on this machine (and cached in the tuner's file, see `bitnet tune`).
public enum KernelSelection: Sendable, Equatable {
    case fixed(MatrixKernel)
    case auto

    public init?(name: String) {
        if name == "auto" { self = .auto; return }
        guard let k = MatrixKernel(rawValue: name) else { return nil }
        self = .fixed(k)
    }
}
