import CKernels
import XCTest
@testable import BitNet

/// How `AttentionJob` shares a step's (row, head) units among threads: every unit
/// runs exactly once, with its own sequence's position count and the right flags,
/// and the shares are balanced by cost rather than by count. The kernel table is the
/// scalar one with `attention` replaced by a recorder that writes what it was asked
/// into the output rows, so the job's walk is checked without any arithmetic.
final class AttentionJobTests: XCTestCase {
    /// Output slots per head the recorder writes: calls, T, flags, head dimension 4.
    private static let headDim = 4

    /// Marks heads [begin, end) of the row at `out`: one more call, its T and its flags.
    private static let recorder: bn_attention_fn = { _, _, _, _, T, _, _, hd, _, _, out, begin, end, flags in
        for h in Int(begin)..<Int(end) {
            let o = out! + h * Int(hd)
            o[0] += 1
            o[1] = Float(T)
            o[2] = Float(flags)
        }
    }

    func testSharesRunEveryUnitOnceAtItsDepthAndBalanceTheCost() {
        var table = bn_kernels_for(BN_ISA_SCALAR).pointee
        table.attention = Self.recorder
        let shapes = [(4, 4), (8, 2), (20, 5), (6, 1)] // (query heads, kv heads)
        var rng = SeededGenerator(seed: 0xA77E)
        let dummy = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)
        defer { dummy.deallocate() }
        for caseIndex in 0..<300 {
            let (heads, kvHeads) = shapes[Int(rng.next() % UInt64(shapes.count))]
            // a mix of decoding rows (one token) and prompt chunks at random depths
            var segments: [AttentionSegment] = []
            var rows: Int32 = 0
            for _ in 0..<(1 + Int(rng.next() % 6)) {
                let tokens = rng.next() % 3 == 0 ? Int32(1) : Int32(1 + rng.next() % 40)
                segments.append(AttentionSegment(firstRow: rows, tokens: tokens, startPosition: Int32(rng.next() % 300),
                                                 keys: UnsafeRawPointer(dummy), values: UnsafeRawPointer(dummy),
                                                 headStride: 0, halfCache: false))
                rows += tokens
            }
            let parts = 1 + Int(rng.next() % 9)
            let qDim = heads * Self.headDim
            var out = [Float](repeating: 0, count: Int(rows) * qDim)
            var scores = [Float](repeating: 0, count: parts)
            var shareCosts: [Int] = []
            withUnsafeMutablePointer(to: &table) { tablePointer in
                segments.withUnsafeBufferPointer { segs in
                    out.withUnsafeMutableBufferPointer { o in
                        scores.withUnsafeMutableBufferPointer { s in
                            var job = AttentionJob(table: tablePointer, q: UnsafePointer(o.baseAddress!), out: o.baseAddress!,
                                                   scores: s.baseAddress!, scoreStride: 1, segments: segs.baseAddress!,
                                                   segmentCount: Int32(segs.count), rows: rows, heads: Int32(heads),
                                                   kvHeads: Int32(kvHeads), headDim: Int32(Self.headDim), scale: 1)
                            for ith in 0..<parts {
                                let before = Self.cost(o, rows: Int(rows), heads: heads)
                                withUnsafeMutablePointer(to: &job) { AttentionJob.task($0, Int32(ith), Int32(parts)) }
                                shareCosts.append(Self.cost(o, rows: Int(rows), heads: heads) - before)
                            }
                        }
                    }
                }
            }
            var maxUnit = 0
            for seg in segments {
                for r in 0..<Int(seg.tokens) {
                    let row = Int(seg.firstRow) + r, T = Int(seg.startPosition) + r + 1
                    maxUnit = max(maxUnit, T + AttentionJob.unitOverhead)
                    for h in 0..<heads {
                        let o = row * qDim + h * Self.headDim
                        XCTAssertEqual(out[o], 1, "case \(caseIndex): row \(row) head \(h) ran \(out[o]) times")
                        XCTAssertEqual(out[o + 1], Float(T), "case \(caseIndex): row \(row) head \(h) saw T \(out[o + 1])")
                        XCTAssertEqual(out[o + 2], seg.tokens > 1 ? Float(BN_ATTN_RESIDENT) : 0,
                                       "case \(caseIndex): row \(row) (a \(seg.tokens)-row segment) got flags \(out[o + 2])")
                    }
                }
            }
            // each share within one unit of an even split of the total cost
            let total = shareCosts.reduce(0, +)
            for (ith, c) in shareCosts.enumerated() {
                XCTAssertLessThanOrEqual(abs(c * parts - total), (maxUnit + 1) * parts,
                                         "case \(caseIndex): share \(ith) of \(parts) costs \(c) of \(total)")
            }
        }
    }

    /// Σ over the units run so far of T + unitOverhead (the recorder's marks).
    private static func cost(_ out: UnsafeMutableBufferPointer<Float>, rows: Int, heads: Int) -> Int {
        var sum = 0
        for u in 0..<(rows * heads) where out[u * headDim] > 0 {
            sum += Int(out[u * headDim + 1]) + AttentionJob.unitOverhead
        }
        return sum
    }
}
