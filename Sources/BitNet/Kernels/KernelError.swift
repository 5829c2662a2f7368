/// A shape or layout mistake by a caller of the kernels: thrown before any
/// C code runs, so a wrong buffer size never turns into a memory error.
public enum KernelError: Error, Equatable, CustomStringConvertible {
    case unsupportedISA(ISA)
    case invalidShape(what: String, rows: Int, cols: Int)
    case bufferSize(what: String, expected: Int, actual: Int)
    case dimensionMismatch(what: String, expected: Int, actual: Int)
    case invalidTernaryValue(index: Int, value: Int8)
    case threadPoolUnavailable(threads: Int)
    case invalidCodes(count: Int)
    case invalidTableIndices(count: Int)
    case notALookupTableKernel(MatrixKernel)

    public var description: String {
        switch self {
        case .unsupportedISA(let isa):
            return "kernel level \(isa) is not supported on this CPU (detected: \(ISA.detected))"
        case .invalidShape(let what, let rows, let cols):
            return "\(what): invalid shape \(rows)×\(cols) (rows ≥ 1, 1 ≤ cols ≤ \(TernaryMatrix.maxColumns))"
        case .bufferSize(let what, let expected, let actual):
            return "\(what): buffer holds \(actual) elements, \(expected) needed"
        case .dimensionMismatch(let what, let expected, let actual):
            return "\(what): expected \(expected), got \(actual)"
        case .invalidTernaryValue(let index, let value):
            return "ternary weight \(index) is \(value); only -1, 0 and 1 are allowed"
        case .invalidCodes(let count):
            return "the weights hold \(count) invalid 2-bit codes (3, which stands for no ternary value)"
        case .notALookupTableKernel(let kernel):
            return "\(kernel.rawValue) is not a lookup-table kernel (tl1 or tl2)"
        case .invalidTableIndices(let count):
            return "the weights hold \(count) TL table indices that no packer writes (TL1 > 8, TL2 > 13)"
        case .threadPoolUnavailable(let threads):
            return "could not start a worker pool of \(threads) threads"
        }
    }
}
