import CKernels

/// Work split over the worker pool that is not a ternary matmul (those use
/// bn_i2s_matmul) or attention (AttentionJob.swift): the F16 and int8 heads over
/// vocabulary rows. Each job is a plain struct passed to a C-convention task.
struct HeadJob {
    var table: UnsafePointer<bn_kernels>
    var weights: UnsafePointer<UInt16> // (rows, k) f16
    var rows: Int32
    var k: Int32
    var x: UnsafePointer<Float> // (n, k)
    var n: Int32
    var y: UnsafeMutablePointer<Float> // (n, rows)

    static let task: @convention(c) (UnsafeMutableRawPointer?, Int32, Int32) -> Void = { ctx, ith, nth in
        let j = ctx!.assumingMemoryBound(to: HeadJob.self).pointee
        // split in multiples of 16 rows so kernels keep whole register tiles
        let units = (Int(j.rows) + 15) / 16
        let begin = min(Int(j.rows), units * Int(ith) / Int(nth) * 16)
        let end = min(Int(j.rows), units * Int(ith + 1) / Int(nth) * 16)
        if begin < end {
            j.table.pointee.f16_gemm(j.weights, j.k, j.x, j.n, j.y, j.rows, Int32(begin), Int32(end))
        }
    }
}

struct Q8HeadJob {
    var table: UnsafePointer<bn_kernels>
    var matrix: UnsafePointer<bn_q8_matrix>
    var x: UnsafePointer<Int8> // (n, k_pad) quantized
    var xScale: UnsafePointer<Float>
    var n: Int32
    var y: UnsafeMutablePointer<Float> // (n, rows)

    static let task: @convention(c) (UnsafeMutableRawPointer?, Int32, Int32) -> Void = { ctx, ith, nth in
        let j = ctx!.assumingMemoryBound(to: Q8HeadJob.self).pointee
        let rows = Int(j.matrix.pointee.m)
        let units = (rows + 15) / 16
        let begin = min(rows, units * Int(ith) / Int(nth) * 16)
        let end = min(rows, units * Int(ith + 1) / Int(nth) * 16)
        if begin < end {
            j.table.pointee.q8_gemm(j.matrix, j.x, j.xScale, j.n, j.y, Int32(rows), Int32(begin), Int32(end))
        }
    }
}
