import Foundation
import ArgumentParser
import BitNet
import BitNetConvert

/// `bitnet bench e2e`: prompt-processing and generation speed like
/// llama-bench, with the machine's read bandwidth measured around every run
/// to express generation as a fraction of the roofline. Several thread counts
/// or kernels (`-t 1,2 --kernel i2_s,auto`) run interleaved, five runs each by
/// default, reported as medians with their spread (``MeasurementProtocol``).
struct EndToEndBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "e2e",
        abstract: "Prompt processing (pp) and generation (tg) tok/s on a model, against the bandwidth roofline."
    )

    @Option(name: .shortAndLong, help: "Model file.") var model: String
    @Option(name: .customShort("p"), help: "Prompt tokens (pp).") var promptTokens = 128
    @Option(name: .customShort("n"), help: "Generated tokens (tg).") var genTokens = 128
    @Option(name: .customShort("t"), help: "Thread counts, comma-separated.") var threads = "1,all"
    @Option(name: .customShort("r"), help: "Runs per configuration (medians and min–max are reported; default 5 when several thread counts or kernels are compared, else 3).")
    var repetitions: Int?
    @Option(name: .customShort("d"), help: "Context depth: tokens already in the KV cache before each pp/tg run (llama-bench's -d).")
    var depth = 0
    @Option(help: "Prompt tokens per batch.") var batch = 128
    @Option(help: "Kernel level (may only lower the detected one).") var isa: String?
    @Option(help: "Output head: f16 (as stored), q8 (int8 per row), or requantized at load to q8_0, q6_k, q4_k or q4_0.") var head = "f16"
    @Option(help: "Decode kernel: auto, i2_s, tl1 or tl2; several, comma-separated, are compared interleaved (e.g. i2_s,auto).")
    var kernel = "auto"
    @Option(name: .customLong("kv"), help: "KV cache precision: f32 or f16.") var kvPrecision = "f32"
    @Flag(help: "One JSON object per thread count.") var json = false
    @Option(help: "Sequences decoded together, comma-separated (e.g. 1,2,4,8,16): aggregate tg of batched steps instead of pp/tg.")
    var parallel: String?
    @Flag(help: "Per-token time breakdown of generation (embedding, norms, quantization, each projection family, attention, head) against the read bandwidth.")
    var profile = false

    func run() throws {
        guard promptTokens >= 1, genTokens >= 1, (repetitions ?? 1) >= 1 else { throw ValidationError("-p, -n and -r must be ≥ 1") }
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
        var kernelNames: [String] = []
        for part in kernel.split(separator: ",").map(String.init) where !kernelNames.contains(part) {
            guard KernelSelection(name: part) != nil else { throw ValidationError("--kernel must be auto, i2_s, tl1 or tl2 (or several, comma-separated)") }
            kernelNames.append(part)
        }
        guard let kernelSelection = kernelNames.first.flatMap(KernelSelection.init(name:)) else {
            throw ValidationError("--kernel must be auto, i2_s, tl1 or tl2")
        }
        let loadStart = Stopwatch.now()
        BusErrorHandler.install(mappedFile: model)
        let file = try GGUFFile(path: model)
        let lookupTables = LookupTableLoading(for: kernelNames.compactMap(KernelSelection.init(name:)), file: file)
        let weights = try ModelWeights(file: file, lookupTables: lookupTables)
        let loadSeconds = Stopwatch.now() - loadStart
        let c = weights.config
        // projections run from the file's pages: the roofline is the page cache's read bandwidth
        let inPlace = weights.layers.first?.q.inPlaceKernel != nil
        let runs = repetitions ?? (counts.count * kernelNames.count > 1 ? MeasurementProtocol.comparedRuns : 3)
        guard let headPrecision = BitNetModel.HeadPrecision(rawValue: head) else {
            throw ValidationError("--head must be one of \(BitNetModel.HeadPrecision.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let kv = KVCache.Precision(rawValue: kvPrecision) else { throw ValidationError("--kv must be f32 or f16") }
        let bytesPerToken = weights.bytesPerToken - BitNetModel.HeadPrecision.f16.headBytes(weights) + headPrecision.headBytes(weights)
        let name = model.split(separator: "/").last.map(String.init) ?? model
        if profile {
            for t in counts {
                let m = try BitNetModel(weights: weights, contextLength: promptTokens + genTokens + 1, threads: t,
                                        kernels: kernels, batchSize: batch, headPrecision: headPrecision,
                                        kernel: kernelSelection, kvPrecision: kv)
                var bench = ProfileBench(model: m, promptTokens: promptTokens, genTokens: genTokens, json: json, name: name)
                bench.parallel = parallel.flatMap { Int($0) } ?? 1
                try bench.run()
            }
            return
        }
        if let parallel {
            let widths = parallel.split(separator: ",").map { Int($0) ?? 0 }
            guard !widths.isEmpty, widths.allSatisfy({ (1...256).contains($0) }) else {
                throw ValidationError("--parallel takes counts in 1...256, comma-separated (got '\(parallel)')")
            }
            try ParallelBench(weights: weights, kernels: kernels, headPrecision: headPrecision, kernelSelection: kernelSelection,
                              kvPrecision: kv, promptTokens: promptTokens, genTokens: genTokens, repetitions: runs,
                              json: json, name: name).run(threads: counts, parallel: widths)
            return
        }
        let loadedRSS = ProcessMemory.peakResidentBytes() ?? 0
        if !json {
            print("model \(name): \(c.architectureName), \(c.layerCount) layers, hidden \(c.hiddenSize); " +
                  "\(ProgressBar.bytes(Double(bytesPerToken))) read per token; load \(String(format: "%.2f", loadSeconds)) s, " +
                  "peak RSS \(ProgressBar.bytes(Double(loadedRSS))) after load" +
                  (inPlace ? " (projections in place: file pages)" : "") + "; isa \(kernels.isa)")
        }
        var rng = SeededGenerator(seed: 42)
        let prompt = (0..<promptTokens).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) }
        let decode = (0..<genTokens).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) }
        let prefix = (0..<depth).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) }
        // every (threads, kernel) configuration gets its model — the weights are shared, each
        // model keeps its own decode kernel choice — and session
        struct Config {
            let threads: Int
            let kernelName: String
            let selection: KernelSelection
            let model: BitNetModel
            let session: Session
        }
        var configs: [Config] = []
        for t in counts {
            for name in kernelNames {
                let selection = KernelSelection(name: name)!
                let m = try BitNetModel(weights: weights, contextLength: depth + max(promptTokens, genTokens) + 1, threads: t,
                                        kernels: kernels, batchSize: batch, headPrecision: headPrecision,
                                        kernel: selection, kvPrecision: kv)
                configs.append(Config(threads: t, kernelName: name, selection: selection, model: m, session: try m.makeSession()))
            }
        }
        // untimed: warm-up (pages, pool threads) and the depth's tokens, once per configuration
        for c in configs {
            _ = try c.session.forward(Array(prompt.prefix(8)))
            c.session.reset()
            if !prefix.isEmpty { _ = try c.session.forward(prefix) }
        }
        let promptOpsPerToken = 2.0 * Double(weights.layers.reduce(0) { sum, l in sum + l.projections.reduce(0) { $0 + $1.rows * $1.cols } })
        // the model's own peak (load, warm-up): before the probes below add their buffers
        let modelPeakRSS = ProcessMemory.peakResidentBytes() ?? 0
        // the host's ceilings per thread count, printed next to the absolute figures
        var peaks: [Int: Double] = [:]
        for c in configs where peaks[c.threads] == nil { peaks[c.threads] = measureInt8Peak(pool: c.model.pool, isa: kernels.isa) }
        for (t, peak) in peaks.sorted(by: { $0.key < $1.key }) {
            if let warning = peakScalingWarning(threads: t, peak: peak, oneThreadPeak: peaks[1]) { note(warning) }
        }
        let probe = inPlace ? BandwidthProbe(fileRegion: UnsafeRawBufferPointer(rebasing: file.bytes[file.dataOffset...]))
                            : BandwidthProbe()
        let samples = try MeasurementProtocol.interleaved(configs, runs: runs, probe: { probe.measure(pool: $0.model.pool, isa: kernels.isa) }) { c in
            c.session.truncate(to: depth)
            let pp = Double(promptTokens) / (try Stopwatch.time { _ = try c.session.forward(prompt) })
            c.session.truncate(to: depth)
            let tg = Double(genTokens) / (try Stopwatch.time { for token in decode { _ = try c.session.forward([token]) } })
            return ["pp": pp, "tg": tg]
        }
        if !json {
            print("host: int8 peak " + peaks.keys.sorted().map { String(format: "%.0f GOP/s at %d thread(s)", peaks[$0]!, $0) }.joined(separator: ", ") +
                  "; \(runs) run(s) per configuration" + (configs.count > 1 ? ", interleaved" : "") +
                  "; read bandwidth " + (inPlace ? "of the model file's resident pages " : "") +
                  "measured before and after each run; medians (min–max)")
            if inPlace, let first = configs.first {
                let anonymous = BandwidthProbe().measure(pool: first.model.pool, isa: kernels.isa)
                print(String(format: "  (anonymous memory reads %.1f GB/s at %d thread(s) now; the roofline uses the file pages')", anonymous, first.threads))
            }
            print("peak RSS \(ProgressBar.bytes(Double(modelPeakRSS))) through load and warm-up (file \(ProgressBar.bytes(Double(file.fileSize))); " +
                  "the bandwidth probes' buffers come after)")
        }
        var tgMedians: [String: Double] = [:]
        for (c, runs) in zip(configs, samples) {
            let pp = Spread(runs.map { $0.values["pp"]! }), tg = Spread(runs.map { $0.values["tg"]! })
            // prefill against the int8 ceiling: 2 ops per ternary weight per prompt token (the head runs for one row)
            let ppFraction = pp.median * promptOpsPerToken / ((peaks[c.threads] ?? .nan) * 1e9)
            let bw = Spread(runs.flatMap { [$0.bandwidthBefore, $0.bandwidthAfter] })
            // each run against the bandwidth measured around it
            let fraction = Spread(runs.map { $0.values["tg"]! / ($0.bandwidth * 1e9 / Double(bytesPerToken)) })
            tgMedians["\(c.threads)|\(c.kernelName)"] = tg.median
            if json {
                print(jsonLine([("model", .string(name)), ("threads", .int(c.threads))] + pp.json("pp_tok_s") + tg.json("tg_tok_s") +
                               [("pp_int8_fraction", .double(ppFraction)), ("bytes_per_token", .int(bytesPerToken))] +
                               bw.json("read_bandwidth_gbps") +
                               fraction.json("roofline_fraction") +
                               [("int8_peak_gops", .double(peaks[c.threads] ?? .nan)), ("runs", .int(runs.count)),
                                ("repeated_runs", .int(runs.reduce(0) { $0 + $1.repeats })),
                                ("unsteady_runs", .int(runs.filter { !$0.steady }.count)),
                                ("head", .string(headPrecision.label(weights))), ("kernel", .string(c.kernelName)), ("pp_tokens", .int(promptTokens)),
                                ("tg_tokens", .int(genTokens)), ("depth", .int(depth)), ("kv", .string(kvPrecision)),
                                ("isa", .string(kernels.isa.description)), ("load_s", .double(loadSeconds)),
                                ("peak_rss_bytes", .int(modelPeakRSS)),
                                ("file_bytes", .int(file.fileSize)), ("in_place", .bool(inPlace))]))
            } else {
                let label = kernelNames.count > 1 ? "threads \(c.threads), kernel \(c.kernelName)" : "threads \(c.threads)"
                print("\(label): pp\(promptTokens) \(pp.text(1)) tok/s" + String(format: " (%.0f%% of int8 peak)", ppFraction * 100) + " | tg\(genTokens) \(tg.text(2)) tok/s = " +
                      String(format: "%.0f%% (%.0f–%.0f%%)", fraction.median * 100, fraction.min * 100, fraction.max * 100) +
                      " of roofline | read \(bw.text(1)) GB/s around the runs" + String(format: ", int8 peak %.0f GOP/s", peaks[c.threads] ?? .nan) +
                      MeasurementProtocol.note(runs) +
                      (depth > 0 ? " @ depth \(depth) (the roofline counts weights only)" : ""))
            }
        }
        // kernels compared: each one's median tg against the first kernel's, at each thread count
        if !json, kernelNames.count > 1 {
            for t in counts {
                guard let base = tgMedians["\(t)|\(kernelNames[0])"] else { continue }
                let others = kernelNames.dropFirst().compactMap { k in tgMedians["\(t)|\(k)"].map { String(format: "%@ %.3f×", k, $0 / base) } }
                print("tg vs \(kernelNames[0]) at \(t) thread(s): " + others.joined(separator: ", "))
            }
        }
    }
}
