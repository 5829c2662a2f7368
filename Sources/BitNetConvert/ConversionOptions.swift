import BitNet
/// User choices for `HFConverter`, as the CLI spells them.
public struct ConversionOptions: Sendable {
    /// `--type`: how ternary projections are stored: `i2_s` (default, bitnet.cpp's
    /// official format), `tq2_0` / `tq1_0` (llama.cpp's, K a multiple of 256) or
    /// `f16` (t·s values), or `tl1` / `tl2` (this engine's lookup-table layouts,
    /// types BN_TL1 / BN_TL2: bitnet.cpp cannot read them).
    public var projectionType = "i2_s"
    /// `--embedding-type`: `f16` (the official files' choice), `q8_0`, `q6_k`, `q4_k` or `q4_0`.
    public var embeddingType = "f16"
    /// `--pre`: overrides the detected `tokenizer.ggml.pre`.
    public var preTokenizer: String?
    /// `general.name`; defaults to the checkpoint's `_name_or_path` or folder name.
    public var name: String?

    public init(projectionType: String = "i2_s", embeddingType: String = "f16", preTokenizer: String? = nil,
                name: String? = nil) {
        self.projectionType = projectionType
        self.embeddingType = embeddingType
        self.preTokenizer = preTokenizer
        self.name = name
    }

    /// The layout's projection type, or a clear error naming the known ones.
    func resolvedProjectionType() throws -> GGUFModelLayout.ProjectionType {
        guard let type = GGUFModelLayout.ProjectionType(name: projectionType) else {
            throw ConvertError.notSupported(what: "--type '\(projectionType)' (known: \(GGUFModelLayout.ProjectionType.names))")
        }
        return type
    }

    /// The embedding/head storage: F16 (the official files' choice) or Q8_0 (half the
    /// bytes; this engine dequantizes it to F16 at load, bitnet.cpp reads it as is).
    func resolvedEmbeddingType() throws -> GGMLType {
        switch embeddingType.lowercased() {
        case "f16": return .f16
        case "q8_0": return .q8_0
        // the block types the engine computes natively (KBlockQuantizer: docs/NUMERICS.md §5a)
        case "q6_k": return .q6_K
        case "q4_k": return .q4_K
        case "q4_0": return .q4_0
        case "q5_k", "f32", "bf16":
            throw ConvertError.notSupported(what: "--embedding-type \(embeddingType) (written: f16, q8_0, q6_k, q4_k, q4_0)")
        default:
            throw ConvertError.notSupported(what: "--embedding-type '\(embeddingType)' (known: f16, q8_0, q6_k, q4_k, q4_0)")
        }
    }
}
