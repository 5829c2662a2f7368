import Foundation
import XCTest
@testable import BitNet

/// Chat formatting against hand-checked token sequences, with the Llama-3 vocabulary
/// (the one BitNet-b1.58-2B-4T uses) from the vocab-only fixture.
final class ChatTemplateTests: XCTestCase {
    static let fixturePath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tokenizers/ggml-vocab-llama-bpe.gguf").path
    static let spmPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tokenizers/ggml-vocab-llama-spm.gguf").path

    /// Loading 128256 tokens and 280147 merges takes a moment: once per run.
    nonisolated(unsafe) static var cachedLlama3: Tokenizer?
    nonisolated(unsafe) static var cachedFalconLike: Tokenizer?

    // Llama-3 special ids (tokenizer.json of Meta-Llama-3; the fixture's own metadata
    // says bos 128000, eos 128001).
    let bos: Int32 = 128000
    let endOfText: Int32 = 128001
    let startHeader: Int32 = 128006
    let endHeader: Int32 = 128007
    let eot: Int32 = 128009

    var llama3: Tokenizer {
        get throws {
            if let t = Self.cachedLlama3 { return t }
            let t = try Tokenizer(path: Self.fixturePath)
            Self.cachedLlama3 = t
            return t
        }
    }

    /// The Llama-3 vocabulary with three reserved control tokens renamed to Falcon3's
    /// role markers, so the falcon3 format can be checked with markers that are
    /// single added tokens (as in Falcon3's own vocabulary).
    static let falconMarkerIDs: [String: Int32] = ["<|system|>": 128011, "<|user|>": 128012, "<|assistant|>": 128013]
    var falconLike: Tokenizer {
        get throws {
            if let t = Self.cachedFalconLike { return t }
            var v = try TokenizerVocabulary(gguf: GGUFFile(path: Self.fixturePath))
            for (text, id) in Self.falconMarkerIDs {
                XCTAssertEqual(v.tokenType(Int(id)), .control, "reserved token \(id) should be a control token")
                v.tokens[Int(id)] = text
            }
            let t = try Tokenizer(vocabulary: v)
            Self.cachedFalconLike = t
            return t
        }
    }

    /// Plain text ids, no BOS, control-token text left as text.
    func enc(_ t: Tokenizer, _ s: String) -> [Int32] {
        t.encode(s, addSpecial: false, parseSpecial: false)
    }

    let conversation: [ChatMessage] = [
        .system("You are helpful."),
        .user("Hello"),
        .assistant("Hi there."),
        .user("What is 2+2?"),
    ]

    // MARK: - bitnet (BitNet-b1.58-2B-4T canonical format)

    func testBitNetConversationIDs() throws {
        let t = try llama3
        let ids = try ChatTemplate.bitnet.tokens(for: conversation, addGenerationPrompt: true, tokenizer: t)
        // Built by hand as the reference ChatFormat does: BOS, then per message the
        // header and the stripped content tokenized separately, then <|eot_id|>.
        var expected: [Int32] = [bos]
        expected += enc(t, "System: ") + enc(t, "You are helpful.") + [eot]
        expected += enc(t, "User: ") + enc(t, "Hello") + [eot]
        expected += enc(t, "Assistant: ") + enc(t, "Hi there.") + [eot]
        expected += enc(t, "User: ") + enc(t, "What is 2+2?") + [eot]
        expected += enc(t, "Assistant: ")
        XCTAssertEqual(ids, expected)

        // Literal ids: "System" 2374, ":" 25, and the header's trailing space is its own
        // token 220 because the header is tokenized alone ("\s+(?!\S)" at the end).
        XCTAssertEqual(Array(ids.prefix(4)), [bos, 2374, 25, 220])
        // "User: " + "Hello" (9906, no leading space) + <|eot_id|>.
        let firstUser = try XCTUnwrap(ids.firstIndex(of: 1502))
        XCTAssertEqual(Array(ids[firstUser..<(firstUser + 5)]), [1502, 25, 220, 9906, eot])
        // The generation prompt "Assistant: ".
        XCTAssertEqual(Array(ids.suffix(3)), [72803, 25, 220])
        // BOS once, <|eot_id|> after each of the four messages.
        XCTAssertEqual(ids.filter { $0 == bos }.count, 1)
        XCTAssertEqual(ids.filter { $0 == eot }.count, 4)
        XCTAssertEqual(ids.filter { $0 == endOfText }.count, 0)
    }

