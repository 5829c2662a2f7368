import CKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A loaded model: weights, the decode kernel chosen per matrix, the head,
/// a worker pool and the scratch of one forward step. Conversations live in
/// ``Session``s (one KV cache each); many sessions share one model.
///
/// Concurrency: the worker pool runs one step at a time, so ``step(_:)`` holds
/// the model's lock for the whole step — sessions driven from several threads
/// are serialized, never raced. To run them together, put them in one step
/// (``BatchScheduler`` does that for many requests): every projection then
/// reads its weights once for all of them.
public final class BitNetModel: @unchecked Sendable {
    public let weights: ModelWeights
    public var config: ModelConfig { weights.config }
    public let kernels: Kernels
    package let pool: WorkerPool
    /// Threads that compute each step (the caller plus the pool's workers).
    public var threads: Int { pool.threads }
    /// Most rows (tokens of all sequences together) one pass of the graph takes;
    /// longer inputs run in several passes.
    public let batchSize: Int
    /// Set when the head runs in int8 (`headPrecision: .q8`).
    package let q8Head: Q8Matrix?
    /// Set when the head was requantized at load to a block type (`headPrecision: .q6_k` …).
    package let requantizedHead: BlockQuantizedMatrix?
    /// The block head the model computes: requantized at load, or the file's own.
    package var blockHead: BlockQuantizedMatrix? { requantizedHead ?? (q8Head == nil ? weights.outputBlocks : nil) }
    /// Set when the head runs in F16 (no q8 or block head): the weights' head in 16-row panels.
    package let halfHead: HalfPanels?
    /// Context length and KV precision of sessions made without explicit ones.
    public let defaultContextLength: Int
    public let defaultKVPrecision: KVCache.Precision
    /// Held for every step and every change of a session's cache; `state` is
    /// used only under it.
    let lock = Lock()
    let state: RunState

    /// How the output head is computed.
    public enum HeadPrecision: String, Sendable, CaseIterable {
        /// The file's head as stored: F16 weights with f32 activations (exact), or the
        /// file's own block type with the native block kernels (default).
        case f16
        /// Requantized at load to int8 per row, int8 activations: half the bytes per token.
        case q8
        /// Requantized at load to a llama.cpp block type (ggml's reference rules) and run by
        /// the native block kernels: 8.5, 6.56, 4.5 or 4.5 bits per weight read per token.
        /// K types need a hidden size that is a multiple of 256, the others of 32.
        case q8_0, q6_k, q4_k, q4_0

        /// Bytes the head reads per token with this precision on `weights`.
        package func headBytes(_ weights: ModelWeights) -> Int {
            let v = weights.config.vocabSize, h = weights.config.hiddenSize
            switch self {
            case .f16: return weights.outputBlocks?.byteCount ?? v * h * 2
            case .q8: return weights.outputBlocks?.byteCount ?? v * h
            default:
                let t = Int32(blockType!.rawValue)
                return v * (h / max(1, Int(bn_qblock_size(t)))) * Int(bn_qblock_bytes(t))
            }
        }

        /// What the head runs as, for reports: `f16` keeps a file's own block type, so a
        /// Q6_K-head file reads `Q6_K`.
        package func label(_ weights: ModelWeights) -> String {
            self == .f16 ? weights.outputBlocks.map { $0.type.description } ?? rawValue : rawValue
        }

        /// The block type of a requantized head (nil for f16 and q8).
        package var blockType: GGMLType? {
            switch self {
            case .f16, .q8: return nil
            case .q8_0: return .q8_0
            case .q6_k: return .q6_K
            case .q4_k: return .q4_K
            case .q4_0: return .q4_0
            }
        }
    }

