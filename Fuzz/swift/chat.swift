// Fuzz target `chat`: chat-template detection from an arbitrary template text and
// rendering of arbitrary conversations with every template (bitnet, llama3,
// falcon3, none) over small tokenizers with and without the templates' marker tokens.
//
// Input: byte 0 picks the tokenizer (byte-level with markers, without, SentencePiece), byte 1 flags; the rest is split at NUL
// bytes: the first part is the file's chat-template text, each further part a
// message whose first byte picks the role. Checked: a conversation fed turn by
// turn (ChatConversation) holds exactly the tokens of the whole conversation
// rendered at once, so the KV cache of a chat never diverges from its transcript.
@testable import BitNet

enum Target: FuzzTarget {
    nonisolated(unsafe) static var tokenizers: [Tokenizer] = []
    /// Built once: a formatter depends only on the tokenizer, and building one looks
    /// marker texts up with `tokenID(forText:)`, a scan of the vocabulary (128,256
    /// strings for Llama-3), which would otherwise dominate every execution.
    nonisolated(unsafe) static var formatters: [[(ChatTemplate, ChatFormatter)]] = []

    static func setUp() {
        let markers = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
                       "<|system|>", "<|user|>", "<|assistant|>", "<|endoftext|>"]
        // Small vocabularies only: template detection looks marker texts up with
        // `tokenID(forText:)`, a linear scan, which on the 128,256-token Llama-3
        // vocabulary would cost ~20 ms per execution; a 267-token vocabulary with the
        // same markers reaches the same code.
        tokenizers = [
            try! Tokenizer(vocabulary: TokenizerVocabulary(model: .gpt2, pre: "llama-bpe", tokens: tinyTokens(markers),
                                                           merges: ["Ġ t"], tokenTypes: tinyTypes(markers.count),
                                                           bosID: 257, eosID: 258)),
            try! Tokenizer(vocabulary: TokenizerVocabulary(model: .gpt2, pre: "llama-bpe", tokens: tinyTokens([]),
                                                           merges: ["Ġ t"], tokenTypes: tinyTypes(0), bosID: 257, eosID: 258)),
            try! Tokenizer(vocabulary: TokenizerVocabulary(model: .llama, tokens: spm.tokens, scores: spm.scores,
                                                           tokenTypes: spm.types, bosID: 1, eosID: 2, unknownID: 0)),
        ]
        formatters = tokenizers.map { t in
            ChatTemplate.allCases.compactMap { template in (try? template.formatter(tokenizer: t)).map { (template, $0) } }
        }
    }

    static var spm: (tokens: [String], scores: [Float], types: [Int32]) {
        let m = Dictionary(Fuzz.tinySentencePieceMetadata(), uniquingKeysWith: { a, _ in a })
        guard case .array(.string(let tokens))? = m["tokenizer.ggml.tokens"], case .array(.float32(let scores))? = m["tokenizer.ggml.scores"],
              case .array(.int32(let types))? = m["tokenizer.ggml.token_type"] else { fatalError("tiny SentencePiece metadata") }
        return (tokens, scores, types)
    }

    static func tinyTokens(_ extra: [String]) -> [String] {
        (0..<256).map { String(UnicodeScalar(ByteLevel.byteToScalar[$0])!) } + ["Ġt", "<s>", "</s>"] + extra
    }

    static func tinyTypes(_ extra: Int) -> [Int32] {
        [Int32](repeating: 1, count: 257) + [Int32](repeating: 3, count: 2 + extra)
    }

    static func run(_ data: UnsafeRawBufferPointer) {
        var reader = ByteReader(data)
        let which = Int(reader.u8()) % tokenizers.count
        let tokenizer = tokenizers[which]
        let flags = reader.u8()
        let parts = Array(reader.rest()).split(separator: 0, omittingEmptySubsequences: false)
        let templateText = parts.first.map { String(decoding: $0, as: UTF8.self) }
        let architecture = ["bitnet-b1.58", "llama", nil, "bitnet"][Int(flags & 3)]
        let detection = ChatTemplate.detect(chatTemplate: templateText, architecture: architecture, tokenizer: tokenizer)
        precondition(!detection.reason.isEmpty)
        let roles = ChatMessage.Role.allCases
        let messages = parts.dropFirst().map { part -> ChatMessage in
            let role = roles[Int(part.first ?? 0) % roles.count]
            return ChatMessage(role: role, content: String(decoding: part.dropFirst(), as: UTF8.self))
        }
        for (template, formatter) in formatters[which] {
            let all = formatter.tokens(for: messages, addGenerationPrompt: flags & 4 != 0)
            for id in all { precondition(id >= 0 && Int(id) < tokenizer.vocabularySize, "template \(template) produced id \(id)") }
            _ = formatter.stopTokens
            // turn by turn: system prompt, then one user message
            let system = messages.first { $0.role == .system }?.content
            let user = messages.first { $0.role == .user }?.content ?? ""
            var conversation = ChatConversation(formatter: formatter, systemPrompt: system)
            conversation.addUser(user)
            let expected = formatter.tokens(for: (system.map { [ChatMessage.system($0)] } ?? []) + [.user(user)],
                                            addGenerationPrompt: true)
            precondition(conversation.tokens == expected,
                         "\(template): turn-by-turn \(conversation.tokens) != whole conversation \(expected)")
            let reply = tokenizer.encode("a reply", addSpecial: false)
            conversation.addReply(generated: reply + Array(formatter.stopTokens.prefix(1)), text: "a reply")
            precondition(conversation.pendingTokens(cached: conversation.tokens.count + 1) == nil)
            _ = conversation.pendingTokens(cached: Int(flags >> 4))
        }
    }

    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        let templates = [
            "{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}",
            "{% for m in messages %}{{ m.role | capitalize }}: {{ m.content }}<|eot_id|>{% endfor %}Assistant: ",
            "{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}\n{% endfor %}<|assistant|>\n",
            "Human: {{ x }}\n\nBITNETAssistant: {{ y }}<|eot_id|>",
            "",
        ]
        var out: [(String, [UInt8])] = []
        for (i, t) in templates.enumerated() {
            var bytes: [UInt8] = [UInt8(i % 4), UInt8(i) | 4] + Array(t.utf8)
            bytes += [0, 0] + Array("You are terse.".utf8)
            bytes += [0, 1] + Array("Hello <|eot_id|> there 🙂".utf8)
            bytes += [0, 2] + Array(" Hi! ".utf8)
            bytes += [0, 1] + Array("\n\nAgain?\n".utf8)
            out.append(("conversation-\(i)", bytes))
        }
        return out
    }
}
