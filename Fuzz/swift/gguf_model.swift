// Fuzz target `gguf_model`: a whole model file through ModelWeights (tensor
// lookup, shape and type checks, I2_S/TQ/F16/TL decoding and repacking, norms,
// embedding), BitNetModel (kernel tables, run state) and one forward step of a
// session, on models of hidden size 32 (≈ 20 KB files).
@testable import BitNet
@testable import BitNetConvert

enum Target: FuzzTarget {
    static func run(_ data: UnsafeRawBufferPointer) {
        let path = Fuzz.write(data, name: "model.gguf")
        guard let file = try? GGUFFile(path: path), let weights = try? ModelWeights(file: file) else { return }
        // one thread: the caller runs every task, no worker threads per execution
        guard let model = try? BitNetModel(weights: weights, contextLength: 4, threads: 1, batchSize: 4) else { return }
        guard let session = try? model.makeSession() else { return }
        let vocab = Int32(model.config.vocabSize)
        let logits = try? session.forward([0, vocab - 1])
        if let logits { precondition(logits.count == Int(vocab), "forward returned \(logits.count) logits for vocab \(vocab)") }
        // an id outside the vocabulary and a context overflow must be refused, not read out of bounds
        _ = try? session.forward([vocab])
        _ = try? session.forward([0, 0, 0])
        if let tokenizer = try? Tokenizer(gguf: file) { _ = tokenizer.encode("fuzz") }
    }

    static func config(_ arch: ModelArchitecture) -> ModelConfig {
        ModelConfig(architecture: arch, vocabSize: 259, contextLength: 16, hiddenSize: 32,
                    layerCount: 1, ffnSize: 32, headCount: 1, kvHeadCount: 1)
    }

    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        var out: [(String, [UInt8])] = []
        for arch in [ModelArchitecture.bitnetB158, .bitnet, .llama] {
            for type in ModelSynthesizer.ProjectionType.allCases {
                // keep the corpus small: every projection type once on the main architecture,
                // the other architectures in I2_S only
                if arch != .bitnetB158 && type != .i2s { continue }
                var synth = ModelSynthesizer(config: config(arch), seed: 5)
                synth.projectionType = type
                synth.tokenizerMetadata = Fuzz.tinyByteLevelMetadata()
                let path = "\(Fuzz.scratch)/seed-model.gguf"
                // some layouts exist only for other shapes (TQ: K multiple of 256; bitnet.cpp TL: its tilings)
                do { try synth.write(to: path) } catch { continue }
                // only seeds that load make useful starting points
                guard (try? ModelWeights(path: path)) != nil else { continue }
                out.append(("\(arch.rawValue)-\(type.rawValue).gguf", try Fuzz.readFile(path)))
            }
        }
        return out
    }
}
