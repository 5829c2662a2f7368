#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// All weights of a model, loaded from a GGUF file: ternary projections
/// repacked once into I2_R16 (the file's pages for them are then released),
/// norms copied as f32, and the F16 embedding/head used in place from the map.
public final class ModelWeights: @unchecked Sendable {
    public let config: ModelConfig
    public let tokenEmbedding: HalfMatrix // (vocab, hidden)
    public let outputNorm: [Float] // (hidden,)
    public let output: HalfMatrix // (vocab, hidden): token_embd when tied
    public let headIsTied: Bool
    public let layers: [LayerWeights]
    public let file: GGUFFile

    public convenience init(path: String, progress: ((Int, Int) -> Void)? = nil) throws {
        try self.init(file: GGUFFile(path: path), progress: progress)
    }

    /// `progress(done, total)` counts layers.
    public init(file: GGUFFile, progress: ((Int, Int) -> Void)? = nil) throws {
        self.file = file
        let config = try ModelConfig(gguf: file)
        self.config = config
        let loader = TensorLoader(file: file)
        let h = config.hiddenSize
        tokenEmbedding = try loader.half(TensorName.tokenEmbedding, rows: config.vocabSize, cols: h)
        outputNorm = try loader.vector(TensorName.outputNorm, count: h)
        if file.tensor(named: TensorName.output) != nil {
            output = try loader.half(TensorName.output, rows: config.vocabSize, cols: h)
            headIsTied = false
        } else {
            output = tokenEmbedding
            headIsTied = true
        }
        var layers: [LayerWeights] = []
        for i in 0..<config.layerCount {
            let sub = config.architecture.hasSubNorms
            func norm(_ name: String, _ n: Int, required: Bool) throws -> [Float]? {
                let full = TensorName.layer(i, name)
                if !required && file.tensor(named: full) == nil { return nil }
                return try loader.vector(full, count: n)
            }
            func tern(_ name: String, _ rows: Int, _ cols: Int) throws -> TernaryMatrix {
                try loader.ternary(layer: i, name: name, rows: rows, cols: cols)
            }
            layers.append(LayerWeights(
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
                down: try tern(TensorName.ffnDown, h, config.ffnSize)))
            progress?(i + 1, config.layerCount)
        }
        self.layers = layers
    }

    /// Bytes one decoded token reads: every ternary matrix plus the head rows.
    public var bytesPerToken: Int {
        var total = output.rows * output.cols * 2
        for l in layers {
            for m in l.projections { total += m.packedBytes.count }
        }
        return total
    }
}
