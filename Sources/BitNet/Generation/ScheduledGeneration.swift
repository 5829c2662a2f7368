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

    // Shared with the scheduler's thread, under `lock`.
    private let lock = Lock()
    private var events: [Event] = []
    private var read = 0
    private var ended = false
    private var cancelRequested = false
    private var statsValue = GenerationStats()
    private var cachedValue = 0

    public init(prompt: [Int32], maxTokens: Int, sampling: SamplingParameters = .greedy, stopTokens: Set<Int32> = []) {
        self.prompt = prompt
        self.maxTokens = max(0, maxTokens)
        self.sampling = sampling
        self.stopTokens = stopTokens
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

    // MARK: - The scheduler's side

    var isCancelled: Bool { lock.withLock { cancelRequested } }

    func push(_ event: Event, stats: GenerationStats? = nil, cached: Int? = nil) {
        lock.withLock {
            guard !ended else { return }
            if let stats { statsValue = stats }
            if let cached { cachedValue = cached }
            events.append(event)
            if case .token = event {} else { ended = true }
            lock.broadcast()
        }
    }
}
