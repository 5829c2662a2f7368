import BitNet
import BitNetJSON
/// The `tokenizer.ggml.*` keys (docs/FORMATS.md §6.1, the keys `Tokenizer+GGUF.swift`
/// reads) built from a Hugging Face folder: `tokenizer.json` (byte-level BPE:
/// vocab, merges, added tokens, pre-tokenizer) or `tokenizer.model`
/// (SentencePiece, the 1bitLLM models), plus `tokenizer_config.json`,
/// `generation_config.json` and `config.json` for the special ids, the BOS
/// flag and the chat template.
public struct HFTokenizerMetadata: Sendable {
    public var entries: [(String, GGUFValue)] = []
    /// Non-fatal findings (unrecognised pre-tokenizer, ids outside the vocabulary...).
    public var warnings: [String] = []
    /// One line for reports: model, token count, merges, pre.
    public var summary = ""

    /// Llama-3's split regex as `tokenizer.json` spells it (docs/FORMATS.md §6.3).
    static let llama3Regex =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// Token texts tried, in order, for `tokenizer.ggml.eot_token_id`.
    static let endOfTurnTokens = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>"]

    /// `vocabSize` is the model's (embedding rows): the token list is padded to
    /// it with `[PADi]` user-defined tokens, as llama.cpp's converter does, and
    /// a tokenizer larger than the model is an error. `pre` overrides the
    /// detected pre-tokenizer name.
    public init(folder: String, vocabSize: Int, config: HFModelConfig, pre: String? = nil) throws {
        let tokenizerJSONPath = "\(folder)/tokenizer.json"
        let spmPath = "\(folder)/tokenizer.model"
        let configPath = "\(folder)/tokenizer_config.json"
        let tokenizerConfig = FileBytes.exists(configPath) ? try JSONValue.read(path: configPath, what: "tokenizer_config.json") : nil
        let generationPath = "\(folder)/generation_config.json"
        let generation = FileBytes.exists(generationPath)
            ? try JSONValue.read(path: generationPath, what: "generation_config.json") : nil

        var tokenizerJSON: JSONValue?
        if FileBytes.exists(tokenizerJSONPath) {
            tokenizerJSON = try JSONValue.read(path: tokenizerJSONPath, what: "tokenizer.json")
        }
        let modelType = tokenizerJSON?["model"]?["type"]?.string
        // SentencePiece-style BPE (byte fallback, ▁ spaces) lives in tokenizer.model; prefer it when present
        let jsonIsSentencePiece = tokenizerJSON?["model"]?["byte_fallback"]?.bool == true
            || tokenizerJSON?["pre_tokenizer"]?["type"]?.string == "Metaspace"
        if let tokenizerJSON, modelType == "BPE", !(jsonIsSentencePiece && FileBytes.exists(spmPath)) {
            guard !jsonIsSentencePiece else {
                throw ConvertError.notSupported(what: "\(tokenizerJSONPath): a SentencePiece-style tokenizer.json without tokenizer.model")
            }
            try buildByteLevel(tokenizerJSON, path: tokenizerJSONPath, vocabSize: vocabSize, pre: pre)
        } else if FileBytes.exists(spmPath) {
            try buildSentencePiece(path: spmPath, added: tokenizerJSON, jsonPath: tokenizerJSONPath,
                                   addedPath: "\(folder)/added_tokens.json", vocabSize: vocabSize)
        } else if let modelType {
            throw ConvertError.notSupported(what: "\(tokenizerJSONPath): tokenizer model type '\(modelType)'")
        } else if tokenizerJSON != nil {
            throw ConvertError.invalidTokenizer(path: tokenizerJSONPath, reason: "no 'model' object with a 'type'")
        } else {
            throw ConvertError.missingFile(path: tokenizerJSONPath, what: "tokenizer.json (or tokenizer.model)")
        }
        try addSpecialIDs(tokenizerConfig: tokenizerConfig, configPath: configPath, generation: generation,
                          config: config, tokenizerJSON: tokenizerJSON)
        if let template = try Self.chatTemplate(folder: folder, tokenizerConfig: tokenizerConfig, configPath: configPath) {
            entries.append(("tokenizer.chat_template", .string(template)))
        }
        // the lists live on in `entries`; drop the working copies
        tokens = []
        types = []
        idByText = [:]
    }

