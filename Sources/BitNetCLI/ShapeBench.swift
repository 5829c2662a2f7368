import BitNet
import CKernels
import COpenBLAS
import BitNetConvert

/// One timed kernel configuration.
struct Measurement {
    var kernel: String
    var op: String
    var m: Int
    var k: Int
    var n: Int
    var threads: Int
    var cached: Bool
    var stats: TimingStats
    var weightBytes: Int
    /// The scalar GEMM is timed on 2 activation rows and scaled (it never reuses weights across rows).
    var estimated = false

    var weightGBps: Double { Double(weightBytes) / stats.median / 1e9 }
    var gops: Double { 2.0 * Double(m) * Double(k) * Double(n) / stats.median / 1e9 }
}

/// Weights and activations of one M×K shape: enough copies to exceed the
/// last-level cache, cycled call after call as a model's layers are.
final class ShapeBench {
    let m: Int, k: Int, batch: Int
    let kernels: Kernels
    let scalar: Kernels
    private let matrices: [TernaryMatrix]
    private let weightsF32: [UnsafeMutablePointer<Float>] // each (m, k)
    private let x: UnsafeMutablePointer<Float> // (batch, k)
    private let y: UnsafeMutableBufferPointer<Float> // (batch, m)
    private let acts1: QuantizedActivations, acts2: QuantizedActivations, actsN: QuantizedActivations
    /// TL1 / TL2 copies of the same weights (repacked from I2_R16), each cycled like `matrices`.
    private var tlData: [Int32: [UnsafeMutableRawPointer]] = [:]
    /// The activations the I2_S rows use, quantized again by the same ISA for the C TL kernels.
    private let tlX: UnsafeMutablePointer<Int8>, tlScale: UnsafeMutablePointer<Float>, tlSum: UnsafeMutablePointer<Int32>

    init(m: Int, k: Int, batch: Int, workingSetBytes: Int, kernels: Kernels) throws {
        self.m = m
        self.k = k
        self.batch = batch
        self.kernels = kernels
        scalar = try Kernels(isa: .scalar)
        var rng = SeededGenerator(seed: UInt64(m * 1_000_003 + k))

        // Random valid I2_R16 bytes: four 2-bit codes in {0, 1, 2} each.
        let packedBytes = Int(bn_i2r16_bytes(Int32(m), Int32(k)))
        var validBytes: [UInt8] = []
        for a in 0..<3 { for b in 0..<3 { for c in 0..<3 { for d in 0..<3 { validBytes.append(UInt8(a | b << 2 | c << 4 | d << 6)) } } } }
        var packed = [UInt8](repeating: 0, count: packedBytes)
        for i in packed.indices { packed[i] = validBytes[Int(rng.next() % 81)] }
        let copies = max(1, (workingSetBytes + packedBytes - 1) / packedBytes)
        matrices = try packed.withUnsafeBytes { raw in
            try (0..<copies).map { _ in try TernaryMatrix(packedI2R16: raw, rows: m, cols: k, scale: 0.7) }
        }

        let f32Bytes = m * k * 4
        let f32Copies = max(2, (workingSetBytes + f32Bytes - 1) / f32Bytes)
        let first = UnsafeMutablePointer<Float>.allocate(capacity: m * k)
        for i in 0..<(m * k) { first[i] = rng.nextSigned() }
        var all = [first]
        for _ in 1..<f32Copies {
            let copy = UnsafeMutablePointer<Float>.allocate(capacity: m * k)
            copy.update(from: first, count: m * k)
            all.append(copy)
        }
        weightsF32 = all

        x = .allocate(capacity: batch * k)
        for i in 0..<(batch * k) { x[i] = rng.nextSigned() * 2 }
        y = .allocate(capacity: batch * m)
        y.initialize(repeating: 0)
        acts1 = try QuantizedActivations(capacity: 1, cols: k)
        acts2 = try QuantizedActivations(capacity: 2, cols: k)
        actsN = try QuantizedActivations(capacity: batch, cols: k)
        let input = UnsafeBufferPointer(start: x, count: batch * k)
        try kernels.quantize(input, rows: 1, cols: k, into: acts1)
        try kernels.quantize(input, rows: min(2, batch), cols: k, into: acts2)
        try kernels.quantize(input, rows: batch, cols: k, into: actsN)

        let kPad = Int(bn_pad_cols(Int32(k)))
        tlX = .allocate(capacity: batch * kPad)
        tlScale = .allocate(capacity: batch)
        tlSum = .allocate(capacity: batch)
        let table = bn_kernels_for(bn_isa(rawValue: UInt32(kernels.isa.rawValue)))!
        table.pointee.quantize(x, Int32(batch), Int32(k), Int32(k), tlX, Int32(kPad), tlScale, tlSum)
        for type: Int32 in [1, 2] {
            let bytes = Int(bn_tl_bytes(type, Int32(m), Int32(k)))
            let first = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            packed.withUnsafeBytes { raw in
                _ = bn_tl_from_i2r16(type, raw.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(m), Int32(k),
                                     first.assumingMemoryBound(to: UInt8.self))
            }
            var all = [first]
            for _ in 1..<max(1, (workingSetBytes + bytes - 1) / bytes) {
                let copy = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
                copy.copyMemory(from: first, byteCount: bytes)
                all.append(copy)
            }
            tlData[type] = all
        }
    }

