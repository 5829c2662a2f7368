import CKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A loaded model ready to run: weights, KV cache, scratch buffers and a
/// worker pool. Prompts go through the GEMM kernels in batches, single
/// tokens through the GEMV kernels; both append to the KV cache.
public final class BitNetModel: @unchecked Sendable {
    public let weights: ModelWeights
    public var config: ModelConfig { weights.config }
    public let kernels: Kernels
    public let pool: WorkerPool
    public let cache: KVCache
    public let batchSize: Int
    /// Set when the head runs in int8 (`headPrecision: .q8`).
    public let q8Head: Q8Matrix?
    let state: RunState

    /// How the output head is computed.
    public enum HeadPrecision: String, Sendable, CaseIterable {
        /// The file's F16 weights, f32 activations: exact (default).
        case f16
        /// Requantized at load to int8 per row, int8 activations: half the bytes per token.
        case q8
    }

    /// - Parameters:
    ///   - contextLength: KV cache positions (default: the model's, capped so the cache uses ≤ 1/4 of RAM).
    ///   - threads: worker threads (default: every online core).
    ///   - batchSize: prompt tokens per forward chunk.
    public init(weights: ModelWeights, contextLength: Int? = nil, threads: Int? = nil, kernels: Kernels = .best,
                batchSize: Int = 128, headPrecision: HeadPrecision = .f16,
                kernel: KernelSelection = .fixed(.i2s), tuneCache: Bool = true,
                kvPrecision: KVCache.Precision = .f32) throws {
        self.weights = weights
        self.kernels = kernels
        let c = weights.config
        let ctx = contextLength ?? Self.defaultContextLength(config: c)
        guard ctx >= 1, ctx <= 1 << 24 else {
            throw ModelError.invalidHyperparameter(path: weights.file.path, key: "--ctx", value: String(ctx),
                                                   reason: "context length must be in 1...16777216")
        }
        // an explicit --ctx larger than memory would fail late (or be killed) while filling the cache
        let pages = Int(sysconf(Int32(_SC_PHYS_PAGES))), pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let needed = KVCache.byteCount(capacity: ctx, layerCount: c.layerCount, kvDim: c.kvDim, precision: kvPrecision) + ctx * c.headDim * 4
        guard pages <= 0 || needed <= pages * pageSize / 2 else {
            throw ModelError.invalidHyperparameter(
                path: weights.file.path, key: "--ctx", value: String(ctx),
                reason: "the KV cache would need \(needed >> 20) MiB, more than half of this machine's \((pages * pageSize) >> 20) MiB")
        }
        let threadCount = threads ?? Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        pool = try WorkerPool(threads: max(1, threadCount))
        self.batchSize = max(1, batchSize)
        cache = KVCache(capacity: ctx, layerCount: c.layerCount, kvHeads: c.kvHeadCount, headDim: c.headDim,
                        precision: kvPrecision)
        state = try RunState(config: c, batchCapacity: self.batchSize, contextLength: ctx, threads: pool.threads)
        q8Head = headPrecision == .q8 ? try Q8Matrix(weights.output) : nil
        let matrices = weights.layers.flatMap(\.projections)
        switch kernel {
        case .fixed(let k):
            try TernaryMatrix.useForDecoding(matrices.map { ($0, k) }, pool: pool)
            kernelChoices = []
        case .auto:
            var tuner = KernelTuner(kernels: kernels, pool: pool)
            tuner.useCache = tuneCache
            kernelChoices = try tuner.apply(to: matrices)
        }
    }

    /// The decode kernel chosen per matrix shape (empty when one was fixed).
    public private(set) var kernelChoices: [KernelTuner.Choice] = []

    /// Bytes read per generated token with this model's head.
    public var bytesPerToken: Int {
        weights.bytesPerToken - (q8Head.map { $0.rows * $0.cols } ?? 0)
    }

