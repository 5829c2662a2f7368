#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The log-probability of a sampled token and of the most likely alternatives at
/// its position, as a ``ScheduledGeneration`` created with `logprobs:` reports them.
///
/// Which distribution: the model's own, the log-softmax of the raw logits of the
/// step, before repetition/presence/frequency penalties, temperature and the
/// top-k/top-p/min-p filters. That is what OpenAI's API and llama-server document
/// for `logprobs`, and it makes the figures a property of the model and the text
/// (the same tokens give the same numbers whatever the sampling settings, and they
/// agree with `bitnet logits` and perplexity); the sampled distribution would
/// instead assign −∞ to every filtered token and change with each setting.
public struct TokenLogprobs: Sendable, Equatable {
    public struct Candidate: Sendable, Equatable {
        public var token: Int32
        public var logprob: Float

        public init(token: Int32, logprob: Float) {
            self.token = token
            self.logprob = logprob
        }
    }

    /// The sampled token and its log-probability.
    public var token: Int32
    public var logprob: Float
    /// The `k` most likely tokens at this position, most likely first (ties: lower id
    /// first); empty when `k` is 0. The sampled token is among them only if it ranks there.
    public var top: [Candidate]

    public init(token: Int32, logprob: Float, top: [Candidate]) {
        self.token = token
        self.logprob = logprob
        self.top = top
    }

    /// Most alternatives a request may ask for (OpenAI's `top_logprobs` allows 20).
    public static let maxTop = 20

    /// `token`'s log-probability and the `top` most likely tokens under
    /// log-softmax(`logits`): one pass for the maximum, one for the normalizer (in
    /// Double), and a bounded insertion list for the top entries — O(vocabulary · top).
    public init(logits: [Float], token: Int32, top k: Int) {
        let k = max(0, min(k, Self.maxTop, logits.count))
        var maxLogit = -Float.infinity
        for l in logits where l > maxLogit { maxLogit = l }
        var sum = 0.0
        if maxLogit.isFinite {
            for l in logits { sum += exp(Double(l - maxLogit)) }
        }
        let logZ = Double(maxLogit) + log(sum)
        func logprob(_ l: Float) -> Float { Float(Double(l) - logZ) }

        // Best first; a candidate enters when it beats the last kept one (equal logits: lower id wins,
        // which the ascending scan gives by requiring strictly greater).
        var best: [(id: Int32, logit: Float)] = []
        best.reserveCapacity(k + 1)
        if k > 0 {
            for (i, l) in logits.enumerated() {
                if best.count == k, !(l > best[k - 1].logit) { continue }
                var at = best.count
                while at > 0, l > best[at - 1].logit { at -= 1 }
                best.insert((Int32(i), l), at: at)
                if best.count > k { best.removeLast() }
            }
        }
        let sampled = Int(token) >= 0 && Int(token) < logits.count ? logits[Int(token)] : -Float.infinity
        self.init(token: token, logprob: logprob(sampled),
                  top: best.map { Candidate(token: $0.id, logprob: logprob($0.logit)) })
    }
}
