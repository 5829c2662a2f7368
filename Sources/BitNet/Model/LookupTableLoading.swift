/// What loading does with the projections of a TL1/TL2 file (`bitnet convert --type tl1|tl2`).
public enum LookupTableLoading: Sendable, Equatable {
    /// The kernels read the file's mapped bytes, checked once and never copied: the
    /// projections cost their file size in memory (1.67 bits per weight for TL2, less
    /// than I2_S's 2), so a model that fits only in its file's size loads. Decoding runs
    /// the file's TL kernel and prompts the TL GEMM (slower than I2_S's on every CPU measured).
    case inPlace
    /// Decoded once to I2_R16 (the file's pages released): 2 bits per weight, prompts run
    /// the I2_S GEMM and any decode kernel may be chosen.
    case repack
}

extension LookupTableLoading {
    /// In place unless one of `selections` fixes a decode kernel other than the file's
    /// own TL layout (`--kernel i2_s` on a TL2 file needs the I2_R16 copy).
    package init(for selections: [KernelSelection], file: GGUFFile) {
        let type = file.tensor(named: TensorName.layer(0, TensorName.ffnDown))?.type.lookupTableType
        let own: MatrixKernel? = type == 1 ? .tl1 : type == 2 ? .tl2 : nil
        self = selections.allSatisfy { $0 == .auto || $0 == own.map { .fixed($0) } } ? .inPlace : .repack
    }
}