    public static func defaultContextLength(config c: ModelConfig) -> Int {
        let pages = Int(sysconf(Int32(_SC_PHYS_PAGES))), pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let budget = max(1 << 28, pages * pageSize / 4)
        let perPosition = KVCache.byteCount(capacity: 1, layerCount: c.layerCount, kvDim: c.kvDim)
        return max(1, min(c.contextLength, budget / max(1, perPosition)))
    }

    /// Runs `tokens` at positions `cache.count…`, appending them to the cache.
    /// Returns the logits of the last token (vocab floats), or of every token
    /// (tokens.count × vocab, row-major) when `allLogits`.
    public func forward(_ tokens: [Int32], allLogits: Bool = false) throws -> [Float] {
        guard !tokens.isEmpty else { throw ModelError.emptyInput }
        let c = config
        if let bad = tokens.first(where: { $0 < 0 || Int($0) >= c.vocabSize }) {
            throw ModelError.tokenOutOfRange(token: bad, vocabSize: c.vocabSize)
        }
        guard cache.count + tokens.count <= cache.capacity else {
            throw ModelError.contextOverflow(needed: cache.count + tokens.count, contextLength: cache.capacity)
        }
        var logits = [Float](repeating: 0, count: (allLogits ? tokens.count : 1) * c.vocabSize)
        var done = 0
        while done < tokens.count {
            let n = min(batchSize, tokens.count - done)
            try runChunk(Array(tokens[done..<(done + n)]))
            let last = done + n == tokens.count
            if allLogits || last {
                try logits.withUnsafeMutableBufferPointer { out in
                    let first = allLogits ? 0 : n - 1
                    try head(rows: first..<n, into: out.baseAddress! + (allLogits ? done * c.vocabSize : 0))
                }
            }
            done += n
        }
        return logits
    }

    // MARK: - One chunk of the graph

    private func runChunk(_ tokens: [Int32]) throws {
        let c = config, n = tokens.count, p = cache.count
        let ops = kernels.table.pointee
        let s = state
        let hidden = c.hiddenSize, qDim = c.qDim, kvDim = c.kvDim, ffn = c.ffnSize, half = c.headDim / 2
        let x = s.x.typed(Float.self).baseAddress!, h = s.h.typed(Float.self).baseAddress!
        let q = s.q.typed(Float.self).baseAddress!, k = s.k.typed(Float.self).baseAddress!
        let v = s.v.typed(Float.self).baseAddress!, att = s.att.typed(Float.self).baseAddress!
        let gate = s.gate.typed(Float.self).baseAddress!, up = s.up.typed(Float.self).baseAddress!
        let cosTable = s.ropeCos.typed(Float.self).baseAddress!, sinTable = s.ropeSin.typed(Float.self).baseAddress!
        let eps = c.normEpsilon

        for (t, token) in tokens.enumerated() {
            ops.f16_to_f32(weights.tokenEmbedding.row(Int(token)), x + t * hidden, Int32(hidden))
        }
        for (l, w) in weights.layers.enumerated() {
            // attention block
            normRows(x, w.attnNorm, n: n, width: hidden, eps: eps, into: h)
            try project(h, n: n, acts: s.actsHidden, [(w.q, q), (w.k, k), (w.v, v)])
            for t in 0..<n {
                let pos = p + t
                ops.rope(q + t * qDim, Int32(c.headCount), Int32(c.headDim), cosTable + pos * half, sinTable + pos * half,
                         c.ropeIsNeoX ? 1 : 0)
                ops.rope(k + t * kvDim, Int32(c.kvHeadCount), Int32(c.headDim), cosTable + pos * half,
                         sinTable + pos * half, c.ropeIsNeoX ? 1 : 0)
                cache.store(layer: l, position: pos, keys: k + t * kvDim, values: v + t * kvDim)
            }
            var job = AttentionJob(table: kernels.table, q: q, keys: UnsafeRawPointer(cache.keyBase(layer: l)),
                                   values: UnsafeRawPointer(cache.valueBase(layer: l)),
                                   halfCache: cache.precision == .f16, headStride: cache.headStride, out: att,
                                   scores: s.scores.typed(Float.self).baseAddress!, scoreStride: Int32(RunState.scoreStride(contextLength: cache.capacity)),
                                   tokens: Int32(n), startPosition: Int32(p), heads: Int32(c.headCount),
                                   kvHeads: Int32(c.kvHeadCount), headDim: Int32(c.headDim),
                                   scale: 1 / Float(c.headDim).squareRoot())
            withUnsafeMutablePointer(to: &job) { pool.run(threads: min(pool.threads, n * c.headCount), AttentionJob.task, context: $0) }
            if let sub = w.attnSubNorm { normRows(att, sub, n: n, width: qDim, eps: eps, into: att) }
            try project(att, n: n, acts: s.actsQ, [(w.o, h)])
            ops.add(h, x, Int32(n * hidden))

            // feed-forward block
            normRows(x, w.ffnNorm, n: n, width: hidden, eps: eps, into: h)
            try project(h, n: n, acts: s.actsHidden, [(w.gate, gate), (w.up, up)])
            switch c.activation {
            case .relu2: ops.gate_relu2(gate, up, Int32(n * ffn))
            case .silu: ops.gate_silu(gate, up, Int32(n * ffn))
            }
            if let sub = w.ffnSubNorm { normRows(gate, sub, n: n, width: ffn, eps: eps, into: gate) }
            try project(gate, n: n, acts: s.actsFFN, [(w.down, h)])
            ops.add(h, x, Int32(n * hidden))
        }
        cache.count = p + n
    }