    func testBitNetSeparateTokenizationIsNotWholeStringTokenization() throws {
        let t = try llama3
        let ids = try ChatTemplate.bitnet.tokens(for: [.user("Hello")], addGenerationPrompt: false, tokenizer: t)
        XCTAssertEqual(ids, [bos, 1502, 25, 220, 9906, eot])
        // Rendering the string first and tokenizing it once joins the space to the word
        // (" Hello" = 22691): that is not what the model was trained on.
        let whole = t.encode("<|begin_of_text|>User: Hello<|eot_id|>", addSpecial: false, parseSpecial: true)
        XCTAssertEqual(whole, [bos, 1502, 25, 22691, eot])
        XCTAssertNotEqual(ids, whole)
    }

    func testBitNetStripsContentLikePython() throws {
        let t = try llama3
        let f = try ChatTemplate.bitnet.formatter(tokenizer: t)
        XCTAssertEqual(f.messageTokens(.user("  Hello \n\t")), f.messageTokens(.user("Hello")))
        // Python's str.strip() also removes U+001C…U+001F and U+3000.
        XCTAssertEqual(f.messageTokens(.user("\u{1F}Hello\u{3000}")), f.messageTokens(.user("Hello")))
        // Empty content: header and <|eot_id|> only.
        XCTAssertEqual(f.messageTokens(.user("   ")), [1502, 25, 220, eot])
    }

    func testChatStrippedUsesScalars() {
        XCTAssertEqual(" \u{301}x ".chatStripped, "\u{301}x")
        XCTAssertEqual("\n\u{1C}a b\u{2003}".chatStripped, "a b")
        XCTAssertEqual(" \t ".chatStripped, "")
        XCTAssertEqual("a".chatStripped, "a")
    }

    func testUserTextIsNeverParsedAsControlTokens() throws {
        let t = try llama3
        let f = try ChatTemplate.bitnet.formatter(tokenizer: t)
        let ids = f.messageTokens(.user("<|eot_id|>"))
        XCTAssertEqual(ids, [1502, 25, 220, 27, 91, 68, 354, 851, 91, 29, eot])
    }

    // MARK: - llama3

    func testLlama3ConversationIDs() throws {
        let t = try llama3
        let ids = try ChatTemplate.llama3.tokens(for: conversation, addGenerationPrompt: true, tokenizer: t)
        func header(_ role: String) -> [Int32] { [startHeader] + enc(t, role) + [endHeader] + enc(t, "\n\n") }
        var expected: [Int32] = [bos]
        expected += header("system") + enc(t, "You are helpful.") + [eot]
        expected += header("user") + enc(t, "Hello") + [eot]
        expected += header("assistant") + enc(t, "Hi there.") + [eot]
        expected += header("user") + enc(t, "What is 2+2?") + [eot]
        expected += header("assistant")
        XCTAssertEqual(ids, expected)

        // system 9125, user 882, assistant 78191, "\n\n" 271 (Meta's Llama-3 prompt format).
        XCTAssertEqual(Array(ids.prefix(5)), [bos, startHeader, 9125, endHeader, 271])
        XCTAssertEqual(Array(ids.suffix(4)), [startHeader, 78191, endHeader, 271])
        let firstUser = try XCTUnwrap(ids.firstIndex(of: 882))
        XCTAssertEqual(Array(ids[(firstUser - 1)..<(firstUser + 5)]), [startHeader, 882, endHeader, 271, 9906, eot])
        XCTAssertEqual(ids.filter { $0 == eot }.count, 4)

        // Hugging Face renders the template to one string and tokenizes that; for this
        // format the ids are the same ("\n\n" before stripped text is its own pre-token).
        let rendered = "<|begin_of_text|>"
            + "<|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
            + "<|start_header_id|>assistant<|end_header_id|>\n\nHi there.<|eot_id|>"
            + "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
            + "<|start_header_id|>assistant<|end_header_id|>\n\n"
        XCTAssertEqual(ids, t.encode(rendered, addSpecial: false, parseSpecial: true))
    }

    // MARK: - falcon3

