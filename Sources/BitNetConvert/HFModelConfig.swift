import BitNet
import BitNetJSON
/// The fields of a Hugging Face `config.json` that decide the GGUF: the model
/// class, the dimensions, and the BitNet quantization settings (docs/FORMATS.md §7e, §9).
public struct HFModelConfig: Sendable {
    public let path: String
    public let architectures: [String]
    public let modelType: String?
    public let hiddenSize: Int
    public let intermediateSize: Int
    public let layerCount: Int
    public let headCount: Int
    public let kvHeadCount: Int
    public let headDim: Int?
    public let vocabSize: Int
    public let maxPositionEmbeddings: Int?
    public let rmsNormEps: Float?
    public let ropeTheta: Float?
    public let hiddenAct: String?
    /// nil when the key is absent (transformers then defaults to false).
    public let tieWordEmbeddings: Bool?
    /// `quantization_config.linear_class`, lower-cased ("autobitlinear", "bitlinear"), if any.
    public let linearClass: String?
    public let quantizationMode: String?
    public let bosTokenID: Int?
    /// The first id when config.json gives a list.
    public let eosTokenIDs: [Int]
    public let padTokenID: Int?
    public let nameOrPath: String?
    /// `torch_dtype` or `dtype` ("bfloat16", "float16", "float32"): the checkpoint's float format.
    public let torchDType: String?

    public init(path: String) throws {
        try self.init(json: JSONValue.read(path: path, what: "config.json"), path: path)
    }

    public init(json: JSONValue, path: String) throws {
        self.path = path
        guard let root = json.object else { throw ConvertError.invalidJSON(path: path, reason: "top level is not an object") }
        func bad(_ key: String, _ reason: String) -> ConvertError { .invalidConfig(path: path, key: key, reason: reason) }
        func int(_ key: String, required: Bool) throws -> Int? {
            guard let v = root[key], !v.isNull else {
                if required { throw bad(key, "missing") }
                return nil
            }
            guard let i = v.int else { throw bad(key, "expected an integer, found \(v)") }
            return i
        }
        func positive(_ key: String) throws -> Int {
            guard let v = try int(key, required: true), v > 0 else { throw bad(key, "must be a positive integer") }
            return v
        }
        func float(_ key: String) throws -> Float? {
            guard let v = root[key], !v.isNull else { return nil }
            guard let d = v.double, d.isFinite else { throw bad(key, "expected a number, found \(v)") }
            return Float(d)
        }
        func string(_ key: String) throws -> String? {
            guard let v = root[key], !v.isNull else { return nil }
            guard let s = v.string else { throw bad(key, "expected a string, found \(v)") }
            return s
        }
        if let a = root["architectures"], !a.isNull {
            guard let list = a.array?.compactMap(\.string), list.count == a.array?.count else {
                throw bad("architectures", "expected a list of strings")
            }
            architectures = list
        } else {
            architectures = []
        }
        modelType = try string("model_type")
        hiddenSize = try positive("hidden_size")
        intermediateSize = try positive("intermediate_size")
        layerCount = try positive("num_hidden_layers")
        headCount = try positive("num_attention_heads")
        kvHeadCount = try int("num_key_value_heads", required: false) ?? headCount
        guard kvHeadCount > 0 else { throw bad("num_key_value_heads", "must be positive") }
        headDim = try int("head_dim", required: false)
        if let headDim, headDim <= 0 { throw bad("head_dim", "must be positive") }
        vocabSize = try positive("vocab_size")
        maxPositionEmbeddings = try int("max_position_embeddings", required: false)
        rmsNormEps = try float("rms_norm_eps")
        ropeTheta = try float("rope_theta")
        hiddenAct = try string("hidden_act") ?? string("hidden_activation")
        if let v = root["tie_word_embeddings"], !v.isNull {
            guard let b = v.bool else { throw bad("tie_word_embeddings", "expected true or false") }
            tieWordEmbeddings = b
        } else {
            tieWordEmbeddings = nil
        }
        let quant = root["quantization_config"]?.object
        linearClass = quant?["linear_class"]?.string?.lowercased()
        quantizationMode = quant?["quantization_mode"]?.string?.lowercased()
        bosTokenID = try int("bos_token_id", required: false)
        if let v = root["eos_token_id"], !v.isNull {
            if let i = v.int { eosTokenIDs = [i] } else if let a = v.array, a.allSatisfy({ $0.int != nil }) {
                eosTokenIDs = a.compactMap(\.int)
            } else {
                throw bad("eos_token_id", "expected an integer or a list of integers")
            }
        } else {
            eosTokenIDs = []
        }
        padTokenID = try int("pad_token_id", required: false)
        nameOrPath = try? string("_name_or_path")
        // newer transformers write "dtype"; a malformed value only loses this cross-check
        torchDType = (try? string("torch_dtype")) ?? (try? string("dtype"))

        // things the GGUF graph cannot express: fail rather than write a wrong model
        for key in ["attention_bias", "mlp_bias"] where root[key]?.bool == true {
            throw ConvertError.notSupported(what: "\(path): '\(key)': true (projection biases)")
        }
        if let scaling = root["rope_scaling"], !scaling.isNull {
            let factor = scaling["factor"]?.double
            let type = scaling["rope_type"]?.string ?? scaling["type"]?.string ?? "?"
            if !(type == "linear" && factor == 1) && !(type == "default") {
                throw ConvertError.notSupported(what: "\(path): 'rope_scaling' (\(type))")
            }
        }
    }

    /// `AutoBitLinear` checkpoints store `weight_scale` = mean|W| (multiply);
    /// the older `BitLinear` class stores its inverse (divide). docs/FORMATS.md §7b.
    public var packedScaleMultiplies: Bool { linearClass == "autobitlinear" }

    /// The model class, for messages.
    public var architectureName: String { architectures.first ?? modelType ?? "(none)" }
}
