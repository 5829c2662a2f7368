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

/// Causal attention of every row of a step over its own sequence's cache, split over
/// the pool in (row, head) units shared by cost (`boundary(_:part:of:)`): a batch of
/// sequences is one dispatch, and each unit's result is the same whichever thread or
/// batch computes it (the kernels' sums do not depend on how heads are grouped or on
/// their flags).
///
/// Units run segment by segment; within a prompt chunk (a segment of several rows)
/// kv head by kv head, each row's query heads of that kv head together. Consecutive
/// calls then read the same kv head's keys and values, which stay cached (a row-major
/// walk went through all kv heads' blocks between two reads of one — 2.6 MB at 512
/// f32 positions, past a 1 MB L2), and those calls pass `BN_ATTN_RESIDENT` so the kernel
/// requests nothing ahead. A decoding row (a one-row segment) streams its cache from
/// memory, where the kernel's requests pay off.
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

    /// A (row, head) unit's cost in cached positions read: its T plus a fixed part for the
    /// call, the softmax setup and the output stores (a guess in the same unit; it only has
    /// to keep short rows from looking free).
    static let unitOverhead = 16

    /// Σ over a segment's rows of one unit's cost (T + unitOverhead), T = start + 1 … start + n.
    static func rowsCost(_ seg: AttentionSegment) -> Int {
        let n = Int(seg.tokens)
        return n * (Int(seg.startPosition) + unitOverhead) + n * (n + 1) / 2
    }

    /// The first unit of share `part` of `parts`: the units split where their running cost
    /// crosses part/parts of the total, so a causal prompt's rows — row t reads t + 1
    /// positions — and sequences at different depths are shared by work, not by count. An
    /// even split by count gave one of two threads the prompt's short first half: 25% of
    /// the work against 75% for the other, which the first then waited out. Every thread
    /// computes the same boundaries, so the shares tile the units exactly.
    static func boundary(_ j: AttentionJob, part: Int, of parts: Int) -> Int {
        let heads = Int(j.heads), group = heads / Int(j.kvHeads)
        if part <= 0 { return 0 }
        if part >= parts { return Int(j.rows) * heads }
        var total = 0
        for s in 0..<Int(j.segmentCount) { total += rowsCost(j.segments[s]) * heads }
        let target = total * part / parts
        var before = 0 // cost of every unit ahead of the one being looked at
        for s in 0..<Int(j.segmentCount) {
            let seg = j.segments[s], groupCost = rowsCost(seg) * group
            if before + groupCost * Int(j.kvHeads) <= target {
                before += groupCost * Int(j.kvHeads)
                continue
            }
            let g = (target - before) / groupCost // the kv head the boundary falls in
            before += g * groupCost
            for r in 0..<Int(seg.tokens) {
                let unit = Int(seg.startPosition) + r + 1 + unitOverhead
                if before + unit * group > target {
                    // the first head of this row whose units ahead cost at least the target
                    let h = (target - before + unit - 1) / unit
                    return (Int(seg.firstRow) * Int(j.kvHeads) + g * Int(seg.tokens) + r) * group + h
                }
                before += unit * group
            }
            return (Int(seg.firstRow) * Int(j.kvHeads) + (g + 1) * Int(seg.tokens)) * group
        }
        return Int(j.rows) * heads
    }

    static let task: @convention(c) (UnsafeMutableRawPointer?, Int32, Int32) -> Void = { ctx, ith, nth in
        let j = ctx!.assumingMemoryBound(to: AttentionJob.self).pointee
        let end = boundary(j, part: Int(ith) + 1, of: Int(nth))
        var u = boundary(j, part: Int(ith), of: Int(nth))
        guard u < end else { return }
        let hd = Int(j.headDim), heads = Int(j.heads), qDim = heads * hd, group = heads / Int(j.kvHeads)
        let scores = j.scores + Int(ith) * Int(j.scoreStride)
        var segment = 0
        while u < end {
            // a segment's units: (kv head, row, head of that kv head), from firstRow · heads
            while (Int(j.segments[segment].firstRow) + Int(j.segments[segment].tokens)) * heads <= u { segment += 1 }
            let seg = j.segments[segment], n = Int(seg.tokens)
            let local = u - Int(seg.firstRow) * heads
            let g = local / (n * group), r = local / group % n, h0 = local % group
            let h1 = min(group, h0 + (end - u)) // contiguous heads of one row sharing kv head g, in one call
            let t = Int(seg.firstRow) + r, T = seg.startPosition + Int32(r) + 1
            let flags = n > 1 ? Int32(BN_ATTN_RESIDENT) : 0
            // the kernel sees kv head g's (positions, headDim) block as a cache of one kv head
            let first = g * group * hd
            if seg.halfCache {
                let k = seg.keys.assumingMemoryBound(to: UInt16.self) + g * seg.headStride
                let v = seg.values.assumingMemoryBound(to: UInt16.self) + g * seg.headStride
                j.table.pointee.attention_f16(j.q + t * qDim + first, k, v, j.headDim, T, Int32(group), 1, j.headDim,
                                              j.scale, scores, j.out + t * qDim + first, Int32(h0), Int32(h1), flags)
            } else {
                let k = seg.keys.assumingMemoryBound(to: Float.self) + g * seg.headStride
                let v = seg.values.assumingMemoryBound(to: Float.self) + g * seg.headStride
                j.table.pointee.attention(j.q + t * qDim + first, k, v, j.headDim, T, Int32(group), 1, j.headDim,
                                          j.scale, scores, j.out + t * qDim + first, Int32(h0), Int32(h1), flags)
            }
            u += h1 - h0
        }
    }
}
