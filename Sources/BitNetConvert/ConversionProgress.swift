import BitNet
/// Where a running conversion is, for progress bars.
public struct ConversionProgress: Sendable {
    /// The GGUF tensor being written (empty while the header is written).
    public let tensor: String
    /// 0-based index of that tensor, and the number of tensors.
    public let index: Int
    public let count: Int
    /// Output bytes written so far, and the output file's size.
    public let bytesWritten: Int
    public let totalBytes: Int
}
