/// The OpenAI-compatible HTTP API over one model:
///
/// - `GET /health` → `{"status":"ok"}` (no API key needed)
/// - `GET /v1/models` → the one model, named after its file
/// - `POST /v1/completions` → text completion of `prompt`
/// - `POST /v1/chat/completions` → the assistant's reply to `messages`, rendered
///   with the model's chat template
///
/// Both completion endpoints stream Server-Sent Events with `"stream": true`.
/// Requests are validated (400 naming the field) and tokenized on their own
/// connection thread, then pass a ``RequestGate`` to the model one at a time;
/// more than `maxQueue` waiting get 503. `/health` and `/v1/models` never wait.
///
/// ```swift
/// let service = CompletionService(model: model, tokenizer: tokenizer, formatter: formatter, modelName: "m.gguf")
/// let server = BitNetServer(service: service, configuration: configuration) { print($0) }
/// try server.run()   // or runInBackground(); stop() from any thread
/// ```
public final class BitNetServer: @unchecked Sendable {
    public let service: CompletionService
    public let configuration: ServerConfiguration
    public let http: HTTPServer
    public let gate: RequestGate
    private let started = ServerClock.unixTime()

    /// Breaks the cycle server → HTTPServer → handler → server.
    private final class Target: @unchecked Sendable {
        weak var server: BitNetServer?
    }

    public init(service: CompletionService, configuration: ServerConfiguration,
                log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.service = service
        self.configuration = configuration
        gate = RequestGate(maxWaiting: configuration.maxQueue)
        let target = Target()
        http = HTTPServer(configuration: configuration, log: log) { request, writer in
            guard let server = target.server else {
                writer.send(ServerError.unavailable("the server is shutting down").response)
                return
            }
            server.handle(request, writer)
        }
        target.server = self
    }

    /// The port listened on (after ``start()``).
    public var port: Int { http.port }
    public var url: String { http.url }

    @discardableResult
    public func start() throws -> Int { try http.start() }

    /// Serves until ``stop()`` or until `shouldStop` returns true (polled 10× a second).
    public func run(shouldStop: (() -> Bool)? = nil) throws {
        try http.run(shouldStop: { [self] in
            guard let shouldStop, shouldStop() else { return false }
            gate.close()
            return true
        })
    }

    public func runInBackground() throws { try http.runInBackground() }

    /// Stops accepting, turns queued requests away and ends running generations.
    public func stop() {
        gate.close()
        http.stop()
    }

    public func waitUntilStopped(timeout: Double = 10) { http.waitUntilStopped(timeout: timeout) }

    // MARK: - Routing

    enum Endpoint {
        case health, models, completions, chatCompletions

        var methods: [String] {
            switch self {
            case .health, .models: return ["GET", "HEAD"]
            case .completions, .chatCompletions: return ["POST"]
            }
        }
    }

    static func endpoint(_ path: String) -> Endpoint? {
        switch path {
        case "/health", "/v1/health": return .health
        case "/v1/models", "/models": return .models
        case "/v1/completions", "/completions": return .completions
        case "/v1/chat/completions", "/chat/completions": return .chatCompletions
        default: return nil
        }
    }

    static let endpointList = "GET /health, GET /v1/models, POST /v1/completions, POST /v1/chat/completions"

    func handle(_ request: HTTPRequest, _ writer: HTTPResponseWriter) {
        let endpoint = Self.endpoint(request.path)
        if let key = configuration.apiKey, endpoint != .health {
            if let failure = Self.checkAuthorization(request.header("authorization"), key: key) {
                writer.logDetail = failure.message
                writer.send(failure.response)
                return
            }
        }
        guard let endpoint else {
            let error = ServerError(status: 404, message: "no endpoint at '\(request.path)' (endpoints: \(Self.endpointList))",
                                    type: "not_found_error")
            writer.send(error.response)
            return
        }
        guard endpoint.methods.contains(request.method) else {
            let allowed = endpoint.methods.joined(separator: ", ")
            let error = ServerError(status: 405, message: "method \(request.method) is not allowed on \(request.path) (use \(allowed))")
            var response = error.response
            response.headers.append(("Allow", allowed))
            writer.send(response)
            return
        }
        switch endpoint {
        case .health:
            writer.send(.json("{\"status\":\"ok\"}"))
        case .models:
            writer.send(.json(OpenAIResponse.modelList(name: service.modelName, created: started,
                                                       contextLength: service.contextLength,
                                                       vocabularySize: service.model.config.vocabSize)))
        case .completions:
            serveCompletion(.completion, request, writer)
        case .chatCompletions:
            serveCompletion(.chat, request, writer)
        }
    }

