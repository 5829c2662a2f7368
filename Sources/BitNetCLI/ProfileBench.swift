import Foundation
import BitNet
import BitNetJSON
import BitNetConvert

/// `bench e2e --profile`: where a generated token's time goes — each phase's share
/// of the token, and for the phases that stream memory (projections, attention over
/// the KV cache, head) the speed their bytes were read at against the read bandwidth
/// measured around the run.
struct ProfileBench {
    let model: BitNetModel
    let promptTokens: Int
    let genTokens: Int
    let json: Bool
    let name: String
    /// Sequences per step (bench e2e --profile --parallel N): the breakdown of a batched step.
    var parallel = 1

    func run() throws {
        let c = model.config
        let sessions = try (0..<parallel).map { _ in try model.makeSession() }
        let session = sessions[0]
        var rng = SeededGenerator(seed: 7)
        func randomTokens(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32(rng.next() % UInt64(c.vocabSize)) } }
        let prompt = randomTokens(promptTokens), decode = (0..<genTokens).map { _ in randomTokens(parallel) }
        _ = try session.forward(Array(prompt.prefix(8))) // warm-up: pages, pool threads
        session.reset()
        // the prompt as one step, profiled too: prefill is compute-bound, so its table shows
        // shares only (the GEMM's fraction of the int8 peak is in bench e2e's pp line)
        let promptProfile = StepProfile()
        let promptStart = Stopwatch.now()
        _ = try model.step(sessions.map { SequenceInput(session: $0, tokens: prompt, logits: .none) }, profile: promptProfile)
        let promptWall = Stopwatch.now() - promptStart
        let profile = StepProfile()
        let before = measureReadBandwidth(pool: model.pool, isa: model.kernels.isa)
        let start = Stopwatch.now()
        for row in decode {
            _ = try model.step(zip(sessions, row).map { SequenceInput(session: $0, tokens: [$1]) }, profile: profile)
        }
        let wall = Stopwatch.now() - start
        let after = measureReadBandwidth(pool: model.pool, isa: model.kernels.isa)
        let bandwidth = (before + after) / 2

        // bytes each phase reads per token
        func bytes(_ projections: [Int]) -> Int { // indices in LayerWeights.projections order
            model.weights.layers.indices.reduce(0) { sum, l in
                sum + projections.reduce(0) { $0 + model.decodeByteCount(layer: l, projection: $1) }
            }
        }
        let meanPosition = Double(promptTokens) + Double(genTokens) / 2
        // each sequence of the step reads its own cache
        let kvBytes = Int(2 * Double(c.layerCount * c.kvDim) * meanPosition) * session.kvPrecision.bytes * parallel
        let headBytes = model.q8Head != nil ? c.vocabSize * c.hiddenSize
            : model.blockHead?.byteCount ?? c.vocabSize * c.hiddenSize * 2
        let streamed: [StepProfile.Phase: Int] = [
            .qkv: bytes([0, 1, 2]), .output: bytes([3]), .gateUp: bytes([4, 5]), .down: bytes([6]),
            .attention: kvBytes, .head: headBytes,
        ]
        let perToken = wall / Double(genTokens)
        let measured = profile.total / Double(genTokens)
        let totalBytes = streamed.values.reduce(0, +)
        let roofline = bandwidth * 1e9 / Double(totalBytes) // tok/s (steps/s when batched) at the bandwidth
        if !json {
            if parallel > 1 { print("\(parallel) sequences per step: times are per step (\(parallel) tokens); weights are read once per step, each sequence's KV cache once") }
            print(String(format: "%@, threads %d: %.2f ms per token (%.1f tok/s); read %.1f→%.1f GB/s; %@ per token → roofline %.1f tok/s (%.0f%%)",
                         name, model.pool.threads, perToken * 1e3, 1 / perToken, before, after,
                         ProgressBar.bytes(Double(totalBytes)), roofline, roofline > 0 ? (1 / perToken) / roofline * 100 : 0.0))
            print("phase                      ms/token   share      bytes/token   GB/s   of bandwidth")
        }
        for phase in StepProfile.Phase.allCases {
            let seconds = (profile.seconds[phase] ?? 0) / Double(genTokens)
            let b = streamed[phase]
            let speed = b.map { seconds > 0 ? Double($0) / seconds / 1e9 : 0 }
            if json {
                let base = [("model", ReportValue.string(name)), ("threads", .int(model.pool.threads)), ("stage", .string("decode")),
                            ("phase", .string(phase.rawValue)), ("ms_per_token", .double(seconds * 1e3)),
                            ("share", .double(seconds / perToken)), ("read_bandwidth_gbps", .double(bandwidth))]
                let streaming = b.map { [("bytes_per_token", ReportValue.int($0)), ("gbps", .double(speed ?? 0)),
                                         ("bandwidth_fraction", .double((speed ?? 0) / bandwidth))] } ?? []
                print(jsonLine(base + streaming))
            } else {
                print(String(format: "%@ %9.3f   %5.1f%%   %@   %@", phase.rawValue.padding(toLength: 24, withPad: " ", startingAt: 0), seconds * 1e3, seconds / perToken * 100,
                             (b.map { ProgressBar.bytes(Double($0)) } ?? "").padding(toLength: 11, withPad: " ", startingAt: 0),
                             speed.map { String(format: "%5.1f   %5.0f%%", $0, $0 / bandwidth * 100) } ?? ""))
            }
        }
        if !json {
            print(String(format: "%@ %9.3f   %5.1f%%   (pool hand-offs, Swift overhead, clock reads)", "unaccounted".padding(toLength: 24, withPad: " ", startingAt: 0),
                         (perToken - measured) * 1e3, (perToken - measured) / perToken * 100))
        }
        printPrompt(promptProfile, wall: promptWall)
    }

    /// The prompt step's phases, per prompt token (all sequences' prompt rows together).
    private func printPrompt(_ profile: StepProfile, wall: Double) {
        let rows = Double(promptTokens * parallel)
        if !json {
            print(String(format: "prompt: %d token(s) × %d sequence(s) in one step, %.2f ms per prompt token (%.1f tok/s)",
                         promptTokens, parallel, wall / rows * 1e3, rows / wall))
            print("prompt phase               ms/token   share")
        }
        for phase in StepProfile.Phase.allCases {
            let seconds = (profile.seconds[phase] ?? 0) / rows
            if json {
                print(jsonLine([("model", .string(name)), ("threads", .int(model.pool.threads)), ("stage", .string("prompt")),
                                ("phase", .string(phase.rawValue)), ("ms_per_token", .double(seconds * 1e3)),
                                ("share", .double(seconds * rows / wall))]))
            } else {
                print(String(format: "%@ %9.4f   %5.1f%%", phase.rawValue.padding(toLength: 24, withPad: " ", startingAt: 0),
                             seconds * 1e3, seconds * rows / wall * 100))
            }
        }
        if !json {
            print(String(format: "%@ %9.4f   %5.1f%%", "unaccounted".padding(toLength: 24, withPad: " ", startingAt: 0),
                         (wall - profile.total) / rows * 1e3, (wall - profile.total) / wall * 100))
        }
    }
}
