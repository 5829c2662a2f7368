#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Perplexity of a token sequence in fixed-length windows, two ways: BOS
/// windows (every token scored once; the default of `bitnet perplexity` and
/// the golden data's windowing), or Hugging Face's "perplexity of
/// fixed-length models" sliding windows (`--stride`): windows of `window`
/// tokens start every `stride` tokens; each window is evaluated from an
/// empty cache, and only the tokens not scored by an earlier window count
/// (the first token of the text is never scored). stride == window gives
/// non-overlapping windows.
public struct Perplexity: Sendable {
    public var negativeLogLikelihood = 0.0
    public var scoredTokens = 0
    public var windows = 0

    public var value: Double { scoredTokens > 0 ? exp(negativeLogLikelihood / Double(scoredTokens)) : .nan }
    public var meanNLL: Double { scoredTokens > 0 ? negativeLogLikelihood / Double(scoredTokens) : .nan }

    public init() {}

    /// Every token scored exactly once: the text (tokenized without BOS) is cut
    /// into non-overlapping chunks of `window - 1` tokens, each evaluated as
    /// [BOS] + chunk from an empty cache, the logits at position i scoring
    /// chunk[i] (BOS predicts the chunk's first token); the last partial chunk
    /// counts. This is the windowing of tools/train/make_golden.py.
    public static func evaluate(session: Session, text tokens: [Int32], bos: Int32, window: Int,
                                progress: ((Int, Int) -> Void)? = nil) throws -> Perplexity {
        guard window >= 2 else {
            throw ModelError.invalidHyperparameter(path: "perplexity", key: "window", value: "\(window)",
                                                   reason: "need window ≥ 2")
        }
        guard window <= session.contextLength else {
            throw ModelError.contextOverflow(needed: window, contextLength: session.contextLength)
        }
        var result = Perplexity()
        let vocab = session.model.config.vocabSize
        var start = 0
        while start < tokens.count {
            let chunk = Array(tokens[start..<min(tokens.count, start + window - 1)])
            session.reset()
            let logits = try session.forward([bos] + chunk, allLogits: true)
            for (i, target) in chunk.enumerated() {
                result.negativeLogLikelihood += negativeLogLikelihood(logits, row: i, vocab: vocab, target: Int(target))
                result.scoredTokens += 1
            }
            result.windows += 1
            progress?(result.scoredTokens, tokens.count)
            start += chunk.count
        }
        session.reset()
        return result
    }

    /// −log softmax(logits[row])[target]: log Σ exp in Double over f32 logits.
    static func negativeLogLikelihood(_ logits: [Float], row: Int, vocab: Int, target: Int) -> Double {
        logits.withUnsafeBufferPointer { all in
            let r = UnsafeBufferPointer(rebasing: all[(row * vocab)..<((row + 1) * vocab)])
            var maxLogit = -Float.infinity
            for v in r where v > maxLogit { maxLogit = v }
            var sum = 0.0
            for v in r { sum += Double(expf(v - maxLogit)) }
            return log(sum) - Double(r[target] - maxLogit)
        }
    }

    /// `progress(done, total)` counts tokens scored.
    public static func evaluate(session: Session, tokens: [Int32], window: Int, stride: Int,
                                progress: ((Int, Int) -> Void)? = nil) throws -> Perplexity {
        guard window >= 2, stride >= 1, stride <= window else {
            throw ModelError.invalidHyperparameter(path: "perplexity", key: "window/stride", value: "\(window)/\(stride)",
                                                   reason: "need window ≥ 2 and 1 ≤ stride ≤ window")
        }
        guard window <= session.contextLength else {
            throw ModelError.contextOverflow(needed: window, contextLength: session.contextLength)
        }
        var result = Perplexity()
        let vocab = session.model.config.vocabSize
        var previousEnd = 0
        var begin = 0
        while begin < tokens.count {
            let end = min(begin + window, tokens.count)
            let targetCount = end - max(previousEnd, begin + 1) // tokens this window scores
            if end - begin >= 2 && targetCount > 0 {
                session.reset()
                let slice = Array(tokens[begin..<end])
                let logits = try session.forward(slice, allLogits: true)
                for position in (end - begin - targetCount)..<(end - begin) {
                    // logits at position-1 predict token at position
                    result.negativeLogLikelihood += negativeLogLikelihood(logits, row: position - 1, vocab: vocab,
                                                                          target: Int(slice[position]))
                    result.scoredTokens += 1
                }
                result.windows += 1
                progress?(result.scoredTokens, tokens.count - 1)
            }
            previousEnd = end
            if end == tokens.count { break }
            begin += stride
        }
        session.reset()
        return result
    }
}
