/// The graph variants this engine runs (docs/FORMATS.md §2).
public enum ModelArchitecture: String, Sendable, CaseIterable {
    /// BitNet-b1.58-2B-4T: sub-norms before o_proj and down_proj, gated relu², NeoX RoPE, tied F16 head.
    case bitnetB158 = "bitnet-b1.58"
    /// 1bitLLM bitnet_b1_58-large / -3B: the same sub-norms, SiLU-gated FFN, MHA.
    case bitnet = "bitnet"
    /// Llama-family ternary models (Llama3-8B-1.58, Falcon3-1.58bit, Falcon-E): no sub-norms,
    /// SwiGLU, adjacent-pair RoPE (the converter permuted Q/K rows), separate output head.
    case llama = "llama"

    /// Accepts the names bitnet.cpp files use for the same graph.
    public init?(ggufName: String) {
        switch ggufName {
        case "bitnet-b1.58", "bitnet-25", "bitnet-1.58": self = .bitnetB158
        case "bitnet": self = .bitnet
        case "llama": self = .llama
        default: return nil
        }
    }

    public var hasSubNorms: Bool { self != .llama }

    /// The default when the file has no `<arch>.hidden_activation`. bitnet.cpp's
    /// current build uses SiLU for bitnet-b1.58, a regression (wikitext ppl 99.8
    /// vs 17.1, BitNet issues #588/#602); the model was trained with relu².
    public var defaultActivation: Activation { self == .bitnetB158 ? .relu2 : .silu }

    /// Rotate-half (NeoX) for the bitnet graphs; adjacent pairs for llama files,
    /// whose converter permuted the Q/K rows for that rotation.
    public var ropeIsNeoX: Bool { self != .llama }

    public var defaultRopeTheta: Float { self == .bitnetB158 ? 500_000 : 10_000 }
}

/// The FFN gate activation.
public enum Activation: String, Sendable {
    case relu2
    case silu
}