    /// Prepares loaded weights for computing: the kernel per matrix, the head, the worker pool.
    ///
    /// - Parameters:
    ///   - weights: the loaded file; shared, never modified (several models may use the same weights).
    ///   - contextLength: KV cache positions of sessions made by ``makeSession(contextLength:kvPrecision:)``
    ///     without one (default: the model's, capped so one cache uses ≤ 1/4 of RAM).
    ///   - threads: worker threads (default: every online core).
    ///   - kernels: the instruction set the kernels use (default: the best this CPU has).
    ///   - batchSize: rows per pass of the graph (prompt tokens per chunk).
    ///   - headPrecision: the exact F16 head, or an int8 requantization with half the bytes.
    ///   - kernel: the decode kernel of the ternary projections: one for all, or measured per shape.
    ///   - tuneCache: whether a measured choice is read from and written to the tuner's cache file.
    ///   - kvPrecision: the default precision of sessions' KV caches.
    public init(weights: ModelWeights, contextLength: Int? = nil, threads: Int? = nil, kernels: Kernels = .best,
                batchSize: Int = 128, headPrecision: HeadPrecision = .f16,
                kernel: KernelSelection = .fixed(.i2s), tuneCache: Bool = true,
                kvPrecision: KVCache.Precision = .f32) throws {
        self.weights = weights
        self.kernels = kernels
        let c = weights.config
        let ctx = contextLength ?? Self.defaultContextLength(config: c)
        try Self.checkContext(ctx, config: c, precision: kvPrecision, path: weights.file.path)
        defaultContextLength = ctx
        defaultKVPrecision = kvPrecision
        let threadCount = threads ?? Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        pool = try WorkerPool(threads: max(1, threadCount))
        self.batchSize = max(1, batchSize)
        state = try RunState(config: c, rowCapacity: self.batchSize, threads: pool.threads)
        // a native block head stays native under `--head q8`: its blocks are already 4.5–8.5
        // bits per weight, and requantizing them would only add error (docs/NUMERICS.md)
        q8Head = headPrecision == .q8 && weights.outputBlocks == nil ? try Q8Matrix(weights.output) : nil
        if let type = headPrecision.blockType, weights.outputBlocks?.type != type {
            requantizedHead = try BlockQuantizedMatrix.requantizedHead(of: weights, to: type, threads: pool.threads)
        } else {
            requantizedHead = nil
        }
        halfHead = q8Head == nil && requantizedHead == nil && weights.outputBlocks == nil
            ? try weights.headPanels(threads: pool.threads) : nil
        let matrices = weights.layers.flatMap(\.projections)
        // a matrix held in place has only its file's layout: that kernel decodes it, whatever was asked
        let free = matrices.filter { $0.inPlaceKernel == nil }
        var chosenFree: [MatrixKernel]
        switch kernel {
        case .fixed(let k):
            chosenFree = Array(repeating: k, count: free.count)
            kernelChoices = []
        case .auto where free.isEmpty:
            chosenFree = []
            kernelChoices = []
        case .auto:
            var tuner = KernelTuner(kernels: kernels, pool: pool)
            tuner.useCache = tuneCache
            (kernelChoices, chosenFree) = try tuner.choose(for: free)
        }
        chosenFree.reverse()
        let chosen = matrices.map { $0.inPlaceKernel ?? chosenFree.removeLast() }
        let tables = try LookupTableMatrix.make(Array(zip(matrices, chosen)), pool: pool)
        let perLayer = matrices.count / max(1, weights.layers.count)
        decodeTables = weights.layers.indices.map { Array(tables[($0 * perLayer)..<(($0 + 1) * perLayer)]) }
        fusedGroups = weights.layers.map { ([$0.q, $0.k, $0.v], [$0.gate, $0.up]) }
    }

    /// The decode kernel of every projection, layer by layer in the order q, k, v, o, gate, up, down.
    public var decodeKernels: [MatrixKernel] { decodeTables.flatMap { $0.map { $0?.kernel ?? .i2s } } }

    /// Bytes one decoded token reads from projection `index` (LayerWeights.projections order)
    /// of layer `layer`: its lookup table when a TL kernel decodes it, else its I2_R16 weights.
    package func decodeByteCount(layer: Int, projection index: Int) -> Int {
        decodeTables[layer][index]?.byteCount ?? weights.layers[layer].projections[index].storedBytes.count
    }

    /// A new conversation: an empty KV cache of `contextLength` positions (default:
    /// the model's ``defaultContextLength``). Its memory is reserved, not touched:
    /// pages are used as positions fill.
    public func makeSession(contextLength: Int? = nil, kvPrecision: KVCache.Precision? = nil) throws -> Session {
        let c = config
        let ctx = contextLength ?? defaultContextLength
        let precision = kvPrecision ?? defaultKVPrecision
        try Self.checkContext(ctx, config: c, precision: precision, path: weights.file.path)
        return Session(model: self, cache: KVCache(capacity: ctx, layerCount: c.layerCount, kvHeads: c.kvHeadCount,
                                                   headDim: c.headDim, precision: precision))
    }

