import ArgumentParser
import BitNet
import CKernels
import COpenBLAS

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `bitnet bench kernels`: the ternary kernels against OpenBLAS fp32 and the
/// scalar twin on BitNet-b1.58-2B-4T's matrix shapes, with the machine's read
/// bandwidth and int8 peak measured in the same run as ceilings.
struct KernelBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Time I2_S (and TL1/TL2) GEMV/GEMM against OpenBLAS sgemv/sgemm, the scalar twin, read bandwidth and int8 peak.",
        discussion: """
        Weights are cycled through a working set larger than the last-level cache (as a \
        real model streams 30 layers); a cache-resident variant is reported separately. \
        The I2_S figures time the matrix kernel on already-quantized activations.
        """
    )

    @Flag(help: "Print one JSON object per line instead of the table.")
    var json = false

    @Option(help: "Thread counts, comma-separated; 'all' = every online core.")
    var threads = "1,all"

    @Option(help: "Shapes as MxK, comma-separated (default: the 2B4T shapes).")
    var shapes = "2560x2560,640x2560,6912x2560,2560x6912"

    @Option(help: "Activation rows of the GEMM runs.")
    var batch = 128

    @Option(name: .customLong("working-set-mb"), help: "Out-of-cache working set per kernel, MiB.")
    var workingSetMB = 512

    @Option(help: "Seconds spent timing each measurement (at least 3 calls).")
    var budget = 0.25

    @Option(help: "Kernel level for the I2_S rows (may only lower the detected one).")
    var isa: String?

    @Flag(help: "Skip the scalar twin (slow: it is the readable spec, not a fast path).")
    var noScalar = false

    @Flag(name: .customLong("no-tl"), help: "Skip the TL1/TL2 lookup-table kernels.")
    var noTL = false

    @Flag(help: "Skip the cache-resident variant.")
    var noCached = false

    mutating func run() throws {
        let kernels: Kernels
        if let isa {
            guard let level = ISA(name: isa) else { throw ValidationError("unknown --isa '\(isa)'") }
            kernels = try Kernels(isa: level)
        } else {
            kernels = Kernels.best
        }
        let threadCounts = try parseThreads(threads)
        let shapeList = try parseShapes(shapes)
        guard batch >= 1, batch <= 4096 else { throw ValidationError("--batch must be in 1...4096") }
        guard workingSetMB >= 1 else { throw ValidationError("--working-set-mb must be positive") }
        var report = BenchReport(json: json)
        report.header("bitnet bench kernels — isa \(kernels.isa), cores \(cpuCount()), threads \(threadCounts.map(String.init).joined(separator: ","))")

        let pools = try Dictionary(uniqueKeysWithValues: threadCounts.map { ($0, try WorkerPool(threads: $0)) })
        var ceilings: [Int: (gbps: Double, gops: Double)] = [:]
        for t in threadCounts {
            let gbps = measureReadBandwidth(pool: pools[t]!, isa: kernels.isa)
            let gops = measureInt8Peak(pool: pools[t]!, isa: kernels.isa)
            let dispatch = measureDispatch(pool: pools[t]!)
            ceilings[t] = (gbps, gops)
            report.ceiling(threads: t, readGBps: gbps, int8Gops: gops, dispatchMicros: dispatch, isa: kernels.isa)
        }

        for (m, k) in shapeList {
            let bench = try ShapeBench(m: m, k: k, batch: batch, workingSetBytes: workingSetMB << 20, kernels: kernels)
            for cached in noCached ? [false] : [false, true] {
                for t in threadCounts {
                    for n in [1, batch] {
                        // OpenBLAS last: its threads keep spinning after a multi-threaded call and
                        // would take a core from the next measurement (it halved the 2-thread TL rows)
                        let i2s = try bench.timeI2S(n: n, pool: pools[t]!, cached: cached, budget: budget)
                        let tls = try (noTL ? [] : [Int32(1), 2]).map {
                            try bench.timeTL(type: $0, n: n, pool: pools[t]!, cached: cached, budget: budget)
                        }
                        let scalar = noScalar ? nil : try bench.timeScalar(n: n, pool: pools[t]!, cached: cached)
                        let blas = bench.timeBLAS(n: n, threads: t, cached: cached, budget: budget)
                        report.row(i2s: i2s, blas: blas, scalar: scalar, ceiling: ceilings[t]!, isa: kernels.isa)
                        for tl in tls { report.tlRow(tl, i2s: i2s, ceiling: ceilings[t]!, isa: kernels.isa) }
                        if t > 1 { usleep(300_000) } // let OpenBLAS's threads go back to sleep
                    }
                }
            }
        }
        report.footer()
    }

    private func parseThreads(_ text: String) throws -> [Int] {
        var out: [Int] = []
        for part in text.split(separator: ",") {
            let value = part == "all" ? cpuCount() : Int(part) ?? 0
            guard value >= 1, value <= 256 else { throw ValidationError("bad thread count '\(part)' in --threads") }
            if !out.contains(value) { out.append(value) }
        }
        guard !out.isEmpty else { throw ValidationError("--threads is empty") }
        return out
    }

    private func parseShapes(_ text: String) throws -> [(Int, Int)] {
        try text.split(separator: ",").map { part in
            let dims = part.lowercased().split(separator: "x").compactMap { Int($0) }
            guard dims.count == 2, dims[0] >= 1, dims[1] >= 1, dims[1] <= TernaryMatrix.maxColumns,
                  dims[0] <= 1 << 20
            else { throw ValidationError("bad shape '\(part)': expected MxK, e.g. 2560x6912") }
            return (dims[0], dims[1])
        }
    }
}