    // MARK: - Token list

    /// Token texts and types, padded to the model's vocabulary.
    private var tokens: [String] = []
    private var types: [Int32] = []
    private var idByText: [String: Int] = [:]

    private mutating func place(_ text: String, id: Int, type: Int32, path: String, vocabSize: Int) throws {
        guard id >= 0 else { throw ConvertError.invalidTokenizer(path: path, reason: "token '\(text)' has negative id \(id)") }
        guard id < vocabSize else {
            throw ConvertError.invalidTokenizer(
                path: path, reason: "token '\(text)' has id \(id), outside the model's vocabulary of \(vocabSize) (config.json vocab_size)")
        }
        if id >= tokens.count {
            tokens.append(contentsOf: (tokens.count...id).map { "[PAD\($0)]" })
            types.append(contentsOf: repeatElement(-1, count: id + 1 - types.count))
        }
        tokens[id] = text
        types[id] = type
        if idByText[text] == nil { idByText[text] = id }
    }

    /// Fills the holes (ids no file names) with `[PADi]` user-defined tokens, up to the vocabulary size.
    private mutating func padToVocabulary(_ vocabSize: Int) {
        if tokens.count < vocabSize {
            tokens.append(contentsOf: (tokens.count..<vocabSize).map { "[PAD\($0)]" })
            types.append(contentsOf: repeatElement(-1, count: vocabSize - types.count))
        }
        var holes = 0
        for i in types.indices where types[i] == -1 {
            types[i] = TokenType.userDefined.rawValue
            holes += 1
        }
        if holes > 0 { warnings.append("tokenizer: \(holes) unused ids padded with [PADi] tokens up to vocab_size \(vocabSize)") }
    }

    /// Added tokens: `special` ones are control tokens (3), the others user-defined (4).
    /// Ids below `firstID` are left alone (SentencePiece's own pieces keep their types).
    private mutating func placeAdded(_ added: [JSONValue]?, path: String, vocabSize: Int, firstID: Int = 0) throws {
        for entry in added ?? [] {
            guard let text = entry["content"]?.string, let id = entry["id"]?.int else {
                throw ConvertError.invalidTokenizer(path: path, reason: "added_tokens entry without 'content' and 'id'")
            }
            if id < firstID { continue }
            let special = entry["special"]?.bool ?? false
            try place(text, id: id, type: special ? TokenType.control.rawValue : TokenType.userDefined.rawValue,
                      path: path, vocabSize: vocabSize)
        }
    }

    private mutating func buildByteLevel(_ json: JSONValue, path: String, vocabSize: Int, pre override: String?) throws {
        guard let vocab = json["model"]?["vocab"]?.object else {
            throw ConvertError.invalidTokenizer(path: path, reason: "model.vocab is not an object")
        }
        // ids in ascending order so that duplicates resolve deterministically
        for (text, value) in vocab.sorted(by: { ($0.value.int ?? -1) < ($1.value.int ?? -1) }) {
            guard let id = value.int else {
                throw ConvertError.invalidTokenizer(path: path, reason: "model.vocab['\(text)'] is not an integer id")
            }
            try place(text, id: id, type: TokenType.normal.rawValue, path: path, vocabSize: vocabSize)
        }
        try placeAdded(json["added_tokens"]?.array, path: path, vocabSize: vocabSize)
        padToVocabulary(vocabSize)

        var merges: [String] = []
        let mergeValues = json["model"]?["merges"]?.array ?? []
        merges.reserveCapacity(mergeValues.count)
        for (i, m) in mergeValues.enumerated() {
            // older files: "a b"; newer (tokenizers ≥ 0.20): ["a", "b"]
            if let s = m.string {
                merges.append(s)
            } else if let pair = m.array, pair.count == 2, let a = pair[0].string, let b = pair[1].string {
                guard !a.contains(" "), !b.contains(" ") else {
                    throw ConvertError.invalidTokenizer(
                        path: path, reason: "merge \(i) ['\(a)', '\(b)'] contains a space, which GGUF's \"a b\" merges cannot hold")
                }
                merges.append("\(a) \(b)")
            } else {
                throw ConvertError.invalidTokenizer(path: path, reason: "model.merges[\(i)] is neither \"a b\" nor [\"a\", \"b\"]")
            }
        }

        let pre = override ?? detectPre(json["pre_tokenizer"])
        entries.append(("tokenizer.ggml.model", .string("gpt2")))
        entries.append(("tokenizer.ggml.pre", .string(pre)))
        entries.append(("tokenizer.ggml.tokens", .array(.string(tokens))))
        entries.append(("tokenizer.ggml.token_type", .array(.int32(types))))
        entries.append(("tokenizer.ggml.merges", .array(.string(merges))))
        summary = "byte-level BPE (gpt2), \(tokens.count) tokens, \(merges.count) merges, pre '\(pre)'"
    }

