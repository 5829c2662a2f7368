import ArgumentParser
import BitNet
import BitNetServer
import Foundation
import Logging

/// `bitnet-server` (also run as `bitnet serve`): loads a model and serves the
/// OpenAI-compatible API until SIGTERM/SIGINT, which shut it down gracefully.
@main
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bitnet-server",
        abstract: "Serve a model over HTTP with an OpenAI-compatible API.",
        discussion: """
            Endpoints: GET /health, GET /ready, GET /v1/models, POST /v1/completions, POST /v1/chat/completions \
            ("stream": true for Server-Sent Events), POST /tokenize, POST /detokenize, GET /metrics (Prometheus). \
            Up to --parallel requests generate at once, batched into the same forward steps (continuous batching); \
            up to --max-queue more wait for a slot, more get 503. The --ctx positions are split evenly across the \
            slots. Each slot keeps its KV cache between requests: a prompt that starts like an earlier one computes \
            only its new tokens. Prints "listening on http://HOST:PORT (…)" on stdout and one structured log line \
            per request on stderr. SIGTERM or Ctrl-C stops accepting and lets running requests finish for \
            --shutdown-grace seconds.
            """
    )

    @Option(name: [.customShort("m"), .customLong("model")],
            help: "Model file (GGUF). Default: $BITNET_MODEL, else the model shipped with bitnet next to this executable.")
    var modelPath: String?

    @Option(name: [.customShort("t"), .long], parsing: .unconditional, help: "Threads (default: every online core).")
    var threads: Int?

    @Option(parsing: .unconditional, help: "Context positions of all slots together (default: the model's, capped to fit memory).")
    var ctx: Int?

    @Option(help: "Output head: f16 (exact, default) or q8.")
    var head = "f16"

    @Option(help: "Decode kernel: auto, i2_s, tl1 or tl2.")
    var kernel = "auto"

    // f16 by default here, unlike the CLI's f32: a server's slots share one context budget, and
    // half the bytes per position is twice the context (llama-server's default cache type too);
    // attention at depth reads half the bytes, which a batched step feels most (README, Serve).
    @Option(name: .customLong("kv"), help: """
        KV cache precision: f16 (default: half the memory per position and half what attention reads; \
        the shipped model's held-out perplexity 138.1700 → 138.169) or f32 (logits exactly as bitnet generate's).
        """)
    var kvPrecision = "f16"

    @Option(help: "Address to listen on (0.0.0.0 or :: for every interface).")
    var host = "127.0.0.1"

    @Option(help: "TCP port (0: any free port; the one chosen is printed).")
    var port = 8080

    @Option(name: .customLong("api-key"), help: "Require 'Authorization: Bearer KEY' on every endpoint but /health and /ready (default: $BITNET_API_KEY, else none).")
    var apiKey: String?

    @Option(name: .customLong("max-queue"), help: "Requests that may wait for a free slot; more are answered 503.")
    var maxQueue = 8

    @Option(help: "Requests generating at once (slots), batched into the same steps; --ctx is split across them.")
    var parallel = 1

    @Option(name: .customLong("step-tokens"), help: "Most tokens per batched step: decoding slots take one each, prompts share the rest (while slots decode, only as many as keep a step within about 4x a decoding step on this host).")
    var stepTokens = 64

    @Option(name: .customLong("burst-tokens"), help: "Requests arriving while none decodes start decoding together once their prompts are done, up to this many prompt tokens (0: each as soon as its own prompt is done).")
    var burstTokens = 2048

    @Option(name: .customLong("chat-template"), help: "Chat format: bitnet, llama3, falcon3 or none (default: from the file).")
    var chatTemplate: String?

    @Option(help: "Seconds an idle or stalled connection is kept open.")
    var timeout: Double = 30

    @Option(name: .customLong("max-body"), help: "Largest request body in bytes (413 beyond).")
    var maxBody = 8 * 1024 * 1024

    @Option(name: .customLong("shutdown-grace"), help: "Seconds running requests get to finish after SIGTERM/SIGINT.")
    var shutdownGrace: Double = 10

    @Option(name: .customLong("log-level"), help: "trace, debug, info (default), notice, warning, error or critical.")
    var logLevel = "info"

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535 (0: any free port)") }
        guard (0...4096).contains(maxQueue) else { throw ValidationError("--max-queue must be in 0...4096") }
        guard (1...1024).contains(parallel) else { throw ValidationError("--parallel must be in 1...1024") }
        guard (1...65536).contains(stepTokens) else { throw ValidationError("--step-tokens must be in 1...65536") }
        guard (0...1_048_576).contains(burstTokens) else { throw ValidationError("--burst-tokens must be in 0...1048576") }
        guard timeout.isFinite, timeout > 0 else { throw ValidationError("--timeout must be a positive number of seconds") }
        guard shutdownGrace.isFinite, shutdownGrace >= 0 else { throw ValidationError("--shutdown-grace must be ≥ 0 seconds") }
        guard maxBody >= 1024 else { throw ValidationError("--max-body must be at least 1024 bytes") }
        if let threads, !(1...1024).contains(threads) { throw ValidationError("-t must be in 1...1024 (got \(threads))") }
        if let ctx, ctx < 2 { throw ValidationError("--ctx must be at least 2 (got \(ctx))") }
        if let apiKey, apiKey.isEmpty { throw ValidationError("--api-key must not be empty") }
        if let chatTemplate, ChatTemplate(name: chatTemplate) == nil {
            throw ValidationError("unknown --chat-template '\(chatTemplate)' (bitnet, llama3, falcon3 or none)")
        }
        guard BitNetModel.HeadPrecision(rawValue: head) != nil else { throw ValidationError("--head must be f16 or q8") }
        guard KernelSelection(name: kernel) != nil else { throw ValidationError("--kernel must be auto, i2_s, tl1 or tl2") }
        guard KVCache.Precision(rawValue: kvPrecision) != nil else { throw ValidationError("--kv must be f32 or f16") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = Logger.Level(rawValue: logLevel) ?? .info
            return handler
        }
        let logger = Logger(label: "bitnet-server")
        guard let path = modelPath ?? Self.defaultModel() else {
            throw ValidationError("no model given (-m FILE), $BITNET_MODEL is unset and the default model "
                                  + "\(Self.defaultModelName) was not found next to this executable")
        }
        let start = ContinuousClock.now
        let metrics = ServerMetrics() // the scheduler reports each step to it
        let service: CompletionService
        let model: BitNetModel
        do {
            let weights = try ModelWeights(path: path)
            model = try BitNetModel(weights: weights, contextLength: ctx, threads: threads,
                                    headPrecision: BitNetModel.HeadPrecision(rawValue: head) ?? .f16,
                                    kernel: KernelSelection(name: kernel) ?? .auto,
                                    kvPrecision: KVCache.Precision(rawValue: kvPrecision) ?? .f16)
            let tokenizer = try Tokenizer(gguf: weights.file)
            let formatter = try Self.formatter(model: model, tokenizer: tokenizer, chatTemplate: chatTemplate, logger: logger)
            let name = path.split(separator: "/").last.map(String.init) ?? path
            let scheduling = BatchScheduler.Configuration(parallel: parallel, contextLength: model.defaultContextLength,
                                                          maxQueue: maxQueue, stepTokenBudget: stepTokens,
                                                          burstPromptTokens: burstTokens, onStep: metrics.stepObserver)
            service = try CompletionService(model: model, tokenizer: tokenizer, formatter: formatter, modelName: name,
                                            scheduling: scheduling)
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }

        var configuration = ServerConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.apiKey = apiKey ?? ProcessInfo.processInfo.environment["BITNET_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        configuration.idleTimeout = timeout
        configuration.maxBodyBytes = maxBody
        configuration.shutdownGrace = shutdownGrace
        let server = BitNetServer(service: service, configuration: configuration, logger: logger, metrics: metrics)
        let loadSeconds = Double((ContinuousClock.now - start).components.seconds)
            + Double((ContinuousClock.now - start).components.attoseconds) / 1e18
        let (host, parallel) = (self.host, self.parallel)
        let key = configuration.apiKey == nil ? "" : ", API key required"
        let name = service.modelName
        do {
            try await server.run { port in
                let shown = host.contains(":") ? "[\(host)]" : host
                print("listening on http://\(shown):\(port) (model \(name), ctx \(service.contextLength)"
                      + "\(parallel > 1 ? " per slot, \(parallel) slots" : ""), kv \(model.defaultKVPrecision.rawValue)\(key))")
                fflush(nil)
                logger.info("ready", metadata: ["load_s": "\((loadSeconds * 100).rounded() / 100)",
                                                 "threads": "\(model.threads)", "isa": "\(model.kernels.isa)"])
            }
        } catch {
            // Address in use, unknown host, permission denied: not a usage error.
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
        logger.info("stopped")
    }

    static let defaultModelName = "bitnet-shakespeare-i2_s.gguf"

    /// $BITNET_MODEL, else the model SwiftPM copies beside the `bitnet` executable
    /// (this one sits next to it), else `../share/bitnet/`.
    static func defaultModel() -> String? {
        if let env = ProcessInfo.processInfo.environment["BITNET_MODEL"], !env.isEmpty { return env }
        let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
        let self_ = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            .map { URL(fileURLWithPath: $0).deletingLastPathComponent().path }
        for dir in [self_, exe].compactMap({ $0 }) {
            for candidate in ["\(dir)/bitnet_BitNetCLI.resources/\(defaultModelName)", "\(dir)/../share/bitnet/\(defaultModelName)"]
            where FileManager.default.isReadableFile(atPath: candidate) {
                return candidate
            }
        }
        return nil
    }

    /// `--chat-template`, else the template detected from the file; one the vocabulary
    /// cannot express falls back to plain completion (as `bitnet chat` does).
    static func formatter(model: BitNetModel, tokenizer: Tokenizer, chatTemplate: String?, logger: Logger) throws -> ChatFormatter {
        let template: ChatTemplate
        if let name = chatTemplate, let chosen = ChatTemplate(name: name) {
            template = chosen
            logger.info("chat template", metadata: ["template": "\(chosen.name)", "source": "--chat-template"])
        } else {
            let detection = ChatTemplate.detect(gguf: model.weights.file, tokenizer: tokenizer)
            template = detection.template
            logger.info("chat template", metadata: ["template": "\(template.name)", "source": "\(detection.reason)"])
        }
        do {
            return try template.formatter(tokenizer: tokenizer)
        } catch {
            logger.warning("\(error); using plain completion mode instead")
            return try ChatTemplate.none.formatter(tokenizer: tokenizer)
        }
    }
}