    func testFalcon3ConversationIDs() throws {
        let t = try falconLike
        let sys = try XCTUnwrap(Self.falconMarkerIDs["<|system|>"])
        let user = try XCTUnwrap(Self.falconMarkerIDs["<|user|>"])
        let asst = try XCTUnwrap(Self.falconMarkerIDs["<|assistant|>"])
        let eos = try XCTUnwrap(t.eosID)
        XCTAssertEqual(eos, endOfText)
        let ids = try ChatTemplate.falcon3.tokens(for: conversation, addGenerationPrompt: true, tokenizer: t)
        // Text between markers tokenized as one string, as HF tokenizes the rendered template.
        var expected: [Int32] = []
        expected += [sys] + enc(t, "\nYou are helpful.\n")
        expected += [user] + enc(t, "\nHello\n")
        expected += [asst] + enc(t, "\nHi there.") + [eos] + enc(t, "\n")
        expected += [user] + enc(t, "\nWhat is 2+2?\n")
        expected += [asst] + enc(t, "\n")
        XCTAssertEqual(ids, expected)
        // No BOS in Falcon3's template; "\n" is 198; "Hello\n" splits as "Hello" "\n".
        XCTAssertEqual(Array(ids.prefix(2)), [sys, 198])
        XCTAssertEqual(Array(ids.suffix(2)), [asst, 198])
        let u = try XCTUnwrap(ids.firstIndex(of: user))
        XCTAssertEqual(Array(ids[u..<(u + 4)]), [user, 198, 9906, 198])
        // "Hi there." + eos: the end of an assistant turn.
        let a = try XCTUnwrap(ids.firstIndex(of: asst))
        XCTAssertEqual(Array(ids[a..<(a + 7)]), [asst, 198, 13347, 1070, 13, eos, 198])

        // Whole-string tokenization differs from piecewise where punctuation meets the
        // newline: "2+2?\n" keeps "?\n" together, as HF does.
        XCTAssertNotEqual(enc(t, "\nWhat is 2+2?\n"), enc(t, "\n") + enc(t, "What is 2+2?") + enc(t, "\n"))
        let rendered = "<|system|>\nYou are helpful.\n<|user|>\nHello\n<|assistant|>\nHi there.<|end_of_text|>\n"
            + "<|user|>\nWhat is 2+2?\n<|assistant|>\n"
        XCTAssertEqual(ids, t.encode(rendered, addSpecial: false, parseSpecial: true))
    }

    func testFalcon3MarkersOutsideTheVocabularyAreText() throws {
        let t = try llama3  // no <|user|> token
        let ids = try ChatTemplate.falcon3.tokens(for: [.user("Hello")], addGenerationPrompt: true, tokenizer: t)
        XCTAssertEqual(ids, enc(t, "<|user|>\nHello\n") + enc(t, "<|assistant|>\n"))
    }

    // MARK: - none

    func testNoneIsPlainCompletion() throws {
        let t = try llama3
        let f = try ChatTemplate.none.formatter(tokenizer: t)
        XCTAssertEqual(f.tokens(for: [.user("Hello")], addGenerationPrompt: true), [bos, 9906])
        XCTAssertEqual(f.generationPromptTokens, [])
        XCTAssertEqual(f.replyEndTokens, [])
    }

    // MARK: - Incremental rendering (KV cache reuse)

    func testIncrementalTurnEqualsFullRenderingForEveryTemplate() throws {
        for template in ChatTemplate.allCases {
            let t = template == .falcon3 ? try falconLike : try llama3
            let f = try template.formatter(tokenizer: t)
            let full = f.tokens(for: conversation, addGenerationPrompt: true)

            var chat = ChatConversation(formatter: f, systemPrompt: "You are helpful.")
            let turn1 = chat.addUser("Hello")
            XCTAssertEqual(chat.tokens, f.tokens(for: Array(conversation.prefix(2)), addGenerationPrompt: true), "\(template)")
            XCTAssertEqual(Array(chat.tokens.suffix(turn1.count)), turn1)

            // The model's reply as sampled: content, then a stop token that is not in the
            // cache (the generator never feeds it back).
            let reply = enc(t, "Hi there.")
            let stop = template == .none ? endOfText : (template == .falcon3 ? endOfText : eot)
            let inCache = chat.tokens.count + reply.count
            chat.addReply(generated: reply + [stop], text: "Hi there.")
            let turn2 = chat.addUser("What is 2+2?")

            XCTAssertEqual(chat.tokens, full, "\(template)")
            // Turn 2 is the full rendering minus the turn-1 prefix that is in the cache.
            XCTAssertEqual(try XCTUnwrap(chat.pendingTokens(cached: inCache)), Array(full[inCache...]), "\(template)")
            XCTAssertEqual(turn2, f.continuationTokens(newMessages: [.user("What is 2+2?")], addGenerationPrompt: true))
            let beforeTurn2 = f.tokens(for: Array(conversation.prefix(3)), addGenerationPrompt: false)
            XCTAssertEqual(beforeTurn2 + turn2, full, "\(template)")
        }
    }

