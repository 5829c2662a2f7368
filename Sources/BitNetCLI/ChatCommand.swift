import Foundation
import ArgumentParser
import BitNet

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `bitnet chat`: an interactive conversation. Each turn feeds the model only the
/// tokens the turn adds (the KV cache keeps the rest), streams the reply, and
/// prints a short stats line on stderr.
struct ChatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Chat with a model: one message per line on standard input, replies streamed to stdout.",
        discussion: """
            Commands: /reset clears the conversation and the KV cache, /exit (or end of input) quits.
            Ctrl-C stops the current reply; Ctrl-C twice at the prompt quits.
            The chat format comes from the file (tokenizer.chat_template and the vocabulary); \
            --chat-template picks one: bitnet (BitNet-b1.58-2B-4T), llama3, falcon3, none (plain completion).
            """
    )

    @OptionGroup var options: ModelOptions

    @Option(help: "System prompt.") var system: String?

    @Option(name: .customLong("chat-template"), help: "Chat format: bitnet, llama3, falcon3 or none (default: from the file).")
    var chatTemplate: String?

    @Option(name: .shortAndLong, help: "Most tokens per reply.") var n = 512

    @Option(help: "Temperature (0 = greedy).") var temp: Float = 0.8
    @Option(name: .customLong("top-k"), help: "Top-k (0 = off).") var topK = 40
    @Option(name: .customLong("top-p"), help: "Top-p (1 = off).") var topP: Float = 0.95
    @Option(name: .customLong("min-p"), help: "Min-p (0 = off).") var minP: Float = 0.05
    @Option(name: .customLong("repeat-penalty"), help: "Repetition penalty (1 = off).") var repeatPenalty: Float = 1
    @Option(help: "Random seed (each turn uses seed + turn number).") var seed: UInt64 = 0

    @Flag(name: .customLong("verbose-prompt"), help: "Print the token ids fed to the model each turn on stderr.")
    var verbosePrompt = false

    func validate() throws {
        guard n >= 1 else { throw ValidationError("-n must be ≥ 1") }
        guard temp >= 0, temp.isFinite else { throw ValidationError("--temp must be ≥ 0") }
        guard topK >= 0 else { throw ValidationError("--top-k must be ≥ 0") }
        guard (0...1).contains(topP), (0...1).contains(minP) else { throw ValidationError("--top-p and --min-p must be in 0...1") }
        guard repeatPenalty > 0 else { throw ValidationError("--repeat-penalty must be > 0") }
        if let chatTemplate, ChatTemplate(name: chatTemplate) == nil {
            throw ValidationError("unknown --chat-template '\(chatTemplate)' (bitnet, llama3, falcon3 or none)")
        }
    }

    func run() throws {
        let (model, loadSeconds) = try options.load()
        let (tokenizer, formatter) = try ChatSetup.formatter(for: model, chatTemplate: chatTemplate, command: "chat")

        var session = try ChatSession(command: self, model: model, tokenizer: tokenizer, formatter: formatter)
        let interactive = isatty(0) != 0
        note(String(format: "loaded in %.2f s; context %d tokens. ", loadSeconds, session.contextLength)
             + "/reset starts over, /exit quits, Ctrl-C stops a reply.")
        ChatInterrupt.install()
        defer { ChatInterrupt.uninstall() }

        var reader = LineReader()
        var interruptsAtPrompt = 0
        while true {
            if interactive { writeStdout("> ") }
            switch reader.next() {
            case .endOfInput:
                if interactive { writeStdout("\n") }
                return
            case .interrupted:
                ChatInterrupt.clear()
                interruptsAtPrompt += 1
                if interruptsAtPrompt >= 2 {
                    writeStdout("\n")
                    return
                }
                writeStdout("\n")
                note("(Ctrl-C again or /exit to quit)")
            case .line(let line):
                interruptsAtPrompt = 0
                let trimmed = line.filter { $0 != "\r" }
                let command = trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
                switch command {
                case "":
                    continue
                case "/exit", "/quit":
                    return
                case "/reset":
                    session.reset()
                    note("(conversation cleared)")
                case "/help":
                    note("type a message and press Enter; /reset starts over, /exit quits, Ctrl-C stops a reply")
                default:
                    try session.reply(to: trimmed)
                }
            }
        }
    }
}

/// The state of one conversation: the transcript and the model whose KV cache
/// holds a prefix of it.
private struct ChatSession {
    let command: ChatCommand
    let model: BitNetModel
    let tokenizer: Tokenizer
    let generator: Generator
    var conversation: ChatConversation
    var turn = 0

    init(command: ChatCommand, model: BitNetModel, tokenizer: Tokenizer, formatter: ChatFormatter) throws {
        self.command = command
        self.model = model
        self.tokenizer = tokenizer
        var stops = formatter.stopTokens
        if let eos = tokenizer.eosID { stops.insert(eos) }
        generator = Generator(session: try model.makeSession(), stopTokens: stops)
        conversation = ChatConversation(formatter: formatter, systemPrompt: command.system)
    }

    var contextLength: Int { generator.session.contextLength }

    mutating func reset() {
        conversation.reset()
        generator.session.reset()
    }

