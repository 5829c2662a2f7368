import CKernels

/// A TL1/TL2 copy of one ternary matrix, for single-row (decode) products with the
/// lookup-table kernels. It belongs to the model that chose that kernel for the
/// matrix's shape, not to the shared weights: two models on the same
/// ``ModelWeights`` may decode with different kernels, and nothing in the weights
/// changes after load. Immutable once built.
package final class LookupTableMatrix: @unchecked Sendable { // its bytes are written only in init
    package let kernel: MatrixKernel
    package let rows: Int
    package let cols: Int
    let type: Int32
    let scale: Float
    /// bn_tl_bytes(type, rows, cols): a copy this table owns, or the bytes of a matrix held in place.
    private let bytes: UnsafeRawBufferPointer
    private let owner: AnyObject // keeps `bytes` alive: an AlignedBuffer or the in-place matrix

    /// Bytes one product reads.
    package var byteCount: Int { bytes.count }

    /// Repacks `matrix` for `kernel` (.tl1 or .tl2) — or copies the file's own TL bytes
    /// when the matrix was loaded from that layout, or uses them without a copy when the
    /// matrix is held in place in that layout.
    package init(_ matrix: TernaryMatrix, kernel: MatrixKernel) throws {
        guard let type = kernel.tlType else { throw KernelError.notALookupTableKernel(kernel) }
        self.kernel = kernel
        self.type = type
        rows = matrix.rows
        cols = matrix.cols
        scale = matrix.scale
        if matrix.inPlaceKernel == kernel, let source = matrix.tlSource {
            bytes = source.bytes
            owner = matrix
            return
        }
        let storage = AlignedBuffer(byteCount: bn_tl_bytes(type, Int32(rows), Int32(cols)), hugePages: true)
        bytes = UnsafeRawBufferPointer(storage.bytes)
        owner = storage
        let out = storage.pointer.assumingMemoryBound(to: UInt8.self)
        if let source = matrix.tlSource, source.type == type, let base = source.bytes.baseAddress {
            bn_tl_adopt(type, base.assumingMemoryBound(to: UInt8.self), Int32(rows), Int32(cols), out)
            return
        }
        let invalid = matrix.withPackedI2R16 {
            bn_tl_from_i2r16(type, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(rows), Int32(cols), out)
        }
        guard invalid == 0 else { throw KernelError.invalidCodes(count: Int(invalid)) }
    }

    /// Tables for many matrices at once (nil where the kernel is I2_S), repacked on every
    /// thread of `pool` (2B4T's 210 matrices take ~1.4 s on one core): the largest are
    /// dealt first, each to the thread with the least work so far.
    package static func make(_ jobs: [(TernaryMatrix, MatrixKernel)], pool: WorkerPool) throws -> [LookupTableMatrix?] {
        let work = RepackWork(jobs: jobs)
        let pending = jobs.indices.filter { jobs[$0].1.tlType != nil }
        guard pool.threads > 1, pending.count > 1 else {
            for i in pending { work.tables[i] = try LookupTableMatrix(jobs[i].0, kernel: jobs[i].1) }
            return Array(work.tables)
        }
        var plan = [[Int]](repeating: [], count: pool.threads)
        var load = [Int](repeating: 0, count: pool.threads)
        for i in pending.sorted(by: { jobs[$0].0.storedBytes.count > jobs[$1].0.storedBytes.count }) {
            let t = load.indices.min { load[$0] < load[$1] }!
            plan[t].append(i)
            load[t] += jobs[i].0.storedBytes.count
        }
        work.plan = plan
        let context = Unmanaged.passRetained(work)
        defer { context.release() }
        pool.run({ ctx, ith, _ in
            let work = Unmanaged<RepackWork>.fromOpaque(ctx!).takeUnretainedValue()
            for i in work.plan[Int(ith)] {
                do { work.tables[i] = try LookupTableMatrix(work.jobs[i].0, kernel: work.jobs[i].1) } catch { work.errors[i] = error }
            }
        }, context: context.toOpaque())
        if let error = work.errors.lazy.compactMap({ $0 }).first { throw error }
        return Array(work.tables)
    }

    func withDescriptor<R>(_ body: (UnsafePointer<bn_tl_matrix>) throws -> R) rethrows -> R {
        var d = bn_tl_matrix_make(type, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(rows), Int32(cols), scale)
        return try withUnsafePointer(to: &d) { try body($0) }
    }
}

/// One parallel repack: each thread writes only the slots of its own jobs.
private final class RepackWork: @unchecked Sendable {
    let jobs: [(TernaryMatrix, MatrixKernel)]
    var plan: [[Int]] = []
    let tables: UnsafeMutableBufferPointer<LookupTableMatrix?>
    let errors: UnsafeMutableBufferPointer<Error?>
    init(jobs: [(TernaryMatrix, MatrixKernel)]) {
        self.jobs = jobs
        tables = .allocate(capacity: jobs.count)
        tables.initialize(repeating: nil)
        errors = .allocate(capacity: jobs.count)
        errors.initialize(repeating: nil)
    }
    deinit {
        _ = tables.deinitialize()
        tables.deallocate()
        _ = errors.deinitialize()
        errors.deallocate()
    }
}
