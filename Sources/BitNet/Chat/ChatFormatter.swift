/// A ``ChatTemplate`` bound to a vocabulary: renders messages to token ids.
///
/// A conversation's ids are `beginTokens`, then `messageTokens` of each message,
/// then (to ask for a reply) `generationPromptTokens`. Every message renders on
/// its own, so a chat can feed the model only what a turn adds
/// (``continuationTokens(newMessages:addGenerationPrompt:)``) and keep the rest in
/// the KV cache: a reply appended after the generation prompt, followed by
/// `replyEndTokens`, gives the same ids as rendering it as an assistant message.
///
/// Formats and their sources:
/// - `bitnet` — BitNet-b1.58-2B-4T, reference BN `gpu/tokenizer.py` `ChatFormat`
///   (docs/FORMATS.md §6.6): BOS once, then per message the header "System: ", "User: " or
///   "Assistant: " and the stripped content, **each tokenized separately** and
///   concatenated, then `<|eot_id|>`; the generation prompt is the "Assistant: "
///   header. (bitnet.cpp's hard-coded variant omits `<|eot_id|>` after system and
///   assistant turns and is not the reference.)
/// - `llama3` — Meta's Llama-3 `ChatFormat` (`encode_header` / `encode_message`):
///   BOS, then `<|start_header_id|>` role `<|end_header_id|>` "\n\n" stripped
///   content `<|eot_id|>`, pieces tokenized separately. The Hugging Face template
///   renders the same text as one string; since "\n\n" before stripped content is
///   always its own pre-token, both give the same ids.
/// - `falcon3` — the `chat_template` of Falcon3's `tokenizer_config.json` (as in
///   tiiuae/Falcon3-3B-Instruct, seen in the tokenizer_config diff of
///   huggingface.co/tiiuae/Falcon3-3B-Instruct-GPTQ-Int4 commit 68057c6, and the
///   non-tool branch of the later tool-calling version):
///   system `'<|system|>\n' + content + '\n'`, user `'<|user|>\n' + content + '\n'`,
///   assistant `'<|assistant|>\n' + content + eos_token + '\n'`, generation prompt
///   `'<|assistant|>\n'`; no bos_token and no stripping. Hugging Face tokenizes the
///   rendered string as a whole (added tokens split it), so the text between
///   markers is tokenized as one string here too. If a marker is not a single
///   token of the vocabulary it is written as text; text then still breaks at
///   message boundaries so that turns can be rendered one at a time.
/// - `none` — plain completion: BOS if the vocabulary adds one, then each message's
///   text as is; no generation prompt, no end-of-turn tokens.
public struct ChatFormatter: Sendable {
    public let template: ChatTemplate
    public let tokenizer: Tokenizer

    private let bos: Int32?
    /// `<|eot_id|>` (bitnet, llama3).
    private let eot: Int32?
    private let startHeader: Int32?
    private let endHeader: Int32?
    /// Falcon3's eos_token, written after each assistant message.
    private let eos: Int32?
    /// Falcon3's role markers, where the vocabulary has them as single added tokens.
    private let markers: [ChatMessage.Role: Int32]
    /// The role headers' ids (bitnet: "System: "…; llama3: the role name between its
    /// header tokens, and the "\n\n" after them), tokenized once here rather than for
    /// every message: they are pieces of their own, so their ids never depend on the text
    /// around them, and a long conversation re-rendered each turn would encode them again.
    private let headerPieces: [ChatMessage.Role: [Int32]]
    private let newlinePiece: [Int32]

    public init(template: ChatTemplate, tokenizer: Tokenizer) throws {
        self.template = template
        self.tokenizer = tokenizer
        let name = template.name

        // Added tokens only: a normal token spelled like a marker would be text.
        func special(_ text: String) -> Int32? {
            guard let id = tokenizer.tokenID(forText: text), let type = try? tokenizer.tokenType(id),
                  type == .control || type == .userDefined else { return nil }
            return id
        }
        func required(_ id: Int32?, _ text: String) throws -> Int32 {
            guard let id else { throw ChatTemplateError.missingToken(template: name, token: text) }
            return id
        }

        var bos: Int32? = nil
        var eot: Int32? = nil
        var startHeader: Int32? = nil
        var endHeader: Int32? = nil
        var eos: Int32? = nil
        var markers: [ChatMessage.Role: Int32] = [:]
        switch template {
        case .bitnet:
            // The reference adds <|begin_of_text|> itself, whatever add_bos_token says.
            bos = try required(tokenizer.bosID ?? special("<|begin_of_text|>"), "<|begin_of_text|>")
            eot = try required(special("<|eot_id|>") ?? tokenizer.eotID, "<|eot_id|>")
        case .llama3:
            bos = try required(tokenizer.bosID ?? special("<|begin_of_text|>"), "<|begin_of_text|>")
            eot = try required(special("<|eot_id|>") ?? tokenizer.eotID, "<|eot_id|>")
            startHeader = try required(special("<|start_header_id|>"), "<|start_header_id|>")
            endHeader = try required(special("<|end_header_id|>"), "<|end_header_id|>")
        case .falcon3:
            eos = try required(tokenizer.eosID ?? special("<|endoftext|>"), "<|endoftext|> (eos)")
            for role in ChatMessage.Role.allCases {
                if let id = special(ChatFormatter.falconMarker(role)) { markers[role] = id }
            }
        case .none:
            bos = tokenizer.addBOS ? tokenizer.bosID : nil
        }
        self.bos = bos
        self.eot = eot
        self.startHeader = startHeader
        self.endHeader = endHeader
        self.eos = eos
        self.markers = markers
        func encoded(_ piece: String) -> [Int32] { tokenizer.encode(piece, addSpecial: false, parseSpecial: false) }
        var headerPieces: [ChatMessage.Role: [Int32]] = [:]
        for role in ChatMessage.Role.allCases {
            switch template {
            case .bitnet: headerPieces[role] = encoded(ChatFormatter.bitnetHeader(role))
            case .llama3: headerPieces[role] = encoded(role.rawValue)
            case .falcon3, .none: break
            }
        }
        self.headerPieces = headerPieces
        newlinePiece = template == .llama3 ? encoded("\n\n") : []
    }

