import Foundation
import ArgumentParser
import BitNet

/// `bitnet bench e2e`: prompt-processing and generation speed like
/// llama-bench, with the machine's read bandwidth measured in the same run
/// to express generation as a fraction of the roofline.
struct EndToEndBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "e2e",
        abstract: "Prompt processing (pp) and generation (tg) tok/s on a model, against the bandwidth roofline."
    )

    @Option(name: .shortAndLong, help: "Model file.") var model: String
    @Option(name: .customShort("p"), help: "Prompt tokens (pp).") var promptTokens = 128
    @Option(name: .customShort("n"), help: "Generated tokens (tg).") var genTokens = 128
    @Option(name: .customShort("t"), help: "Thread counts, comma-separated.") var threads = "1,all"
    @Option(name: .customShort("r"), help: "Repetitions (the median is reported).") var repetitions = 3
    @Option(name: .customShort("d"), help: "Context depth: tokens already in the KV cache before each pp/tg run (llama-bench's -d).")
    var depth = 0
    @Option(help: "Prompt tokens per batch.") var batch = 128
    @Option(help: "Kernel level (may only lower the detected one).") var isa: String?
    @Option(help: "Output head: f16 (exact) or q8 (int8, opt-in).") var head = "f16"
    @Option(help: "Decode kernel: auto, i2_s, tl1 or tl2.") var kernel = "auto"
    @Option(name: .customLong("kv"), help: "KV cache precision: f32 or f16.") var kvPrecision = "f32"
    @Flag(help: "One JSON object per thread count.") var json = false
    @Option(help: "Sequences decoded together, comma-separated (e.g. 1,2,4,8,16): aggregate tg of batched steps instead of pp/tg.")
    var parallel: String?

    func run() throws {
        guard promptTokens >= 1, genTokens >= 1, repetitions >= 1 else { throw ValidationError("-p, -n and -r must be ≥ 1") }
        guard depth >= 0 else { throw ValidationError("-d must be ≥ 0") }
        var counts: [Int] = []
        for part in threads.split(separator: ",") {
            let v = part == "all" ? cpuCount() : Int(part) ?? 0
            guard v >= 1 else { throw ValidationError("bad thread count '\(part)'") }
            if !counts.contains(v) { counts.append(v) }
        }
        let kernels: Kernels
        if let isa {
            guard let level = ISA(name: isa) else { throw ValidationError("unknown --isa '\(isa)'") }
            kernels = try Kernels(isa: level)
        } else {
            kernels = .best
        }
        let loadStart = Stopwatch.now()
        let weights = try ModelWeights(path: model)
        let loadSeconds = Stopwatch.now() - loadStart
        let c = weights.config
        guard let kernelSelection = KernelSelection(name: kernel) else {
            throw ValidationError("--kernel must be auto, i2_s, tl1 or tl2")
        }
        guard let headPrecision = BitNetModel.HeadPrecision(rawValue: head) else {
            throw ValidationError("--head must be f16 or q8")
        }
        guard let kv = KVCache.Precision(rawValue: kvPrecision) else { throw ValidationError("--kv must be f32 or f16") }
        let bytesPerToken = weights.bytesPerToken - (headPrecision == .q8 ? c.vocabSize * c.hiddenSize : 0)
        let name = model.split(separator: "/").last.map(String.init) ?? model
        if let parallel {
            let widths = parallel.split(separator: ",").map { Int($0) ?? 0 }
            guard !widths.isEmpty, widths.allSatisfy({ (1...256).contains($0) }) else {
                throw ValidationError("--parallel takes counts in 1...256, comma-separated (got '\(parallel)')")
            }
            try ParallelBench(weights: weights, kernels: kernels, headPrecision: headPrecision, kernelSelection: kernelSelection,
                              kvPrecision: kv, promptTokens: promptTokens, genTokens: genTokens, repetitions: repetitions,
                              json: json, name: name).run(threads: counts, parallel: widths)
            return
        }
        if !json {
            print("model \(name): \(c.architectureName), \(c.layerCount) layers, hidden \(c.hiddenSize); " +
                  "\(ProgressBar.bytes(Double(bytesPerToken))) read per token; load \(String(format: "%.2f", loadSeconds)) s; isa \(kernels.isa)")
        }
        var rng = SeededGenerator(seed: 42)
        let prompt = (0..<promptTokens).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) }
        let decode = (0..<genTokens).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) }
        let prefix = (0..<depth).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) }
        for t in counts {
            let m = try BitNetModel(weights: weights, contextLength: depth + max(promptTokens, genTokens) + 1, threads: t,
                                    kernels: kernels, batchSize: batch, headPrecision: headPrecision,
                                    kernel: kernelSelection, kvPrecision: kv)
            let session = try m.makeSession()
            var pp: [Double] = [], tg: [Double] = []
            _ = try session.forward(Array(prompt.prefix(8))) // warm-up: pages, pool threads
            // the depth's tokens are computed once, untimed; each run then starts from them
            session.reset()
            if !prefix.isEmpty { _ = try session.forward(prefix) }
            for _ in 0..<repetitions {
                session.truncate(to: depth)
                pp.append(Double(promptTokens) / (try Stopwatch.time { _ = try session.forward(prompt) }))
                session.truncate(to: depth)
                tg.append(Double(genTokens) / (try Stopwatch.time { for token in decode { _ = try session.forward([token]) } }))
            }
            let bandwidth = measureReadBandwidth(pool: m.pool, isa: kernels.isa)
            let ppMedian = TimingStats(pp).median, tgMedian = TimingStats(tg).median
            let roofline = bandwidth * 1e9 / Double(bytesPerToken)
            if json {
                print(jsonLine([("model", .string(name)), ("threads", .int(t)), ("pp_tok_s", .double(ppMedian)),
                                ("tg_tok_s", .double(tgMedian)), ("bytes_per_token", .int(bytesPerToken)),
                                ("read_bandwidth_gbps", .double(bandwidth)), ("roofline_fraction", .double(tgMedian / roofline)),
                                ("head", .string(head)), ("kernel", .string(kernel)), ("pp_tokens", .int(promptTokens)), ("tg_tokens", .int(genTokens)), ("depth", .int(depth)), ("kv", .string(kvPrecision)), ("isa", .string(kernels.isa.description))]))
            } else {
                print(String(format: "threads %d: pp%d %.1f tok/s | tg%d %.2f tok/s = %.0f%% of roofline (%.1f GB/s read → %.1f tok/s)%@",
                             t, promptTokens, ppMedian, genTokens, tgMedian, tgMedian / roofline * 100, bandwidth, roofline,
                             depth > 0 ? " @ depth \(depth) (the roofline counts weights only)" : ""))
            }
        }
    }
}
