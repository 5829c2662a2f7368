/// Everything a `Tokenizer` is built from: the `tokenizer.ggml.*` metadata of a
/// GGUF file (docs/FORMATS.md §6.1), as plain values so tests can build toy vocabularies
/// in memory. `Tokenizer+GGUF.swift` fills it from a file.
package struct TokenizerVocabulary: Sendable, Equatable {
    /// `tokenizer.ggml.model`.
    package enum Model: String, Sendable, Equatable {
        /// Byte-level BPE with merges (GPT-2, Llama-3, Falcon).
        case gpt2
        /// SentencePiece BPE with scores and byte fallback (Llama-2, 1bitLLM).
        case llama
    }

    package var model: Model
    /// `tokenizer.ggml.pre`; nil when the file does not say (the official 2B4T file).
    package var pre: String?
    /// Token texts as stored: GPT-2 byte-to-unicode strings for `gpt2`, "▁"-escaped
    /// pieces for `llama`.
    package var tokens: [String]
    /// `"left right"` pairs in rank order (`gpt2` only).
    package var merges: [String]
    /// Piece scores (`llama`; optional for `gpt2`).
    package var scores: [Float]
    /// `TokenType` raw values, one per token; empty means all normal.
    package var tokenTypes: [Int32]
    package var bosID: Int32?
    package var eosID: Int32?
    package var eotID: Int32?
    package var padID: Int32?
    package var unknownID: Int32?
    /// `tokenizer.ggml.add_bos_token`; nil lets the tokenizer pick the model's default.
    package var addBOS: Bool?
    /// `tokenizer.ggml.add_eos_token`; nil means false.
    package var addEOS: Bool?
    /// `tokenizer.ggml.add_space_prefix` (SentencePiece's dummy prefix); nil means true for `llama`.
    package var addSpacePrefix: Bool?

    package init(
        model: Model,
        pre: String? = nil,
        tokens: [String],
        merges: [String] = [],
        scores: [Float] = [],
        tokenTypes: [Int32] = [],
        bosID: Int32? = nil,
        eosID: Int32? = nil,
        eotID: Int32? = nil,
        padID: Int32? = nil,
        unknownID: Int32? = nil,
        addBOS: Bool? = nil,
        addEOS: Bool? = nil,
        addSpacePrefix: Bool? = nil
    ) {
        self.model = model
        self.pre = pre
        self.tokens = tokens
        self.merges = merges
        self.scores = scores
        self.tokenTypes = tokenTypes
        self.bosID = bosID
        self.eosID = eosID
        self.eotID = eotID
        self.padID = padID
        self.unknownID = unknownID
        self.addBOS = addBOS
        self.addEOS = addEOS
        self.addSpacePrefix = addSpacePrefix
    }

    /// The type of token `id`; `.normal` when the file has no type array.
    package func tokenType(_ id: Int) -> TokenType {
        guard id >= 0, id < tokenTypes.count else { return .normal }
        return TokenType(rawValue: tokenTypes[id]) ?? .undefined
    }
}

/// `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`).
package enum TokenType: Int32, Sendable, Equatable {
    case undefined = 0
    case normal = 1
    case unknown = 2
    /// BOS/EOS/`<|eot_id|>`…: matched in input text only when asked to parse specials.
    case control = 3
    /// Added tokens such as `[PAD0]`: always matched in input text, like Hugging Face's
    /// non-special added tokens.
    case userDefined = 4
    case unused = 5
    /// SentencePiece byte fallback `<0xNN>`.
    case byte = 6
}
