/// Hyperparameters of a model, read from GGUF metadata and checked against
/// the tensor shapes; nothing is assumed about the model's size.
public struct ModelConfig: Sendable, Equatable {
    public var architecture: ModelArchitecture
    /// The `general.architecture` string as written in the file.
    public var architectureName: String
    public var vocabSize: Int
    public var contextLength: Int
    public var hiddenSize: Int
    public var layerCount: Int
    public var ffnSize: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDim: Int
    public var ropeTheta: Float
    public var normEpsilon: Float
    public var activation: Activation
    public var ropeIsNeoX: Bool

    public var qDim: Int { headCount * headDim }
    public var kvDim: Int { kvHeadCount * headDim }

    public init(architecture: ModelArchitecture, architectureName: String? = nil, vocabSize: Int, contextLength: Int,
                hiddenSize: Int, layerCount: Int, ffnSize: Int, headCount: Int, kvHeadCount: Int, headDim: Int? = nil,
                ropeTheta: Float? = nil, normEpsilon: Float = 1e-5, activation: Activation? = nil) {
        self.architecture = architecture
        self.architectureName = architectureName ?? architecture.rawValue
        self.vocabSize = vocabSize
        self.contextLength = contextLength
        self.hiddenSize = hiddenSize
        self.layerCount = layerCount
        self.ffnSize = ffnSize
        self.headCount = headCount
        self.kvHeadCount = kvHeadCount
        self.headDim = headDim ?? (headCount > 0 ? hiddenSize / headCount : 0)
        self.ropeTheta = ropeTheta ?? architecture.defaultRopeTheta
        self.normEpsilon = normEpsilon
        self.activation = activation ?? architecture.defaultActivation
        ropeIsNeoX = architecture.ropeIsNeoX
    }

    /// Reads `<arch>.*` keys. The vocabulary size falls back to the embedding's
    /// row count and the head dimension to the Q projection's rows per head.
    public init(gguf file: GGUFFile) throws {
        let path = file.path
        guard let archName = try file.optionalString("general.architecture") else {
            throw ModelError.missingKey(path: path, key: "general.architecture")
        }
        guard let arch = ModelArchitecture(ggufName: archName) else {
            throw ModelError.unsupportedArchitecture(path: path, architecture: archName)
        }
        func required(_ suffix: String) throws -> Int {
            let key = "\(archName).\(suffix)"
            guard let value = try file.optionalInteger(key) else { throw ModelError.missingKey(path: path, key: key) }
            return value
        }
        let heads = try required("attention.head_count")
        var activation = arch.defaultActivation
        if let name = try file.optionalString("\(archName).hidden_activation") {
            switch name {
            case "relu2", "relu_sqr", "relu_squared": activation = .relu2
            case "silu", "swish": activation = .silu
            default:
                throw ModelError.invalidHyperparameter(path: path, key: "\(archName).hidden_activation", value: name,
                                                       reason: "unknown activation (relu2 or silu)")
            }
        }
        let embedding = file.tensor(named: TensorName.tokenEmbedding)
        let vocab = try file.optionalInteger("\(archName).vocab_size") ?? embedding?.rows ?? 0
        let hidden = try required("embedding_length")
        var headDim = try file.optionalInteger("\(archName).rope.dimension_count") ?? (heads > 0 ? hidden / heads : 0)
        if let q = file.tensor(named: TensorName.layer(0, "attn_q")), heads > 0, q.rows % heads == 0 {
            headDim = q.rows / heads
        }
        self.init(architecture: arch, architectureName: archName, vocabSize: vocab,
                  contextLength: try required("context_length"), hiddenSize: hidden,
                  layerCount: try required("block_count"), ffnSize: try required("feed_forward_length"),
                  headCount: heads, kvHeadCount: try file.optionalInteger("\(archName).attention.head_count_kv") ?? heads,
                  headDim: headDim,
                  ropeTheta: try file.optionalFloat("\(archName).rope.freq_base"),
                  normEpsilon: try file.optionalFloat("\(archName).attention.layer_norm_rms_epsilon") ?? 1e-5,
                  activation: activation)
        if let rot = try file.optionalInteger("\(archName).rope.dimension_count"), rot != self.headDim {
            throw ModelError.invalidHyperparameter(path: path, key: "\(archName).rope.dimension_count", value: String(rot),
                                                   reason: "partial rotary embeddings (rotating \(rot) of \(self.headDim) dims) are not supported")
        }
        try validate(path: path)
        // Every consumer of a token id (prompts, stop tokens, the C API) indexes the
        // embedding with it; refusing a bad id here makes every command say the same.
        _ = try SpecialTokenIDs(gguf: file, vocabularySize: vocabSize)
    }

    /// Sanity limits: catch corrupt or hostile values before they size allocations.
    public func validate(path: String) throws {
        func check(_ ok: Bool, _ key: String, _ value: Any, _ reason: String) throws {
            if !ok {
                throw ModelError.invalidHyperparameter(path: path, key: "\(architectureName).\(key)", value: "\(value)", reason: reason)
            }
        }
        try check((1...(1 << 22)).contains(vocabSize), "vocab_size", vocabSize, "must be in 1...4194304")
        try check((1...(1 << 24)).contains(contextLength), "context_length", contextLength, "must be in 1...16777216")
        try check((1...65536).contains(hiddenSize), "embedding_length", hiddenSize, "must be in 1...65536")
        try check((1...1024).contains(layerCount), "block_count", layerCount, "must be in 1...1024")
        try check((1...TernaryMatrix.maxColumns).contains(ffnSize), "feed_forward_length", ffnSize, "must be in 1...\(TernaryMatrix.maxColumns)")
        try check((1...4096).contains(headCount), "attention.head_count", headCount, "must be in 1...4096")
        try check(kvHeadCount >= 1 && headCount % kvHeadCount == 0, "attention.head_count_kv", kvHeadCount,
                  "must divide attention.head_count (\(headCount))")
        try check(headDim >= 2 && headDim % 2 == 0 && headDim <= 1024, "rope.dimension_count", headDim,
                  "head dimension must be even and in 2...1024")
        try check(ropeTheta.isFinite && ropeTheta > 0, "rope.freq_base", ropeTheta, "must be a positive number")
        try check(normEpsilon.isFinite && normEpsilon >= 0 && normEpsilon < 1, "attention.layer_norm_rms_epsilon",
                  normEpsilon, "must be in [0, 1)")
    }
}