    /// An explicit context larger than memory would fail late (or be killed) while filling the cache.
    static func checkContext(_ ctx: Int, config c: ModelConfig, precision: KVCache.Precision, path: String) throws {
        guard ctx >= 1, ctx <= 1 << 24 else {
            throw ModelError.invalidHyperparameter(path: path, key: "--ctx", value: String(ctx),
                                                   reason: "context length must be in 1...16777216")
        }
        let pages = Int(sysconf(Int32(_SC_PHYS_PAGES))), pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let needed = KVCache.byteCount(capacity: ctx, layerCount: c.layerCount, kvDim: c.kvDim, precision: precision)
        guard pages <= 0 || needed <= pages * pageSize / 2 else {
            throw ModelError.invalidHyperparameter(
                path: path, key: "--ctx", value: String(ctx),
                reason: "the KV cache would need \(needed >> 20) MiB, more than half of this machine's \((pages * pageSize) >> 20) MiB")
        }
    }

    /// The decode kernel chosen per matrix shape (empty when one was fixed).
    package let kernelChoices: [KernelTuner.Choice]
    /// Per layer, per projection (LayerWeights.projections order): the TL copy a
    /// lookup-table decode kernel reads, nil for I2_S. The model's, not the weights'.
    let decodeTables: [[LookupTableMatrix?]]
    /// Per layer: [q, k, v] and [gate, up], the matrices that share an input and run
    /// as one dispatch when I2_S computes all of them (built once: a step makes no arrays per layer).
    let fusedGroups: [(qkv: [TernaryMatrix], gateUp: [TernaryMatrix])]

    /// Bytes read per generated token with this model's head.
    public var bytesPerToken: Int {
        var total = q8Head.map { $0.rows * $0.cols } ?? blockHead?.byteCount ?? config.vocabSize * config.hiddenSize * 2
        for (l, layer) in weights.layers.enumerated() {
            for p in layer.projections.indices { total += decodeByteCount(layer: l, projection: p) }
        }
        return total
    }

    public static func defaultContextLength(config c: ModelConfig) -> Int {
        let pages = Int(sysconf(Int32(_SC_PHYS_PAGES))), pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let budget = max(1 << 28, pages * pageSize / 4)
        let perPosition = KVCache.byteCount(capacity: 1, layerCount: c.layerCount, kvDim: c.kvDim)
        return max(1, min(c.contextLength, budget / max(1, perPosition)))
    }

    // MARK: - Forward steps

    /// Runs one step over several sequences, each with its own session, new tokens
    /// and position: every projection reads its weights once for all rows (a GEMM),
    /// attention runs per sequence on its own cache, the head only for rows that
    /// want logits. Returns each input's logits (empty, vocab, or tokens × vocab
    /// floats, per ``SequenceInput/logits``). A sequence's results do not depend on
    /// the others in the step: every row is computed by the same operations in the
    /// same order as alone. Inputs are checked before any cache changes; on success
    /// each session's cache has grown by its tokens.
    public func step(_ inputs: [SequenceInput]) throws -> [[Float]] {
        try lock.withLock { try stepLocked(inputs, profile: nil) }
    }

    /// ``step(_:)`` that also adds each phase's time to `profile`.
    package func step(_ inputs: [SequenceInput], profile: StepProfile?) throws -> [[Float]] {
        try lock.withLock { try stepLocked(inputs, profile: profile) }
    }

