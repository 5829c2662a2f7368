import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// All weights of a model, loaded from a GGUF file: ternary projections
/// repacked once into I2_R16 (the file's pages for them are then released) or,
/// for TL1/TL2 files, held in place (``LookupTableLoading``); norms copied as
/// f32; the F16 or native block embedding/head used in place from the map (an
/// F16 head is copied into 16-row panels, in place of its pages, by the first
/// model that computes it: `headPanels(threads:)`).
public final class ModelWeights: @unchecked Sendable {
    public let config: ModelConfig
    /// (vocab, hidden) as F16. For a native block type (``embeddingBlocks``) this is an
    /// F16 expansion made on first use (references, `--head q8` on such files, tests):
    /// the model itself never asks for it.
    package var tokenEmbedding: HalfMatrix { storedEmbedding ?? expanded(embeddingBlocks!) }
    public let outputNorm: [Float] // (hidden,)
    /// (vocab, hidden) as F16: token_embd when tied; expanded on first use like ``tokenEmbedding``.
    package var output: HalfMatrix { storedOutput ?? expanded(outputBlocks!) }
    /// The embedding / head kept in the file's Q8_0, Q4_0, Q4_K or Q6_K blocks and computed
    /// natively (nil: F16, F32, BF16 or another block type, held as F16).
    package let embeddingBlocks: BlockQuantizedMatrix?
    package let outputBlocks: BlockQuantizedMatrix?
    private let storedEmbedding: HalfMatrix?
    private let storedOutput: HalfMatrix?
    private let expansionLock = Lock()
    private var expansions: [ObjectIdentifier: HalfMatrix] = [:]
    private var panels: HalfPanels?
    public let headIsTied: Bool
    package let layers: [LayerWeights]
    public let file: GGUFFile
    /// How TL1/TL2 projections were loaded (no effect on other files).
    public let lookupTables: LookupTableLoading

    public convenience init(path: String, expandBlockHeads: Bool = false, lookupTables: LookupTableLoading = .inPlace,
                            progress: ((Int, Int) -> Void)? = nil) throws {
        try self.init(file: GGUFFile(path: path), expandBlockHeads: expandBlockHeads, lookupTables: lookupTables,
                      progress: progress)
    }

    /// `progress(done, total)` counts layers. `expandBlockHeads`: expand a Q8_0 / Q4_0 /
    /// Q4_K / Q6_K embedding and head to F16 at load as before the native kernels
    /// (the exact-F16 comparison path of tests and fidelity measurements). `lookupTables`:
    /// whether a TL1/TL2 file's projections run in place (default) or are repacked to I2_R16.
    public init(file: GGUFFile, expandBlockHeads: Bool = false, lookupTables: LookupTableLoading = .inPlace,
                progress: ((Int, Int) -> Void)? = nil) throws {
        self.file = file
        self.lookupTables = lookupTables
        let config = try ModelConfig(gguf: file)
        self.config = config
        let loader = TensorLoader(file: file, lookupTables: lookupTables)
        let h = config.hiddenSize
        func load(_ name: String) throws -> (HalfMatrix?, BlockQuantizedMatrix?) {
            if !expandBlockHeads, let blocks = try loader.blocks(name, rows: config.vocabSize, cols: h) { return (nil, blocks) }
            return (try loader.half(name, rows: config.vocabSize, cols: h), nil)
        }
        (storedEmbedding, embeddingBlocks) = try load(TensorName.tokenEmbedding)
        outputNorm = try loader.vector(TensorName.outputNorm, count: h)
        if file.tensor(named: TensorName.output) != nil {
            (storedOutput, outputBlocks) = try load(TensorName.output)
            headIsTied = false
        } else {
            (storedOutput, outputBlocks) = (storedEmbedding, embeddingBlocks)
            headIsTied = true
        }
        try Self.checkFits(path: file.path, needed: Self.anonymousBytes(config: config, file: file,
                                                                         expandBlockHeads: expandBlockHeads,
                                                                         lookupTables: lookupTables),
                           available: SystemMemory.availableBytes())
        // layers load concurrently (repacking dominates: ~0.5 s for 2B4T on one core); the
        // first error in layer order is the one reported, as a serial load would report it
        let state = ParallelLoad(count: config.layerCount, progress: progress)
        DispatchQueue.concurrentPerform(iterations: config.layerCount) { i in
            state.finish(i, Result { try Self.loadLayer(i, config: config, file: file, loader: loader) })
        }
        let layers = try state.results.map { try $0!.get() }
        self.layers = layers
    }

