#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Prefill + decode loop over a ``BitNetModel``: feeds the prompt in batches,
/// then one token at a time, streaming each sampled token to the caller.
/// The KV cache is kept between calls, so a chat can continue a conversation
/// without re-processing it (call `model.cache.reset()` to start over).
public final class Generator: @unchecked Sendable {
    public let model: BitNetModel
    public var stopTokens: Set<Int32>

    public init(model: BitNetModel, stopTokens: Set<Int32> = []) {
        self.model = model
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
        let needed = model.cache.count + prompt.count
        guard needed <= model.cache.capacity else {
            throw ModelError.contextOverflow(needed: needed, contextLength: model.cache.capacity)
        }
        var sampler = Sampler(sampling)
        var history = prompt
        stats.promptTokens = prompt.count
        let start = Self.now()
        var logits = try model.forward(prompt)
        stats.promptSeconds = Self.now() - start
        let decodeStart = Self.now()
        while stats.generatedTokens < maxTokens {
            let token = sampler.sample(logits, history: history)
            stats.generatedTokens += 1
            let wantsMore = try onToken(token)
            if stopTokens.contains(token) { stats.stopReason = .stopToken; break }
            if !wantsMore { stats.stopReason = .cancelled; break }
            if stats.generatedTokens >= maxTokens { stats.stopReason = .maxTokens; break }
            if model.cache.count >= model.cache.capacity { stats.stopReason = .contextFull; break }
            history.append(token)
            logits = try model.forward([token])
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

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