    /// nil when `header` carries the key as `Bearer <key>`; otherwise the 401 to send.
    static func checkAuthorization(_ header: String?, key: String) -> ServerError? {
        guard let header else {
            return ServerError(status: 401, message: "missing API key: send the header 'Authorization: Bearer <key>'",
                               type: "authentication_error")
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", constantTimeEqual(String(parts[1]), key) else {
            return ServerError(status: 401, message: "invalid API key in the Authorization header", type: "authentication_error")
        }
        return nil
    }

    /// Compares without returning early, so timing does not reveal how much of a guess was right.
    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return difference == 0
    }

    // MARK: - Completions

    private func serveCompletion(_ kind: CompletionRequest.Kind, _ request: HTTPRequest, _ writer: HTTPResponseWriter) {
        let completion: CompletionRequest
        let prompt: [Int32]
        do {
            completion = try CompletionRequest.parse(body: request.body, kind: kind)
            prompt = try service.promptTokens(for: completion)
        } catch {
            let failure = error as? ServerError ?? ServerError.badRequest("\(error)")
            writer.logDetail = failure.message
            writer.send(failure.response)
            return
        }

        switch gate.enter() {
        case .admitted:
            break
        case .busy(let waiting):
            let failure = ServerError.unavailable("the server is busy: one request is generating and \(waiting) are waiting, "
                                                  + "the most the queue holds (--max-queue \(gate.maxWaiting)); try again later")
            writer.logDetail = "queue full"
            writer.send(failure.response)
            return
        case .closed:
            writer.send(ServerError.unavailable("the server is shutting down").response)
            return
        }
        defer { gate.leave() }
        let connection = writer.connection
        if connection.isPeerGone {
            writer.logDetail = "client disconnected while queued"
            writer.markClientGone()
            return
        }

        let response = OpenAIResponse(kind: kind, model: service.modelName)
        let shouldContinue: () -> Bool = { [http] in !http.isStopping && !connection.isPeerGone }
        if completion.stream {
            writer.beginStream()
            if kind == .chat { writer.writeChunk(Self.event(response.chunk(text: "", role: true))) }
            do {
                let outcome = try service.complete(completion, prompt: prompt, shouldContinue: shouldContinue) { text in
                    writer.writeChunk(Self.event(response.chunk(text: text)))
                }
                writer.logDetail = outcome.logSummary(stopping: http.isStopping)
                if outcome.finishReason == .cancelled {
                    if http.isStopping {
                        writer.writeChunk(Self.event(ServerError.unavailable("the server is shutting down").json))
                        writer.endStream()
                    }
                    return  // the client is gone: nothing to end
                }
                writer.writeChunk(Self.event(response.finalChunk(outcome)))
                if completion.includeUsage { writer.writeChunk(Self.event(response.usageChunk(outcome))) }
                writer.writeChunk("data: [DONE]\n\n")
                writer.endStream()
            } catch {
                let failure = error as? ServerError ?? ServerError.internalError("generation failed: \(error)")
                writer.logDetail = failure.message
                writer.writeChunk(Self.event(failure.json))
                writer.endStream()
            }
        } else {
            do {
                let outcome = try service.complete(completion, prompt: prompt, shouldContinue: shouldContinue)
                writer.logDetail = outcome.logSummary(stopping: http.isStopping)
                if outcome.finishReason == .cancelled {
                    if http.isStopping {
                        writer.send(ServerError.unavailable("the server is shutting down").response)
                    } else {
                        writer.markClientGone()
                    }
                    return
                }
                writer.send(.json(response.complete(outcome)))
            } catch {
                let failure = error as? ServerError ?? ServerError.internalError("generation failed: \(error)")
                writer.logDetail = failure.message
                writer.send(failure.response)
            }
        }
    }

    /// One Server-Sent Event.
    static func event(_ json: String) -> String { "data: " + json + "\n\n" }
}
