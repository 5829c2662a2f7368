import ArgumentParser
import BitNet

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `bitnet serve`: the model behind an OpenAI-compatible HTTP API
/// (`BitNetServer` in the library), so tools that speak that API, and curl, can use it.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a model over HTTP with an OpenAI-compatible API.",
        discussion: """
            Endpoints: GET /health, GET /v1/models, POST /v1/completions, POST /v1/chat/completions \
            ("stream": true for Server-Sent Events). Up to --parallel requests generate at once, batched into \
            the same forward steps (continuous batching); up to --max-queue more wait for a slot, more get 503. \
            The --ctx positions are split evenly across the slots. Each slot keeps its KV cache between \
            requests: a prompt that starts like an earlier one (a chat client resending the conversation) \
            computes only its new tokens. \
            Prints "listening on http://HOST:PORT (…)" on stdout, one line per request on stderr. \
            Ctrl-C or SIGTERM stops it.
            """
    )

    @OptionGroup var options: ModelOptions

    @Option(help: "Address to listen on (0.0.0.0 or :: for every interface).")
    var host = "127.0.0.1"

    @Option(help: "TCP port (0: any free port; the one chosen is printed).")
    var port = 8080

    @Option(name: .customLong("api-key"), help: "Require 'Authorization: Bearer KEY' on every endpoint but /health (default: $BITNET_API_KEY, else none).")
    var apiKey: String?

    @Option(name: .customLong("max-queue"), help: "Requests that may wait for a free slot; more are answered 503.")
    var maxQueue = 8

    @Option(help: "Requests generating at once (slots), batched into the same steps; --ctx is split across them.")
    var parallel = 1

    @Option(name: .customLong("step-tokens"), help: "Most tokens per batched step: decoding slots take one each, prompts share the rest (smaller: steadier token pace while prompts arrive).")
    var stepTokens = 64

    @Option(name: .customLong("chat-template"), help: "Chat format: bitnet, llama3, falcon3 or none (default: from the file).")
    var chatTemplate: String?

    @Option(help: "Seconds a client has to send its request, and that a send to a client that does not read may block.")
    var timeout: Double = 30

    @Option(name: .customLong("max-body"), help: "Largest request body in bytes (413 beyond).")
    var maxBody = 8 * 1024 * 1024

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535 (0: any free port)") }
        guard (0...4096).contains(maxQueue) else { throw ValidationError("--max-queue must be in 0...4096") }
        guard (1...1024).contains(parallel) else { throw ValidationError("--parallel must be in 1...1024") }
        guard (1...65536).contains(stepTokens) else { throw ValidationError("--step-tokens must be in 1...65536") }
        guard timeout.isFinite, timeout > 0 else { throw ValidationError("--timeout must be a positive number of seconds") }
        guard maxBody >= 1024 else { throw ValidationError("--max-body must be at least 1024 bytes") }
        if let apiKey, apiKey.isEmpty { throw ValidationError("--api-key must not be empty") }
        if let chatTemplate, ChatTemplate(name: chatTemplate) == nil {
            throw ValidationError("unknown --chat-template '\(chatTemplate)' (bitnet, llama3, falcon3 or none)")
        }
    }

    func run() throws {
        let path = try options.model
        let (model, loadSeconds) = try options.load()
        let (tokenizer, formatter) = try ChatSetup.formatter(for: model, chatTemplate: chatTemplate, command: "serve")

        var configuration = ServerConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.apiKey = apiKey ?? environment("BITNET_API_KEY")
        configuration.maxConnections = max(64, parallel + maxQueue + 16)
        configuration.requestTimeout = timeout
        configuration.writeTimeout = timeout
        configuration.maxBodyBytes = maxBody

        let name = path.split(separator: "/").last.map(String.init) ?? path
        let scheduling = BatchScheduler.Configuration(parallel: parallel, contextLength: model.defaultContextLength,
                                                      maxQueue: maxQueue, stepTokenBudget: stepTokens)
        let service = try CompletionService(model: model, tokenizer: tokenizer, formatter: formatter, modelName: name,
                                            scheduling: scheduling)
        let server = BitNetServer(service: service, configuration: configuration) { line in note(line) }
        do {
            try server.start()
        } catch {
            // Address in use, unknown host, permission denied: not a usage error.
            note("error: \((error as? ServerError)?.message ?? "\(error)")")
            throw ExitCode(1)
        }
        ServeSignal.install()
        let key = configuration.apiKey == nil ? "" : ", API key required"
        print("listening on \(server.url) (model \(name), ctx \(service.contextLength)\(parallel > 1 ? " per slot, \(parallel) slots" : "")\(key))")
        fflush(nil)
        note("loaded in \((loadSeconds * 100).rounded() / 100) s; \(model.pool.threads) threads, \(model.kernels.isa); "
             + "Ctrl-C stops")
        try server.run(shouldStop: { ServeSignal.isSet })
        note("stopped")
    }

    private func environment(_ name: String) -> String? {
        guard let value = getenv(name), value.pointee != 0 else { return nil }
        return String(decoding: UnsafeRawBufferPointer(start: value, count: strlen(value)), as: UTF8.self)
    }
}

/// SIGINT/SIGTERM: a flag the accept loop polls; a second signal exits at once.
/// The handler only stores to a preallocated word (async-signal-safe) or calls
/// `_exit`. SIGPIPE is ignored: a client that hangs up must not kill the server
/// (sends also pass MSG_NOSIGNAL / SO_NOSIGPIPE).
private enum ServeSignal {
    nonisolated(unsafe) static let flag: UnsafeMutablePointer<sig_atomic_t> = {
        let p = UnsafeMutablePointer<sig_atomic_t>.allocate(capacity: 1)
        p.initialize(to: 0)
        return p
    }()

    static var isSet: Bool { flag.pointee != 0 }

    static func install() {
        _ = flag  // allocate before any handler can run
        signal(SIGPIPE, SIG_IGN)
        for number in [SIGINT, SIGTERM] {
            var action = sigaction()
            let handler: @convention(c) (Int32) -> Void = { _ in
                if ServeSignal.flag.pointee != 0 { _exit(130) }
                ServeSignal.flag.pointee = 1
            }
            #if canImport(Glibc)
            action.__sigaction_handler.sa_handler = handler
            #else
            action.__sigaction_u.__sa_handler = handler
            #endif
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            sigaction(number, &action, nil)
        }
    }
}
