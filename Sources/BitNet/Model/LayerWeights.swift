/// The tensors of one transformer block.
package struct LayerWeights: @unchecked Sendable {
    package let attnNorm: [Float] // (hidden,)
    package let q: TernaryMatrix // (qDim, hidden)
    package let k: TernaryMatrix // (kvDim, hidden)
    package let v: TernaryMatrix // (kvDim, hidden)
    package let attnSubNorm: [Float]? // (qDim,), bitnet graphs only
    package let o: TernaryMatrix // (hidden, qDim)
    package let ffnNorm: [Float] // (hidden,)
    package let gate: TernaryMatrix // (ffn, hidden)
    package let up: TernaryMatrix // (ffn, hidden)
    package let ffnSubNorm: [Float]? // (ffn,), bitnet graphs only
    package let down: TernaryMatrix // (hidden, ffn)

    /// The seven ternary projections, in file order.
    package var projections: [TernaryMatrix] { [q, k, v, o, gate, up, down] }
}
