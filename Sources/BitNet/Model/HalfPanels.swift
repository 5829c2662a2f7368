import CKernels
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The F16 output head in 16-row panels (`bn_f16_panels`), the layout the F16
/// head kernel reads: each converted weight vector is 16 rows of one column, so
/// it meets every activation row of a batched step by one broadcast FMA, with no
/// horizontal sums. Built once from the row-major head (`ModelWeights.headPanels(threads:)`);
/// the row-major matrix stays the source of the references.
///
/// Memory: when the head is the file's own F16 bytes, each range's file pages are
/// released once its panels are written, so resident memory grows by no more than
/// one range while the copy is made and the panels then replace those pages
/// (a tied embedding then reads its rows out of the panels, `row(_:into:)`).
package struct HalfPanels: @unchecked Sendable { // immutable after init; `buffer` keeps `pointer` alive
    package let rows: Int
    package let cols: Int
    /// (ceil(rows/16), cols, 16) f16: panel p, column c, row 16p + i at (p·cols + c)·16 + i.
    package let pointer: UnsafePointer<UInt16>
    private let buffer: AlignedBuffer

    /// Panels per range handed to one thread (256 panels = 4,096 rows, 20 MB at 2560 columns).
    static let panelsPerRange = 256

    /// Row `r` of the row-major matrix, gathered from its panel: (cols,) f16 bits. For a
    /// tied embedding whose file pages were released, this replaces a page fault per
    /// lookup (two 4 KiB pages per 2560-wide row, refilled from the page cache or, under
    /// memory pressure, the disk: 0.2–0.7 ms of an 8-sequence decoding step measured).
    package func row(_ r: Int, into out: UnsafeMutablePointer<UInt16>) {
        bn_f16_panels_row(pointer, Int32(cols), Int32(r), out)
    }

    /// Copies `half` into panels on `threads` threads, releasing its file pages range by
    /// range when `releasingFilePages`. Throws before allocating when the copy cannot fit.
    package init(_ half: HalfMatrix, threads: Int, releasingFilePages: Bool, path: String) throws {
        rows = half.rows
        cols = half.cols
        let bytes = bn_f16_panels_bytes(Int32(rows), Int32(cols))
        try ModelWeights.checkFits(path: path, needed: Double(bytes), available: SystemMemory.availableBytes())
        buffer = AlignedBuffer(byteCount: bytes, hugePages: true)
        let dst = buffer.typed(UInt16.self).baseAddress!
        pointer = UnsafePointer(dst)
        let panels = (rows + 15) / 16, ranges = (panels + Self.panelsPerRange - 1) / Self.panelsPerRange
        // addresses, not pointers, into the @Sendable body: each range writes only its own panels
        let source = Int(bitPattern: half.pointer), target = Int(bitPattern: dst), rows = rows, cols = cols
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let workers = max(1, min(threads, ranges))
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            for r in stride(from: worker, to: ranges, by: workers) {
                let first = r * Self.panelsPerRange, end = min(panels, first + Self.panelsPerRange)
                bn_f16_panels(UnsafePointer(bitPattern: source), Int32(rows), Int32(cols), Int32(first), Int32(end),
                              UnsafeMutablePointer(bitPattern: target))
                guard releasingFilePages else { continue }
                // the range's source rows, whole pages inside them only (a neighbour's rows share the edges)
                let begin = source + first * 16 * cols * 2, stop = source + min(rows, end * 16) * cols * 2
                let lo = (begin + page - 1) / page * page, hi = stop / page * page
                if hi > lo { _ = madvise(UnsafeMutableRawPointer(bitPattern: lo), hi - lo, Int32(MADV_DONTNEED)) }
            }
        }
    }
}