    deinit {
        tlData.values.forEach { $0.forEach { $0.deallocate() } }
        tlX.deallocate()
        tlScale.deallocate()
        tlSum.deallocate()
        weightsF32.forEach { $0.deallocate() }
        x.deallocate()
        y.deallocate()
    }

    private var i2sBytes: Int { Int(bn_i2r16_bytes(Int32(m), Int32(k))) }

    func timeI2S(n: Int, pool: WorkerPool, cached: Bool, budget: Double) throws -> Measurement {
        let acts = n == 1 ? acts1 : actsN
        let set = cached ? [matrices[0]] : matrices
        let stats = try sample(count: set.count, budget: budget) { i in
            try kernels.matmul(set[i], acts, into: y, pool: pool)
        }
        return Measurement(kernel: "i2_s", op: n == 1 ? "gemv" : "gemm", m: m, k: k, n: n, threads: pool.threads,
                           cached: cached, stats: stats, weightBytes: i2sBytes)
    }

    /// TL1 (type 1) or TL2 (type 2) on the same weights and activations as
    /// `timeI2S`, split over the pool's threads in 32-row units as I2_S is.
    func timeTL(type: Int32, n: Int, pool: WorkerPool, cached: Bool, budget: Double) throws -> Measurement {
        let table = bn_kernels_for(bn_isa(rawValue: UInt32(kernels.isa.rawValue)))!.pointee
        let set = cached ? [tlData[type]![0]] : tlData[type]!
        let kernel = type == 1 ? (n == 1 ? table.tl1_gemv : table.tl1_gemm) : (n == 1 ? table.tl2_gemv : table.tl2_gemm)
        let descriptors = UnsafeMutablePointer<bn_tl_matrix>.allocate(capacity: set.count)
        defer { descriptors.deallocate() }
        for (i, data) in set.enumerated() {
            var w = bn_tl_matrix_make(type, data.assumingMemoryBound(to: UInt8.self), Int32(m), Int32(k), 0.7)
            w.tiling = bn_tl_default_tiling(type, Int32(m), Int32(k), Int32(n))
            descriptors[i] = w
        }
        var job = bn_tl_job(kernel: kernel, w: descriptors, x: tlX, x_scale: tlScale, n: Int32(n), ldy: Int32(m),
                            y: y.baseAddress!)
        let units = Int(bn_pad_rows(Int32(m))) / 32
        let stats = try sample(count: set.count, budget: budget) { i in
            job.w = UnsafePointer(descriptors + i)
            withUnsafeMutablePointer(to: &job) { pool.run(threads: min(pool.threads, units), bn_tl_matmul_task, context: $0) }
        }
        return Measurement(kernel: type == 1 ? "tl1" : "tl2", op: n == 1 ? "gemv" : "gemm", m: m, k: k, n: n,
                           threads: pool.threads, cached: cached, stats: stats,
                           weightBytes: Int(bn_tl_bytes(type, Int32(m), Int32(k))))
    }

    func timeScalar(n: Int, pool: WorkerPool, cached: Bool) throws -> Measurement {
        let acts = n == 1 ? acts1 : acts2
        let set = cached ? [matrices[0]] : matrices
        let raw = try sample(count: set.count, budget: 0, minSamples: 3) { i in
            try scalar.matmul(set[i], acts, into: y, pool: pool)
        }
        let scale = n == 1 ? 1.0 : Double(n) / Double(acts.rows)
        let stats = TimingStats(median: raw.median * scale, min: raw.min * scale, count: raw.count)
        var result = Measurement(kernel: "scalar", op: n == 1 ? "gemv" : "gemm", m: m, k: k, n: n,
                                 threads: pool.threads, cached: cached, stats: stats, weightBytes: i2sBytes)
        result.estimated = n != 1
        return result
    }

    func timeBLAS(n: Int, threads: Int, cached: Bool, budget: Double) -> Measurement {
        openblas_set_num_threads(Int32(threads))
        let set = cached ? [weightsF32[0]] : weightsF32
        let (mm, kk, nn) = (Int32(m), Int32(k), Int32(n))
        let out = y.baseAddress!
        let stats = (try? sample(count: set.count, budget: budget) { i in
            if n == 1 {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, mm, kk, 1, set[i], kk, x, 1, 0, out, 1)
            } else {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nn, mm, kk, 1, x, kk, set[i], kk, 0, out, mm)
            }
        }) ?? TimingStats([])
        return Measurement(kernel: "openblas_f32", op: n == 1 ? "gemv" : "gemm", m: m, k: k, n: n, threads: threads,
                           cached: cached, stats: stats, weightBytes: m * k * 4)
    }

    /// Calls `body` on consecutive copies (0, 1, …, count-1, 0, …) after one
    /// warm-up call, until `budget` seconds and at least `minSamples` calls.
    private func sample(count: Int, budget: Double, minSamples: Int = 3, _ body: (Int) throws -> Void) throws -> TimingStats {
        try body(0)
        var samples: [Double] = []
        var total = 0.0
        var i = 1
        let maxSamples = max(minSamples, 4 * count, 50)
        while samples.count < minSamples || (total < budget && samples.count < maxSamples) {
            let index = i % count
            let t = try Stopwatch.time { try body(index) }
            samples.append(t)
            total += t
            i += 1
        }
        return TimingStats(samples)
    }
}
