#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The oracle for tests: the BitNet b1.58 forward pass of docs/FORMATS.md §2.2
/// written as plain loops over dequantized weights (no SIMD, no kernels, no
/// cache, sums in Double). Only activation quantization stays in f32, because
/// that rounding is part of the model's definition. Slow; for tiny models.
package struct ReferenceModel: Sendable {
    package let config: ModelConfig
    private struct Linear: Sendable {
        let rows: Int, cols: Int
        let ternary: [Int8] // (rows, cols)
        let scale: Float
    }
    private struct Layer: Sendable {
        let attnNorm: [Float], attnSubNorm: [Float]?, ffnNorm: [Float], ffnSubNorm: [Float]?
        let q: Linear, k: Linear, v: Linear, o: Linear, gate: Linear, up: Linear, down: Linear
    }
    private let layers: [Layer]
    private let embedding: [Float] // (vocab, hidden)
    private let head: [Float] // (vocab, hidden)
    private let outputNorm: [Float]

    package init(weights: ModelWeights) {
        config = weights.config
        func linear(_ m: TernaryMatrix) -> Linear {
            var t = [Int8](repeating: 0, count: m.rows * m.cols)
            for r in 0..<m.rows { for c in 0..<m.cols { t[r * m.cols + c] = Int8(m.weight(row: r, col: c)) } }
            return Linear(rows: m.rows, cols: m.cols, ternary: t, scale: m.scale)
        }
        func dense(_ m: HalfMatrix) -> [Float] {
            (0..<(m.rows * m.cols)).map { Float(Float16(bitPattern: m.pointer[$0])) }
        }
        layers = weights.layers.map {
            Layer(attnNorm: $0.attnNorm, attnSubNorm: $0.attnSubNorm, ffnNorm: $0.ffnNorm, ffnSubNorm: $0.ffnSubNorm,
                  q: linear($0.q), k: linear($0.k), v: linear($0.v), o: linear($0.o), gate: linear($0.gate),
                  up: linear($0.up), down: linear($0.down))
        }
        embedding = dense(weights.tokenEmbedding)
        head = weights.headIsTied ? embedding : dense(weights.output)
        outputNorm = weights.outputNorm
    }

    private func rmsNorm(_ x: [Float], _ w: [Float], _ eps: Float) -> [Float] {
        var ss = 0.0
        for v in x { ss += Double(v) * Double(v) }
        let inv = 1 / (ss / Double(x.count) + Double(eps)).squareRoot()
        return (0..<x.count).map { Float(Double(x[$0]) * inv) * w[$0] }
    }

    /// BitLinear: per-token absmax int8 activations (f32, round half to even), exact integer dot, then the scales.
    private func apply(_ l: Linear, _ x: [Float]) -> [Float] {
        var amax: Float = 0
        for v in x { amax = max(amax, abs(v)) }
        let s: Float = 127 / max(amax, 1e-5)
        let q = x.map { Int(max(-128, min(127, ($0 * s).rounded(.toNearestOrEven)))) }
        return (0..<l.rows).map { r in
            var dot = 0
            for c in 0..<l.cols { dot += Int(l.ternary[r * l.cols + c]) * q[c] }
            return Float(Double(dot) * Double(l.scale) / Double(s))
        }
    }

    private func rope(_ x: inout [Float], heads: Int, position: Int) {
        let d = config.headDim, half = d / 2
        for h in 0..<heads {
            for i in 0..<half {
                let invFreq = 1 / Double(Float(pow(Double(config.ropeTheta), Double(2 * i) / Double(d))))
                let angle = Double(position) * invFreq
                let (a, b) = config.ropeIsNeoX ? (h * d + i, h * d + i + half) : (h * d + 2 * i, h * d + 2 * i + 1)
                let xa = Double(x[a]), xb = Double(x[b])
                x[a] = Float(xa * cos(angle) - xb * sin(angle))
                x[b] = Float(xa * sin(angle) + xb * cos(angle))
            }
        }
    }

    /// Logits (vocab) after each prefix of `tokens`, recomputed from scratch.
    package func logits(tokens: [Int32]) -> [[Float]] {
        let c = config, d = c.headDim, group = c.headCount / c.kvHeadCount
        var keys = [[[Float]]](repeating: [], count: c.layerCount) // [layer][pos] (kvDim)
        var values = keys
        var out: [[Float]] = []
        for (pos, token) in tokens.enumerated() {
            var x = Array(embedding[(Int(token) * c.hiddenSize)..<((Int(token) + 1) * c.hiddenSize)])
            for (li, l) in layers.enumerated() {
                let h = rmsNorm(x, l.attnNorm, c.normEpsilon)
                var q = apply(l.q, h), k = apply(l.k, h)
                let v = apply(l.v, h)
                rope(&q, heads: c.headCount, position: pos)
                rope(&k, heads: c.kvHeadCount, position: pos)
                keys[li].append(k)
                values[li].append(v)
                var att = [Float](repeating: 0, count: c.qDim)
                for head in 0..<c.headCount {
                    let kv = head / group
                    var scores = (0...pos).map { t -> Double in
                        var dot = 0.0
                        for i in 0..<d { dot += Double(q[head * d + i]) * Double(keys[li][t][kv * d + i]) }
                        return dot / Double(d).squareRoot()
                    }
                    let m = scores.max()!
                    scores = scores.map { exp($0 - m) }
                    let total = scores.reduce(0, +)
                    for i in 0..<d {
                        var acc = 0.0
                        for t in 0...pos { acc += scores[t] / total * Double(values[li][t][kv * d + i]) }
                        att[head * d + i] = Float(acc)
                    }
                }
                if let sub = l.attnSubNorm { att = rmsNorm(att, sub, c.normEpsilon) }
                let o = apply(l.o, att)
                for i in 0..<c.hiddenSize { x[i] += o[i] }
                let h2 = rmsNorm(x, l.ffnNorm, c.normEpsilon)
                let g = apply(l.gate, h2), u = apply(l.up, h2)
                var m = (0..<c.ffnSize).map { i -> Float in
                    let gi = Double(g[i])
                    let a = c.activation == .relu2 ? max(gi, 0) * max(gi, 0) : gi / (1 + exp(-gi))
                    return Float(a * Double(u[i]))
                }
                if let sub = l.ffnSubNorm { m = rmsNorm(m, sub, c.normEpsilon) }
                let down = apply(l.down, m)
                for i in 0..<c.hiddenSize { x[i] += down[i] }
            }
            let final = rmsNorm(x, outputNorm, c.normEpsilon)
            out.append((0..<c.vocabSize).map { r in
                var dot = 0.0
                for i in 0..<c.hiddenSize { dot += Double(head[r * c.hiddenSize + i]) * Double(final[i]) }
                return Float(dot)
            })
        }
        return out
    }
}
