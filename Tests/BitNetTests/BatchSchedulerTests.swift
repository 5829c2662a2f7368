import XCTest
@testable import BitNet

/// Continuous batching: what each request gets does not depend on the batch.
final class BatchSchedulerTests: XCTestCase {
    private static let weights = Result { try ModelWeights(path: GoldenModelTests.modelPath) }

    private func model(threads: Int = 2) throws -> BitNetModel {
        try BitNetModel(weights: try Self.weights.get(), contextLength: 512, threads: threads)
    }

    private func prompt(_ n: Int, seed: UInt64) -> [Int32] {
        var rng = SeededGenerator(seed: seed)
        return (0..<n).map { _ in Int32(rng.next() % 4000) + 10 }
    }

    /// Reads a request's events to the end: its tokens and how it ended.
    private func drain(_ r: ScheduledGeneration) -> ([Int32], ScheduledGeneration.Event) {
        var tokens: [Int32] = []
        while true {
            guard let e = r.next(timeout: 30) else { return (tokens, .failed("timed out")) }
            if case .token(let t) = e { tokens.append(t) } else { return (tokens, e) }
        }
    }

    /// Tokens of `prompt` generated alone with ``Generator`` on a fresh session.
    private func alone(_ model: BitNetModel, _ prompt: [Int32], maxTokens: Int, sampling: SamplingParameters) throws -> [Int32] {
        var out: [Int32] = []
        try Generator(session: try model.makeSession()).generate(prompt: prompt, maxTokens: maxTokens, sampling: sampling) {
            out.append($0)
            return true
        }
        return out
    }

    /// 8 mixed requests (prompts of 3–150 tokens, greedy and seeded sampling, different
    /// lengths) through 8 slots with a small step budget, so prompt chunks and decoding rows
    /// share steps (no burst hold): each gets exactly the tokens it gets alone.
    func testEachRequestInABatchOfEightGetsItsTokensAlone() throws {
        let model = try model()
        let reports = ReportBox()
        let scheduler = try BatchScheduler(model: model, configuration: .init(parallel: 8, contextLength: 8 * 256,
                                                                              maxQueue: 0, stepTokenBudget: 24,
                                                                              burstPromptTokens: 0,
                                                                              onStep: { reports.add($0) }))
        defer { scheduler.close() }
        var requests: [ScheduledGeneration] = []
        for i in 0..<8 {
            var sampling = SamplingParameters.greedy
            if i % 2 == 1 {
                sampling.temperature = 0.9
                sampling.topP = 0.9
                sampling.seed = UInt64(100 + i)
            }
            let r = ScheduledGeneration(prompt: prompt([3, 40, 7, 150, 1, 64, 20, 90][i], seed: UInt64(i)),
                                        maxTokens: [12, 5, 20, 8, 16, 3, 10, 6][i], sampling: sampling)
            try scheduler.submit(r)
            requests.append(r)
        }
        for (i, r) in requests.enumerated() {
            let (tokens, end) = drain(r)
            XCTAssertEqual(end, .finished(.maxTokens), "request \(i)")
            XCTAssertEqual(tokens, try alone(model, r.prompt, maxTokens: r.maxTokens, sampling: r.sampling), "request \(i)")
            XCTAssertEqual(r.stats.generatedTokens, r.maxTokens)
        }
        XCTAssertEqual(scheduler.snapshot.activeSlots, 0)
        XCTAssertTrue(reports.all.contains { $0.decoding > 0 && $0.rows > $0.decoding }, "steps mixed prompts and decoding")
    }

    /// A request whose prompt shares a prefix with an earlier one in the same slot computes
    /// only the rest, and its tokens equal a cold run's.
    func testPrefixReuseComputesOnlyTheNewTokens() throws {
        let model = try model()
        let scheduler = try BatchScheduler(model: model, configuration: .init(parallel: 2, contextLength: 512))
        defer { scheduler.close() }
        let first = ScheduledGeneration(prompt: prompt(30, seed: 7), maxTokens: 4)
        try scheduler.submit(first)
        _ = drain(first)
        let second = ScheduledGeneration(prompt: prompt(30, seed: 7) + prompt(5, seed: 8), maxTokens: 6)
        try scheduler.submit(second)
        let (tokens, _) = drain(second)
        XCTAssertEqual(second.cachedTokens, 30)
        XCTAssertEqual(second.stats.promptTokens, 5)
        XCTAssertEqual(tokens, try alone(model, second.prompt, maxTokens: 6, sampling: .greedy))
    }

