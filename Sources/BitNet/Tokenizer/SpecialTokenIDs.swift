/// The special-token ids of a GGUF file (`tokenizer.ggml.*_token_id`), read and
/// range-checked in one place so that every consumer (the tokenizer, stop tokens
/// of `generate --tokens`, model loading, `inspect`) sees the same verdict.
///
/// Policy, the same for every key of the form `tokenizer.ggml.<name>_token_id`:
/// - a value that is not an integer is a `GGUFError.typeMismatch`;
/// - BOS and EOS must name a token (0..<vocabularySize): BOS is fed to the model
///   and EOS is written into prompts by `add_eos_token`, so an id outside the
///   vocabulary would index past the embedding. Otherwise `GGUFError.valueOutOfRange`
///   names the key and the value as written (u32 4294967295, i64 −2^63, ...);
/// - any other id outside the vocabulary (eot, pad, unknown, prefix, ...) names
///   no token, so it is dropped and listed in `ignored`, as llama.cpp drops it
///   with a warning; real files carry such leftovers from their conversion.
public struct SpecialTokenIDs: Sendable, Equatable {
    public var bos: Int32?
    public var eos: Int32?
    public var eot: Int32?
    public var pad: Int32?
    public var unknown: Int32?
    /// "key = value" for every optional id that was dropped, in key order, for a warning.
    public var ignored: [String]

    public init(bos: Int32? = nil, eos: Int32? = nil, eot: Int32? = nil, pad: Int32? = nil, unknown: Int32? = nil,
                ignored: [String] = []) {
        self.bos = bos
        self.eos = eos
        self.eot = eot
        self.pad = pad
        self.unknown = unknown
        self.ignored = ignored
    }

    /// Keys whose id must name a token; every other `*_token_id` is optional.
    static let requiredKeys: Set<String> = [TokenizerKey.bosID, TokenizerKey.eosID]

    /// `vocabularySize` is the range the ids must index: the token list for a
    /// tokenizer, the embedding's rows for a model.
    public init(gguf file: GGUFFile, vocabularySize: Int) throws {
        self.init()
        let keys = file.metadataKeys.filter { $0.hasPrefix("tokenizer.ggml.") && $0.hasSuffix("_token_id") }.sorted()
        for key in keys {
            guard let value = file.metadata[key] else { continue }
            guard value.isInteger else {
                throw GGUFError.typeMismatch(path: file.path, key: key, expected: "an integer token id",
                                             found: value.typeName)
            }
            // Reported as written (`description`): u64 values past Int.max have no Int.
            guard let wide = value.intValue, wide >= 0, wide < vocabularySize, let id = Int32(exactly: wide) else {
                if Self.requiredKeys.contains(key) {
                    throw GGUFError.valueOutOfRange(path: file.path, key: key, value: value.description,
                                                    target: "the vocabulary (token ids 0..<\(vocabularySize))")
                }
                ignored.append("\(key) = \(value.description)")
                continue
            }
            switch key {
            case TokenizerKey.bosID: bos = id
            case TokenizerKey.eosID: eos = id
            case TokenizerKey.eotID: eot = id
            case TokenizerKey.padID: pad = id
            case TokenizerKey.unknownID: unknown = id
            default: break  // checked for the warning; no consumer uses it yet
            }
        }
    }
}
