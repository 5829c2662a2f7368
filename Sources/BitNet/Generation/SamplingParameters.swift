/// Settings of ``Sampler``. Same seed + same settings + same logits = same tokens.
public struct SamplingParameters: Sendable, Equatable {
    /// 0 = greedy (argmax).
    public var temperature: Float = 0.8
    /// Keep the k most likely tokens (0 = off).
    public var topK: Int = 40
    /// Keep the smallest set whose probability reaches p (1 = off).
    public var topP: Float = 0.95
    /// Drop tokens less likely than minP × the most likely one (0 = off).
    public var minP: Float = 0.05
    /// > 1 discourages tokens seen in the last `penaltyWindow` tokens (1 = off).
    public var repetitionPenalty: Float = 1
    /// Subtracted once from the logit of every token seen in the window.
    public var presencePenalty: Float = 0
    /// Subtracted per occurrence in the window.
    public var frequencyPenalty: Float = 0
    public var penaltyWindow: Int = 64
    public var seed: UInt64 = 0

    public init() {}

    public static var greedy: SamplingParameters {
        var p = SamplingParameters()
        p.temperature = 0
        return p
    }
}
