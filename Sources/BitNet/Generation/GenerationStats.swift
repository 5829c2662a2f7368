/// Timings of one generation, for the summary line and `--json`.
public struct GenerationStats: Sendable {
    public enum StopReason: String, Sendable {
        case maxTokens = "max_tokens"
        case stopToken = "stop_token"
        case contextFull = "context_full"
        case cancelled
    }

    public var promptTokens = 0
    public var promptSeconds = 0.0
    public var generatedTokens = 0
    public var generateSeconds = 0.0
    public var stopReason = StopReason.maxTokens

    public init() {}

    public var promptTokensPerSecond: Double { promptSeconds > 0 ? Double(promptTokens) / promptSeconds : 0 }
    /// Decoding speed: the first generated token comes with the prompt's logits, so it is not counted.
    public var generatedTokensPerSecond: Double {
        generateSeconds > 0 ? Double(max(0, generatedTokens - 1)) / generateSeconds : 0
    }
}