    /// Memory loading takes that the kernel cannot drop under pressure: the repacked
    /// projections (I2_R16), and the embedding/head when the file's type is expanded to F16
    /// at load. (The F16 embedding/head are used in place from the file's pages, and so
    /// are TL1/TL2 projections loaded in place; an F16 head's panels replace its pages
    /// later and check their own fit, `HalfPanels`.) In Double: a hostile file's dimensions
    /// must not overflow the estimate.
    static func anonymousBytes(config c: ModelConfig, file: GGUFFile, expandBlockHeads: Bool = false,
                               lookupTables: LookupTableLoading = .inPlace) -> Double {
        func pad(_ n: Int) -> Double { (Double(n) / 32).rounded(.up) * 32 } // bn_pad_rows / bn_pad_cols
        func i2r16(_ m: Int, _ k: Int) -> Double { pad(m) * pad(k) / 4 } // bn_i2r16_bytes
        let h = c.hiddenSize
        let perLayer = i2r16(c.qDim, h) + 2 * i2r16(c.kvDim, h) + i2r16(h, c.qDim) + 2 * i2r16(c.ffnSize, h) + i2r16(h, c.ffnSize)
        // a TL file in place keeps its projections in the page cache (reclaimable, read back on
        // demand); TQ1_0 and bitnet.cpp TL2 files become an anonymous TL2 copy
        func tl2(_ m: Int, _ k: Int) -> Double { pad(m) / 32 * (Double(k) / 24).rounded(.up) * 160 + 4 * pad(m) } // bn_tl_bytes(2, m, k)
        let tl2PerLayer = tl2(c.qDim, h) + 2 * tl2(c.kvDim, h) + tl2(h, c.qDim) + 2 * tl2(c.ffnSize, h) + tl2(h, c.ffnSize)
        let fileType = file.tensor(named: TensorName.layer(0, TensorName.ffnDown))?.type
        var total = perLayer * Double(c.layerCount)
        if lookupTables == .inPlace, let fileType {
            if fileType.lookupTableType != nil { total = 0 }
            if fileType == .tq1_0 || fileType == .tl2 { total = tl2PerLayer * Double(c.layerCount) }
        }
        for name in [TensorName.tokenEmbedding, TensorName.output] {
            // F16 is used in place, and so are the native block types unless expanded
            if let t = file.tensor(named: name), t.type != .f16,
               expandBlockHeads || !BlockQuantizedMatrix.isNative(t.type) {
                total += Double(c.vocabSize) * Double(h) * 2
            }
        }
        return total
    }

    /// Refuses a load that cannot fit, before allocating anything (`available` nil: unknown, allowed).
    static func checkFits(path: String, needed: Double, available: Int?) throws {
        guard let available, needed > Double(available) else { return }
        throw ModelError.insufficientMemory(path: path, needed: needed >= Double(Int.max) ? Int.max : Int(needed),
                                            available: available)
    }

    /// The F16 head (``output``) in 16-row panels for the F16 head kernel, made on first
    /// use (a model with `--head q8` or a block head never asks) and shared by every model
    /// on these weights. When the head is the file's own F16 bytes their pages are released
    /// as the panels are written, so the copy replaces them instead of doubling them.
    package func headPanels(threads: Int) throws -> HalfPanels {
        try expansionLock.withLock {
            if let panels { return panels }
            let half = output
            let made = try HalfPanels(half, threads: threads, releasingFilePages: half.owner === file, path: file.path)
            panels = made
            return made
        }
    }

    /// The head panels if some model has made them (nil before), without making them.
    package var madeHeadPanels: HalfPanels? { expansionLock.withLock { panels } }

    /// The F16 expansion of a block matrix, made once (under a lock: sessions on several
    /// threads may ask together).
    private func expanded(_ m: BlockQuantizedMatrix) -> HalfMatrix {
        expansionLock.withLock {
            if let done = expansions[ObjectIdentifier(m)] { return done }
            let half = m.expandedToHalf()
            expansions[ObjectIdentifier(m)] = half
            return half
        }
    }

    private static func loadLayer(_ i: Int, config: ModelConfig, file: GGUFFile, loader: TensorLoader) throws
        -> LayerWeights {
        let h = config.hiddenSize
        let sub = config.architecture.hasSubNorms
        func norm(_ name: String, _ n: Int, required: Bool) throws -> [Float]? {
            let full = TensorName.layer(i, name)
            if !required && file.tensor(named: full) == nil { return nil }
            return try loader.vector(full, count: n)
        }
        func tern(_ name: String, _ rows: Int, _ cols: Int) throws -> TernaryMatrix {
            try loader.ternary(layer: i, name: name, rows: rows, cols: cols)
        }
        return LayerWeights(
            attnNorm: try norm(TensorName.attnNorm, h, required: true)!,
            q: try tern(TensorName.attnQ, config.qDim, h),
            k: try tern(TensorName.attnK, config.kvDim, h),
            v: try tern(TensorName.attnV, config.kvDim, h),
            attnSubNorm: try norm(TensorName.attnSubNorm, config.qDim, required: sub),
            o: try tern(TensorName.attnOutput, h, config.qDim),
            ffnNorm: try norm(TensorName.ffnNorm, h, required: true)!,
            gate: try tern(TensorName.ffnGate, config.ffnSize, h),
            up: try tern(TensorName.ffnUp, config.ffnSize, h),
            ffnSubNorm: try norm(TensorName.ffnSubNorm, config.ffnSize, required: sub),
            down: try tern(TensorName.ffnDown, h, config.ffnSize))
    }

    /// Bytes one decoded token reads: every ternary matrix plus the head rows.
    public var bytesPerToken: Int {
        var total = outputBlocks?.byteCount ?? config.vocabSize * config.hiddenSize * 2
        for l in layers {
            for m in l.projections { total += m.storedBytes.count }
        }
        return total
    }
}

/// Results of the concurrent layer loads, and progress reported under one lock
/// (the caller's progress bar is not thread-safe).
private final class ParallelLoad: @unchecked Sendable {
    private let lock = Lock()
    private(set) var results: [Result<LayerWeights, Error>?]
    private var done = 0
    private let progress: ((Int, Int) -> Void)?

    init(count: Int, progress: ((Int, Int) -> Void)?) {
        results = Array(repeating: nil, count: count)
        self.progress = progress
    }

    func finish(_ i: Int, _ result: Result<LayerWeights, Error>) {
        lock.withLock {
            results[i] = result
            done += 1
            progress?(done, results.count)
        }
    }
}