    // MARK: - Pieces

    /// What a conversation starts with (BOS for bitnet and llama3).
    public var beginTokens: [Int32] { bos.map { [$0] } ?? [] }

    /// One message: header, content and end of turn.
    public func messageTokens(_ message: ChatMessage) -> [Int32] {
        var b = ChatTokenBuilder(tokenizer: tokenizer)
        switch template {
        case .bitnet:
            b.tokens(headerPieces[message.role] ?? [])
            b.piece(message.content.chatStripped)
            if let eot { b.token(eot) }
        case .llama3:
            appendLlama3Header(message.role, to: &b)
            b.piece(message.content.chatStripped)
            if let eot { b.token(eot) }
        case .falcon3:
            appendFalconMarker(message.role, to: &b)
            switch message.role {
            case .system, .user:
                b.text("\n" + message.content + "\n")
            case .assistant:
                b.text("\n" + message.content)
                if let eos { b.token(eos) }
                b.text("\n")
            }
        case .none:
            b.piece(message.content)
        }
        return b.finish()
    }

    /// The start of the assistant's turn, after which the model writes its reply.
    public var generationPromptTokens: [Int32] {
        var b = ChatTokenBuilder(tokenizer: tokenizer)
        switch template {
        case .bitnet:
            b.tokens(headerPieces[.assistant] ?? [])
        case .llama3:
            appendLlama3Header(.assistant, to: &b)
        case .falcon3:
            appendFalconMarker(.assistant, to: &b)
            b.text("\n")
        case .none:
            break
        }
        return b.finish()
    }

    /// What closes an assistant turn after its content: `<|eot_id|>` (bitnet,
    /// llama3), eos + "\n" (falcon3), nothing (none).
    public var replyEndTokens: [Int32] {
        switch template {
        case .bitnet, .llama3:
            return eot.map { [$0] } ?? []
        case .falcon3:
            var b = ChatTokenBuilder(tokenizer: tokenizer)
            if let eos { b.token(eos) }
            b.text("\n")
            return b.finish()
        case .none:
            return []
        }
    }

    /// Tokens that end a reply: the template's end of turn plus the vocabulary's
    /// end-of-generation tokens (EOS, `<|eot_id|>`, `<|end_of_text|>`…).
    public var stopTokens: Set<Int32> {
        var stops = tokenizer.endOfGenerationIDs
        if let eot { stops.insert(eot) }
        if let eos { stops.insert(eos) }
        return stops
    }

    // MARK: - Whole conversations

    /// The ids of a whole conversation, as the reference renders it; with
    /// `addGenerationPrompt`, ending with the assistant header for the model to continue.
    public func tokens(for messages: [ChatMessage], addGenerationPrompt: Bool) -> [Int32] {
        beginTokens + continuationTokens(newMessages: messages, addGenerationPrompt: addGenerationPrompt)
    }

    /// The ids `newMessages` add to a conversation already rendered (no BOS):
    /// `tokens(for: old + new, …) == tokens(for: old, addGenerationPrompt: false) + continuationTokens(newMessages: new, …)`.
    public func continuationTokens(newMessages: [ChatMessage], addGenerationPrompt: Bool) -> [Int32] {
        var out: [Int32] = []
        for message in newMessages { out += messageTokens(message) }
        if addGenerationPrompt { out += generationPromptTokens }
        return out
    }

    /// Closes a reply generated after `generationPromptTokens`: its content ids
    /// (without the stop token) followed by the end of turn. The ids in the KV
    /// cache are then those of the assistant message, as the model wrote them.
    public func closeReply(content: [Int32]) -> [Int32] {
        content + replyEndTokens
    }

    // MARK: - Helpers

    static func bitnetHeader(_ role: ChatMessage.Role) -> String {
        switch role {
        case .system: return "System: "
        case .user: return "User: "
        case .assistant: return "Assistant: "
        }
    }

    static func falconMarker(_ role: ChatMessage.Role) -> String {
        "<|\(role.rawValue)|>"
    }

    private func appendLlama3Header(_ role: ChatMessage.Role, to b: inout ChatTokenBuilder) {
        if let startHeader { b.token(startHeader) }
        b.tokens(headerPieces[role] ?? [])
        if let endHeader { b.token(endHeader) }
        b.tokens(newlinePiece)
    }

    private func appendFalconMarker(_ role: ChatMessage.Role, to b: inout ChatTokenBuilder) {
        if let id = markers[role] {
            b.token(id)
        } else {
            b.text(ChatFormatter.falconMarker(role))
        }
    }
}