    /// Cancelling frees the slot: with one slot, a request queued behind a long one runs as
    /// soon as the long one is cancelled.
    func testCancellingFreesTheSlot() throws {
        let model = try model()
        let scheduler = try BatchScheduler(model: model, configuration: .init(parallel: 1, contextLength: 256, maxQueue: 1))
        defer { scheduler.close() }
        let long = ScheduledGeneration(prompt: prompt(4, seed: 1), maxTokens: 200)
        let next = ScheduledGeneration(prompt: prompt(4, seed: 2), maxTokens: 3)
        try scheduler.submit(long)
        try scheduler.submit(next)
        guard case .token = long.next(timeout: 30) else { return XCTFail("no first token") }
        long.cancel()
        let (_, end) = drain(long)
        XCTAssertEqual(end, .finished(.cancelled))
        XCTAssertLessThan(long.stats.generatedTokens, 200)
        let (tokens, nextEnd) = drain(next)
        XCTAssertEqual(nextEnd, .finished(.maxTokens))
        XCTAssertEqual(tokens.count, 3)
    }

    /// The KV budget and the queue refuse cleanly, naming the lengths; nothing runs.
    func testBudgetsRefuseCleanly() throws {
        let model = try model()
        let scheduler = try BatchScheduler(model: model, configuration: .init(parallel: 4, contextLength: 128, maxQueue: 1))
        defer { scheduler.close() }
        XCTAssertEqual(scheduler.slotContextLength, 32)
        XCTAssertThrowsError(try scheduler.submit(ScheduledGeneration(prompt: prompt(33, seed: 1), maxTokens: 1))) {
            XCTAssertEqual($0 as? SchedulerError, .promptTooLong(promptTokens: 33, slotContext: 32))
            XCTAssertEqual("\($0)", "the prompt is 33 tokens but a slot's context holds 32")
        }
        XCTAssertThrowsError(try scheduler.submit(ScheduledGeneration(prompt: [], maxTokens: 1))) {
            XCTAssertEqual($0 as? SchedulerError, .emptyPrompt)
        }
        // 4 slots + 1 waiting; the sixth is refused (long generations keep them busy)
        let held = try (0..<5).map { i -> ScheduledGeneration in
            let r = ScheduledGeneration(prompt: prompt(2, seed: UInt64(i)), maxTokens: 30)
            try scheduler.submit(r)
            return r
        }
        XCTAssertThrowsError(try scheduler.submit(ScheduledGeneration(prompt: [5], maxTokens: 1))) {
            XCTAssertEqual($0 as? SchedulerError, .queueFull(waiting: 1, slots: 4))
        }
        for r in held { r.cancel() }
        for r in held { _ = drain(r) }
        XCTAssertThrowsError(try BatchScheduler(model: model, configuration: .init(parallel: 100, contextLength: 100))) {
            XCTAssertTrue("\($0)".contains("leave 1 positions each"), "\($0)")
        }
        scheduler.close()
        XCTAssertThrowsError(try scheduler.submit(ScheduledGeneration(prompt: [5], maxTokens: 1))) {
            XCTAssertEqual($0 as? SchedulerError, .closed)
        }
    }

    /// A generation that fills its slot's context ends as context_full, with a token count
    /// that fits.
    func testAFullSlotEndsTheGeneration() throws {
        let model = try model()
        let scheduler = try BatchScheduler(model: model, configuration: .init(parallel: 2, contextLength: 32))
        defer { scheduler.close() }
        let r = ScheduledGeneration(prompt: prompt(10, seed: 3), maxTokens: 100)
        try scheduler.submit(r)
        let (tokens, end) = drain(r)
        XCTAssertEqual(end, .finished(.contextFull))
        XCTAssertEqual(tokens.count, 16 - 10 + 1, "the last sampled token is reported but never fed")
    }

