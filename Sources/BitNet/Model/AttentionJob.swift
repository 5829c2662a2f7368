import CKernels

/// One sequence's rows in a step's attention: rows [firstRow, firstRow + tokens)
/// sit at positions startPosition… of the cache at `keys`/`values`.
struct AttentionSegment {
    var firstRow: Int32
    var tokens: Int32
    var startPosition: Int32
    var keys: UnsafeRawPointer // (kvHeads, capacity, headDim) of this layer, f32 or f16
    var values: UnsafeRawPointer
    var headStride: Int // elements from one kv head's block to the next
    var halfCache: Bool // f16 elements: attention_f16
}

/// Causal attention of every row of a step over its own sequence's cache,
/// split over the pool in (row, head) units: a batch of sequences is one
/// dispatch, and each unit's result is the same whichever thread or batch
/// computes it (the kernels' sums do not depend on how heads are grouped).
struct AttentionJob {
    var table: UnsafePointer<bn_kernels>
    var q: UnsafePointer<Float> // (rows, qDim)
    var out: UnsafeMutablePointer<Float> // (rows, qDim)
    var scores: UnsafeMutablePointer<Float> // (threads, scoreStride)
    var scoreStride: Int32
    var segments: UnsafePointer<AttentionSegment> // (segmentCount,) in row order
    var segmentCount: Int32
    var rows: Int32
    var heads: Int32
    var kvHeads: Int32
    var headDim: Int32
    var scale: Float

    static let task: @convention(c) (UnsafeMutableRawPointer?, Int32, Int32) -> Void = { ctx, ith, nth in
        let j = ctx!.assumingMemoryBound(to: AttentionJob.self).pointee
        let units = Int(j.rows) * Int(j.heads)
        let begin = units * Int(ith) / Int(nth), end = units * Int(ith + 1) / Int(nth)
        let hd = Int(j.headDim), qDim = Int(j.heads) * hd, group = Int(j.heads / j.kvHeads)
        let scores = j.scores + Int(ith) * Int(j.scoreStride)
        var segment = 0
        var u = begin
        while u < end {
            let t = u / Int(j.heads), h0 = u % Int(j.heads), g = h0 / group
            while Int(j.segments[segment].firstRow + j.segments[segment].tokens) <= t { segment += 1 }
            let seg = j.segments[segment]
            // contiguous heads of one row sharing one kv head, in one call: the kernel sees that
            // head's (positions, headDim) block as a cache of one kv head with rows of headDim floats
            let h1 = min(Int(j.heads), h0 + (end - u), (g + 1) * group)
            let first = g * group * hd, T = seg.startPosition + Int32(t) - seg.firstRow + 1
            let (a, b) = (Int32(h0 - g * group), Int32(h1 - g * group))
            if seg.halfCache {
                let k = seg.keys.assumingMemoryBound(to: UInt16.self) + g * seg.headStride
                let v = seg.values.assumingMemoryBound(to: UInt16.self) + g * seg.headStride
                j.table.pointee.attention_f16(j.q + t * qDim + first, k, v, j.headDim, T, Int32(group), 1, j.headDim,
                                              j.scale, scores, j.out + t * qDim + first, a, b)
            } else {
                let k = seg.keys.assumingMemoryBound(to: Float.self) + g * seg.headStride
                let v = seg.values.assumingMemoryBound(to: Float.self) + g * seg.headStride
                j.table.pointee.attention(j.q + t * qDim + first, k, v, j.headDim, T, Int32(group), 1, j.headDim,
                                          j.scale, scores, j.out + t * qDim + first, a, b)
            }
            u += h1 - h0
        }
    }
}
