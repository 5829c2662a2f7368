/// What loading does with the projections of a TL1/TL2 file (`bitnet convert --type tl1|tl2`),
/// and of the files whose layout is smaller than I2_R16's 2 bits per weight (TQ1_0, bitnet.cpp's TL2).
public enum LookupTableLoading: Sendable, Equatable {
    /// The kernels read the file's mapped bytes, checked once and never copied: the
    /// projections cost their file size in memory (1.67 bits per weight for TL2, less
    /// than I2_S's 2), so a model that fits only in its file's size loads. Decoding runs
    /// the file's TL kernel and prompts the TL GEMM (slower than I2_S's on every CPU measured).
    /// TQ1_0 and bitnet.cpp TL2 files are decoded once into this engine's TL2 (about their
    /// own size: 1.667 bits per weight plus 32 per row, vs I2_R16's 2) and run the same way.
    case inPlace
    /// Decoded once to I2_R16 (the file's pages released): 2 bits per weight, prompts run
    /// the I2_S GEMM and any decode kernel may be chosen.
    case repack
}

extension LookupTableLoading {
    /// In place unless one of `selections` fixes a decode kernel other than the file's
    /// own TL layout (`--kernel i2_s` on a TL2 file needs the I2_R16 copy).
    package init(for selections: [KernelSelection], file: GGUFFile) {
        let own = Self.ownKernel(file)
        self = selections.allSatisfy { $0 == .auto || $0 == own.map { .fixed($0) } } ? .inPlace : .repack
    }
}

extension LookupTableLoading {
    /// The lookup-table kernel a file's projections run with when loaded in place: its own
    /// TL layout, or TL2 for TQ1_0 and bitnet.cpp's TL2; nil for every other type.
    package static func ownKernel(_ file: GGUFFile) -> MatrixKernel? {
        guard let type = file.tensor(named: TensorName.layer(0, TensorName.ffnDown))?.type else { return nil }
        if let tl = type.lookupTableType { return tl == 1 ? .tl1 : .tl2 }
        return type == .tq1_0 || type == .tl2 ? .tl2 : nil
    }
}
