import BitNet
import BitNetConvert

/// `bench e2e --parallel 1,2,4,8,16`: the aggregate decoding speed of B sequences
/// stepped together (continuous batching's steady state), against two ceilings
/// measured in the same run: the weight read once per step (B × read bandwidth /
/// bytes per token) and compute for all rows (int8 peak / ops per token: 2 per
/// ternary weight, and 2 per head weight — counted at the int8 rate, so for the
/// F16 head, whose f32 FMAs run slower, the ceiling is optimistic).
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
        let opsPerToken = 2.0 * Double(ternaryWeights + c.vocabSize * c.hiddenSize)
        let bytesPerToken = weights.bytesPerToken - BitNetModel.HeadPrecision.f16.headBytes(weights) + headPrecision.headBytes(weights)
        let widest = parallel.max() ?? 1
        var rng = SeededGenerator(seed: 42)
        func randomTokens(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) } }
        for t in threads {
            let model = try BitNetModel(weights: weights, contextLength: promptTokens + genTokens + 2, threads: t,
                                        kernels: kernels, batchSize: max(128, widest), headPrecision: headPrecision,
                                        kernel: kernelSelection, kvPrecision: kvPrecision)
            let peak = measureInt8Peak(pool: model.pool, isa: kernels.isa)
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
                let computeCeiling = peak * 1e9 / opsPerToken
                let target = single > 0 ? min(Double(p) * single, computeCeiling) : computeCeiling
                if json {
                    print(jsonLine([("model", .string(name)), ("threads", .int(t)), ("parallel", .int(p)),
                                    ("aggregate_tg_tok_s", .double(aggregate)),
                                    ("per_stream_tg_tok_s", .double(aggregate / Double(p))),
                                    ("aggregate_min", .double(stats.min)), ("aggregate_max", .double(samples.max() ?? 0)),
                                    ("ceiling_tok_s", .double(computeCeiling)), ("read_ceiling_tok_s", .double(readCeiling)),
                                    ("int8_peak_gops", .double(peak)), ("read_bandwidth_gbps_before", .double(before)),
                                    ("read_bandwidth_gbps_after", .double(after)), ("head", .string(headPrecision.rawValue)),
                                    ("fraction_of_target", .double(aggregate / target)), ("tg_tokens", .int(genTokens))]))
                } else {
                    print(String(format: "threads %d, parallel %2d: aggregate tg %.1f tok/s (%.1f–%.1f), %.2f per stream = %.2fx single; "
                                 + "ceilings: compute %.1f (int8 peak %.0f G-op/s), read %.1f (%.1f→%.1f GB/s); %.0f%% of min(%d×single, compute)",
                                 t, p, aggregate, stats.min, samples.max() ?? 0, aggregate / Double(p), single > 0 ? aggregate / single : 1,
                                 computeCeiling, peak, readCeiling, before, after, aggregate / target * 100, p))
                }
            }
        }
    }
}