    /// Every step is reported: the rows add up to the prompt plus the generated tokens fed back.
    func testEveryStepIsReported() throws {
        let model = try model()
        let reports = ReportBox()
        let scheduler = try BatchScheduler(model: model, configuration: .init(parallel: 2, contextLength: 128,
                                                                              stepTokenBudget: 4, onStep: { reports.add($0) }))
        defer { scheduler.close() }
        let r = ScheduledGeneration(prompt: prompt(10, seed: 9), maxTokens: 3)
        try scheduler.submit(r)
        _ = drain(r)
        let all = reports.all
        XCTAssertEqual(all.reduce(0) { $0 + $1.rows }, 10 + 2, "the last sampled token is never fed")
        XCTAssertEqual(all.map(\.rows).prefix(3), [4, 4, 2], "the prompt in chunks of the step budget")
        XCTAssertTrue(all.allSatisfy { $0.sequences == 1 && $0.seconds > 0 })
        XCTAssertEqual(all.filter { $0.decoding == 1 }.count, 2)
    }

    /// Requests arriving together at an idle scheduler (a burst) have all their prompts
    /// computed before any decodes, then decode together in every step — and still get
    /// exactly the tokens they get alone.
    func testABurstDecodesTogether() throws {
        let model = try model()
        let reports = ReportBox()
        let scheduler = try BatchScheduler(model: model, configuration: .init(parallel: 4, contextLength: 4 * 128,
                                                                              stepTokenBudget: 24, onStep: { reports.add($0) }))
        defer { scheduler.close() }
        // the first prompt takes 3 steps, ample time for the others to be admitted into the burst
        let prompts = [60, 7, 90, 20]
        let requests = prompts.enumerated().map { i, n in
            ScheduledGeneration(prompt: prompt(n, seed: UInt64(40 + i)), maxTokens: 5, sampling: .greedy)
        }
        for r in requests { try scheduler.submit(r) }
        for (i, r) in requests.enumerated() {
            let (tokens, end) = drain(r)
            XCTAssertEqual(end, .finished(.maxTokens), "request \(i)")
            XCTAssertEqual(tokens, try alone(model, r.prompt, maxTokens: 5, sampling: .greedy), "request \(i)")
        }
        let all = reports.all
        guard let first = all.firstIndex(where: { $0.decoding > 0 }) else { return XCTFail("no decoding step") }
        XCTAssertEqual(all[..<first].reduce(0) { $0 + $1.rows }, prompts.reduce(0, +), "every prompt before any decoding")
        XCTAssertEqual(all[first...].map(\.decoding), [4, 4, 4, 4], "4 fed tokens each, all in the same steps")
        XCTAssertTrue(all[first...].allSatisfy { $0.rows == $0.decoding }, "no prompt rows left for the decoding steps")
    }

    /// The burst bound: a request whose prompt is done waits for at most `burstPromptTokens`
    /// more prompt tokens, then decodes beside the prompt still being computed.
    func testABurstHoldsARequestForAtMostItsBound() throws {
        let model = try model()
        let reports = ReportBox()
        let scheduler = try BatchScheduler(model: model, configuration: .init(parallel: 2, contextLength: 2 * 128,
                                                                              stepTokenBudget: 24, burstPromptTokens: 24,
                                                                              onStep: { reports.add($0) }))
        defer { scheduler.close() }
        // the short prompt takes 2 steps (24 + 6 rows), ample time for the long one to be admitted
        let short = ScheduledGeneration(prompt: prompt(30, seed: 50), maxTokens: 6, sampling: .greedy)
        let long = ScheduledGeneration(prompt: prompt(90, seed: 51), maxTokens: 3, sampling: .greedy)
        try scheduler.submit(short)
        try scheduler.submit(long)
        for r in [short, long] {
            let (tokens, end) = drain(r)
            XCTAssertEqual(end, .finished(.maxTokens))
            XCTAssertEqual(tokens, try alone(model, r.prompt, maxTokens: r.maxTokens, sampling: .greedy))
        }
        let all = reports.all
        guard let first = all.firstIndex(where: { $0.decoding > 0 }) else { return XCTFail("no decoding step") }
        // 24 short; 6 short + 18 long (the short one done, held); 24 long (held 24 tokens): released
        XCTAssertEqual(all[..<first].map(\.rows), [24, 24, 24], "released after 24 prompt tokens held")
        XCTAssertEqual(all[first].decoding, 1)
        XCTAssertGreaterThan(all[first].rows, 1, "decoding beside the long prompt's next chunk")
    }