    /// ``step(_:)`` with the lock already held.
    func stepLocked(_ inputs: [SequenceInput], profile: StepProfile?) throws -> [[Float]] {
        let vocab = config.vocabSize
        var seen = Set<ObjectIdentifier>()
        for input in inputs {
            guard input.session.model === self else { throw SessionError.foreignSession }
            guard seen.insert(ObjectIdentifier(input.session)).inserted else { throw SessionError.duplicateSession }
            guard !input.tokens.isEmpty else { throw ModelError.emptyInput }
            if let bad = input.tokens.first(where: { $0 < 0 || Int($0) >= vocab }) {
                throw ModelError.tokenOutOfRange(token: bad, vocabSize: vocab)
            }
            let cache = input.session.cache
            guard cache.count + input.tokens.count <= cache.capacity else {
                throw ModelError.contextOverflow(needed: cache.count + input.tokens.count, contextLength: cache.capacity)
            }
        }
        // Left unfilled: the head writes every float of them (in the pass that computes each
        // wanted row), and on an error they are dropped. Zeroing them first cost a second
        // write of every logit (8 MB per step at 16 sequences).
        var results = inputs.map { input -> [Float] in
            let count: Int
            switch input.logits {
            case .none: return []
            case .last: count = vocab
            case .all: count = input.tokens.count * vocab
            }
            return [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
        }
        // passes of at most batchSize rows, each sequence's tokens in order
        var taken = [Int](repeating: 0, count: inputs.count)
        while true {
            var parts: [StepPart] = []
            var rows = 0
            for (i, input) in inputs.enumerated() where taken[i] < input.tokens.count && rows < batchSize {
                let n = min(input.tokens.count - taken[i], batchSize - rows)
                parts.append(StepPart(input: i, tokens: taken[i]..<(taken[i] + n), firstRow: rows))
                taken[i] += n
                rows += n
            }
            if parts.isEmpty { break }
            try runPass(parts, inputs, &results, profile)
        }
        profile?.finishStep()
        return results
    }

    /// Rows [firstRow, firstRow + tokens.count) of a pass hold inputs[input].tokens[tokens].
    struct StepPart {
        let input: Int
        let tokens: Range<Int>
        let firstRow: Int
    }

    /// One pass of the graph over ≤ batchSize rows.
    private func runPass(_ parts: [StepPart], _ inputs: [SequenceInput], _ results: inout [[Float]],
                         _ profile: StepProfile?) throws {
        let c = config, s = state
        let ops = kernels.table.pointee
        let n = parts.last.map { $0.firstRow + $0.tokens.count } ?? 0
        let hidden = c.hiddenSize, qDim = c.qDim, kvDim = c.kvDim, ffn = c.ffnSize, half = c.headDim / 2
        let x = s.x.typed(Float.self).baseAddress!, h = s.h.typed(Float.self).baseAddress!
        let q = s.q.typed(Float.self).baseAddress!, k = s.k.typed(Float.self).baseAddress!
        let v = s.v.typed(Float.self).baseAddress!, att = s.att.typed(Float.self).baseAddress!
        let gate = s.gate.typed(Float.self).baseAddress!, up = s.up.typed(Float.self).baseAddress!
        let cosRows = s.ropeCos.typed(Float.self).baseAddress!, sinRows = s.ropeSin.typed(Float.self).baseAddress!
        let eps = c.normEpsilon
        let caches = parts.map { inputs[$0.input].session.cache }
        // outputs of the fused projection groups: (n, qDim), (n, kvDim) ×2; (n, ffn) ×2
        let qkvOut = [UnsafeMutableBufferPointer(start: q, count: n * qDim), UnsafeMutableBufferPointer(start: k, count: n * kvDim),
                      UnsafeMutableBufferPointer(start: v, count: n * kvDim)]
        let gateUpOut = [UnsafeMutableBufferPointer(start: gate, count: n * ffn), UnsafeMutableBufferPointer(start: up, count: n * ffn)]

        // the clock is read only when profiling
        var clock = profile == nil ? 0 : MonotonicClock.now()
        func lap(_ phase: StepProfile.Phase) {
            guard let profile else { return }
            let now = MonotonicClock.now()
            profile.add(phase, now - clock)
            clock = now
        }

        var longest = 0
        // a tied F16 embedding's file pages go once the head panels are made: its rows come from there
        let embeddingPanels = weights.embeddingBlocks == nil && weights.headIsTied
            ? halfHead ?? weights.madeHeadPanels : nil
        for (part, cache) in zip(parts, caches) {
            let tokens = inputs[part.input].tokens
            for (j, t) in part.tokens.enumerated() {
                let row = part.firstRow + j
                if let blocks = weights.embeddingBlocks {
                    blocks.dequantizeRow(Int(tokens[t]), into: x + row * hidden) // only the looked-up row
                } else if let panels = embeddingPanels {
                    let gathered = s.embeddingRow.typed(UInt16.self).baseAddress!
                    panels.row(Int(tokens[t]), into: gathered)
                    ops.f16_to_f32(gathered, x + row * hidden, Int32(hidden))
                } else {
                    ops.f16_to_f32(weights.tokenEmbedding.row(Int(tokens[t])), x + row * hidden, Int32(hidden))
                }
                s.setRopePosition(row: row, position: cache.count + j)
            }
            longest = max(longest, cache.count + part.tokens.count)
        }
        s.reserveScores(contextLength: longest)
        let scores = s.scores.typed(Float.self).baseAddress!
        let scoreStride = Int32(RunState.scoreStride(contextLength: s.scoreContext))
        // one segment per sequence; only the cache pointers change from layer to layer
        var segments = zip(parts, caches).map { part, cache in
            AttentionSegment(firstRow: Int32(part.firstRow), tokens: Int32(part.tokens.count),
                             startPosition: Int32(cache.count), keys: UnsafeRawPointer(cache.keyBase(layer: 0)),
                             values: UnsafeRawPointer(cache.valueBase(layer: 0)), headStride: cache.headStride,
                             halfCache: cache.precision == .f16)
        }
        let neox: Int32 = c.ropeIsNeoX ? 1 : 0
        lap(.embedding)

        // batched rows on several threads: the per-row work between projections split over the pool
        let splitRows = n > 1 && pool.threads > 1
        // a block's input: the residual stream x normed into h, quantized into actsHidden
        func prepareBlockInput(_ norm: [Float]) throws {
            if splitRows {
                try prepareRows(x, norm: norm, out: h, n: n, into: s.actsHidden)
                lap(.rowPrep)
            } else {
                normRows(x, norm, n: n, width: hidden, eps: eps, into: h)
                lap(.norms)
                try quantize(h, n: n, into: s.actsHidden)
                lap(.quantize)
            }
        }
        for (l, w) in weights.layers.enumerated() {
            // attention block
            try prepareBlockInput(w.attnNorm)
            let tl = decodeTables[l] // q, k, v, o, gate, up, down
            // TL tables serve single rows only; without them the group is one dispatch
            if n > 1 || (tl[0] == nil && tl[1] == nil && tl[2] == nil) {
                try kernels.matmulMany(fusedGroups[l].qkv, s.actsHidden, into: qkvOut, pool: pool)
            } else {
                try matmul(w.q, tl[0], s.actsHidden, into: q)
                try matmul(w.k, tl[1], s.actsHidden, into: k)
                try matmul(w.v, tl[2], s.actsHidden, into: v)
            }
            lap(.qkv)
            for (i, (part, cache)) in zip(parts, caches).enumerated() {
                for j in 0..<part.tokens.count {
                    let row = part.firstRow + j
                    ops.rope(q + row * qDim, Int32(c.headCount), Int32(c.headDim), cosRows + row * half, sinRows + row * half, neox)
                    ops.rope(k + row * kvDim, Int32(c.kvHeadCount), Int32(c.headDim), cosRows + row * half,
                             sinRows + row * half, neox)
                    cache.store(layer: l, position: cache.count + j, keys: k + row * kvDim, values: v + row * kvDim)
                }
                segments[i].keys = UnsafeRawPointer(cache.keyBase(layer: l))
                segments[i].values = UnsafeRawPointer(cache.valueBase(layer: l))
            }
            lap(.ropeAndCache)
            segments.withUnsafeBufferPointer { segs in
                var job = AttentionJob(table: kernels.table, q: q, out: att, scores: scores, scoreStride: scoreStride,
                                       segments: segs.baseAddress!, segmentCount: Int32(segs.count), rows: Int32(n),
                                       heads: Int32(c.headCount), kvHeads: Int32(c.kvHeadCount), headDim: Int32(c.headDim),
                                       scale: 1 / Float(c.headDim).squareRoot())
                withUnsafeMutablePointer(to: &job) { pool.run(threads: min(pool.threads, n * c.headCount), AttentionJob.task, context: $0) }
            }
            lap(.attention)
            if splitRows {
                try prepareRows(att, norm: w.attnSubNorm, out: att, n: n, into: s.actsQ)
                lap(.rowPrep)
            } else {
                if let sub = w.attnSubNorm { normRows(att, sub, n: n, width: qDim, eps: eps, into: att) }
                lap(.norms)
                try quantize(att, n: n, into: s.actsQ)
                lap(.quantize)
            }
            try matmul(w.o, tl[3], s.actsQ, into: h)
            lap(.output)
            ops.add(h, x, Int32(n * hidden))
            lap(.elementwise)

            // feed-forward block
            try prepareBlockInput(w.ffnNorm)
            if n > 1 || (tl[4] == nil && tl[5] == nil) {
                try kernels.matmulMany(fusedGroups[l].gateUp, s.actsHidden, into: gateUpOut, pool: pool)
            } else {
                try matmul(w.gate, tl[4], s.actsHidden, into: gate)
                try matmul(w.up, tl[5], s.actsHidden, into: up)
            }
            lap(.gateUp)
            if splitRows {
                try prepareRows(gate, up: up, norm: w.ffnSubNorm, out: gate, n: n, into: s.actsFFN)
                lap(.rowPrep)
            } else {
                switch c.activation {
                case .relu2: ops.gate_relu2(gate, up, Int32(n * ffn))
                case .silu: ops.gate_silu(gate, up, Int32(n * ffn))
                }
                lap(.elementwise)
                if let sub = w.ffnSubNorm { normRows(gate, sub, n: n, width: ffn, eps: eps, into: gate) }
                lap(.norms)
                try quantize(gate, n: n, into: s.actsFFN)
                lap(.quantize)
            }
            try matmul(w.down, tl[6], s.actsFFN, into: h)
            lap(.down)
            ops.add(h, x, Int32(n * hidden))
            lap(.elementwise)
        }
        for (part, cache) in zip(parts, caches) { cache.count += part.tokens.count }

        // the rows whose logits are wanted, and where each goes: (row, input, float offset)
        var wanted: [(row: Int, input: Int, offset: Int)] = []
        for part in parts {
            let input = inputs[part.input]
            switch input.logits {
            case .none: break
            case .last:
                if part.tokens.upperBound == input.tokens.count {
                    wanted.append((part.firstRow + part.tokens.count - 1, part.input, 0))
                }
            case .all:
                for (j, t) in part.tokens.enumerated() { wanted.append((part.firstRow + j, part.input, t * c.vocabSize)) }
            }
        }
        guard !wanted.isEmpty else { return }
        defer { lap(.head) }
        try head(rows: wanted.map(\.row)) { produce in
            // one input's consecutive rows: straight into its result; otherwise through a buffer
            if Set(wanted.map(\.input)).count == 1 {
                let first = wanted[0]
                try results[first.input].withUnsafeMutableBufferPointer { try produce($0.baseAddress! + first.offset) }
            } else {
                let buffer = state.reserveLogits(count: wanted.count * c.vocabSize) // (wanted, vocab)
                try produce(buffer)
                for (i, w) in wanted.enumerated() {
                    results[w.input].withUnsafeMutableBufferPointer { out in
                        (out.baseAddress! + w.offset).update(from: buffer + i * c.vocabSize, count: c.vocabSize)
                    }
                }
            }
        }
    }

    /// RMSNorm of each of n rows: out[t] = norm(src[t]) ⊙ weight (out may be src).
    private func normRows(_ src: UnsafeMutablePointer<Float>, _ weight: [Float], n: Int, width: Int, eps: Float,
                          into out: UnsafeMutablePointer<Float>) {
        let rmsnorm = kernels.table.pointee.rmsnorm!
        weight.withUnsafeBufferPointer { w in
            for t in 0..<n { rmsnorm(src + t * width, w.baseAddress!, eps, Int32(width), out + t * width) }
        }
    }

    /// ``normRows(_:_:n:width:eps:into:)`` into `out` (when `norm` is given) and
    /// ``quantize(_:n:into:)`` of those rows (else of `source`), after the gated
    /// activation of `source` by `up` when given, with the rows split over the pool
    /// (``RowPrepJob``): the same calls per row as the serial path, so the same bits.
    private func prepareRows(_ source: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>? = nil, norm: [Float]?,
                             out: UnsafeMutablePointer<Float>, n: Int, into acts: QuantizedActivations) throws {
        guard n >= 1, n <= acts.capacity else {
            throw KernelError.dimensionMismatch(what: "activation rows (capacity)", expected: acts.capacity, actual: n)
        }
        let run = { (weight: UnsafePointer<Float>?) in
            var job = RowPrepJob(table: self.kernels.table, source: source, up: up, silu: self.config.activation == .silu,
                                 norm: weight, eps: self.config.normEpsilon, out: out, width: Int32(acts.cols), rows: Int32(n),
                                 values: acts.values.typed(Int8.self).baseAddress!, paddedCols: Int32(acts.paddedCols),
                                 scales: acts.scales.typed(Float.self).baseAddress!, sums: acts.sums.typed(Int32.self).baseAddress!)
            withUnsafeMutablePointer(to: &job) { self.pool.run(threads: min(self.pool.threads, n), RowPrepJob.task, context: $0) }
        }
        if let norm {
            guard norm.count == acts.cols else {
                throw KernelError.dimensionMismatch(what: "norm weights", expected: acts.cols, actual: norm.count)
            }
            norm.withUnsafeBufferPointer { run($0.baseAddress!) }
        } else {
            run(nil)
        }
        acts.rows = n
    }

    /// BitLinear's input: the n rows quantized once per token (as the reference does),
    /// then read by every projection of that input.
    private func quantize(_ input: UnsafeMutablePointer<Float>, n: Int, into acts: QuantizedActivations) throws {
        try kernels.quantize(UnsafeBufferPointer(start: input, count: n * acts.cols), rows: n, cols: acts.cols, into: acts)
    }

    private func matmul(_ matrix: TernaryMatrix, _ table: LookupTableMatrix?, _ acts: QuantizedActivations,
                        into out: UnsafeMutablePointer<Float>) throws {
        try kernels.matmul(matrix, acts, into: UnsafeMutableBufferPointer(start: out, count: acts.rows * matrix.rows),
                           pool: pool, table: table)
    }

    /// Logits of pass rows `rows` (ascending; final norm, then the head). The rows are
    /// normed into consecutive rows of `h`; `output` is called with a pointer and
    /// runs the head's body, which writes rows.count × vocab floats there.
    private func head(rows: [Int], output: ((UnsafeMutablePointer<Float>) throws -> Void) throws -> Void) throws {
        let c = config
        let x = state.x.typed(Float.self).baseAddress!, h = state.h.typed(Float.self).baseAddress!
        for (i, row) in rows.enumerated() {
            normRows(x + row * c.hiddenSize, weights.outputNorm, n: 1, width: c.hiddenSize, eps: c.normEpsilon,
                     into: h + i * c.hiddenSize)
        }
        if let q8Head {
            let acts = state.actsHidden
            try kernels.quantize(UnsafeBufferPointer(start: h, count: rows.count * c.hiddenSize), rows: rows.count,
                                 cols: c.hiddenSize, into: acts)
            try output { out in
                q8Head.withDescriptor { matrix in
                    var job = Q8HeadJob(table: kernels.table, matrix: matrix, x: acts.values.typed(Int8.self).baseAddress!,
                                        xScale: acts.scales.typed(Float.self).baseAddress!, n: Int32(rows.count), y: out)
                    withUnsafeMutablePointer(to: &job) { pool.run(Q8HeadJob.task, context: $0) }
                }
            }
            return
        }
        if let blocks = blockHead {
            try output { out in blocks.multiply(h, n: rows.count, table: kernels.table, pool: pool, into: out) }
            return
        }
        guard let halfHead else { preconditionFailure("a model without a q8 or block head has F16 panels (init)") }
        try output { out in
            var job = HeadJob(table: kernels.table, weights: halfHead.pointer, rows: Int32(c.vocabSize),
                              k: Int32(c.hiddenSize), x: h, n: Int32(rows.count), y: out)
            withUnsafeMutablePointer(to: &job) { pool.run(HeadJob.task, context: $0) }
        }
    }
}
