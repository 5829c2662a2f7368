/// Continuous batching over one model: up to `parallel` requests generate at
/// once, each in its own slot (a ``Session``), and every step of the model runs
/// them together — one token for each decoding request plus chunks of waiting
/// prompts, under a per-step token budget so a long prompt does not stall the
/// others' decoding. Each step reads the weights once for all rows, so the
/// aggregate speed grows with the number of streams until compute binds.
///
/// At every step the scheduler admits waiting requests into free slots, and
/// removes finished or cancelled ones. Requests that arrive while none is
/// decoding (a burst at an idle server) have their prompts computed before any
/// of them decodes, up to ``Configuration/burstPromptTokens``, so they decode
/// together in full steps instead of one after another. A slot keeps its cache
/// between requests: a request is put in the free slot whose cached tokens share
/// the longest prefix with its prompt, and only the rest is computed.
///
/// KV memory: `contextLength` positions in all, split evenly across the slots
/// (llama-server's `-c` / `-np` model), reserved at start and touched as they
/// fill, so memory never grows past that budget. More requests than slots
/// wait in a queue of `maxQueue`; past it ``submit(_:)`` throws
/// ``SchedulerError/queueFull(waiting:slots:)``.
///
/// Isolation: a request's tokens do not depend on what else runs in its
/// steps (``BitNetModel/step(_:)`` computes every row alone), and each has its
/// own seeded sampler.
///
/// Threads: the scheduler runs its steps on one thread of its own; callers
/// submit and read events from any thread. Call ``close()`` when done.
public final class BatchScheduler: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// Slots: requests generating at once.
        public var parallel: Int
        /// KV positions of all slots together (nil: the model's default context).
        public var contextLength: Int?
        /// Requests that may wait for a slot.
        public var maxQueue: Int
        /// Most rows (decoding tokens + prompt tokens) per step; prompts get what the
        /// decoding requests leave, at least one token. While requests decode, a step's
        /// prompt tokens are further limited to what keeps it within about 4× the average
        /// decoding step on this host, as measured by the steps so far (`StepBudget.swift`).
        public var stepTokenBudget: Int
        /// Most prompt tokens a request waits for in a burst. A step with prompts to
        /// compute and no request decoding is part of a burst: a request whose prompt is
        /// done in it holds its first token (sampled, not yet sent) until no admitted
        /// prompt is left, or this many prompt tokens have been computed while requests
        /// were held; the held requests then decode together. 0: each request decodes as
        /// soon as its prompt is done.
        ///
        /// Why: a burst's prompts cost the same compute however they are scheduled, but
        /// released one by one the requests start decoding many steps apart, and the last
        /// ones finish alone in narrow steps that read all the weights for a few rows.
        /// Held, they decode together from the start. 8 clients at once (prompts of
        /// 16–400 tokens, 256 tokens each, `--parallel 8`, 2 threads, AVX-512 EPYC host,
        /// `tools/bench_serve.py`, alternated): 348–351 → 286 steps, 61.1–62.3 → 65.5–65.8
        /// tok/s, inter-token latency p99/p50 2.1–2.2 → 1.2 (no decoding step carries
        /// prompt rows), first token p50 6.8–7.0 → 10.0 s but p99 14.2–14.6 → 10.0 s. The
        /// default bound is llama-server's default batch (`n_batch`, 2048 tokens), within
        /// which it computes the prompts of all its waiting slots in one batch.
        public var burstPromptTokens: Int
        /// Called on the scheduler's thread after every step with its report (for metrics:
        /// a batch-size histogram sees every step, not only the one a scrape finds). Keep it cheap.
        public var onStep: (@Sendable (StepReport) -> Void)?

        public init(parallel: Int = 1, contextLength: Int? = nil, maxQueue: Int = 8, stepTokenBudget: Int = 64,
                    burstPromptTokens: Int = 2048, onStep: (@Sendable (StepReport) -> Void)? = nil) {
            self.parallel = parallel
            self.contextLength = contextLength
            self.maxQueue = maxQueue
            self.stepTokenBudget = stepTokenBudget
            self.burstPromptTokens = burstPromptTokens
            self.onStep = onStep
        }
    }

    /// One step as it ran.
    public struct StepReport: Sendable, Equatable {
        /// Sequences in the step, and how many of them were decoding (one token each).
        public var sequences: Int
        public var decoding: Int
        /// Rows: decoding tokens plus prompt tokens.
        public var rows: Int
        public var seconds: Double
    }

    /// A scheduler's state at one moment (for metrics and `/ready`).
    public struct Snapshot: Sendable, Equatable {
        public var activeSlots: Int
        public var waiting: Int
        public var slots: Int
        /// Rows of the last step.
        public var lastStepRows: Int
        /// KV positions in use across slots, and their total.
        public var cachedPositions: Int
        public var totalPositions: Int
    }

    public let model: BitNetModel
    public let configuration: Configuration
    /// Positions each slot's cache holds.
    public let slotContextLength: Int

    private let slots: [Slot] // scheduler thread only, but `cached` counts are read under lock for snapshots
    // Shared state, under `lock`.
    private let lock = Lock()
    private var waiting: [ScheduledGeneration] = []
    private var busySlots = 0
    private var closed = false
    private var running = false
    private var lastRows = 0
    private var cachedPositions = 0
    // The scheduler thread's own state.
    private var active: [Active] = []
    private var budget = StepBudget()
    /// Prompt tokens computed while requests were held (see `burstPromptTokens`).
    private var heldRows = 0

    public init(model: BitNetModel, configuration: Configuration = Configuration()) throws {
        guard configuration.parallel >= 1, configuration.parallel <= 4096 else {
            throw ModelError.invalidHyperparameter(path: "scheduler", key: "--parallel", value: "\(configuration.parallel)",
                                                   reason: "need 1...4096 slots")
        }
        let total = configuration.contextLength ?? model.defaultContextLength
        let perSlot = total / configuration.parallel
        guard perSlot >= 2 else {
            throw ModelError.invalidHyperparameter(
                path: "scheduler", key: "--ctx", value: "\(total)",
                reason: "\(configuration.parallel) slots of a \(total)-position context leave \(perSlot) positions each (need ≥ 2)")
        }
        // the whole budget must fit, not only one slot's share
        try BitNetModel.checkContext(total, config: model.config, precision: model.defaultKVPrecision,
                                     path: model.weights.file.path)
        self.model = model
        self.configuration = configuration
        slotContextLength = perSlot
        slots = try (0..<configuration.parallel).map { _ in Slot(session: try model.makeSession(contextLength: perSlot)) }
    }

    /// Queues `request`; its events arrive on it. Throws when it can never run (empty,
    /// longer than a slot's context), when the queue is full, or after ``close()``.
    public func submit(_ request: ScheduledGeneration) throws {
        guard !request.prompt.isEmpty else { throw SchedulerError.emptyPrompt }
        guard request.prompt.count <= slotContextLength else {
            throw SchedulerError.promptTooLong(promptTokens: request.prompt.count, slotContext: slotContextLength)
        }
        try lock.withLock {
            guard !closed else { throw SchedulerError.closed }
            // counted as if the slots were filled first, so the figure does not depend on
            // whether the scheduler's thread has admitted the latest requests yet
            guard busySlots + waiting.count < slots.count + configuration.maxQueue else {
                throw SchedulerError.queueFull(waiting: busySlots + waiting.count - slots.count, slots: slots.count)
            }
            waiting.append(request)
            if !running {
                running = true
                guard DetachedThread.spawn({ [self] in loop() }) else {
                    running = false
                    waiting.removeLast()
                    throw KernelError.threadPoolUnavailable(threads: 1)
                }
            }
            lock.broadcast()
        }
    }

    /// Stops admitting: waiting requests end as cancelled, running ones go on until
    /// they finish or are cancelled; then the scheduler's thread ends.
    public func close() {
        lock.withLock {
            closed = true
            for r in waiting { r.push(.finished(.cancelled)) }
            waiting.removeAll()
            lock.broadcast()
        }
    }

    public var snapshot: Snapshot {
        lock.withLock {
            Snapshot(activeSlots: busySlots, waiting: waiting.count, slots: slots.count, lastStepRows: lastRows,
                     cachedPositions: cachedPositions, totalPositions: slots.count * slotContextLength)
        }
    }

    // MARK: - The scheduler's thread

    private final class Slot {
        let session: Session
        /// The tokens whose keys and values the session's cache holds, in order.
        var cached: [Int32] = []
        var busy = false
        init(session: Session) { self.session = session }
    }

    private final class Active {
        let request: ScheduledGeneration
        let slot: Slot
        var sampler: Sampler
        /// What the sampler's penalties see: the prompt and the tokens generated so far.
        var history: [Int32]
        /// Prompt tokens in the cache.
        var fed: Int
        /// The last sampled token, to be fed at the next step.
        var pending: Int32?
        /// The first token, sampled when the prompt was done during a burst and held until
        /// the burst ends (not yet sent, not yet `pending`).
        var held: (token: Int32, logprobs: TokenLogprobs?)?
        var stats = GenerationStats()
        let cached: Int
        let start: Double
        var firstToken: Double?

        init(request: ScheduledGeneration, slot: Slot, common: Int) {
            self.request = request
            self.slot = slot
            sampler = Sampler(request.sampling)
            history = request.prompt
            fed = common
            cached = common
            start = MonotonicClock.now()
            stats.promptTokens = request.prompt.count - common
        }
    }

    private func loop() {
        while true {
            var admitted: [ScheduledGeneration] = []
            let stop: Bool = lock.withLock {
                while active.isEmpty && waiting.isEmpty && !closed { lock.wait() }
                if closed && active.isEmpty && waiting.isEmpty {
                    running = false
                    return true
                }
                let free = slots.count - active.count
                admitted = Array(waiting.prefix(free))
                waiting.removeFirst(admitted.count)
                busySlots = active.count + admitted.count
                return false
            }
            if stop { return }
            for request in admitted { admit(request) }
            for a in active where a.request.isCancelled { finish(a, .cancelled) }
            guard !active.isEmpty else { continue }
            runStep()
        }
    }

    /// Puts `request` in the free slot whose cache shares the longest prefix with its
    /// prompt, keeping at least one prompt token to feed (its logits start the reply).
    private func admit(_ request: ScheduledGeneration) {
        if request.isCancelled {
            request.push(.finished(.cancelled))
            lock.withLock { busySlots -= 1 }
            return
        }
        let prompt = request.prompt
        var best: (slot: Slot, common: Int)?
        for slot in slots where !slot.busy {
            var common = 0
            let limit = min(slot.cached.count, prompt.count - 1)
            while common < limit, slot.cached[common] == prompt[common] { common += 1 }
            if best == nil || common > best!.common { best = (slot, common) }
        }
        let (slot, common) = best! // the loop admits no more requests than free slots
        slot.busy = true
        slot.session.truncate(to: common)
        slot.cached.removeLast(slot.cached.count - common)
        active.append(Active(request: request, slot: slot, common: common))
    }

    private func runStep() {
        let holding = releaseHeldIfBurstIsOver()
        guard !active.isEmpty else { return }
        var inputs: [SequenceInput] = []
        var owners: [(active: Active, tokens: [Int32], prompt: Bool)] = []
        for a in active {
            if let token = a.pending {
                inputs.append(SequenceInput(session: a.slot.session, tokens: [token], logits: .last))
                owners.append((a, [token], false))
            }
        }
        var promptBudget = budget.promptRows(configured: configuration.stepTokenBudget, decoding: inputs.count)
        for a in active where a.fed < a.request.prompt.count && promptBudget > 0 {
            let n = min(a.request.prompt.count - a.fed, promptBudget)
            let chunk = Array(a.request.prompt[a.fed..<(a.fed + n)])
            let last = a.fed + n == a.request.prompt.count
            inputs.append(SequenceInput(session: a.slot.session, tokens: chunk, logits: last ? .last : .none))
            owners.append((a, chunk, true))
            promptBudget -= n
        }
        let rows = inputs.reduce(0) { $0 + $1.tokens.count }
        let decoding = owners.filter { !$0.prompt }.count
        // Held requests exist only while nobody decodes: they are released before anyone can.
        let burst = decoding == 0 && configuration.burstPromptTokens > 0
        if holding { heldRows += rows }
        let results: [[Float]]
        let stepStart = MonotonicClock.now()
        do {
            results = try model.step(inputs)
            let seconds = MonotonicClock.now() - stepStart
            budget.record(decoding: decoding, prompt: rows - decoding, seconds: seconds)
            configuration.onStep?(StepReport(sequences: inputs.count, decoding: decoding, rows: rows, seconds: seconds))
        } catch {
            for (a, _, _) in owners {
                a.slot.session.reset()
                a.slot.cached = []
                a.request.push(.failed("\(error)"), stats: a.stats, cached: a.cached)
                remove(a)
            }
            return
        }
        for ((a, tokens, isPrompt), logits) in zip(owners, results) {
            a.slot.cached += tokens
            if isPrompt {
                a.fed += tokens.count
                if a.fed < a.request.prompt.count { continue }
                if a.request.maxTokens == 0 {
                    finish(a, .maxTokens)
                    continue
                }
            }
            let token = a.sampler.sample(logits, history: a.history)
            // Only for requests that asked: a pass over the vocabulary per token.
            let logprobs = a.request.logprobs.map { TokenLogprobs(logits: logits, token: token, top: $0) }
            if isPrompt && burst {
                a.held = (token, logprobs) // sent when the burst ends (releaseHeldIfBurstIsOver)
            } else {
                deliver(a, token, logprobs: logprobs)
            }
        }
        let positions = slots.reduce(0) { $0 + $1.cached.count }
        lock.withLock {
            lastRows = rows
            cachedPositions = positions
        }
    }

    /// Ends the burst, sending the held first tokens, once no admitted prompt is left to
    /// compute or the held requests have waited for `burstPromptTokens` prompt tokens.
    /// Runs before a step is planned, so requests admitted meanwhile still join the burst.
    /// Returns whether requests are still held.
    private func releaseHeldIfBurstIsOver() -> Bool {
        guard active.contains(where: { $0.held != nil }) else {
            heldRows = 0 // the held ones may have been cancelled
            return false
        }
        let promptsLeft = active.contains { $0.fed < $0.request.prompt.count }
        guard !promptsLeft || heldRows >= configuration.burstPromptTokens else { return true }
        heldRows = 0
        for a in active {
            guard let (token, logprobs) = a.held else { continue }
            a.held = nil
            deliver(a, token, logprobs: logprobs)
        }
        return false
    }

    /// Sends `a`'s newly sampled token and ends the request, or queues the token for
    /// the next step.
    private func deliver(_ a: Active, _ token: Int32, logprobs: TokenLogprobs?) {
        let now = MonotonicClock.now()
        if a.firstToken == nil {
            a.firstToken = now
            a.stats.promptSeconds = now - a.start
        }
        a.stats.generatedTokens += 1
        a.request.push(.token(token), logprobs: logprobs)
        if a.request.stopTokens.contains(token) {
            finish(a, .stopToken)
        } else if a.stats.generatedTokens >= a.request.maxTokens {
            finish(a, .maxTokens)
        } else if a.slot.cached.count >= slotContextLength {
            finish(a, .contextFull)
        } else {
            a.history.append(token)
            a.pending = token
        }
    }

    private func finish(_ a: Active, _ reason: GenerationStats.StopReason) {
        a.stats.stopReason = reason
        if let first = a.firstToken { a.stats.generateSeconds = MonotonicClock.now() - first }
        a.request.push(.finished(reason), stats: a.stats, cached: a.cached)
        remove(a)
    }

    private func remove(_ a: Active) {
        a.slot.busy = false
        active.removeAll { $0 === a }
        lock.withLock { busySlots -= 1 }
    }
}
