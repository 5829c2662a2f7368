import BitNet
/// How one GGUF tensor is produced from checkpoint tensors.
public struct ConversionStep: Sendable {
    public enum Recipe: Sendable {
        /// Floats copied with a type change (norms → F32, embedding/head → F16).
        case floats(SafetensorsTensor)
        /// Latent or master weights [out, in], ternarized per tensor (docs/FORMATS.md §7a, §7c).
        case ternarize(SafetensorsTensor)
        /// uint8 [out/4, in] with 2-bit codes in four output-row quarters, and a
        /// scalar `weight_scale` that multiplies (AutoBitLinear) or divides
        /// (BitLinear) (docs/FORMATS.md §7b).
        case packed(SafetensorsTensor, scale: SafetensorsTensor, multiply: Bool)
    }

    public let entry: GGUFModelLayout.Entry
    public let recipe: Recipe
    /// Llama Q/K: the head count of llama.cpp's `permute` (rows (heads, 2, d/2)
    /// → (heads, d/2, 2)), so adjacent-pair RoPE sees HF's rotate-half pairs.
    public let permuteHeads: Int?

    /// The checkpoint tensors read.
    public var sources: [SafetensorsTensor] {
        switch recipe {
        case .floats(let t), .ternarize(let t): return [t]
        case .packed(let t, let s, _): return [t, s]
        }
    }

    /// A short description for dry runs: "ternarize BF16 model.layers.0.self_attn.q_proj.weight".
    public var summary: String {
        let p = permuteHeads.map { ", Q/K rows permuted for \($0) heads" } ?? ""
        switch recipe {
        case .floats(let t): return "\(t.dtype.rawValue) \(t.name) → \(entry.type)"
        case .ternarize(let t): return "ternarize \(t.dtype.rawValue) \(t.name) → \(entry.type)\(p)"
        case .packed(let t, let s, let multiply):
            return "unpack \(t.dtype.rawValue) \(t.name), scale \(multiply ? "×" : "÷") \(s.name) → \(entry.type)\(p)"
        }
    }
}
