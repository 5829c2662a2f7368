/// How many prompt tokens a batched step may carry while other requests are
/// decoding, from what the steps so far took on this host.
///
/// A fixed row budget cannot bound inter-token latency on every host: with
/// 64 rows per step, a step that fed 56 prompt tokens took about 4× a decoding
/// step of 8 streams on the compute-weak AVX-512 EPYC host (inter-token latency
/// p99 / p50 4.01 in `tools/bench_serve.py`), and 2.5× on the AMX Xeon. So
/// while anyone is decoding, the prompt rows of a step are limited to what fits
/// in `slowdown − 1` decoding steps at the measured cost of a prompt row;
/// `configured` stays the ceiling, and with nobody decoding prompts get all of
/// it (throughput is all that matters then). Each estimate is a moving average
/// of the steps that measured it, so the budget follows the host and the mix.
///
/// Why 4, and a floor of a quarter of the budget: the decoding steps averaged
/// include the narrow ones while slots fill, so the limit sits well under 4× the
/// median inter-token gap, and without the floor prompts trickle in behind the
/// first slots. On the EPYC host (8 clients, 256 tokens each, `--parallel 8`, 2
/// threads; fixed 64-row budget: 53.3 tok/s, ITL p99/p50 4.01, time to first
/// token p50/p99 6.3/11.5 s), without the floor: slowdown 2 gave 32.7 tok/s and
/// 1.31, 3 gave 44.4 and 1.20, 4 gave 46.3–53.2 and 1.19–1.66 with first tokens
/// p99 15–32 s; slowdown 4 with the floor 52.2 tok/s, 1.84, first tokens
/// 7.1/15.5 s.
package struct StepBudget {
    /// A step carrying prompt tokens should take at most about this many times the
    /// average decoding step (the serving target is inter-token latency p99 ≤ 3× its median).
    package static let slowdown = 4.0
    /// Weight of the newest step in the moving averages.
    static let smoothing = 0.25

    /// Seconds of a step with decoding rows only, and what each prompt row adds to one.
    package private(set) var decodeStepSeconds: Double?
    package private(set) var secondsPerPromptRow: Double?

    package init() {}

    /// Prompt tokens the next step may carry beside `decoding` decoding rows, out of a
    /// `configured` row budget: never fewer than a quarter of it (or what is left), so
    /// waiting prompts keep moving while the first slots decode in narrow, fast steps.
    package func promptRows(configured: Int, decoding: Int) -> Int {
        let free = max(1, configured - decoding)
        guard decoding > 0, let step = decodeStepSeconds, let row = secondsPerPromptRow, row > 0 else { return free }
        let fits = (Self.slowdown - 1) * step / row
        let floor = max(1, configured / 4)
        return fits.isFinite ? min(free, max(floor, Int(fits))) : free
    }

    /// Learns from a step that ran `decoding` decoding rows and `prompt` prompt rows
    /// in `seconds`.
    package mutating func record(decoding: Int, prompt: Int, seconds: Double) {
        guard seconds.isFinite, seconds > 0 else { return }
        if prompt == 0 {
            decodeStepSeconds = Self.average(decodeStepSeconds, seconds)
        } else {
            // the prompt rows' share: the step less a decoding step (which reads the
            // weights once, as any step does; before one was seen, all of it)
            let perRow = max(0, seconds - (decodeStepSeconds ?? 0)) / Double(prompt)
            secondsPerPromptRow = Self.average(secondsPerPromptRow, perRow)
        }
    }

    private static func average(_ old: Double?, _ new: Double) -> Double {
        old.map { $0 + smoothing * (new - $0) } ?? new
    }
}
