/// One request in a ``BatchScheduler``: what to generate, and the tokens as
/// they come. The scheduler's thread appends events; the caller reads them with
/// ``next(timeout:)`` from its own thread (a server connection, a C caller) and
/// may ``cancel()`` at any time — the slot is freed at the next step.
public final class ScheduledGeneration: @unchecked Sendable {
    public enum Event: Sendable, Equatable {
        /// A sampled token (a stop token too: it ends the generation and is not fed back).
        case token(Int32)
        /// The end: no more events follow.
        case finished(GenerationStats.StopReason)
        /// The step failed (the session was reset); no more events follow.
        case failed(String)
    }

    public let prompt: [Int32]
    public let maxTokens: Int
    public let sampling: SamplingParameters
    public let stopTokens: Set<Int32>
    /// Alternatives per token for ``logprobs(at:)`` (0...``TokenLogprobs/maxTop``), or nil:
    /// no log-probabilities are computed (the default, at no cost).
    public let logprobs: Int?

    // Shared with the scheduler's thread, under `lock`.
    private let lock = Lock()
    private var events: [Event] = []
    private var read = 0
    private var ended = false
    private var cancelRequested = false
    private var statsValue = GenerationStats()
    private var cachedValue = 0
    private var logprobValues: [TokenLogprobs] = []

    /// `logprobs`: when set, the scheduler also computes each sampled token's
    /// log-probability and the `logprobs` most likely tokens at its position (see
    /// ``TokenLogprobs`` for which distribution), read with ``logprobs(at:)``.
    public init(prompt: [Int32], maxTokens: Int, sampling: SamplingParameters = .greedy, stopTokens: Set<Int32> = [],
                logprobs: Int? = nil) {
        self.prompt = prompt
        self.maxTokens = max(0, maxTokens)
        self.sampling = sampling
        self.stopTokens = stopTokens
        self.logprobs = logprobs.map { max(0, min($0, TokenLogprobs.maxTop)) }
    }

    /// The next event, waiting for it up to `timeout` seconds (nil: forever).
    /// Returns nil only when the timeout passed first.
    public func next(timeout: Double? = nil) -> Event? {
        lock.withLock {
            while read == events.count {
                if let timeout {
                    lock.wait(seconds: timeout)
                    if read == events.count { return nil }
                } else {
                    lock.wait()
                }
            }
            defer { read += 1 }
            return events[read]
        }
    }

    /// Asks the scheduler to stop this generation (it ends with `.finished(.cancelled)`).
    public func cancel() { lock.withLock { cancelRequested = true } }

    /// Timings and counts, final once the `.finished` event was read.
    public var stats: GenerationStats { lock.withLock { statsValue } }
    /// Prompt tokens found in the slot's cache (prefix reuse) and not computed again.
    public var cachedTokens: Int { lock.withLock { cachedValue } }

    /// The log-probabilities of the `index`-th `.token` event (0-based), available once that
    /// event can be read; nil when the request did not ask for them (`logprobs: nil`).
    public func logprobs(at index: Int) -> TokenLogprobs? {
        lock.withLock { index >= 0 && index < logprobValues.count ? logprobValues[index] : nil }
    }

    // MARK: - The scheduler's side

    var isCancelled: Bool { lock.withLock { cancelRequested } }

    func push(_ event: Event, stats: GenerationStats? = nil, cached: Int? = nil, logprobs: TokenLogprobs? = nil) {
        lock.withLock {
            guard !ended else { return }
            if let logprobs { logprobValues.append(logprobs) }
            if let stats { statsValue = stats }
            if let cached { cachedValue = cached }
            events.append(event)
            if case .token = event {} else { ended = true }
            lock.broadcast()
        }
    }
}
