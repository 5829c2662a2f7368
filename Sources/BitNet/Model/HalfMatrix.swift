/// A row-major matrix of IEEE half floats, e.g. the tied embedding / output
/// head, used in place from the memory-mapped file (no copy).
public struct HalfMatrix: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    let pointer: UnsafePointer<UInt16> // (rows, cols) f16
    /// Keeps the mapping (or buffer) that `pointer` points into alive.
    let owner: AnyObject

    public func row(_ r: Int) -> UnsafePointer<UInt16> { pointer + r * cols }
}
