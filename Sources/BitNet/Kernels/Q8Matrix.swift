import CKernels
import Dispatch

/// An output head requantized to int8 with one scale per row (the opt-in
/// `--head q8`): half the bytes of the F16 head, computed with the VNNI /
/// pmaddubsw / smull kernels on int8 activations. Logits move slightly (see
/// README, "Faster head"), so the default stays the exact F16 head.
package final class Q8Matrix: @unchecked Sendable {
    package let rows: Int
    package let cols: Int
    let paddedRows: Int
    let paddedCols: Int
    let data: AlignedBuffer // (paddedRows/16, paddedCols/4, 64) Q8_R16
    let rowScale: AlignedBuffer // (rows,) f32
    let rowSum: AlignedBuffer // (paddedRows,) i32

    /// The int8 kernels accumulate Σ (q+128)·w in int32 (VNNI form): safe up to 2^14 columns.
    package static let maxColumns = 1 << 14

    package init(_ half: HalfMatrix) throws {
        guard half.cols <= Self.maxColumns else {
            throw KernelError.invalidShape(what: "int8 head", rows: half.rows, cols: half.cols)
        }
        rows = half.rows
        cols = half.cols
        paddedRows = (rows + 15) / 16 * 16
        paddedCols = Int(bn_pad_cols(Int32(cols)))
        data = AlignedBuffer(byteCount: bn_q8r16_bytes(Int32(rows), Int32(cols)), hugePages: true)
        rowScale = AlignedBuffer(byteCount: rows * 4)
        rowSum = AlignedBuffer(byteCount: paddedRows * 4)
        // d_r = max|w_r| / 127, q = round(w / d_r), packed 16 rows at a time (rows split over cores)
        let groups = paddedRows / 16
        let (cols, rows) = (self.cols, self.rows)
        let data = self.data, scaleBuffer = self.rowScale, sumBuffer = self.rowSum
        let paddedCols = self.paddedCols
        // f16 → f32 through the kernel table (the conversion is exact, the same bits in every ISA):
        // Swift's Float16 → Float is a library call per element on x86, and with the rounding
        // below it had made this loop most of a q8 model's load time
        let toFloat = Kernels.best.table.pointee.f16_to_f32!
        DispatchQueue.concurrentPerform(iterations: groups) { g in
            let rowScale = scaleBuffer.typed(Float.self), rowSum = sumBuffer.typed(Int32.self)
            var values = [Int8](repeating: 0, count: 16 * cols)
            var sums = [Int32](repeating: 0, count: 16)
            var w = [Float](repeating: 0, count: cols) // (cols,) one row in f32
            for i in 0..<16 where g * 16 + i < rows {
                w.withUnsafeMutableBufferPointer { toFloat(half.row(g * 16 + i), $0.baseAddress!, Int32(cols)) }
                var amax: Float = 0
                for c in 0..<cols where w[c].isFinite { amax = max(amax, abs(w[c])) }
                let d = amax > 0 ? amax / 127 : 1
                rowScale[g * 16 + i] = d
                for c in 0..<cols { values[i * cols + c] = Self.quantize(w[c], scale: d) }
            }
            let valid = Int32(min(16, rows - g * 16))
            values.withUnsafeBufferPointer { v in
                bn_q8r16_pack(v.baseAddress!, valid, Int32(cols),
                              data.pointer.assumingMemoryBound(to: Int8.self) + g * 16 * paddedCols, &sums)
            }
            for i in 0..<16 { rowSum[g * 16 + i] = i < valid ? sums[i] : 0 }
        }
    }

    /// round(w / d) for a weight of a row whose finite weights are within ±127·d. A hostile
    /// file's ±inf saturates to ±127 and NaN becomes 0 (the scale comes from the finite
    /// weights only), where a conversion of them would trap.
    @inline(__always)
    static func quantize(_ w: Float, scale d: Float) -> Int8 {
        let q = w / d
        if q.isNaN { return 0 }
        return Int8(roundToEven(Swift.min(127, Swift.max(-127, q))))
    }

    /// v rounded to the nearest integer, ties to even, for |v| ≤ 2^22 (here |v| ≤ 127):
    /// adding and subtracting 1.5·2^23 leaves no fraction bits, and the default rounding
    /// mode rounds that sum ties-to-even — the value rintf gives, without a call per element.
    @inline(__always)
    static func roundToEven(_ v: Float) -> Float {
        let magic: Float = 12_582_912 // 1.5 · 2^23
        return (v + magic) - magic
    }

    func withDescriptor<R>(_ body: (UnsafePointer<bn_q8_matrix>) throws -> R) rethrows -> R {
        var d = bn_q8_matrix(data: UnsafePointer(data.pointer.assumingMemoryBound(to: Int8.self)),
                             row_scale: UnsafePointer(rowScale.typed(Float.self).baseAddress!),
                             row_sum: UnsafePointer(rowSum.typed(Int32.self).baseAddress!),
                             m: Int32(rows), k: Int32(cols), m_pad: Int32(paddedRows), k_pad: Int32(paddedCols))
        return try withUnsafePointer(to: &d) { try body($0) }
    }
}
