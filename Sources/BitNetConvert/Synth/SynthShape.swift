import BitNet
/// Named model shapes for `bitnet synth`: the published models' dimensions,
/// so benchmarks run on files laid out exactly like the ones users download.
public enum SynthShape: String, CaseIterable, Sendable {
    case b2b4t = "2b4t"
    case large
    case b3 = "3b"
    case b8 = "8b"
    case falcon3_1b = "falcon3-1b"
    case falcon3_3b = "falcon3-3b"
    case falcon3_7b = "falcon3-7b"
    case falcon3_10b = "falcon3-10b"
    case b70 = "70b"
    case b100 = "100b"

    /// Dimensions: 2B4T from docs/FORMATS.md §2.1; large/3B/Llama3-8B from bitnet.cpp's
    /// ModelShapeDict (§2.4); Falcon3 from the published HF configs (not verified
    /// against a file here); 70B is Llama-3-70B's shape (its HF config); 100B is bitnet.cpp's
    /// demo scale (8192 hidden, 80 layers).
    public var config: ModelConfig {
        switch self {
        case .b2b4t:
            return ModelConfig(architecture: .bitnetB158, vocabSize: 128_256, contextLength: 4096, hiddenSize: 2560,
                               layerCount: 30, ffnSize: 6912, headCount: 20, kvHeadCount: 5, ropeTheta: 500_000)
        case .large:
            return ModelConfig(architecture: .bitnet, vocabSize: 32_002, contextLength: 2048, hiddenSize: 1536,
                               layerCount: 24, ffnSize: 4096, headCount: 16, kvHeadCount: 16, ropeTheta: 10_000)
        case .b3:
            return ModelConfig(architecture: .bitnet, vocabSize: 32_002, contextLength: 2048, hiddenSize: 3200,
                               layerCount: 26, ffnSize: 8640, headCount: 32, kvHeadCount: 32, ropeTheta: 10_000)
        case .b8:
            return ModelConfig(architecture: .llama, vocabSize: 128_256, contextLength: 8192, hiddenSize: 4096,
                               layerCount: 32, ffnSize: 14336, headCount: 32, kvHeadCount: 8, ropeTheta: 500_000)
        case .falcon3_1b:
            return ModelConfig(architecture: .llama, vocabSize: 131_072, contextLength: 8192, hiddenSize: 2048,
                               layerCount: 18, ffnSize: 8192, headCount: 8, kvHeadCount: 4, headDim: 256,
                               ropeTheta: 1_000_042)
        case .falcon3_3b:
            return ModelConfig(architecture: .llama, vocabSize: 131_072, contextLength: 8192, hiddenSize: 3072,
                               layerCount: 22, ffnSize: 9216, headCount: 12, kvHeadCount: 4, headDim: 256,
                               ropeTheta: 1_000_042)
        case .falcon3_7b:
            return ModelConfig(architecture: .llama, vocabSize: 131_072, contextLength: 8192, hiddenSize: 3072,
                               layerCount: 28, ffnSize: 23040, headCount: 12, kvHeadCount: 4, headDim: 256,
                               ropeTheta: 1_000_042)
        case .falcon3_10b:
            return ModelConfig(architecture: .llama, vocabSize: 131_072, contextLength: 8192, hiddenSize: 3072,
                               layerCount: 40, ffnSize: 23040, headCount: 12, kvHeadCount: 4, headDim: 256,
                               ropeTheta: 1_000_042)
        case .b70:
            return ModelConfig(architecture: .llama, vocabSize: 128_256, contextLength: 8192, hiddenSize: 8192,
                               layerCount: 80, ffnSize: 28672, headCount: 64, kvHeadCount: 8, ropeTheta: 500_000)
        case .b100:
            return ModelConfig(architecture: .llama, vocabSize: 128_256, contextLength: 8192, hiddenSize: 8192,
                               layerCount: 80, ffnSize: 45056, headCount: 64, kvHeadCount: 8, ropeTheta: 500_000)
        }
    }
}