    /// RMSNorm of each of n rows: out[t] = norm(src[t]) ⊙ weight (out may be src).
    private func normRows(_ src: UnsafeMutablePointer<Float>, _ weight: [Float], n: Int, width: Int, eps: Float,
                          into out: UnsafeMutablePointer<Float>) {
        let rmsnorm = kernels.table.pointee.rmsnorm!
        weight.withUnsafeBufferPointer { w in
            for t in 0..<n { rmsnorm(src + t * width, w.baseAddress!, eps, Int32(width), out + t * width) }
        }
    }

    /// BitLinear: quantize the n input rows once per token (as the reference
    /// does), then run each projection that reads them.
    private func project(_ input: UnsafeMutablePointer<Float>, n: Int, acts: QuantizedActivations,
                         _ outputs: [(TernaryMatrix, UnsafeMutablePointer<Float>)]) throws {
        try kernels.quantize(UnsafeBufferPointer(start: input, count: n * acts.cols), rows: n, cols: acts.cols, into: acts)
        for (matrix, out) in outputs {
            try kernels.matmul(matrix, acts, into: UnsafeMutableBufferPointer(start: out, count: n * matrix.rows), pool: pool)
        }
    }

    /// logits for chunk rows `rows` (final norm, then the F16 head), written row after row at `out`.
    private func head(rows: Range<Int>, into out: UnsafeMutablePointer<Float>) throws {
        let c = config
        let x = state.x.typed(Float.self).baseAddress!, h = state.h.typed(Float.self).baseAddress!
        normRows(x + rows.lowerBound * c.hiddenSize, weights.outputNorm, n: rows.count, width: c.hiddenSize,
                 eps: c.normEpsilon, into: h)
        if let q8Head {
            let acts = state.actsHidden
            try kernels.quantize(UnsafeBufferPointer(start: h, count: rows.count * c.hiddenSize), rows: rows.count,
                                 cols: c.hiddenSize, into: acts)
            q8Head.withDescriptor { matrix in
                var job = Q8HeadJob(table: kernels.table, matrix: matrix, x: acts.values.typed(Int8.self).baseAddress!,
                                    xScale: acts.scales.typed(Float.self).baseAddress!, n: Int32(rows.count), y: out)
                withUnsafeMutablePointer(to: &job) { pool.run(Q8HeadJob.task, context: $0) }
            }
            return
        }
        var job = HeadJob(table: kernels.table, weights: weights.output.row(0), rows: Int32(c.vocabSize),
                          k: Int32(c.hiddenSize), x: h, n: Int32(rows.count), y: out)
        withUnsafeMutablePointer(to: &job) { pool.run(HeadJob.task, context: $0) }
    }
}
