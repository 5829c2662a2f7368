import CKernels

/// The weights of one BitLinear, repacked once into the kernels' I2_R16
/// layout (bitnet_kernels.h): rows padded to 32, columns to 32, 16-row
/// groups of 64-byte chunks. Any K works, including bitnet_b1_58-3B's 8640.
public final class TernaryMatrix: @unchecked Sendable {
    /// Output features (M) and input features (K).
    public let rows: Int
    public let cols: Int
    public let paddedRows: Int
    public let paddedCols: Int
    /// Per-tensor weight scale s_w: y = (Σ w·q) · s_w / s_x.
    public let scale: Float
    let storage: AlignedBuffer // (paddedRows/16, paddedCols/16, 64) I2_R16 packed
    /// The kernel family used for single-row (decode) products.
    public private(set) var decodeKernel: MatrixKernel = .i2s
    /// TL1/TL2 copy of the weights when `decodeKernel` is a lookup-table kernel
    /// (the I2_R16 copy stays: prompts use the I2_S GEMM).
    private var tlStorage: AlignedBuffer? // bn_tl_bytes(type, m, k)
    /// The TL bytes this matrix was decoded from (a TL file in a live mapping):
    /// choosing that kernel copies them instead of repacking.
    private var tlSource: (type: Int32, bytes: UnsafeRawBufferPointer, owner: AnyObject)?

    public static var maxColumns: Int { Int(bn_i2s_max_k()) }

    private init(rows: Int, cols: Int, scale: Float) throws {
        guard rows >= 1, rows <= Int(Int32.max) - 32, cols >= 1, cols <= Self.maxColumns else {
            throw KernelError.invalidShape(what: "ternary matrix", rows: rows, cols: cols)
        }
        self.rows = rows
        self.cols = cols
        paddedRows = Int(bn_pad_rows(Int32(rows)))
        paddedCols = Int(bn_pad_cols(Int32(cols)))
        self.scale = scale
        storage = AlignedBuffer(byteCount: bn_i2r16_bytes(Int32(rows), Int32(cols)))
    }

    /// Size of the canonical I2_S data of a `rows`×`cols` tensor, without the 32-byte scale tail.
    public static func canonicalByteCount(rows: Int, cols: Int) -> Int {
        Int(bn_i2s_canonical_bytes(Int32(clamping: rows), Int32(clamping: cols)))
    }

    /// From the canonical I2_S file layout (bitnet.cpp, FORMATS.md §3):
    /// 128-element blocks of the flattened matrix, which may straddle rows.
    public convenience init(canonicalI2S bytes: UnsafeRawBufferPointer, rows: Int, cols: Int, scale: Float) throws {
        try self.init(rows: rows, cols: cols, scale: scale)
        let needed = Self.canonicalByteCount(rows: rows, cols: cols)
        guard bytes.count >= needed, let base = bytes.baseAddress else {
            throw KernelError.bufferSize(what: "canonical I2_S data", expected: needed, actual: bytes.count)
        }
        bn_i2s_repack_canonical(base.assumingMemoryBound(to: UInt8.self), Int32(rows), Int32(cols),
                                storage.pointer.assumingMemoryBound(to: UInt8.self))
    }

    /// From ternary values, row-major (rows, cols), each -1, 0 or 1.
    public convenience init(ternary values: [Int8], rows: Int, cols: Int, scale: Float) throws {
        try self.init(rows: rows, cols: cols, scale: scale)
        guard values.count == rows * cols else {
            throw KernelError.bufferSize(what: "ternary values", expected: rows * cols, actual: values.count)
        }
        if let bad = values.firstIndex(where: { $0 < -1 || $0 > 1 }) {
            throw KernelError.invalidTernaryValue(index: bad, value: values[bad])
        }
        values.withUnsafeBufferPointer { src in
            bn_i2r16_pack(src.baseAddress!, Int32(rows), Int32(cols), storage.pointer.assumingMemoryBound(to: UInt8.self))
        }
    }

    /// From one of this engine's TL1/TL2 layouts (`type` 1 or 2, bitnet_kernels.h), e.g. a
    /// `bitnet convert --type tl2` file. Throws if a slot holds an index no packer writes.
    /// `owner` keeps `bytes` alive (e.g. the file's mapping): then choosing that TL kernel
    /// for decoding copies them instead of repacking.
    public convenience init(lookupTable type: Int32, bytes: UnsafeRawBufferPointer, rows: Int, cols: Int,
                            scale: Float, owner: AnyObject? = nil) throws {
        try self.init(rows: rows, cols: cols, scale: scale)
        let needed = bn_tl_bytes(type, Int32(rows), Int32(cols))
        guard bytes.count >= needed, let base = bytes.baseAddress else {
            throw KernelError.bufferSize(what: "TL\(type) data", expected: needed, actual: bytes.count)
        }
        let invalid = bn_tl_to_i2r16(type, base.assumingMemoryBound(to: UInt8.self), Int32(rows), Int32(cols),
                                     storage.pointer.assumingMemoryBound(to: UInt8.self))
        guard invalid == 0 else { throw KernelError.invalidTableIndices(count: Int(invalid)) }
        if let owner { tlSource = (type, UnsafeRawBufferPointer(rebasing: bytes[0..<needed]), owner) }
    }

    /// From bytes already in the I2_R16 layout (a repacked cache file, or a benchmark's random weights).
    public convenience init(packedI2R16 bytes: UnsafeRawBufferPointer, rows: Int, cols: Int, scale: Float) throws {
        try self.init(rows: rows, cols: cols, scale: scale)
        guard bytes.count == storage.byteCount, let base = bytes.baseAddress else {
            throw KernelError.bufferSize(what: "I2_R16 data", expected: storage.byteCount, actual: bytes.count)
        }
        storage.pointer.copyMemory(from: base, byteCount: storage.byteCount)
    }

