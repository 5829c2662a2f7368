import CKernels
/// Activation buffers for a batch of up to `batchCapacity` tokens, allocated
/// once per model so the forward pass allocates nothing.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

final class RunState: @unchecked Sendable {
    let batchCapacity: Int
    let x: AlignedBuffer // (B, hidden) residual stream
    let h: AlignedBuffer // (B, hidden) normed input / projection output
    let q: AlignedBuffer // (B, qDim)
    let k: AlignedBuffer // (B, kvDim)
    let v: AlignedBuffer // (B, kvDim)
    let att: AlignedBuffer // (B, qDim) attention output
    let gate: AlignedBuffer // (B, ffn)
    let up: AlignedBuffer // (B, ffn)
    let scores: AlignedBuffer // (threads, BN_ATTN_GROUP, context) attention scratch per thread
    let actsHidden: QuantizedActivations // (B, hidden)
    let actsQ: QuantizedActivations // (B, qDim)
    let actsFFN: QuantizedActivations // (B, ffn)
    let ropeCos: AlignedBuffer // (context, headDim/2)
    let ropeSin: AlignedBuffer // (context, headDim/2)

    /// Floats of attention scratch per thread: the scores of up to BN_ATTN_GROUP heads.
    static func scoreStride(contextLength: Int) -> Int { Int(BN_ATTN_GROUP) * contextLength }

    init(config c: ModelConfig, batchCapacity b: Int, contextLength: Int, threads: Int) throws {
        batchCapacity = b
        func floats(_ n: Int) -> AlignedBuffer { AlignedBuffer(byteCount: n * 4) }
        x = floats(b * c.hiddenSize)
        h = floats(b * c.hiddenSize)
        q = floats(b * c.qDim)
        k = floats(b * c.kvDim)
        v = floats(b * c.kvDim)
        att = floats(b * c.qDim)
        gate = floats(b * c.ffnSize)
        up = floats(b * c.ffnSize)
        scores = floats(threads * Self.scoreStride(contextLength: contextLength))
        actsHidden = try QuantizedActivations(capacity: b, cols: c.hiddenSize)
        actsQ = try QuantizedActivations(capacity: b, cols: c.qDim)
        actsFFN = try QuantizedActivations(capacity: b, cols: c.ffnSize)
        // RoPE angles as the reference computes them in f32: inv_freq_i = 1 / θ^(2i/d), angle = pos · inv_freq_i
        let half = c.headDim / 2
        ropeCos = floats(contextLength * half)
        ropeSin = floats(contextLength * half)
        let cosTable = ropeCos.typed(Float.self), sinTable = ropeSin.typed(Float.self)
        for i in 0..<half {
            let invFreq = 1 / powf(c.ropeTheta, Float(2 * i) / Float(c.headDim))
            for pos in 0..<contextLength {
                let angle = Float(pos) * invFreq
                cosTable[pos * half + i] = cosf(angle)
                sinTable[pos * half + i] = sinf(angle)
            }
        }
    }
}