    func testReplyEndingInEndOfTextIsClosedWithEndOfTurn() throws {
        let t = try llama3
        let f = try ChatTemplate.bitnet.formatter(tokenizer: t)
        var chat = ChatConversation(formatter: f)
        chat.addUser("Hello")
        let before = chat.tokens.count
        // <|end_of_text|> stops the reply, but the transcript gets the format's <|eot_id|>.
        let added = chat.addReply(generated: [13347, endOfText], text: "Hi")
        XCTAssertEqual(added, [13347, eot])
        XCTAssertEqual(chat.tokens.count, before + 2)
        // A reply cut short (no stop token) is closed the same way.
        chat.addUser("Again")
        XCTAssertEqual(chat.addReply(generated: [13347, 1070], text: "Hi there"), [13347, 1070, eot])
        XCTAssertEqual(chat.messages.map(\.role), [.user, .assistant, .user, .assistant])
        XCTAssertNil(chat.pendingTokens(cached: chat.tokens.count + 1))
        XCTAssertEqual(chat.pendingTokens(cached: chat.tokens.count), [])

        chat.reset()
        XCTAssertEqual(chat.tokens, [bos])
        XCTAssertEqual(chat.messages, [])
    }

    func testStopTokens() throws {
        let t = try llama3
        let stops = try ChatTemplate.bitnet.formatter(tokenizer: t).stopTokens
        XCTAssertTrue(stops.contains(eot))
        XCTAssertTrue(stops.contains(endOfText))
        XCTAssertFalse(stops.contains(bos))
    }

    /// Two turns through a real (random, tiny) model: turn 2 feeds only the new
    /// tokens, and the cache then matches a fresh prefill of the whole transcript.
    func testSecondTurnReusesTheKVCache() throws {
        let t = try llama3
        let config = ModelConfig(architecture: .bitnetB158, vocabSize: t.vocabularySize, contextLength: 64, hiddenSize: 64,
                                 layerCount: 1, ffnSize: 96, headCount: 4, kvHeadCount: 2, ropeTheta: 500_000)
        let path = try ModelTests.writeModel(config, name: "chat-kv")
        defer { unlink(path) }
        let weights = try ModelWeights(path: path)
        let model = try BitNetModel(weights: weights, contextLength: 64, threads: 2)
        let session = try model.makeSession()
        let f = try ChatTemplate.bitnet.formatter(tokenizer: t)
        let generator = Generator(session: session, stopTokens: f.stopTokens)
        var chat = ChatConversation(formatter: f, systemPrompt: "Be brief.")

        chat.addUser("Hello")
        let turn1 = try XCTUnwrap(chat.pendingTokens(cached: session.count))
        XCTAssertEqual(turn1, chat.tokens)
        var reply: [Int32] = []
        try generator.generate(prompt: turn1, maxTokens: 4, sampling: .greedy) { reply.append($0); return true }
        chat.addReply(generated: reply, text: "")

        chat.addUser("Again")
        let turn2 = try XCTUnwrap(chat.pendingTokens(cached: session.count))
        // Only what the cache lacks goes in: the reply's last token (the generator
        // samples it but never feeds it back), <|eot_id|>, and the new turn.
        let last = try XCTUnwrap(reply.last)
        let closing: [Int32] = f.stopTokens.contains(last) ? [eot] : [last, eot]
        XCTAssertEqual(turn2, closing + f.continuationTokens(newMessages: [.user("Again")], addGenerationPrompt: true))
        XCTAssertEqual(Array(chat.tokens.suffix(turn2.count)), turn2)
        let incremental = try session.forward(turn2)
        XCTAssertEqual(session.count, chat.tokens.count)

        let fresh = try BitNetModel(weights: weights, contextLength: 64, threads: 2)
        let freshSession = try fresh.makeSession()
        let full = try freshSession.forward(chat.tokens)
        let diff = zip(incremental, full).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThan(diff, 1e-3)
        XCTAssertEqual(Sampler.argmax(incremental), Sampler.argmax(full))
    }

    // MARK: - Detection and names

