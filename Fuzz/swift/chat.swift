// Fuzz target `chat`: chat-template detection from an arbitrary template text and
// rendering of arbitrary conversations with each template (bitnet, llama3,
// falcon3, none) over small tokenizers with and without the templates' marker tokens.
//
// Input: byte 0 picks the tokenizer (byte-level with markers, without, SentencePiece)
// and, divided by 3, the template among those that vocabulary binds; byte 1 flags; the
// rest is split at NUL bytes: the first part is the file's chat-template text, each
// further part a message whose first byte picks the role. Checked: rendered ids are
// inside the vocabulary, and a conversation fed turn by turn (ChatConversation) holds
// exactly the tokens of the whole conversation rendered at once, so the KV cache of a
// chat never diverges from its transcript.
//
// One template per execution, chosen by the input as the tokenizer is: rendering is
// tokenizing, nearly all of this target's time, and rendering every input with every
// template made one execution 2.7 encodings of the whole input (~12 ms at 4 KB under
// ASan, 83 executions/s). Fuzz/run.sh also caps inputs at 512 bytes for this target:
// the template and turn logic needs a few short messages, and long texts are the
// tokenizer's, which its own target covers up to 4 KB.
@testable import BitNet

enum Target: FuzzTarget {
    nonisolated(unsafe) static var tokenizers: [Tokenizer] = []
    /// Built once: a formatter depends only on the tokenizer, and building one looks
    /// marker texts up with `tokenID(forText:)`, a scan of the vocabulary (128,256
    /// strings for Llama-3), which would otherwise dominate every execution. With each,
    /// what does not depend on the input either: its stop tokens and generation prompt.
    nonisolated(unsafe) static var formatters: [[Bound]] = []
    /// "a reply" in each vocabulary, the reply the turn-by-turn check records.
    nonisolated(unsafe) static var replies: [[Int32]] = []

    struct Bound {
        var template: ChatTemplate
        var formatter: ChatFormatter
        var stopTokens: Set<Int32>
        var generationPrompt: [Int32]
    }

    static func setUp() {
        // Small vocabularies only: template detection looks marker texts up with
        // `tokenID(forText:)`, a linear scan, which on the 128,256-token Llama-3
        // vocabulary would cost ~20 ms per execution; a 267-token vocabulary with the
        // same markers reaches the same code.
        tokenizers = [Fuzz.tinyByteLevelTokenizer(markers: Fuzz.chatMarkers), Fuzz.tinyByteLevelTokenizer(),
                      Fuzz.tinySentencePieceTokenizer()]
        formatters = tokenizers.map { t in
            ChatTemplate.allCases.compactMap { template in
                (try? template.formatter(tokenizer: t)).map {
                    Bound(template: template, formatter: $0, stopTokens: $0.stopTokens, generationPrompt: $0.generationPromptTokens)
                }
            }
        }
        replies = tokenizers.map { $0.encode("a reply", addSpecial: false) }
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
        // turn by turn: the first system message as the system prompt, then the first user message
        let system = messages.first { $0.role == .system }?.content
        let user = messages.first { $0.role == .user }?.content ?? ""
        let opening = (system.map { [ChatMessage.system($0)] } ?? []) + [.user(user)]
        let withPrompt = flags & 4 != 0
        do {
            let bound = formatters[which][Int(data.first ?? 0) / tokenizers.count % formatters[which].count]
            let (template, formatter) = (bound.template, bound.formatter)
            let all = formatter.tokens(for: messages, addGenerationPrompt: withPrompt)
            for id in all { precondition(id >= 0 && Int(id) < tokenizer.vocabularySize, "template \(template) produced id \(id)") }
            var conversation = ChatConversation(formatter: formatter, systemPrompt: system)
            conversation.addUser(user)
            // When the conversation is exactly that opening, `all` is already its rendering at
            // once; encoding it a second time would double this target's main cost.
            let expected = messages == opening ? (withPrompt ? all : all + bound.generationPrompt)
                : formatter.tokens(for: opening, addGenerationPrompt: true)
            precondition(conversation.tokens == expected,
                         "\(template): turn-by-turn \(conversation.tokens) != whole conversation \(expected)")
            conversation.addReply(generated: replies[which] + Array(bound.stopTokens.prefix(1)), text: "a reply")
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
        // the same conversation once for every vocabulary and template it binds
        if formatters.isEmpty { setUp() }
        for (t, bound) in formatters.enumerated() {
            for (f, b) in bound.enumerated() where t + tokenizers.count * f >= 4 {
                var bytes: [UInt8] = [UInt8(t + tokenizers.count * f), 4] + Array(templates[f % templates.count].utf8)
                bytes += [0, 0] + Array("Be brief.".utf8) + [0, 1] + Array(" <|user|> x\n".utf8) + [0, 2] + Array("ok".utf8)
                out.append(("\(b.template.name)-tokenizer\(t)", bytes))
            }
        }
        return out
    }
}