    /// The `tokenizer.ggml.pre` name for a `pre_tokenizer` object.
    private mutating func detectPre(_ preTokenizer: JSONValue?) -> String {
        var regexes: [String] = []
        var byteLevelUsesRegex = false
        func walk(_ v: JSONValue?) {
            guard let v else { return }
            switch v["type"]?.string {
            case "Sequence": for p in v["pretokenizers"]?.array ?? [] { walk(p) }
            case "Split": if let r = v["pattern"]?["Regex"]?.string { regexes.append(r) }
            case "ByteLevel": if v["use_regex"]?.bool ?? true { byteLevelUsesRegex = true }
            default: break
            }
        }
        walk(preTokenizer)
        if regexes == [Self.llama3Regex] { return "llama-bpe" }
        if regexes.isEmpty && byteLevelUsesRegex { return "gpt-2" }
        warnings.append("tokenizer: pre-tokenizer not recognised (regexes \(regexes)); wrote 'default' (choose one with --pre)")
        return "default"
    }

    private mutating func buildSentencePiece(path: String, added tokenizerJSON: JSONValue?, jsonPath: String,
                                             addedPath: String, vocabSize: Int) throws {
        let spm = try SentencePieceModel(path: path)
        for (i, piece) in spm.pieces.enumerated() {
            try place(piece, id: i, type: spm.types[i], path: path, vocabSize: vocabSize)
        }
        var scores = spm.scores
        if let tokenizerJSON {
            try placeAdded(tokenizerJSON["added_tokens"]?.array, path: jsonPath, vocabSize: vocabSize,
                           firstID: spm.pieces.count)
        } else if FileBytes.exists(addedPath) {
            guard let added = try JSONValue.read(path: addedPath, what: "added_tokens.json").object else {
                throw ConvertError.invalidJSON(path: addedPath, reason: "top level is not an object")
            }
            for (text, value) in added.sorted(by: { $0.key < $1.key }) {
                guard let id = value.int else { throw ConvertError.invalidTokenizer(path: addedPath, reason: "'\(text)' has no integer id") }
                if id < spm.pieces.count { continue }
                try place(text, id: id, type: TokenType.userDefined.rawValue, path: addedPath, vocabSize: vocabSize)
            }
        }
        padToVocabulary(vocabSize)
        // added and padding tokens: llama.cpp's converter gives them score -1000
        scores.append(contentsOf: repeatElement(-1000, count: max(0, tokens.count - scores.count)))
        entries.append(("tokenizer.ggml.model", .string("llama")))
        entries.append(("tokenizer.ggml.pre", .string("default")))
        entries.append(("tokenizer.ggml.tokens", .array(.string(tokens))))
        entries.append(("tokenizer.ggml.scores", .array(.float32(scores))))
        entries.append(("tokenizer.ggml.token_type", .array(.int32(types))))
        entries.append(("tokenizer.ggml.add_space_prefix", .bool(spm.addDummyPrefix)))
        spmIDs = (spm.bosID, spm.eosID, spm.unkID, spm.padID)
        summary = "SentencePiece (llama), \(tokens.count) tokens"
    }

    private var spmIDs: (bos: Int?, eos: Int?, unk: Int?, pad: Int?)?

    // MARK: - Special tokens

