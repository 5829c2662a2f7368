/// Text ⇄ token ids for the two GGUF tokenizer families (docs/FORMATS.md §6):
/// byte-level BPE (`gpt2`: Llama-3 / BitNet b1.58 2B4T, Falcon, GPT-2) and
/// SentencePiece (`llama`: Llama-2 / 1bitLLM).
///
/// Immutable after init, so one instance can serve many threads; each encode call
/// keeps its own scratch memory and word cache.
public final class Tokenizer: Sendable {
    package let model: TokenizerVocabulary.Model
    /// The pre-tokenizer in use (byte-level BPE only).
    package let preTokenizer: PreTokenizer?
    /// `tokenizer.ggml.pre` as stored in the file.
    public let preTokenizerName: String?
    /// False when `preTokenizerName` was not recognised and `default` is used instead.
    public let isPreTokenizerKnown: Bool
    /// Whole words found in the vocabulary skip the merges (Llama-3 family).
    public let ignoresMerges: Bool
    public let vocabularySize: Int
    public let bosID: Int32?
    public let eosID: Int32?
    /// End of turn: `tokenizer.ggml.eot_token_id`, or the control token `<|eot_id|>`
    /// (and the like) when the file does not say.
    public let eotID: Int32?
    public let padID: Int32?
    public let unknownID: Int32?
    /// Whether `encode(addSpecial: true)` starts with BOS / ends with EOS.
    public let addBOS: Bool
    public let addEOS: Bool
    /// SentencePiece dummy prefix: a "▁" before the text, removed again on decode.
    public let addSpacePrefix: Bool
    /// Tokens that end generation: EOS, EOT and control tokens such as
    /// `<|eot_id|>`, `<|end_of_text|>`, `<|eom_id|>`.
    public let endOfGenerationIDs: Set<Int32>

    enum Engine: Sendable {
        case bytePair(BytePairEncoder)
        case sentencePiece(SentencePieceEncoder)
    }

    let engine: Engine
    private let matcher: SpecialTokenMatcher
    private let tokenTexts: [String]
    private let tokenTypes: [TokenType]
    /// Decoded bytes of every token, concatenated; token i is
    /// `pieceArena[pieceStart[i]..<pieceStart[i + 1]]`.
    private let pieceArena: [UInt8]
    private let pieceStart: [Int]