    mutating func reply(to text: String) throws {
        let cache = generator.session
        let before = conversation
        conversation.addUser(text)
        // Only what the cache lacks is fed: the end of the previous reply (its last
        // token and end of turn), the new message and the generation prompt.
        var pending: [Int32]
        if let p = conversation.pendingTokens(cached: cache.count) {
            pending = p
        } else {
            // The cache holds more than the transcript: they went out of step, so start
            // the cache over from the transcript (costs one full prefill, never wrong).
            cache.reset()
            pending = conversation.tokens
        }
        let free = cache.contextLength - cache.count
        // At least one position must stay free for the reply.
        guard pending.count < free else {
            conversation = before
            note("context full: this message needs \(pending.count) tokens but \(max(0, free)) of \(cache.contextLength) are left. "
                 + "Type /reset to start a new conversation (or run with a larger --ctx).")
            return
        }
        guard !pending.isEmpty else { return }
        if command.verbosePrompt {
            note("[feeding \(pending.count) tokens: \(pending.map(String.init).joined(separator: ","))]")
        }

        var sampling = SamplingParameters()
        sampling.temperature = command.temp
        sampling.topK = command.topK
        sampling.topP = command.topP
        sampling.minP = command.minP
        sampling.repetitionPenalty = command.repeatPenalty
        sampling.seed = command.seed &+ UInt64(turn)
        turn += 1

        var decoder = tokenizer.makeStreamingDecoder()
        var generated: [Int32] = []
        var replyText = ""
        var interrupted = false
        let stops = generator.stopTokens
        ChatInterrupt.clear()
        let stats: GenerationStats
        do {
            stats = try generator.generate(prompt: pending, maxTokens: command.n, sampling: sampling) { token in
                // Ctrl-C: this token is dropped and nothing more is generated; the
                // tokens kept so far are exactly those in the cache.
                if ChatInterrupt.isSet {
                    interrupted = true
                    return false
                }
                generated.append(token)
                if stops.contains(token) { return true }
                let piece = try decoder.append(token)
                replyText += piece
                writeStdout(piece)
                return true
            }
        } catch {
            // A failed forward pass leaves the cache in an unknown state: start over.
            writeStdout("\n")
            note("error: \(error); the conversation was reset")
            reset()
            return
        }
        // The Ctrl-C that stopped this reply must not also count at the next prompt.
        ChatInterrupt.clear()
        let tail = decoder.finish()
        replyText += tail
        writeStdout(tail + "\n")
        conversation.addReply(generated: generated, text: replyText)

        var line = String(format: "[%d tokens, %.1f tok/s | prompt %d tokens, %.1f tok/s | context %d/%d",
                          stats.generatedTokens, stats.generatedTokensPerSecond, stats.promptTokens,
                          stats.promptTokensPerSecond, cache.count, cache.contextLength)
        if interrupted {
            line += " | stopped"
        } else if stats.stopReason == .maxTokens {
            line += " | reply cut at -n \(command.n)"
        }
        note(line + "]")
        if stats.stopReason == .contextFull {
            note("context full (\(cache.contextLength) tokens): type /reset to start a new conversation (or run with a larger --ctx).")
        }
    }
}

/// Standard output without buffering surprises: pieces of a reply appear as they come.
private func writeStdout(_ text: String) {
    print(text, terminator: "")
    fflush(nil)
}

/// SIGINT while chatting: a flag set by the handler and read between tokens and
/// while waiting for input. The handler does one store to a preallocated word,
/// which is async-signal-safe; the word is allocated before the handler exists,
/// so the handler never runs a lazy global initializer.
private enum ChatInterrupt {
    nonisolated(unsafe) static let flag: UnsafeMutablePointer<sig_atomic_t> = {
        let p = UnsafeMutablePointer<sig_atomic_t>.allocate(capacity: 1)
        p.initialize(to: 0)
        return p
    }()

    static var isSet: Bool { flag.pointee != 0 }
    static func clear() { flag.pointee = 0 }

    static func install() {
        clear()
        var action = sigaction()
        #if canImport(Glibc)
        action.__sigaction_handler.sa_handler = { _ in ChatInterrupt.flag.pointee = 1 }
        #else
        action.__sigaction_u.__sa_handler = { _ in ChatInterrupt.flag.pointee = 1 }
        #endif
        sigemptyset(&action.sa_mask)
        // No SA_RESTART: a read waiting at the prompt returns EINTR at once.
        action.sa_flags = 0
        sigaction(SIGINT, &action, nil)
    }

    static func uninstall() {
        signal(SIGINT, SIG_DFL)
    }
}

/// Lines from standard input (a terminal or a pipe), read with `poll` + `read` on
/// file descriptor 0 so that Ctrl-C at the prompt is noticed even when the signal
/// is delivered to another thread.
private struct LineReader {
    enum Event {
        case line(String)
        case interrupted
        case endOfInput
    }

    private var buffer: [UInt8] = []
    private var atEnd = false

    mutating func next() -> Event {
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<newline], as: UTF8.self)
                buffer.removeSubrange(...newline)
                return .line(line)
            }
            if atEnd {
                guard !buffer.isEmpty else { return .endOfInput }
                // A last line without a newline still counts.
                let line = String(decoding: buffer, as: UTF8.self)
                buffer.removeAll()
                return .line(line)
            }
            if ChatInterrupt.isSet {
                buffer.removeAll()  // a terminal discards the typed line on ^C too
                return .interrupted
            }
            var descriptor = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 200)
            if ready < 0 {
                if errno == EINTR { continue }
                atEnd = true
                continue
            }
            if ready == 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if count > 0 {
                buffer += chunk[0..<count]
            } else if count == 0 {
                atEnd = true
            } else if errno != EINTR && errno != EAGAIN {
                atEnd = true
            }
        }
    }
}
