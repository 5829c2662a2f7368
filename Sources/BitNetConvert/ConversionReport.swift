import BitNet
/// What a finished conversion wrote (after the re-read check passed).
public struct ConversionReport: Sendable {
    public let path: String
    public let fileBytes: Int
    public let tensorCount: Int
    public let metadataCount: Int
    /// Peak resident memory of the process at the end (VmHWM), when known.
    public let peakResidentBytes: Int?
}