    /// `"<s>"` or `{"content": "<s>", ...}` (tokenizer_config.json's two spellings).
    private static func tokenText(_ v: JSONValue?) -> String? {
        v?.string ?? v?["content"]?.string
    }

    private mutating func addSpecialIDs(tokenizerConfig: JSONValue?, configPath: String, generation: JSONValue?,
                                        config: HFModelConfig, tokenizerJSON: JSONValue?) throws {
        func lookup(_ key: String) -> Int? {
            guard let text = Self.tokenText(tokenizerConfig?[key]) else { return nil }
            guard let id = idByText[text] else {
                warnings.append("tokenizer: \(configPath) \(key) '\(text)' is not in the vocabulary")
                return nil
            }
            return id
        }
        func firstID(_ v: JSONValue?) -> Int? { v?.int ?? v?.array?.first?.int }
        let bos = lookup("bos_token") ?? config.bosTokenID ?? firstID(generation?["bos_token_id"]) ?? spmIDs?.bos
        let eos = lookup("eos_token") ?? config.eosTokenIDs.first ?? firstID(generation?["eos_token_id"]) ?? spmIDs?.eos
        let unk = lookup("unk_token") ?? spmIDs?.unk
        let pad = lookup("pad_token") ?? config.padTokenID ?? spmIDs?.pad
        let ids = idByText
        let eot = Self.endOfTurnTokens.compactMap { ids[$0] }.first

        func put(_ key: String, _ id: Int?) {
            guard let id else { return }
            guard id >= 0, id < tokens.count, let value = UInt32(exactly: id) else {
                warnings.append("tokenizer: \(key) \(id) is outside the vocabulary; not written")
                return
            }
            entries.append((key, .uint32(value)))
        }
        put("tokenizer.ggml.bos_token_id", bos)
        put("tokenizer.ggml.eos_token_id", eos)
        put("tokenizer.ggml.eot_token_id", eot)
        put("tokenizer.ggml.unknown_token_id", unk)
        put("tokenizer.ggml.padding_token_id", pad)

        // add_bos_token: the config says, else the post-processor template does, else BOS when one exists
        var addBOS: Bool? = tokenizerConfig?["add_bos_token"]?.bool
        if addBOS == nil, let post = tokenizerJSON?["post_processor"], !post.isNull, let bos, bos < tokens.count {
            addBOS = Self.templateStarts(with: tokens[bos], post)
        }
        entries.append(("tokenizer.ggml.add_bos_token", .bool(addBOS ?? (bos != nil))))
        if let addEOS = tokenizerConfig?["add_eos_token"]?.bool {
            entries.append(("tokenizer.ggml.add_eos_token", .bool(addEOS)))
        }
    }

    /// Whether a `TemplateProcessing` post-processor (possibly inside a
    /// `Sequence`) puts `token` first in single-sequence inputs.
    private static func templateStarts(with token: String, _ post: JSONValue) -> Bool {
        switch post["type"]?.string {
        case "Sequence":
            return (post["processors"]?.array ?? []).contains { templateStarts(with: token, $0) }
        case "TemplateProcessing":
            return post["single"]?.array?.first?["SpecialToken"]?["id"]?.string == token
        default:
            return false
        }
    }

    /// tokenizer_config.json's `chat_template` (a string, or a list of
    /// {name, template} with "default" preferred), else `chat_template.jinja`.
    private static func chatTemplate(folder: String, tokenizerConfig: JSONValue?, configPath: String) throws -> String? {
        if let v = tokenizerConfig?["chat_template"], !v.isNull {
            if let s = v.string { return s }
            if let list = v.array {
                let named = list.first { $0["name"]?.string == "default" } ?? list.first
                if let s = named?["template"]?.string { return s }
            }
            throw ConvertError.invalidTokenizer(path: configPath, reason: "'chat_template' is neither a string nor a list of templates")
        }
        let jinja = "\(folder)/chat_template.jinja"
        if FileBytes.exists(jinja) {
            let bytes = try FileBytes.contents(path: jinja, what: "chat_template.jinja")
            guard let s = String(validating: bytes, as: UTF8.self) else {
                throw ConvertError.invalidTokenizer(path: jinja, reason: "not valid UTF-8")
            }
            return s
        }
        return nil
    }
}