// MARK: - Ceilings

private struct StreamJob {
    var base: UnsafeRawPointer
    var length: Int
    var isa: bn_isa
}

func measureReadBandwidth(pool: WorkerPool, isa: ISA) -> Double {
    let length = 1 << 30 // ≥ 1 GiB: far past any last-level cache
    let buffer = AlignedBuffer(byteCount: length, hugePages: true) // as the weights are
    memset(buffer.pointer, 1, length)
    var job = StreamJob(base: UnsafeRawPointer(buffer.pointer), length: length, isa: bn_isa(rawValue: UInt32(isa.rawValue)))
    let task: @convention(c) (UnsafeMutableRawPointer?, Int32, Int32) -> Void = { ctx, ith, nth in
        let job = ctx!.assumingMemoryBound(to: StreamJob.self)
        let slice = job.pointee.length / Int(nth) / 64 * 64
        _ = bn_bench_read(job.pointee.isa, job.pointee.base + slice * Int(ith), slice)
    }
    var samples: [Double] = []
    withExtendedLifetime(buffer) {
        for _ in 0..<5 {
            samples.append(Stopwatch.time { withUnsafeMutablePointer(to: &job) { pool.run(task, context: $0) } })
        }
    }
    return Double(length) / TimingStats(samples).median / 1e9
}

func measureInt8Peak(pool: WorkerPool, isa: ISA) -> Double {
    // an AMX pass is 64× a VNNI pass (65,536 vs 1,024 multiply-adds): 1 G per run,
    // a few ms at the tile unit's rate, against 4 G per run for the vector probes
    measurePeak(pool: pool, isa: isa, iterations: isa == .amx ? 16_000 : 4_000_000, probe: bn_bench_int8_peak)
}

/// A warning when the int8 peak measured with several threads is far below that many
/// times the one-thread peak of the same run: while it ran, another process or the
/// hypervisor held one of the cores, or an affinity mask (`taskset`) left fewer cores.
/// On the 2-core VM a 2-thread probe once measured 468 G-op/s, one core's worth, and that
/// run's 2-thread decoding matched its 1-thread speed, so that thread count's figures in
/// this run do not compare with the others. nil when the peaks scale (or there is no
/// one-thread peak to compare with).
func peakScalingWarning(threads: Int, peak: Double, oneThreadPeak: Double?) -> String? {
    guard threads > 1, let one = oneThreadPeak, one > 0, peak < 0.75 * Double(threads) * one else { return nil }
    return String(format: "warning: at %d threads the int8 probe measured %.0f G-op/s, %.1f× its one-thread %.0f: "
                  + "fewer cores than threads were free (busy elsewhere, or this process is limited to fewer), "
                  + "so this run's %d-thread figures are not comparable",
                  threads, peak, peak / one, one, threads)
}

/// f32 GFLOP/s of the pool's threads together (2 per fused multiply-add), best of 5
/// runs of ~10 ms; 0 at the scalar level.
func measureF32Peak(pool: WorkerPool, isa: ISA) -> Double {
    measurePeak(pool: pool, isa: isa, iterations: 2_000_000, probe: bn_bench_f32_peak)
}

/// A probe that returns its multiply-adds for `iterations` passes.
private typealias PeakProbe = @convention(c) (bn_isa, UInt64) -> UInt64

private struct PeakJob {
    var isa: bn_isa
    var iterations: UInt64
    var probe: PeakProbe
}

/// G-op/s (2 per multiply-add) of `probe` run on every pool thread at once, best of 5.
private func measurePeak(pool: WorkerPool, isa: ISA, iterations: UInt64, probe: PeakProbe) -> Double {
    var job = PeakJob(isa: bn_isa(rawValue: UInt32(isa.rawValue)), iterations: iterations, probe: probe)
    let task: @convention(c) (UnsafeMutableRawPointer?, Int32, Int32) -> Void = { ctx, _, _ in
        let job = ctx!.assumingMemoryBound(to: PeakJob.self).pointee
        _ = job.probe(job.isa, job.iterations)
    }
    let perPass = probe(job.isa, 1) // multiply-adds per pass and thread
    if perPass == 0 { return 0 }
    var best = 0.0
    for _ in 0..<5 {
        let seconds = Stopwatch.time { withUnsafeMutablePointer(to: &job) { pool.run(task, context: $0) } }
        let ops = 2.0 * Double(perPass) * Double(iterations) * Double(pool.threads)
        best = max(best, ops / seconds / 1e9)
    }
    return best
}

private func measureDispatch(pool: WorkerPool) -> Double {
    let task: @convention(c) (UnsafeMutableRawPointer?, Int32, Int32) -> Void = { _, _, _ in }
    for _ in 0..<1000 { pool.run(task, context: nil) }
    let calls = 20000
    let seconds = Stopwatch.time { for _ in 0..<calls { pool.run(task, context: nil) } }
    return seconds / Double(calls) * 1e6
}
