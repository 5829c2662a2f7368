import CKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The current wave of activations: buffers for one forward step of up to
/// `rowCapacity` rows (the new tokens of every sequence in the step, one after
/// another). Owned by the model and used under its step lock, so sessions
/// carry only their KV caches and many sessions cost no extra scratch.
final class RunState: @unchecked Sendable {
    let rowCapacity: Int
    let headDim: Int
    let ropeTheta: Float
    let x: AlignedBuffer // (R, hidden) residual stream
    let h: AlignedBuffer // (R, hidden) normed input / projection output
    let q: AlignedBuffer // (R, qDim)
    let k: AlignedBuffer // (R, kvDim)
    let v: AlignedBuffer // (R, kvDim)
    let att: AlignedBuffer // (R, qDim) attention output
    let gate: AlignedBuffer // (R, ffn)
    let up: AlignedBuffer // (R, ffn)
    let actsHidden: QuantizedActivations // (R, hidden)
    let actsQ: QuantizedActivations // (R, qDim)
    let actsFFN: QuantizedActivations // (R, ffn)
    let ropeCos: AlignedBuffer // (R, headDim/2) angles of each row's position
    let ropeSin: AlignedBuffer // (R, headDim/2)
    let invFrequencies: [Float] // (headDim/2,)
    let embeddingRow: AlignedBuffer // (hidden,) f16: a tied embedding's row gathered from the head panels
    /// (threads, BN_ATTN_GROUP, scoreContext) attention scratch per thread; grows with
    /// the longest cache a step attends over.
    private(set) var scores: AlignedBuffer
    private(set) var scoreContext: Int
    /// (rows, vocab) logits of a step's wanted rows when they belong to several inputs,
    /// before each input's rows are copied out; grows to the most rows a step wanted.
    private(set) var logits: AlignedBuffer
    let threads: Int

    /// Floats of attention scratch per thread: the scores of up to BN_ATTN_GROUP heads.
    static func scoreStride(contextLength: Int) -> Int { Int(BN_ATTN_GROUP) * contextLength }

    init(config c: ModelConfig, rowCapacity r: Int, threads: Int) throws {
        rowCapacity = r
        headDim = c.headDim
        ropeTheta = c.ropeTheta
        self.threads = threads
        func floats(_ n: Int) -> AlignedBuffer { AlignedBuffer(byteCount: n * 4) }
        x = floats(r * c.hiddenSize)
        h = floats(r * c.hiddenSize)
        q = floats(r * c.qDim)
        k = floats(r * c.kvDim)
        v = floats(r * c.kvDim)
        att = floats(r * c.qDim)
        gate = floats(r * c.ffnSize)
        up = floats(r * c.ffnSize)
        actsHidden = try QuantizedActivations(capacity: r, cols: c.hiddenSize)
        actsQ = try QuantizedActivations(capacity: r, cols: c.qDim)
        actsFFN = try QuantizedActivations(capacity: r, cols: c.ffnSize)
        let half = c.headDim / 2
        ropeCos = floats(r * half)
        ropeSin = floats(r * half)
        embeddingRow = AlignedBuffer(byteCount: c.hiddenSize * 2)
        // as the reference computes them in f32: inv_freq_i = 1 / θ^(2i/d)
        invFrequencies = (0..<half).map { 1 / powf(c.ropeTheta, Float(2 * $0) / Float(c.headDim)) }
        scoreContext = 0
        scores = floats(0)
        logits = floats(0)
    }

    /// Writes row `row`'s RoPE angles for `position` (angle = pos · inv_freq_i, in f32:
    /// the same values a table computed at load would hold).
    func setRopePosition(row: Int, position: Int) {
        let half = invFrequencies.count
        let c = ropeCos.typed(Float.self).baseAddress! + row * half
        let s = ropeSin.typed(Float.self).baseAddress! + row * half
        for i in 0..<half {
            let angle = Float(position) * invFrequencies[i]
            c[i] = cosf(angle)
            s[i] = sinf(angle)
        }
    }

    /// Makes the logits scratch hold `count` floats (only grows: a decoding loop of the same
    /// batch writes the same pages every step instead of a fresh, zeroed array each time).
    func reserveLogits(count: Int) -> UnsafeMutablePointer<Float> {
        if logits.byteCount < count * 4 { logits = AlignedBuffer(byteCount: count * 4) }
        return logits.typed(Float.self).baseAddress!
    }

    /// Makes the attention scratch hold scores over `contextLength` positions (only
    /// grows, so the decode loop allocates nothing after the first step).
    func reserveScores(contextLength: Int) {
        guard contextLength > scoreContext else { return }
        scores = AlignedBuffer(byteCount: threads * Self.scoreStride(contextLength: contextLength) * 4)
        scoreContext = contextLength
    }
}
