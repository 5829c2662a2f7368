/// One entry of a GGUF tensor table.
public struct GGUFTensorInfo: Sendable, Hashable {
    public let name: String
    /// Shape with ne0 (the contiguous dimension) first: a weight matrix of an
    /// HF `[out, in]` Linear is `[in, out]` = `[K, M]` here.
    public let dims: [Int]
    public let type: GGMLType
    /// Relative to the start of the data section.
    public let offset: Int
    /// Bytes from `offset` to the next tensor's offset (or the end of the data
    /// section). This can exceed the type's computed size: padding, and in
    /// bitnet.cpp files hidden `*_scale` bytes, sit between tensors.
    public let extent: Int

    public init(name: String, dims: [Int], type: GGMLType, offset: Int, extent: Int) {
        self.name = name
        self.dims = dims
        self.type = type
        self.offset = offset
        self.extent = extent
    }

    /// Product of the dims (1 for a 0-dimensional tensor). The parser has
    /// checked that it fits in Int.
    public var elementCount: Int { dims.reduce(1) { $0 &* $1 } }

    /// Columns: ne0, the length of one contiguous row.
    public var cols: Int { dims.first ?? 1 }

    /// Rows: the product of all dims after ne0 (M for a matrix).
    public var rows: Int { dims.dropFirst().reduce(1) { $0 &* $1 } }

    /// The size computed from the type and shape, or nil where the type's size
    /// is unknown (see `GGMLType.byteCount(dims:)`).
    public var byteCount: Int? { try? type.byteCount(dims: dims) }
}