    /// Log-probabilities are the model's: a log-softmax (in Double, written out here) of the
    /// logits `model.step` gives for the same tokens on a fresh session — whatever the
    /// temperature and penalties the tokens were sampled with — and the top list is the
    /// k largest of them in order. Two requests run together, so batching is covered too.
    func testLogprobsAreALogSoftmaxOfTheModelsLogits() throws {
        let model = try model()
        let scheduler = try BatchScheduler(model: model, configuration: .init(parallel: 2, contextLength: 256))
        defer { scheduler.close() }
        var sampled = SamplingParameters()
        sampled.temperature = 1.3
        sampled.topK = 40
        sampled.repetitionPenalty = 1.5
        sampled.seed = 11
        let requests = [
            ScheduledGeneration(prompt: prompt(12, seed: 21), maxTokens: 6, sampling: .greedy, logprobs: 5),
            ScheduledGeneration(prompt: prompt(7, seed: 22), maxTokens: 6, sampling: sampled, logprobs: 3),
        ]
        for r in requests { try scheduler.submit(r) }
        for (n, r) in requests.enumerated() {
            let (tokens, end) = drain(r)
            XCTAssertEqual(end, .finished(.maxTokens))
            XCTAssertEqual(tokens.count, 6)
            XCTAssertNil(r.logprobs(at: tokens.count))
            let session = try model.makeSession()
            var feed = r.prompt
            for (i, token) in tokens.enumerated() {
                let logits = try model.step([SequenceInput(session: session, tokens: feed, logits: .last)])[0]
                feed = [token]
                let maxLogit = Double(logits.max()!)
                let logZ = maxLogit + log(logits.reduce(0.0) { $0 + exp(Double($1) - maxLogit) })
                let expected = logits.map { Double($0) - logZ }
                guard let got = r.logprobs(at: i) else { return XCTFail("request \(n) token \(i): no logprobs") }
                XCTAssertEqual(got.token, token)
                XCTAssertEqual(Double(got.logprob), expected[Int(token)], accuracy: 1e-4, "request \(n) token \(i)")
                XCTAssertLessThanOrEqual(got.logprob, 0)
                let order = expected.indices.sorted { expected[$0] > expected[$1] || (expected[$0] == expected[$1] && $0 < $1) }
                XCTAssertEqual(got.top.map { Int($0.token) }, Array(order.prefix(r.logprobs!)), "request \(n) token \(i)")
                for c in got.top { XCTAssertEqual(Double(c.logprob), expected[Int(c.token)], accuracy: 1e-4) }
                if r.sampling.temperature == 0 { XCTAssertEqual(got.top.first?.token, token, "greedy takes the top token") }
            }
        }
        // by hand: probabilities 1/8, 3/8, 3/8, 1/8 (ties: the lower id first), -inf for a masked token
        let hand = TokenLogprobs(logits: [0, Float(log(3.0)), Float(log(3.0)), 0, -.infinity], token: 4, top: 3)
        XCTAssertEqual(hand.logprob, -.infinity)
        XCTAssertEqual(hand.top.map(\.token), [1, 2, 0])
        XCTAssertEqual(hand.top.map(\.logprob)[0], Float(log(3.0 / 8)), accuracy: 1e-6)
        XCTAssertEqual(hand.top.map(\.logprob)[2], Float(log(1.0 / 8)), accuracy: 1e-6)
        XCTAssertEqual(TokenLogprobs(logits: [1, 2], token: 0, top: 50).top.count, 2, "top is bounded by the vocabulary")
        // not asked for: none computed
        let plain = ScheduledGeneration(prompt: prompt(5, seed: 23), maxTokens: 2)
        try scheduler.submit(plain)
        _ = drain(plain)
        XCTAssertNil(plain.logprobs(at: 0))
    }
}

/// Step reports collected from the scheduler's thread.
private final class ReportBox: @unchecked Sendable { // `reports` only under `lock`
    private let lock = NSLock()
    private var reports: [BatchScheduler.StepReport] = []
    func add(_ r: BatchScheduler.StepReport) { lock.lock(); reports.append(r); lock.unlock() }
    var all: [BatchScheduler.StepReport] { lock.lock(); defer { lock.unlock() }; return reports }
}
