import BitNet
/// One tensor entry of a safetensors header, already checked against the
/// file: its bytes lie inside the data section and match dtype × shape.
public struct SafetensorsTensor: Sendable, Equatable {
    public let name: String
    public let dtype: SafetensorsDType
    /// Row-major, outermost first (PyTorch order: `[out, in]` for a linear weight).
    public let shape: [Int]
    /// Absolute byte offset of the first element in the file.
    public let offset: Int
    public let byteCount: Int
    /// The shard the tensor lives in.
    public let path: String

    public var elementCount: Int { shape.reduce(1, *) }
}