    package init(vocabulary v: TokenizerVocabulary) throws {
        let n = v.tokens.count
        guard n > 0 else { throw TokenizerError.emptyVocabulary }
        guard n < Int(Int32.max) else {
            throw TokenizerError.arrayLengthMismatch(key: "tokens", expected: Int(Int32.max), found: n)
        }
        if !v.tokenTypes.isEmpty, v.tokenTypes.count != n {
            throw TokenizerError.arrayLengthMismatch(key: "token_type", expected: n, found: v.tokenTypes.count)
        }
        if !v.scores.isEmpty, v.scores.count != n {
            throw TokenizerError.arrayLengthMismatch(key: "scores", expected: n, found: v.scores.count)
        }
        for (name, id) in [("bos", v.bosID), ("eos", v.eosID), ("eot", v.eotID), ("pad", v.padID), ("unknown", v.unknownID)] {
            if let id, id < 0 || Int(id) >= n {
                throw TokenizerError.specialTokenOutOfRange(name: name, id: id, vocabularySize: n)
            }
        }

        let types = (0..<n).map { v.tokenType($0) }
        model = v.model
        vocabularySize = n
        tokenTexts = v.tokens
        tokenTypes = types
        bosID = v.bosID
        eosID = v.eosID
        padID = v.padID
        unknownID = v.unknownID
        preTokenizerName = v.pre

        // Decoded pieces, the special-token matcher, and the model tables.
        var arena: [UInt8] = []
        arena.reserveCapacity(n * 8)
        var starts: [Int] = []
        starts.reserveCapacity(n + 1)
        var matcher = SpecialTokenMatcher()
        var table = ByteStringTable(capacity: n)

        switch v.model {
        case .gpt2:
            guard !v.merges.isEmpty else { throw TokenizerError.missingMerges }
            let resolved = PreTokenizer.resolve(pre: v.pre, vocabularySize: n)
            preTokenizer = resolved.preTokenizer
            ignoresMerges = resolved.ignoreMerges
            isPreTokenizerKnown = resolved.known
            addBOS = v.addBOS ?? resolved.ignoreMerges  // llama.cpp: on for the Llama-3 family
            addSpacePrefix = v.addSpacePrefix ?? false

            for (id, text) in v.tokens.enumerated() {
                starts.append(arena.count)
                let type = types[id]
                let raw = Array(text.utf8)
                switch type {
                case .control, .userDefined, .unknown:
                    // Added tokens are stored verbatim, not in the byte-level spelling.
                    arena.append(contentsOf: raw)
                    matcher.add(raw, id: Int32(id), always: type == .userDefined)
                    if type == .userDefined { table.insert(raw, value: Int32(id)) }
                default:
                    let bytes = ByteLevel.bytes(of: text) ?? raw
                    arena.append(contentsOf: bytes)
                    table.insert(bytes, value: Int32(id))
                }
            }
            starts.append(arena.count)

            var merges = MergeTable(capacity: v.merges.count)
            for (rank, line) in v.merges.enumerated() {
                let utf8 = Array(line.utf8)
                // The separator is the first space after the first byte (llama.cpp's rule).
                guard utf8.count >= 3, let space = utf8[1...].firstIndex(of: 0x20) else { continue }
                let leftText = String(decoding: utf8[..<space], as: UTF8.self)
                let rightText = String(decoding: utf8[(space + 1)...], as: UTF8.self)
                let left = ByteLevel.bytes(of: leftText) ?? Array(leftText.utf8)
                let right = ByteLevel.bytes(of: rightText) ?? Array(rightText.utf8)
                guard let l = table.value(for: left), let r = table.value(for: right),
                      let m = table.value(for: left + right) else { continue }
                merges.insert(left: l, right: r, rank: Int32(rank), merged: m)
            }
            let byteTokens = (0..<256).map { table.value(for: [UInt8($0)]) ?? -1 }
            engine = .bytePair(BytePairEncoder(
                preTokenizer: resolved.preTokenizer, ignoreMerges: resolved.ignoreMerges,
                tokenTable: table, merges: merges, byteTokens: byteTokens, unknownID: v.unknownID))

        case .llama:
            preTokenizer = nil
            ignoresMerges = false
            isPreTokenizerKnown = true
            addBOS = v.addBOS ?? true
            addSpacePrefix = v.addSpacePrefix ?? true

            var byteTokens = [Int32](repeating: -1, count: 256)
            var pieceTexts: [[UInt8]] = []
            for (id, text) in v.tokens.enumerated() {
                starts.append(arena.count)
                let raw = Array(text.utf8)
                var type = types[id]
                if v.tokenTypes.isEmpty, SentencePieceEncoder.byteValue(raw) != nil { type = .byte }
                switch type {
                case .control:
                    arena.append(contentsOf: raw)
                    matcher.add(raw, id: Int32(id), always: false)
                case .unknown:
                    // SentencePiece's surface for an unknown piece.
                    arena.append(contentsOf: Array(" \u{2047} ".utf8))
                    matcher.add(raw, id: Int32(id), always: false)
                case .byte:
                    if let b = SentencePieceEncoder.byteValue(raw) {
                        arena.append(b)
                        if byteTokens[Int(b)] < 0 { byteTokens[Int(b)] = Int32(id) }
                    } else {
                        arena.append(contentsOf: raw)
                    }
                default:
                    SentencePieceEncoder.unescapeSpaces(raw, into: &arena)
                    table.insert(raw, value: Int32(id))
                    pieceTexts.append(raw)
                    if type == .userDefined { matcher.add(raw, id: Int32(id), always: true) }
                }
            }
            starts.append(arena.count)
            let scores = v.scores.isEmpty ? [Float](repeating: 0, count: n) : v.scores
            engine = .sentencePiece(SentencePieceEncoder(
                pieces: table, pieceTexts: pieceTexts, scores: scores, byteTokens: byteTokens, unknownID: v.unknownID))
        }

        pieceArena = arena
        pieceStart = starts
        self.matcher = matcher
        addEOS = v.addEOS ?? false

        // Special tokens the fork and llama.cpp recognise by their text.
        func specialToken(_ text: String) -> Int32? {
            guard let i = v.tokens.firstIndex(of: text), types[i] == .control || types[i] == .userDefined else { return nil }
            return Int32(i)
        }
        let eot = v.eotID ?? ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>"].lazy.compactMap(specialToken).first
        eotID = eot
        var stops = Set<Int32>()
        if let e = v.eosID { stops.insert(e) }
        if let eot { stops.insert(eot) }
        for text in ["<|eot_id|>", "<|eom_id|>", "<|end_of_text|>", "<|im_end|>", "<|endoftext|>", "<|end|>", "<end_of_turn>"] {
            if let id = specialToken(text) { stops.insert(id) }
        }
        endOfGenerationIDs = stops
    }

    // MARK: - Encoding

    /// Token ids of `text`. `addSpecial` adds BOS/EOS as the vocabulary asks;
    /// `parseSpecial` lets control tokens written in the text (`<|eot_id|>`) become
    /// those tokens instead of being encoded as text.
    public func encode(_ text: String, addSpecial: Bool = true, parseSpecial: Bool = false) -> [Int32] {
        var text = text
        return text.withUTF8 { encode(buffer: $0, addSpecial: addSpecial, parseSpecial: parseSpecial) }
    }

    /// Like `encode(_:)` for raw bytes that need not be valid UTF-8: invalid bytes
    /// become byte-level tokens (BPE) or byte-fallback tokens (SentencePiece).
    public func encode(bytes: [UInt8], addSpecial: Bool = true, parseSpecial: Bool = false) -> [Int32] {
        bytes.withUnsafeBufferPointer { encode(buffer: $0, addSpecial: addSpecial, parseSpecial: parseSpecial) }
    }