    /// The weight at (row, col): -1, 0, +1 (or 2 for the invalid code 3 of a malformed file).
    public func weight(row: Int, col: Int) -> Int {
        Int(bn_i2r16_code(storage.pointer.assumingMemoryBound(to: UInt8.self), Int32(paddedCols), Int32(row), Int32(col))) - 1
    }

    /// Bytes one single-row product reads: the lookup-table copy when a TL kernel decodes,
    /// else the I2_R16 weights.
    package var decodeByteCount: Int { tlStorage?.byteCount ?? storage.byteCount }

    /// Packed bytes (I2_R16), e.g. to write a pre-repacked cache file.
    public var packedBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(storage.bytes) }

    /// Repacks the weights for `kernel` (once) and uses it for decoding.
    public func useForDecoding(_ kernel: MatrixKernel) throws {
        guard let type = kernel.tlType else {
            decodeKernel = .i2s
            tlStorage = nil
            return
        }
        if decodeKernel == kernel { return }
        let buffer = AlignedBuffer(byteCount: bn_tl_bytes(type, Int32(rows), Int32(cols)))
        if let source = tlSource, source.type == type, let base = source.bytes.baseAddress {
            bn_tl_adopt(type, base.assumingMemoryBound(to: UInt8.self), Int32(rows), Int32(cols),
                        buffer.pointer.assumingMemoryBound(to: UInt8.self))
            tlStorage = buffer
            decodeKernel = kernel
            return
        }
        let invalid = bn_tl_from_i2r16(type, storage.pointer.assumingMemoryBound(to: UInt8.self), Int32(rows), Int32(cols),
                                       buffer.pointer.assumingMemoryBound(to: UInt8.self))
        guard invalid == 0 else {
            throw KernelError.invalidCodes(count: Int(invalid))
        }
        tlStorage = buffer
        decodeKernel = kernel
    }

    /// Switches many matrices at once, repacking on every thread of `pool`
    /// (2B4T's 210 matrices take ~1.4 s on one core): the largest matrices are
    /// dealt first, each to the thread with the least work so far.
    public static func useForDecoding(_ jobs: [(TernaryMatrix, MatrixKernel)], pool: WorkerPool) throws {
        let pending = jobs.filter { $0.0.decodeKernel != $0.1 }
        guard pool.threads > 1, pending.count > 1 else {
            for (m, k) in pending { try m.useForDecoding(k) }
            return
        }
        var plan = [[Int]](repeating: [], count: pool.threads)
        var load = [Int](repeating: 0, count: pool.threads)
        for i in pending.indices.sorted(by: { pending[$0].0.storage.byteCount > pending[$1].0.storage.byteCount }) {
            let t = load.indices.min { load[$0] < load[$1] }!
            plan[t].append(i)
            load[t] += pending[i].0.storage.byteCount
        }
        let work = RepackWork(jobs: pending, plan: plan)
        let context = Unmanaged.passRetained(work)
        defer { context.release() }
        pool.run({ ctx, ith, _ in
            let work = Unmanaged<RepackWork>.fromOpaque(ctx!).takeUnretainedValue()
            for i in work.plan[Int(ith)] {
                do { try work.jobs[i].0.useForDecoding(work.jobs[i].1) } catch { work.errors[i] = error }
            }
        }, context: context.toOpaque())
        if let error = work.errors.lazy.compactMap({ $0 }).first { throw error }
    }

    func withTLDescriptor<R>(_ body: (UnsafePointer<bn_tl_matrix>) throws -> R) rethrows -> R? {
        guard let type = decodeKernel.tlType, let tlStorage else { return nil }
        var d = bn_tl_matrix_make(type, UnsafePointer(tlStorage.pointer.assumingMemoryBound(to: UInt8.self)),
                                  Int32(rows), Int32(cols), scale)
        return try withUnsafePointer(to: &d) { try body($0) }
    }

    func withDescriptor<R>(_ body: (UnsafePointer<bn_i2s_matrix>) throws -> R) rethrows -> R {
        var descriptor = bn_i2s_matrix(
            data: UnsafePointer(storage.pointer.assumingMemoryBound(to: UInt8.self)),
            m: Int32(rows), k: Int32(cols), m_pad: Int32(paddedRows), k_pad: Int32(paddedCols), scale: scale)
        return try withUnsafePointer(to: &descriptor) { try body($0) }
    }
}

extension TernaryMatrix {
    /// The same weights with the scale multiplied by `factor` (folds a
    /// per-projection output scale into the kernel's epilogue).
    public func rescaled(by factor: Float) throws -> TernaryMatrix {
        try TernaryMatrix(packedI2R16: packedBytes, rows: rows, cols: cols, scale: scale * factor)
    }
}

/// One parallel repack: each thread writes only the error slots of its own jobs.
private final class RepackWork: @unchecked Sendable {
    let jobs: [(TernaryMatrix, MatrixKernel)]
    let plan: [[Int]]
    let errors: UnsafeMutableBufferPointer<Error?>
    init(jobs: [(TernaryMatrix, MatrixKernel)], plan: [[Int]]) {
        self.jobs = jobs
        self.plan = plan
        errors = .allocate(capacity: jobs.count)
        errors.initialize(repeating: nil)
    }
    deinit {
        _ = errors.deinitialize()
        errors.deallocate()
    }
}
