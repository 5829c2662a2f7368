import BitNet
/// Everything a conversion will write, worked out before any byte is written:
/// the model config, the GGUF keys, one step per tensor, and every problem
/// found. `bitnet convert --dry-run` prints it; `HFConverter.convert` refuses
/// to start while `problems` is not empty.
public struct ConversionPlan: Sendable {
    public let folder: String
    public let config: ModelConfig
    public let layout: GGUFModelLayout
    /// Model keys, then tokenizer keys, in file order.
    public let metadata: [(String, GGUFValue)]
    public let steps: [ConversionStep]
    /// Errors: each would make the output wrong or unloadable.
    public let problems: [ConvertError]
    /// Findings that do not stop the conversion.
    public let warnings: [String]
    /// Which checkpoint family the weights are (docs/FORMATS.md §7).
    public let checkpointKind: String
    public let tokenizerSummary: String

    /// Data bytes of the output (tensor data without alignment padding).
    public var outputTensorBytes: Int { steps.reduce(0) { $0 + $1.entry.byteCount } }

    /// The largest checkpoint tensor read (the unit of the streaming memory bound).
    public var largestSourceBytes: Int { steps.flatMap(\.sources).map(\.byteCount).max() ?? 0 }
}