    func testDetectionFromTemplateText() throws {
        let t = try llama3
        // convert-ms's placeholder in the official 2B4T GGUF (docs/FORMATS.md §6.6).
        let placeholder = "{% for message in messages %}{% if message['role'] == 'user' %}{{'Human: ' + message['content'] + '\\n\\nBITNETAssistant: '}}{% else %}{{message['content'] + '<|eot_id|>'}}{% endif %}{% endfor %}"
        // The Hugging Face 2B4T template as described in docs/FORMATS.md §6.6.
        let hf2b4t = "{% for message in messages %}{% set content = message['role'] | capitalize + ': '+ message['content'] | trim + '<|eot_id|>' %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}"
        let llama = "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}"
        let falcon = "{% for message in messages %}{% if message['role'] == 'user' %}{{ '<|user|>\\n' + message['content'] + '\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
        let chatml = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n'}}{% endfor %}"

        XCTAssertEqual(ChatTemplate.detect(chatTemplate: placeholder, tokenizer: t).template, .bitnet)
        XCTAssertEqual(ChatTemplate.detect(chatTemplate: hf2b4t, tokenizer: t).template, .bitnet)
        XCTAssertEqual(ChatTemplate.detect(chatTemplate: llama, architecture: "bitnet-b1.58", tokenizer: t).template, .llama3)
        XCTAssertEqual(ChatTemplate.detect(chatTemplate: falcon, tokenizer: t).template, .falcon3)

        let unknown = ChatTemplate.detect(chatTemplate: chatml, tokenizer: t)
        XCTAssertEqual(unknown.template, ChatTemplate.none)
        XCTAssertFalse(unknown.isRecognized)
        XCTAssertTrue(unknown.reason.contains("plain completion"), unknown.reason)
        XCTAssertTrue(unknown.reason.contains("--chat-template"), unknown.reason)
    }

    func testDetectionWithoutTemplateUsesVocabularyAndArchitecture() throws {
        let t = try llama3
        XCTAssertEqual(ChatTemplate.detect(chatTemplate: nil, architecture: "bitnet-b1.58", tokenizer: t).template, .bitnet)
        XCTAssertEqual(ChatTemplate.detect(chatTemplate: nil, architecture: "llama", tokenizer: t).template, .llama3)
        XCTAssertEqual(ChatTemplate.detect(chatTemplate: "", architecture: "llama", tokenizer: t).template, .llama3)
        // The fixture file: architecture "llama", no template.
        let fromFile = ChatTemplate.detect(gguf: try GGUFFile(path: Self.fixturePath), tokenizer: t)
        XCTAssertEqual(fromFile.template, .llama3)
        XCTAssertTrue(fromFile.isRecognized)
        XCTAssertEqual(ChatTemplate.detect(chatTemplate: nil, tokenizer: try falconLike).template, .llama3)

        // SentencePiece vocabulary, no template: nothing to go on.
        let spm = try Tokenizer(path: Self.spmPath)
        let none = ChatTemplate.detect(chatTemplate: nil, architecture: "bitnet", tokenizer: spm)
        XCTAssertEqual(none.template, ChatTemplate.none)
        XCTAssertFalse(none.isRecognized)
        // Falcon-1's "Assistant: " template without <|eot_id|> anywhere is not 2B4T.
        let falcon1 = "{{ '\\n\\nUser: ' + message['content'] }}{{ '\\n\\nAssistant: ' }}"
        XCTAssertEqual(ChatTemplate.detect(chatTemplate: falcon1, tokenizer: spm).template, ChatTemplate.none)
        // Formats that need Llama-3 control tokens cannot bind to it.
        XCTAssertThrowsError(try ChatTemplate.llama3.formatter(tokenizer: spm)) { error in
            XCTAssertEqual(error as? ChatTemplateError, .missingToken(template: "llama3", token: "<|eot_id|>"))
        }
        XCTAssertThrowsError(try ChatTemplate.bitnet.formatter(tokenizer: spm))
        XCTAssertNoThrow(try ChatTemplate.none.formatter(tokenizer: spm))
    }

    func testNames() {
        for template in ChatTemplate.allCases { XCTAssertEqual(ChatTemplate(name: template.name), template) }
        XCTAssertEqual(ChatTemplate(name: "LLAMA3"), .llama3)
        XCTAssertEqual(ChatTemplate(name: "plain"), ChatTemplate.none)
        XCTAssertNil(ChatTemplate(name: "chatml"))
    }
}
