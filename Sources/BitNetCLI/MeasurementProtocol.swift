import Foundation
import BitNet
import BitNetJSON
import CKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The measurement protocol the benchmarks share (issue 16, item 5). On a shared
/// or virtual machine the read bandwidth moves between runs (this VM: 40 and, at
/// times, 70 GB/s at 2 threads), so a tok/s figure means little without the
/// bandwidth it ran against:
///   - configurations compared (thread counts, kernels) run interleaved, run 1 of
///     each, then run 2 of each, …, so a slow phase of the host hits all of them;
///   - the read bandwidth is measured right before and right after every run, and
///     each run's roofline fraction uses the mean of the two; a run whose two probes
///     differ by more than `maxBandwidthDrift` (the host changed state during it:
///     the 2-thread bandwidth of the AVX-512 EPYC host jumped between ~35 and
///     ~60 GB/s within one sitting, putting a run's fraction anywhere from 0.77
///     to 0.98) is run again, at most `unsteadyRetries` times, and counted;
///   - figures are medians with their spread (min–max) over the runs, never a best
///     case; the host's int8 peak and read bandwidth are printed next to them.
struct MeasurementProtocol {
    /// Runs per configuration when several are compared (one alone: the caller's default).
    static let comparedRuns = 5
    /// |after − before| / mean of a run's two bandwidth probes above which it is repeated.
    static let maxBandwidthDrift = 0.15
    static let unsteadyRetries = 2

    /// `runs` rounds; in each, `body(config)` for every configuration in order, with
    /// the bandwidth probed around it. Returns the samples per configuration.
    static func interleaved<Config>(_ configs: [Config], runs: Int, probe: (Config) -> Double,
                                    _ body: (Config) throws -> [String: Double]) rethrows -> [[RunSample]] {
        var out = [[RunSample]](repeating: [], count: configs.count)
        for _ in 0..<runs {
            for (i, c) in configs.enumerated() {
                var repeats = 0
                while true {
                    let before = probe(c)
                    let values = try body(c)
                    let after = probe(c)
                    let sample = RunSample(values: values, bandwidthBefore: before, bandwidthAfter: after, repeats: repeats)
                    if sample.steady || repeats == unsteadyRetries {
                        out[i].append(sample)
                        break
                    }
                    repeats += 1
                }
            }
        }
        return out
    }

    /// "" when every run was steady the first time; else how many were repeated
    /// and how many stayed unsteady after the retries.
    static func note(_ runs: [RunSample]) -> String {
        let repeated = runs.reduce(0) { $0 + $1.repeats }, unsteady = runs.filter { !$0.steady }.count
        if repeated == 0 && unsteady == 0 { return "" }
        return String(format: " [%d repeat(s): the bandwidth moved > %.0f%% during a run", repeated, maxBandwidthDrift * 100) +
            (unsteady > 0 ? "; \(unsteady) run(s) still unsteady]" : "]")
    }
}

/// One timed run: its figures (e.g. "pp", "tg" in tok/s) and the read bandwidth around it.
struct RunSample {
    let values: [String: Double]
    let bandwidthBefore: Double
    let bandwidthAfter: Double
    /// Times this run was repeated because the host's bandwidth moved during it.
    var repeats = 0
    var bandwidth: Double { (bandwidthBefore + bandwidthAfter) / 2 }
    /// The bandwidth held during the run (within `MeasurementProtocol.maxBandwidthDrift`).
    var steady: Bool { abs(bandwidthAfter - bandwidthBefore) <= MeasurementProtocol.maxBandwidthDrift * bandwidth }
}

/// Median and spread of one figure over runs.
struct Spread {
    let median: Double
    let min: Double
    let max: Double
    let count: Int

    init(_ samples: [Double]) {
        let s = TimingStats(samples)
        median = s.median
        min = s.min
        max = samples.max() ?? .nan
        count = samples.count
    }

    /// "29.8 (29.1–30.2)" with the given decimals.
    func text(_ decimals: Int) -> String {
        let f = "%.\(decimals)f"
        return String(format: f, median) + " (" + String(format: f, min) + "–" + String(format: f, max) + ")"
    }

    /// JSON fields "<name>" (the median, the field benchmarks always had), "<name>_min", "<name>_max".
    func json(_ name: String) -> [(String, ReportValue)] {
        [(name, .double(median)), (name + "_min", .double(min)), (name + "_max", .double(max))]
    }
}

/// Read bandwidth of a pool's threads, reusable between runs: one buffer of 4× the
/// last-level cache (at least 256 MiB) allocated and touched once, each probe the
/// median of three passes (~0.1 s at 25 GB/s). `measureReadBandwidth` (1 GiB, five
/// passes) stays the careful once-per-run ceiling of `bench kernels`.
///
/// The anonymous buffer is on huge pages, as loaded weights are (`AlignedBuffer`):
/// on 4 KiB pages the probe read less than the model streams, and single-stream
/// decoding showed 105–110% of its roofline. A model whose projections run in
/// place streams file-backed pages (the page cache), not anonymous memory:
/// `init(fileRegion:)` probes those instead, the bandwidth such a model's roofline
/// must use.
final class BandwidthProbe {
    private let buffer: UnsafeRawPointer
    private let length: Int
    private let anonymous: AlignedBuffer?

    init() {
        length = max(256 << 20, 4 * HostProfile.lastLevelCacheBytes) / 4096 * 4096
        let b = AlignedBuffer(byteCount: length, hugePages: true)
        memset(b.pointer, 1, length) // real pages (untouched ones all read the same zero page)
        buffer = UnsafeRawPointer(b.pointer)
        anonymous = b
    }

    /// Probes the middle of `region` (a file's mapped tensor data, already resident):
    /// the same length as the anonymous probe, or all of a smaller region.
    init(fileRegion region: UnsafeRawBufferPointer) {
        let want = max(256 << 20, 4 * HostProfile.lastLevelCacheBytes)
        length = min(want, region.count) / 4096 * 4096
        buffer = region.baseAddress! + (region.count - length) / 2 / 64 * 64
        anonymous = nil
    }

    private struct Job {
        var base: UnsafeRawPointer
        var length: Int
        var isa: bn_isa
    }

    /// GB/s read by all of `pool`'s threads together.
    func measure(pool: WorkerPool, isa: ISA) -> Double {
        var job = Job(base: buffer, length: length, isa: bn_isa(rawValue: UInt32(isa.rawValue)))
        let task: @convention(c) (UnsafeMutableRawPointer?, Int32, Int32) -> Void = { ctx, ith, nth in
            let job = ctx!.assumingMemoryBound(to: Job.self).pointee
            let slice = job.length / Int(nth) / 64 * 64
            _ = bn_bench_read(job.isa, job.base + slice * Int(ith), slice)
        }
        var samples: [Double] = []
        for _ in 0..<3 {
            samples.append(Stopwatch.time { withUnsafeMutablePointer(to: &job) { pool.run(task, context: $0) } })
        }
        return Double(length) / TimingStats(samples).median / 1e9
    }
}
