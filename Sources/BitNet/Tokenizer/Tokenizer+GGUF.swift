/// `tokenizer.ggml.*` metadata keys (docs/FORMATS.md §6.1), verbatim.
enum TokenizerKey {
    static let model = "tokenizer.ggml.model"
    static let pre = "tokenizer.ggml.pre"
    static let tokens = "tokenizer.ggml.tokens"
    static let tokenType = "tokenizer.ggml.token_type"
    static let scores = "tokenizer.ggml.scores"
    static let merges = "tokenizer.ggml.merges"
    static let bosID = "tokenizer.ggml.bos_token_id"
    static let eosID = "tokenizer.ggml.eos_token_id"
    static let eotID = "tokenizer.ggml.eot_token_id"
    static let padID = "tokenizer.ggml.padding_token_id"
    static let unknownID = "tokenizer.ggml.unknown_token_id"
    static let addBOS = "tokenizer.ggml.add_bos_token"
    static let addEOS = "tokenizer.ggml.add_eos_token"
    static let addSpacePrefix = "tokenizer.ggml.add_space_prefix"
}

extension TokenizerVocabulary {
    /// Reads the tokenizer metadata of a GGUF file (a full model or a vocab-only file).
    public init(gguf: GGUFFile) throws {
        let modelName = try gguf.string(TokenizerKey.model)
        guard let model = Model(rawValue: modelName) else {
            throw TokenizerError.unsupportedModel(modelName).inFile(gguf.path)
        }
        let tokens = try gguf.stringArray(TokenizerKey.tokens)

        let ids = try SpecialTokenIDs(gguf: gguf, vocabularySize: tokens.count)
        self.init(
            model: model,
            pre: try gguf.optionalString(TokenizerKey.pre),
            tokens: tokens,
            merges: try gguf.optionalStringArray(TokenizerKey.merges) ?? [],
            scores: try gguf.optionalFloat32Array(TokenizerKey.scores) ?? [],
            tokenTypes: try gguf.optionalInt32Array(TokenizerKey.tokenType) ?? [],
            bosID: ids.bos,
            eosID: ids.eos,
            eotID: ids.eot,
            padID: ids.pad,
            unknownID: ids.unknown,
            addBOS: try gguf.optionalBool(TokenizerKey.addBOS),
            addEOS: try gguf.optionalBool(TokenizerKey.addEOS),
            addSpacePrefix: try gguf.optionalBool(TokenizerKey.addSpacePrefix)
        )
    }
}

extension Tokenizer {
    /// The tokenizer stored in a GGUF file's metadata.
    /// Errors name the file and the metadata key (`TokenizerError.inFile`).
    public convenience init(gguf: GGUFFile) throws {
        let vocabulary = try TokenizerVocabulary(gguf: gguf)
        do {
            try self.init(vocabulary: vocabulary)
        } catch let error as TokenizerError {
            throw error.inFile(gguf.path)
        }
    }

    public convenience init(path: String) throws {
        try self.init(gguf: GGUFFile(path: path))
    }
}
