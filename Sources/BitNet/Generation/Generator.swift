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
    @discardableResult
    public func generate(prompt: [Int32], maxTokens: Int, sampling: SamplingParameters = .greedy,
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
        let start = Self.now()
        var logits = try session.forward(prompt)
        stats.promptSeconds = Self.now() - start
        let decodeStart = Self.now()
        while stats.generatedTokens < maxTokens {
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
        stats.generateSeconds = Self.now() - decodeStart
        return stats
    }

    /// The same loop as an AsyncSequence of tokens, for other Swift programs.
    public func stream(prompt: [Int32], maxTokens: Int, sampling: SamplingParameters = .greedy)
        -> AsyncThrowingStream<Int32, Error> {
        AsyncThrowingStream { continuation in
            let task = Task.detached { [self] in
                do {
                    try self.generate(prompt: prompt, maxTokens: maxTokens, sampling: sampling) { token in
                        if Task.isCancelled { return false }
                        continuation.yield(token)
                        return true
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    static func now() -> Double { MonotonicClock.now() }
}
