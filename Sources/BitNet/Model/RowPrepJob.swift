import CKernels

/// The per-row work between two projections of a step — the gated activation, the
/// RMS norm and the int8 quantization a BitLinear input needs — split over the pool
/// by rows. Run serially these were 7% of a 2-thread prompt step and 3–5 ms of a
/// 60 ms 8-sequence decoding step on the AVX-512 EPYC host (`bench e2e --profile`),
/// the part of the step that did not scale with threads. Split, they take 0.27–0.30
/// instead of 0.34 ms per prompt token there (the rows come from both cores' GEMM
/// outputs, so half of every row crosses cores either way) and 1.4 instead of 2.3 ms
/// per 8-sequence step. Each row runs the same kernel calls with the same arguments
/// as the serial path, so the results are the same bits whichever thread takes a row.
struct RowPrepJob {
    var table: UnsafePointer<bn_kernels>
    /// (rows, width): the input rows; the gate rows when `up` is given.
    var source: UnsafeMutablePointer<Float>
    /// (rows, width): when given, source = act(source) · up first, in place.
    var up: UnsafePointer<Float>?
    var silu: Bool
    /// (width,): when given, out = rmsnorm(source) ⊙ norm and out is quantized; else source is.
    var norm: UnsafePointer<Float>?
    var eps: Float
    /// (rows, width): the normed rows (may be source).
    var out: UnsafeMutablePointer<Float>
    var width: Int32
    var rows: Int32
    /// (rows, paddedCols) int8, (rows,) scales and sums: the quantized rows.
    var values: UnsafeMutablePointer<Int8>
    var paddedCols: Int32
    var scales: UnsafeMutablePointer<Float>
    var sums: UnsafeMutablePointer<Int32>

    static let task: @convention(c) (UnsafeMutableRawPointer?, Int32, Int32) -> Void = { ctx, ith, nth in
        let j = ctx!.assumingMemoryBound(to: RowPrepJob.self).pointee
        let begin = Int(j.rows) * Int(ith) / Int(nth), end = Int(j.rows) * Int(ith + 1) / Int(nth)
        guard begin < end else { return }
        let ops = j.table.pointee, w = Int(j.width)
        // a row at a time through all three (measured the same as quantizing the range after)
        for r in begin..<end {
            let row = j.source + r * w
            if let up = j.up { (j.silu ? ops.gate_silu : ops.gate_relu2)(row, up + r * w, j.width) }
            var quantized = row
            if let norm = j.norm {
                quantized = j.out + r * w
                ops.rmsnorm(row, norm, j.eps, j.width, quantized)
            }
            ops.quantize(quantized, 1, j.width, j.width, j.values + r * Int(j.paddedCols), j.paddedCols, j.scales + r, j.sums + r)
        }
    }
}
