#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Prefill + decode loop over one ``Session``: feeds the prompt in batches,
/// then one token at a time, streaming each sampled token to the caller.
/// The session's KV cache is kept between calls, so a chat can continue a
/// conversation without re-processing it (`session.reset()` starts over).
public struct Generator: Sendable {
    public let session: Session
    public var model: BitNetModel { session.model }
    public var stopTokens: Set<Int32>

    public init(session: Session, stopTokens: Set<Int32> = []) {
        self.session = session
        self.stopTokens = stopTokens
    }

    /// Appends `prompt` to the cache and generates up to `maxTokens` tokens.
    /// `onToken` returns false to stop early. A stop token ends generation
    /// and is reported to `onToken` but not fed back into the cache.
    /// `shouldContinue` is asked between prompt chunks (of the model's batch size) and
    /// before each token, so a long prompt can be abandoned part-way (the cache then
    /// holds the chunks fed so far; stats.stopReason is `.cancelled`).
    @discardableResult
    public func generate(prompt: [Int32], maxTokens: Int, sampling: SamplingParameters = .greedy,
                         shouldContinue: () -> Bool = { true },
                         onToken: (Int32) throws -> Bool) throws -> GenerationStats {
        var stats = GenerationStats()
        guard !prompt.isEmpty else { throw ModelError.emptyInput }
        try session.claim()
        defer { session.release() }
        let needed = session.count + prompt.count
        guard needed <= session.contextLength else {
            throw ModelError.contextOverflow(needed: needed, contextLength: session.contextLength)
        }
        var sampler = Sampler(sampling)
        var history = prompt
        stats.promptTokens = prompt.count
        let start = MonotonicClock.now()
        var logits: [Float] = []
        let chunk = model.batchSize
        for first in stride(from: 0, to: prompt.count, by: chunk) {
            guard shouldContinue() else {
                stats.promptSeconds = MonotonicClock.now() - start
                stats.stopReason = .cancelled
                return stats
            }
            let last = min(prompt.count, first + chunk)
            logits = try model.step([SequenceInput(session: session, tokens: Array(prompt[first..<last]),
                                                   logits: last == prompt.count ? .last : .none)])[0]
        }
        stats.promptSeconds = MonotonicClock.now() - start
        let decodeStart = MonotonicClock.now()
        while stats.generatedTokens < maxTokens {
            guard shouldContinue() else { stats.stopReason = .cancelled; break }
            let token = sampler.sample(logits, history: history)
            stats.generatedTokens += 1
            let wantsMore = try onToken(token)
            if stopTokens.contains(token) { stats.stopReason = .stopToken; break }
            if !wantsMore { stats.stopReason = .cancelled; break }
            if stats.generatedTokens >= maxTokens { stats.stopReason = .maxTokens; break }
            if session.count >= session.contextLength { stats.stopReason = .contextFull; break }
            history.append(token)
            logits = try session.forward([token])
        }
        stats.generateSeconds = MonotonicClock.now() - decodeStart
        return stats
    }

    /// The same loop as an AsyncSequence of token ids. Runs on a thread of its own (never
    /// blocking Swift concurrency's cooperative pool); cancelling the consuming task or
    /// dropping the stream stops it between prompt chunks or tokens.
    public func stream(prompt: [Int32], maxTokens: Int, sampling: SamplingParameters = .greedy)
        -> AsyncThrowingStream<Int32, Error> {
        run(prompt: prompt, maxTokens: maxTokens, sampling: sampling) { token, continuation in
            continuation.yield(token)
        } finish: { _ in }
    }

    /// Generated text as it becomes final — pieces never split a UTF-8 character, stop
    /// tokens give no text — as an AsyncSequence. Runs on a thread of its own; cancelling
    /// the consuming task stops generation between prompt chunks or tokens.
    public func textStream(prompt: [Int32], tokenizer: Tokenizer, maxTokens: Int,
                           sampling: SamplingParameters = .greedy) -> AsyncThrowingStream<String, Error> {
        let decoder = DecoderBox(tokenizer.makeStreamingDecoder())
        let stops = stopTokens
        return run(prompt: prompt, maxTokens: maxTokens, sampling: sampling) { token, continuation in
            guard !stops.contains(token) else { return }
            let text = try decoder.decoder.append(token)
            if !text.isEmpty { continuation.yield(text) }
        } finish: { continuation in
            let rest = decoder.decoder.finish()
            if !rest.isEmpty { continuation.yield(rest) }
        }
    }

    /// The generation loop on a detached thread feeding a stream; `emit` turns a token into
    /// elements, `finish` adds the last ones after a normal end.
    private func run<Element: Sendable>(prompt: [Int32], maxTokens: Int, sampling: SamplingParameters,
                                        emit: @escaping @Sendable (Int32, AsyncThrowingStream<Element, Error>.Continuation) throws -> Void,
                                        finish: @escaping @Sendable (AsyncThrowingStream<Element, Error>.Continuation) -> Void)
        -> AsyncThrowingStream<Element, Error> {
        let (stream, continuation) = AsyncThrowingStream<Element, Error>.makeStream()
        let flag = CancellationFlag()
        continuation.onTermination = { _ in flag.cancel() }
        let generator = self
        let started = DetachedThread.spawn {
            do {
                let stats = try generator.generate(prompt: prompt, maxTokens: maxTokens, sampling: sampling,
                                                   shouldContinue: { !flag.isCancelled }) { token in
                    try emit(token, continuation)
                    return !flag.isCancelled
                }
                if stats.stopReason != .cancelled { finish(continuation) }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        if !started { continuation.finish(throwing: KernelError.threadPoolUnavailable(threads: 1)) }
        return stream
    }

}

/// Set once by a stream's termination handler, read by its generation thread.
private final class CancellationFlag: @unchecked Sendable { // `cancelled` only under `lock`
    private let lock = Lock()
    private var cancelled = false
    var isCancelled: Bool { lock.withLock { cancelled } }
    func cancel() { lock.withLock { cancelled = true } }
}

/// The streaming decoder of one text stream, used only by its generation thread.
private final class DecoderBox: @unchecked Sendable { // touched by one thread at a time
    var decoder: StreamingDecoder
    init(_ decoder: StreamingDecoder) { self.decoder = decoder }
}
