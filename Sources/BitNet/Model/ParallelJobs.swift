import CKernels

/// Work split over the worker pool that is not a ternary matmul (those use
/// bn_i2s_matmul): attention over (token, head) units and the F16 head over
/// vocabulary rows. Each job is a plain struct passed to a C-convention task.
struct AttentionJob {
    var table: UnsafePointer<bn_kernels>
    var q: UnsafePointer<Float> // (n, qDim)
    var keys: UnsafeRawPointer // (kvHeads, capacity, headDim) of this layer, f32 or f16
    var values: UnsafeRawPointer
    var halfCache: Bool // f16 elements: attention_f16
    var headStride: Int // elements from one kv head's block to the next
    var out: UnsafeMutablePointer<Float> // (n, qDim)
    var scores: UnsafeMutablePointer<Float> // (threads, scoreStride)
    var scoreStride: Int32
    var tokens: Int32
    var startPosition: Int32
    var heads: Int32
    var kvHeads: Int32
    var headDim: Int32
    var scale: Float

    static let task: @convention(c) (UnsafeMutableRawPointer?, Int32, Int32) -> Void = { ctx, ith, nth in
        let j = ctx!.assumingMemoryBound(to: AttentionJob.self).pointee
        let units = Int(j.tokens) * Int(j.heads)
        let begin = units * Int(ith) / Int(nth), end = units * Int(ith + 1) / Int(nth)
        let hd = Int(j.headDim), qDim = Int(j.heads) * hd, group = Int(j.heads / j.kvHeads)
        let scores = j.scores + Int(ith) * Int(j.scoreStride)
        var u = begin
        while u < end {
            // contiguous heads of one token sharing one kv head, in one call: the kernel sees that
            // head's (positions, headDim) block as a cache of one kv head with rows of headDim floats
            let t = u / Int(j.heads), h0 = u % Int(j.heads), g = h0 / group
            let h1 = min(Int(j.heads), h0 + (end - u), (g + 1) * group)
            let first = g * group * hd, T = j.startPosition + Int32(t) + 1
            let (a, b) = (Int32(h0 - g * group), Int32(h1 - g * group))
            if j.halfCache {
                let k = j.keys.assumingMemoryBound(to: UInt16.self) + g * j.headStride
                let v = j.values.assumingMemoryBound(to: UInt16.self) + g * j.headStride
                j.table.pointee.attention_f16(j.q + t * qDim + first, k, v, j.headDim, T, Int32(group), 1, j.headDim,
                                              j.scale, scores, j.out + t * qDim + first, a, b)
            } else {
                let k = j.keys.assumingMemoryBound(to: Float.self) + g * j.headStride
                let v = j.values.assumingMemoryBound(to: Float.self) + g * j.headStride
                j.table.pointee.attention(j.q + t * qDim + first, k, v, j.headDim, T, Int32(group), 1, j.headDim,
                                          j.scale, scores, j.out + t * qDim + first, a, b)
            }
            u += h1 - h0
        }
    }
}

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
