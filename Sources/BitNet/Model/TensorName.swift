/// GGUF tensor names, verbatim as bitnet.cpp and llama.cpp write them.
package enum TensorName {
    package static let tokenEmbedding = "token_embd.weight"
    package static let outputNorm = "output_norm.weight"
    package static let output = "output.weight"

    /// `blk.<layer>.<name>.weight`
    package static func layer(_ index: Int, _ name: String) -> String { "blk.\(index).\(name).weight" }

    /// 1bitLLM files may carry `blk.N.attn_q.scale` (F32 [1]) multiplied after each projection.
    package static func layerScale(_ index: Int, _ name: String) -> String { "blk.\(index).\(name).scale" }

    package static let attnNorm = "attn_norm"
    package static let attnQ = "attn_q"
    package static let attnK = "attn_k"
    package static let attnV = "attn_v"
    package static let attnOutput = "attn_output"
    package static let attnSubNorm = "attn_sub_norm"
    package static let ffnNorm = "ffn_norm"
    package static let ffnGate = "ffn_gate"
    package static let ffnUp = "ffn_up"
    package static let ffnDown = "ffn_down"
    package static let ffnSubNorm = "ffn_sub_norm"
}
