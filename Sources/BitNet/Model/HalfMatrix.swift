/// A row-major matrix of IEEE half floats, e.g. the tied embedding / output
/// head, used in place from the memory-mapped file (no copy).
package struct HalfMatrix: @unchecked Sendable {
    package let rows: Int
    package let cols: Int
    let pointer: UnsafePointer<UInt16> // (rows, cols) f16
    /// Keeps the mapping (or buffer) that `pointer` points into alive.
    let owner: AnyObject

    package func row(_ r: Int) -> UnsafePointer<UInt16> { pointer + r * cols }
}
