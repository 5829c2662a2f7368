/// Where a forward step's time goes, phase by phase (`bitnet bench e2e --profile`).
/// Filled by ``BitNetModel/step(_:profile:)`` when given one: a clock read at each
/// phase boundary (~20 ns each, ~15 per layer), so profiling itself costs well
/// under 1% of a 2B4T token.
package final class StepProfile {
    package enum Phase: String, CaseIterable, Sendable {
        case embedding, norms, quantize
        case qkv = "qkv projections"
        case ropeAndCache = "rope + kv store"
        case attention
        case output = "attn output projection"
        case gateUp = "gate/up projections"
        case elementwise = "activation + residual"
        case down = "down projection"
        case head = "final norm + head"
        /// Batched steps on several threads: the activation, norms and quantization
        /// of each input, split over the pool by rows (``RowPrepJob``).
        case rowPrep = "act + norms + quantize"
    }

    package private(set) var seconds: [Phase: Double] = [:]
    package private(set) var steps = 0

    package init() {}

    package var total: Double { seconds.values.reduce(0, +) }

    func add(_ phase: Phase, _ s: Double) { seconds[phase, default: 0] += s }
    func finishStep() { steps += 1 }

    package func reset() {
        seconds = [:]
        steps = 0
    }
}
