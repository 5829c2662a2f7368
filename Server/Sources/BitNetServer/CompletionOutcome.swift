import BitNet

/// What one completion produced, for the response body, `usage`, `timings` and the log.
public struct CompletionOutcome: Sendable {
    public enum FinishReason: String, Sendable {
        /// A stop token or stop string ended the text.
        case stop
        /// `max_tokens` reached, or the context is full.
        case length
        /// The client went away or the server is stopping.
        case cancelled
    }

    /// The generated text, without stop strings or stop tokens.
    public var text = ""
    public var finishReason = FinishReason.length
    /// Tokens of the whole prompt (OpenAI's `usage.prompt_tokens`).
    public var promptTokens = 0
    /// Of those, how many were already in the KV cache and were not computed again.
    public var cachedTokens = 0
    /// Prompt tokens fed (`promptTokens - cachedTokens`), generated tokens, and their timings.
    public var stats: GenerationStats
    /// The generated tokens' log-probabilities when the request asked for them (else nil).
    public var logprobs: [LogprobEntry]?

    // GenerationStats has no public initializer: an outcome starts from its request's stats.
    public init(text: String = "", finishReason: FinishReason = .length, promptTokens: Int = 0, cachedTokens: Int = 0,
                stats: GenerationStats) {
        self.text = text
        self.finishReason = finishReason
        self.promptTokens = promptTokens
        self.cachedTokens = cachedTokens
        self.stats = stats
    }

    public var completionTokens: Int { stats.generatedTokens }

    /// OpenAI's `finish_reason` (a cancelled request has no client left to read it).
    public var openAIFinishReason: String { finishReason == .stop ? "stop" : "length" }

    /// The request's log detail: prompt and generated tokens with their speeds.
    public var logSummary: String { logSummary(stopping: false) }

    /// `stopping`: a cancelled request was ended by the server stopping, not by its client.
    public func logSummary(stopping: Bool) -> String {
        func rate(_ v: Double) -> String { "\((v * 10).rounded() / 10)" }
        var line = "prompt \(promptTokens) tokens (\(cachedTokens) cached), \(rate(stats.promptTokensPerSecond)) tok/s"
        line += " | generated \(completionTokens) tokens, \(rate(stats.generatedTokensPerSecond)) tok/s"
        let end = finishReason != .cancelled ? openAIFinishReason : stopping ? "cancelled: server stopping" : "client disconnected"
        line += " | " + end
        return line
    }
}
