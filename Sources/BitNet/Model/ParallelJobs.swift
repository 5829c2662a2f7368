import CKernels

/// Work split over the worker pool that is not a ternary matmul (those use
/// bn_i2s_matmul) or attention (AttentionJob.swift): the F16 and int8 heads over
/// vocabulary rows. Each job is a plain struct passed to a C-convention task.
/// The heads are split dynamically: threads claim chunks of rows from a counter
/// (`next`, 0 when the job is made) until none are left, so a worker that wakes
/// late or shares its core with another process takes fewer chunks instead of
/// leaving the caller idle at the end of an even split (the head is ~55% of a
/// 2B4T token's bytes, so an idle tail there costs the most). Chunks are about
/// 1/64 of a thread's share, in whole 48-row units; every row is computed by the
/// same kernel code whichever thread takes it, so the logits do not change.
struct HeadJob {
    var table: UnsafePointer<bn_kernels>
    var weights: UnsafePointer<UInt16> // (ceil(rows/16), k, 16) f16 panels (HalfPanels)
    var rows: Int32
    var k: Int32
    var x: UnsafePointer<Float> // (n, k)
    var n: Int32
    var y: UnsafeMutablePointer<Float> // (n, rows)
    var next: Int32 = 0 // chunks claimed so far

    /// Rows per claimed chunk: about 1/64 of a thread's share, in whole 48-row units — the
    /// F16 kernels read 16-row panels and the AVX-512 one takes three panels per pass at
    /// 5–8 activation rows, so a chunk ends where a pass does.
    static func chunkRows(rows: Int, threads: Int) -> Int {
        max(48, (rows / max(1, threads * 64) + 47) / 48 * 48)
    }

    /// Claims chunks from the counter until none are left and runs `body` on each row range.
    @inline(__always)
    static func forEachChunk(_ counter: UnsafeMutablePointer<Int32>, rows: Int, threads: Int, _ body: (Int32, Int32) -> Void) {
        let chunk = chunkRows(rows: rows, threads: threads)
        while true {
            let begin = Int(bn_pool_claim(counter, 1)) * chunk
            if begin >= rows { return }
            body(Int32(begin), Int32(min(rows, begin + chunk)))
        }
    }

    static let task: @convention(c) (UnsafeMutableRawPointer?, Int32, Int32) -> Void = { ctx, _, nth in
        // fields read one by one: `next` is written by other threads meanwhile (atomically)
        let job = ctx!.assumingMemoryBound(to: HeadJob.self)
        let table = job.pointee.table, weights = job.pointee.weights, k = job.pointee.k
        let x = job.pointee.x, n = job.pointee.n, y = job.pointee.y, rows = job.pointee.rows
        let counter = (ctx! + MemoryLayout<HeadJob>.offset(of: \HeadJob.next)!).assumingMemoryBound(to: Int32.self)
        forEachChunk(counter, rows: Int(rows), threads: Int(nth)) { begin, end in
            table.pointee.f16_gemm(weights, k, x, n, y, rows, begin, end)
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
    var next: Int32 = 0 // chunks claimed so far

    static let task: @convention(c) (UnsafeMutableRawPointer?, Int32, Int32) -> Void = { ctx, _, nth in
        let job = ctx!.assumingMemoryBound(to: Q8HeadJob.self)
        let table = job.pointee.table, matrix = job.pointee.matrix, x = job.pointee.x
        let xScale = job.pointee.xScale, n = job.pointee.n, y = job.pointee.y
        let rows = matrix.pointee.m
        let counter = (ctx! + MemoryLayout<Q8HeadJob>.offset(of: \Q8HeadJob.next)!).assumingMemoryBound(to: Int32.self)
        HeadJob.forEachChunk(counter, rows: Int(rows), threads: Int(nth)) { begin, end in
            table.pointee.q8_gemm(matrix, x, xScale, n, y, rows, begin, end)
        }
    }
}