    public func encode(buffer: UnsafeBufferPointer<UInt8>, addSpecial: Bool = true, parseSpecial: Bool = false) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(buffer.count / 3 + 2)
        if addSpecial, addBOS, let bosID { out.append(bosID) }
        switch engine {
        case .bytePair(let bpe):
            var text = ScalarText()
            var scratch = BytePairEncoder.Scratch()
            matcher.partition(buffer, parseSpecial: parseSpecial) { fragment in
                switch fragment {
                case .text(let range):
                    bpe.encode(UnsafeBufferPointer(rebasing: buffer[range]), into: &out, text: &text, scratch: &scratch)
                case .token(let id):
                    out.append(id)
                }
            }
        case .sentencePiece(let spm):
            var scratch = SentencePieceEncoder.Scratch()
            // llama.cpp: the dummy prefix goes before the first text and before text
            // that follows a special token.
            var afterSpecial = true
            matcher.partition(buffer, parseSpecial: parseSpecial) { fragment in
                switch fragment {
                case .text(let range):
                    spm.encode(UnsafeBufferPointer(rebasing: buffer[range]), addPrefix: addSpacePrefix && afterSpecial,
                               into: &out, scratch: &scratch)
                    afterSpecial = false
                case .token(let id):
                    out.append(id)
                    afterSpecial = true
                }
            }
        }
        if addSpecial, addEOS, let eosID { out.append(eosID) }
        return out
    }

    // MARK: - Decoding

    /// The text of `ids`. Control tokens (BOS, `<|eot_id|>`) are left out unless
    /// `renderSpecial`; SentencePiece's dummy prefix space is removed from the
    /// first piece. Bytes that do not form UTF-8 become U+FFFD.
    public func decode(_ ids: [Int32], renderSpecial: Bool = false) throws -> String {
        String(decoding: try decodeBytes(ids, renderSpecial: renderSpecial), as: UTF8.self)
    }

    /// The raw bytes of `ids` (see `decode`); throws for an id outside the vocabulary.
    public func decodeBytes(_ ids: [Int32], renderSpecial: Bool = false) throws -> [UInt8] {
        var out: [UInt8] = []
        var atStart = true
        for id in ids { try appendPiece(id, to: &out, atStart: &atStart, renderSpecial: renderSpecial) }
        return out
    }

    /// A decoder for generated tokens that only ever returns complete characters.
    public func makeStreamingDecoder(renderSpecial: Bool = false) -> StreamingDecoder {
        StreamingDecoder(tokenizer: self, renderSpecial: renderSpecial)
    }

    /// Appends the bytes of one token. `atStart` is true until the first text piece,
    /// whose SentencePiece dummy-prefix space is dropped.
    func appendPiece(_ id: Int32, to out: inout [UInt8], atStart: inout Bool, renderSpecial: Bool) throws {
        guard id >= 0, Int(id) < vocabularySize else {
            throw TokenizerError.tokenIDOutOfRange(id: id, vocabularySize: vocabularySize)
        }
        let i = Int(id)
        let type = tokenTypes[i]
        var from = pieceStart[i]
        let to = pieceStart[i + 1]
        if type == .control {
            if renderSpecial { out.append(contentsOf: pieceArena[from..<to]) }
            return
        }
        if atStart {
            atStart = false
            if model == .llama, addSpacePrefix, type != .byte, from < to, pieceArena[from] == 0x20 {
                from += 1
            }
        }
        out.append(contentsOf: pieceArena[from..<to])
    }

    // MARK: - Tokens

    /// The bytes token `id` decodes to on its own (control tokens: their text).
    public func tokenBytes(_ id: Int32) throws -> [UInt8] {
        guard id >= 0, Int(id) < vocabularySize else {
            throw TokenizerError.tokenIDOutOfRange(id: id, vocabularySize: vocabularySize)
        }
        return Array(pieceArena[pieceStart[Int(id)]..<pieceStart[Int(id) + 1]])
    }

    /// `tokenBytes` as text; a piece holding part of a character shows U+FFFD.
    public func tokenPiece(_ id: Int32) throws -> String {
        String(decoding: try tokenBytes(id), as: UTF8.self)
    }

    /// The token as spelled in the vocabulary (`Ġhello`, `▁hello`, `<0x0A>`).
    public func tokenText(_ id: Int32) throws -> String {
        guard id >= 0, Int(id) < vocabularySize else {
            throw TokenizerError.tokenIDOutOfRange(id: id, vocabularySize: vocabularySize)
        }
        return tokenTexts[Int(id)]
    }

    package func tokenType(_ id: Int32) throws -> TokenType {
        guard id >= 0, Int(id) < vocabularySize else {
            throw TokenizerError.tokenIDOutOfRange(id: id, vocabularySize: vocabularySize)
        }
        return tokenTypes[Int(id)]
    }

    /// The id whose vocabulary spelling is exactly `text` (e.g. `"<|eot_id|>"`).
    public func tokenID(forText text: String) -> Int32? {
        tokenTexts.firstIndex(of: text).map { Int32($0) }
    }

    public func isEndOfGeneration(_ id: Int32) -> Bool {
        endOfGenerationIDs.contains(id)
    }
}
