import CKernels

/// Int8 activation rows as the ternary kernels read them: (capacity, paddedCols)
/// int8 with zero padding, plus each row's scale s_x = 127/max|x| and Σq.
package final class QuantizedActivations: @unchecked Sendable {
    package let cols: Int
    package let paddedCols: Int
    package let capacity: Int
    /// Rows currently holding data (set by ``Kernels/quantize(_:rows:cols:into:)``).
    package internal(set) var rows: Int = 0
    let values: AlignedBuffer // (capacity, paddedCols) int8
    let scales: AlignedBuffer // (capacity,) f32
    let sums: AlignedBuffer // (capacity,) i32

    package init(capacity: Int, cols: Int) throws {
        guard capacity >= 1, cols >= 1, cols <= TernaryMatrix.maxColumns else {
            throw KernelError.invalidShape(what: "activations", rows: capacity, cols: cols)
        }
        self.cols = cols
        paddedCols = Int(bn_pad_cols(Int32(cols)))
        self.capacity = capacity
        values = AlignedBuffer(byteCount: capacity * paddedCols)
        scales = AlignedBuffer(byteCount: capacity * 4)
        sums = AlignedBuffer(byteCount: capacity * 4)
    }

    /// Row `row`'s quantized values (cols entries), scale and sum.
    package func row(_ row: Int) -> (values: [Int8], scale: Float, sum: Int32) {
        let v = values.typed(Int8.self)
        let start = row * paddedCols
        return (Array(v[start..<start + cols]), scales.typed(Float.self)[row], sums.typed(Int32.self)[row])
    }
}
