/// The tensors of one transformer block.
public struct LayerWeights: @unchecked Sendable {
    public let attnNorm: [Float] // (hidden,)
    public let q: TernaryMatrix // (qDim, hidden)
    public let k: TernaryMatrix // (kvDim, hidden)
    public let v: TernaryMatrix // (kvDim, hidden)
    public let attnSubNorm: [Float]? // (qDim,), bitnet graphs only
    public let o: TernaryMatrix // (hidden, qDim)
    public let ffnNorm: [Float] // (hidden,)
    public let gate: TernaryMatrix // (ffn, hidden)
    public let up: TernaryMatrix // (ffn, hidden)
    public let ffnSubNorm: [Float]? // (ffn,), bitnet graphs only
    public let down: TernaryMatrix // (hidden, ffn)

    /// The seven ternary projections, in file order.
    public var projections: [TernaryMatrix] { [q, k, v, o, gate, up, down] }
}
