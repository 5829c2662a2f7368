#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Perplexity of a token sequence with fixed-length windows, the recipe of
/// Hugging Face's "perplexity of fixed-length models": windows of `window`
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

    /// `progress(done, total)` counts tokens scored.
    public static func evaluate(model: BitNetModel, tokens: [Int32], window: Int, stride: Int,
                                progress: ((Int, Int) -> Void)? = nil) throws -> Perplexity {
        guard window >= 2, stride >= 1, stride <= window else {
            throw ModelError.invalidHyperparameter(path: "perplexity", key: "window/stride", value: "\(window)/\(stride)",
                                                   reason: "need window ≥ 2 and 1 ≤ stride ≤ window")
        }
        guard window <= model.cache.capacity else {
            throw ModelError.contextOverflow(needed: window, contextLength: model.cache.capacity)
        }
        var result = Perplexity()
        let vocab = model.config.vocabSize
        var previousEnd = 0
        var begin = 0
        while begin < tokens.count {
            let end = min(begin + window, tokens.count)
            let targetCount = end - max(previousEnd, begin + 1) // tokens this window scores
            if end - begin >= 2 && targetCount > 0 {
                model.cache.reset()
                let slice = Array(tokens[begin..<end])
                let logits = try model.forward(slice, allLogits: true)
                for position in (end - begin - targetCount)..<(end - begin) {
                    // logits at position-1 predict token at position
                    let row = (position - 1) * vocab
                    var maxLogit = -Float.infinity
                    for i in 0..<vocab { maxLogit = max(maxLogit, logits[row + i]) }
                    var sum = 0.0
                    for i in 0..<vocab { sum += exp(Double(logits[row + i] - maxLogit)) }
                    let target = Int(slice[position])
                    result.negativeLogLikelihood += log(sum) - Double(logits[row + target] - maxLogit)
                    result.scoredTokens += 1
                }
                result.windows += 1
                progress?(result.scoredTokens, tokens.count - 1)
            }
            previousEnd = end
            if end == tokens.count { break }
            begin += stride
        }
        model.cache.reset()
        return result
    }
}
