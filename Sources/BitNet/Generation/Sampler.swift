#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Picks the next token from logits: penalties, then greedy or
/// temperature / top-k / min-p / top-p sampling with a seeded generator.
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    private var rng: SeededGenerator

    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        rng = SeededGenerator(seed: parameters.seed)
    }

    public mutating func sample(_ logits: [Float], history: [Int32] = []) -> Int32 {
        var logits = logits
        applyPenalties(&logits, history: history)
        let p = parameters
        if p.temperature <= 0 { return Self.argmax(logits) }

        // Tokens more than 30 nats (after temperature) below the best carry
        // < e^-30 of the mass each; dropping them first keeps sorting cheap.
        let best = logits.max() ?? 0
        let floor = best - 30 * p.temperature
        var candidates: [(id: Int32, logit: Float)] = []
        for (i, l) in logits.enumerated() where l >= floor && l.isFinite { candidates.append((Int32(i), l)) }
        candidates.sort { $0.logit > $1.logit || ($0.logit == $1.logit && $0.id < $1.id) }
        if p.topK > 0 && candidates.count > p.topK { candidates.removeLast(candidates.count - p.topK) }
        guard !candidates.isEmpty else { return Self.argmax(logits) }

        var probs = candidates.map { Double(exp(($0.logit - candidates[0].logit) / p.temperature)) }
        var total = probs.reduce(0, +)
        var keep = probs.count
        if p.minP > 0 {
            let threshold = Double(p.minP) * probs[0] // probs[0] is the largest
            keep = probs.firstIndex(where: { $0 < threshold }) ?? keep
        }
        if p.topP < 1 {
            var cumulative = 0.0
            for i in 0..<keep {
                cumulative += probs[i] / total
                if cumulative >= Double(p.topP) { keep = i + 1; break }
            }
        }
        probs.removeLast(probs.count - max(1, keep))
        total = probs.reduce(0, +)
        let u = Double(rng.next() >> 11) / Double(1 << 53) * total
        var acc = 0.0
        for (i, prob) in probs.enumerated() {
            acc += prob
            if u < acc { return candidates[i].id }
        }
        return candidates[probs.count - 1].id
    }

    private func applyPenalties(_ logits: inout [Float], history: [Int32]) {
        let p = parameters
        guard p.repetitionPenalty != 1 || p.presencePenalty != 0 || p.frequencyPenalty != 0 else { return }
        var counts: [Int32: Int] = [:]
        for t in history.suffix(max(0, p.penaltyWindow)) where t >= 0 && Int(t) < logits.count { counts[t, default: 0] += 1 }
        for (token, count) in counts {
            var l = logits[Int(token)]
            if p.repetitionPenalty != 1 { l = l > 0 ? l / p.repetitionPenalty : l * p.repetitionPenalty }
            l -= p.presencePenalty + Float(count) * p.frequencyPenalty
            logits[Int(token)] = l
        }
    }

    /// The most likely token; ties go to the lowest id.
    public static func argmax(_ logits: [Float]) -> Int32 {
        var best = 0
        for i in logits.indices where logits[i] > logits[best] { best = i }
        return Int32(best)
    }
}
