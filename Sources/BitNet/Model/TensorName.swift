/// GGUF tensor names, verbatim as bitnet.cpp and llama.cpp write them.
public enum TensorName {
    public static let tokenEmbedding = "token_embd.weight"
    public static let outputNorm = "output_norm.weight"
    public static let output = "output.weight"

    /// `blk.<layer>.<name>.weight`
    public static func layer(_ index: Int, _ name: String) -> String { "blk.\(index).\(name).weight" }

    /// 1bitLLM files may carry `blk.N.attn_q.scale` (F32 [1]) multiplied after each projection.
    public static func layerScale(_ index: Int, _ name: String) -> String { "blk.\(index).\(name).scale" }

    public static let attnNorm = "attn_norm"
    public static let attnQ = "attn_q"
    public static let attnK = "attn_k"
    public static let attnV = "attn_v"
    public static let attnOutput = "attn_output"
    public static let attnSubNorm = "attn_sub_norm"
    public static let ffnNorm = "ffn_norm"
    public static let ffnGate = "ffn_gate"
    public static let ffnUp = "ffn_up"
    public static let ffnDown = "ffn_down"
    public static let ffnSubNorm = "ffn_sub_norm"
}
