import BitNet
import BitNetConvert

/// `bench e2e --parallel 1,2,4,8,16`: the aggregate decoding speed of B sequences
/// stepped together (continuous batching's steady state), against two ceilings
/// measured in the same run: the weight read once per step (B × read bandwidth /
/// bytes per token) and compute for all rows: a token's ternary work (2 ops per
/// weight) at the int8 peak plus its head at the rate the head runs — the f32
/// FMA peak for the F16 head (2 FLOPs per weight), the int8 peak for the int8
/// and block heads (2 ops per weight; a block head's unpacking is not counted,
/// so its ceiling is optimistic). Both peaks are measured in the same run.
struct ParallelBench {
    let weights: ModelWeights
    let kernels: Kernels
    let headPrecision: BitNetModel.HeadPrecision
    let kernelSelection: KernelSelection
    let kvPrecision: KVCache.Precision
    let promptTokens: Int
    let genTokens: Int
    let repetitions: Int
    let json: Bool
    let name: String

    func run(threads: [Int], parallel: [Int]) throws {
        let c = weights.config
        let ternaryWeights = weights.layers.reduce(0) { sum, l in sum + l.projections.reduce(0) { $0 + $1.rows * $1.cols } }
        let ternaryOps = 2.0 * Double(ternaryWeights), headOps = 2.0 * Double(c.vocabSize * c.hiddenSize)
        let f32Head = headPrecision == .f16 && weights.outputBlocks == nil
        let bytesPerToken = weights.bytesPerToken - BitNetModel.HeadPrecision.f16.headBytes(weights) + headPrecision.headBytes(weights)
        let widest = parallel.max() ?? 1
        var rng = SeededGenerator(seed: 42)
        func randomTokens(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) } }
        var oneThreadPeak: Double?
        for t in threads {
            let model = try BitNetModel(weights: weights, contextLength: promptTokens + genTokens + 2, threads: t,
                                        kernels: kernels, batchSize: max(128, widest), headPrecision: headPrecision,
                                        kernel: kernelSelection, kvPrecision: kvPrecision)
            let peak = measureInt8Peak(pool: model.pool, isa: kernels.isa)
            if t == 1 { oneThreadPeak = peak }
            if let warning = peakScalingWarning(threads: t, peak: peak, oneThreadPeak: oneThreadPeak) { note(warning) }
            let f32Peak = measureF32Peak(pool: model.pool, isa: kernels.isa)
            // seconds of compute per token at the measured peaks (G-op/s, GFLOP/s)
            let computeSeconds = ternaryOps / (peak * 1e9) + headOps / ((f32Head ? f32Peak : peak) * 1e9)
            var single = 0.0
            for p in parallel {
                let sessions = try (0..<p).map { _ in try model.makeSession() }
                let prompts = (0..<p).map { _ in randomTokens(promptTokens) }
                let decode = (0..<genTokens).map { _ in randomTokens(p) }
                var samples: [Double] = []
                let before = measureReadBandwidth(pool: model.pool, isa: kernels.isa)
                for _ in 0..<repetitions {
                    for s in sessions { s.reset() }
                    _ = try model.step(zip(sessions, prompts).map { SequenceInput(session: $0, tokens: $1, logits: .none) })
                    let seconds = try Stopwatch.time {
                        for row in decode {
                            _ = try model.step(zip(sessions, row).map { SequenceInput(session: $0, tokens: [$1]) })
                        }
                    }
                    samples.append(Double(p * genTokens) / seconds)
                }
                let after = measureReadBandwidth(pool: model.pool, isa: kernels.isa)
                let stats = TimingStats(samples)
                let aggregate = stats.median
                if p == 1 { single = aggregate }
                let bandwidth = (before + after) / 2
                let readCeiling = Double(p) * bandwidth * 1e9 / Double(bytesPerToken)
                let computeCeiling = 1 / computeSeconds
                let target = single > 0 ? min(Double(p) * single, computeCeiling) : computeCeiling
                if json {
                    print(jsonLine([("model", .string(name)), ("threads", .int(t)), ("parallel", .int(p)),
                                    ("aggregate_tg_tok_s", .double(aggregate)),
                                    ("per_stream_tg_tok_s", .double(aggregate / Double(p))),
                                    ("aggregate_min", .double(stats.min)), ("aggregate_max", .double(samples.max() ?? 0)),
                                    ("ceiling_tok_s", .double(computeCeiling)), ("read_ceiling_tok_s", .double(readCeiling)),
                                    ("int8_peak_gops", .double(peak)), ("f32_peak_gflops", .double(f32Peak)),
                                    ("head_at_f32_peak", .bool(f32Head)), ("read_bandwidth_gbps_before", .double(before)),
                                    ("read_bandwidth_gbps_after", .double(after)), ("head", .string(headPrecision.label(weights))),
                                    ("fraction_of_target", .double(aggregate / target)), ("tg_tokens", .int(genTokens))]))
                } else {
                    // typed locals: an untyped `c ? x : 1` among CVarArgs becomes an Int on one branch, which
                    // %.2f then misreads (with no single-stream run, `--parallel 8` alone, it crashed)
                    let overSingle: Double = single > 0 ? aggregate / single : 1
                    let headPeak = f32Head ? String(format: ", head at the f32 FMA peak %.0f GFLOP/s", f32Peak) : ""
                    print(String(format: "threads %d, parallel %2d: aggregate tg %.1f tok/s (%.1f–%.1f), %.2f per stream = %.2fx single; "
                                 + "ceilings: compute %.1f (int8 peak %.0f G-op/s", t, p, aggregate, stats.min, samples.max() ?? 0,
                                 aggregate / Double(p), overSingle, computeCeiling, peak)
                          + headPeak
                          + String(format: "), read %.1f (%.1f→%.1f GB/s); %.0f%% of min(%d×single, compute)",
                                   readCeiling, before, after, aggregate / target * 100, p))
                }
            }
        }
    }
}
