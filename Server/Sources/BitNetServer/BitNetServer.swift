import BitNet
import BitNetJSON
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

/// The OpenAI-compatible HTTP API over one model, as a Hummingbird 2 application:
///
/// - `GET /health` → `{"status":"ok"}` (liveness; no API key needed)
/// - `GET /ready` → 200 when the model is loaded and a slot or queue place is free,
///   else 503 (readiness, for load balancers; no API key needed)
/// - `GET /v1/models` → the one model, named after its file
/// - `POST /v1/completions`, `POST /v1/chat/completions` (`"stream": true`: Server-Sent Events)
/// - `POST /tokenize`, `POST /detokenize` (llama-server's shapes)
/// - `GET /metrics` → Prometheus text
///
/// Hummingbird (SwiftNIO) does the HTTP: keep-alive and pipelining, HTTP/1.0
/// answered without chunked encoding, chunked request bodies, header limits while
/// reading, idle timeouts without a thread per connection, and backpressure on
/// writes. Generation blocks (the scheduler's events are waited for), so each
/// admitted request runs on a thread of its own — at most `parallel + maxQueue`
/// of them (``Admission``) — and its text reaches the response through a bounded
/// ``GenerationPipe``.
///
/// ```swift
/// let server = BitNetServer(service: service, configuration: configuration, logger: logger)
/// try await server.run { port in print("listening on \(port)") }   // SIGTERM/SIGINT: graceful
/// ```
public final class BitNetServer: Sendable {
    public let service: CompletionService
    public let configuration: ServerConfiguration
    public let logger: Logger
    let metrics: ServerMetrics
    let shutdown = ShutdownState()
    let admission: Admission
    let peers = PeerRegistry()
    private let started = Int(Date().timeIntervalSince1970)

    /// `metrics`: the one whose ``ServerMetrics/stepObserver`` the service's scheduler reports
    /// its steps to, if any (else step histograms stay empty).
    public init(service: CompletionService, configuration: ServerConfiguration, logger: Logger,
                metrics: ServerMetrics = ServerMetrics()) {
        self.service = service
        self.metrics = metrics
        self.configuration = configuration
        self.logger = logger
        let scheduling = service.scheduler.configuration
        admission = Admission(limit: scheduling.parallel + scheduling.maxQueue)
    }

    // MARK: - Running

    /// The application, unstarted. `onRunning` gets the port listened on.
    public func makeApplication(onRunning: @escaping @Sendable (Int) async -> Void = { _ in })
        -> some ApplicationProtocol {
        let router = Router(context: ServerContext.self)
        router.add(middleware: RequestLogMiddleware(server: self))
        router.add(middleware: AuthMiddleware(apiKey: configuration.apiKey))
        addRoutes(router)
        let peers = self.peers
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: [peers.makeHandler()],
            idleTimeout: .milliseconds(Int64(configuration.idleTimeout * 1000)),
            httpDecoderConfiguration: .init(maxHeaderFieldSize: configuration.maxHeaderBytes,
                                            maxHeaderListSize: configuration.maxHeaderBytes))
        return Application(
            router: router,
            server: .http1(configuration: http1),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port),
                                 serverName: "bitnet-server"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }

    /// A service group running the application: `signals` (SIGTERM, SIGINT) start a
    /// graceful shutdown — the listener closes, in-flight requests get
    /// `shutdownGrace` seconds, then their generations end — and a second signal
    /// within that time, or `grace + 5 s`, cancels what is left.
    public func makeServiceGroup(signals: [UnixSignal] = [.sigterm, .sigint],
                                 onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> ServiceGroup {
        var config = ServiceGroupConfiguration(
            services: [.init(service: GracefulApplication(server: self, application: makeApplication(onRunning: onRunning)))],
            gracefulShutdownSignals: signals, cancellationSignals: [], logger: logger)
        config.maximumGracefulShutdownDuration = .milliseconds(Int64((configuration.shutdownGrace + 5) * 1000))
        return ServiceGroup(configuration: config)
    }

    /// Serves until SIGTERM/SIGINT (graceful) — ``makeServiceGroup(signals:onRunning:)`` run.
    public func run(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        try await makeServiceGroup(onRunning: onRunning).run()
    }

    /// Called when graceful shutdown starts: readiness turns false at once; after the
    /// grace period the scheduler closes and every generation still running is cancelled.
    func beginShutdown() {
        logger.info("shutting down", metadata: ["grace_s": "\(configuration.shutdownGrace)"])
        let scheduler = service.scheduler
        shutdown.begin(grace: configuration.shutdownGrace) { scheduler.close() }
    }

    // MARK: - Routes

    static let endpointList = "GET /health, GET /ready, GET /v1/models, POST /v1/completions, "
        + "POST /v1/chat/completions, POST /tokenize, POST /detokenize, GET /metrics"

    /// Paths and their aliases (llama-server's and OpenAI's spellings), for routing and metrics labels.
    static let routes: [(paths: [String], methods: [HTTPRequest.Method], route: String)] = [
        (["/health", "/v1/health"], [.get, .head], "health"),
        (["/ready"], [.get, .head], "ready"),
        (["/v1/models", "/models"], [.get, .head], "models"),
        (["/v1/completions", "/completions"], [.post], "completions"),
        (["/v1/chat/completions", "/chat/completions"], [.post], "chat_completions"),
        (["/tokenize"], [.post], "tokenize"),
        (["/detokenize"], [.post], "detokenize"),
        (["/metrics"], [.get], "metrics"),
    ]

    static func route(of path: String) -> String {
        routes.first { $0.paths.contains(path) }?.route ?? "other"
    }

    /// The paths open without an API key (probes).
    static let publicRoutes: Set<String> = ["health", "ready"]

    private func addRoutes(_ router: Router<ServerContext>) {
        for (paths, methods, route) in Self.routes {
            for path in paths {
                let routerPath = RouterPath(path)
                for method in methods {
                    router.on(routerPath, method: method) { [self] request, context in
                        try await respond(route: route, request: request, context: context)
                    }
                }
                // Other methods get 405 with Allow (Hummingbird's router answers 404 for them).
                let allowed = methods.map(\.rawValue).joined(separator: ", ")
                for method in [HTTPRequest.Method.get, .post, .put, .delete, .patch, .options] where !methods.contains(method) {
                    router.on(routerPath, method: method) { request, _ -> Response in
                        var response = ServerError(status: 405, message: "method \(request.method.rawValue) is not allowed on "
                                                   + "\(request.uri.path) (use \(allowed))").response
                        response.headers[.allow] = allowed
                        return response
                    }
                }
            }
        }
    }

    private func respond(route: String, request: Request, context: ServerContext) async throws -> Response {
        switch route {
        case "health":
            return .json("{\"status\":\"ok\"}")
        case "ready":
            return ready()
        case "models":
            return .json(OpenAIResponse.modelList(name: service.modelName, created: started,
                                                  contextLength: service.contextLength,
                                                  vocabularySize: service.model.config.vocabSize))
        case "completions":
            return try await completion(.completion, request: request, context: context)
        case "chat_completions":
            return try await completion(.chat, request: request, context: context)
        case "tokenize":
            return try await tokenize(request: request)
        case "detokenize":
            return try await detokenize(request: request)
        case "metrics":
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            let text = metrics.render(service.scheduler.snapshot, connections: peers.connections)
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: text)))
        default:
            throw ServerError(status: 404, message: "no endpoint at '\(request.uri.path)'", type: "not_found_error")
        }
    }

    private func ready() -> Response {
        let s = service.scheduler.snapshot
        var w = JSONWriter()
        let free = s.activeSlots + s.waiting < s.slots + service.scheduler.configuration.maxQueue
        let status = shutdown.isStopping ? "stopping" : free ? "ready" : "busy"
        w.object { o in
            o.field("status", status)
            o.field("slots", s.slots)
            o.field("slots_active", s.activeSlots)
            o.field("queue_waiting", s.waiting)
        }
        return .json(w.text, status: status == "ready" ? 200 : 503)
    }

    /// The body, at most `maxBodyBytes` (413 otherwise; a too-large `Content-Length`
    /// is refused before anything is read).
    func body(of request: Request) async throws -> [UInt8] {
        let limit = configuration.maxBodyBytes
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            throw ServerError(status: 413, message: "the request body of \(declared) bytes is larger than the "
                              + "\(limit) bytes this server accepts", type: "invalid_request_error")
        }
        do {
            let buffer = try await request.body.collect(upTo: limit)
            return Array(buffer: buffer)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw ServerError(status: 413, message: "the request body is larger than the \(limit) bytes this server accepts")
        }
    }
}

// MARK: - Pieces of the application

/// The request context: Hummingbird's core storage plus the connection, for its ``PeerState``.
struct ServerContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// The body is collected with the server's own limit (``BitNetServer/body(of:)``).
    var maxUploadSize: Int { Int.max }
}

/// `Authorization: Bearer <key>` on every route but the probes. A middleware runs
/// before the handler touches the body, so a request without the key is refused
/// without reading (let alone parsing) what it sends.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = ServerContext
    let apiKey: String?

    func handle(_ request: Request, context: ServerContext,
                next: (Request, ServerContext) async throws -> Response) async throws -> Response {
        guard let apiKey, !BitNetServer.publicRoutes.contains(BitNetServer.route(of: request.uri.path)) else {
            return try await next(request, context)
        }
        if let failure = Self.check(request.headers[.authorization], key: apiKey) { return failure.response }
        return try await next(request, context)
    }

    /// nil when `header` carries the key as `Bearer <key>`; otherwise the 401 to send.
    static func check(_ header: String?, key: String) -> ServerError? {
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
}

/// Outermost: turns errors into OpenAI-shaped responses (a 404 names the endpoints),
/// counts every request by route and status, and logs the ones that are not
/// completions (those log their own line with tokens and timings when they end).
struct RequestLogMiddleware: RouterMiddleware {
    typealias Context = ServerContext
    let server: BitNetServer

    func handle(_ request: Request, context: ServerContext,
                next: (Request, ServerContext) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let route = BitNetServer.route(of: request.uri.path)
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as ServerError {
            response = error.response
        } catch let error as HTTPError where error.status == .notFound {
            response = ServerError(status: 404, message: "no endpoint at '\(request.uri.path)' (endpoints: "
                                   + "\(BitNetServer.endpointList))", type: "not_found_error").response
        } catch let error as HTTPError {
            response = ServerError(status: Int(error.status.code), message: error.body ?? error.status.reasonPhrase).response
        } catch {
            response = ServerError.internalError("\(error)").response
        }
        let status = Int(response.status.code)
        server.metrics.request(route: route, status: status)
        if route != "completions" && route != "chat_completions" || status != 200 {
            let elapsed = ContinuousClock.now - start
            var logger = context.logger
            logger[metadataKey: "route"] = "\(route)"
            logger.info("\(request.method) \(request.uri.path) \(status)", metadata: [
                "status": "\(status)", "ms": "\(elapsed.milliseconds)",
            ])
        }
        return response
    }
}

/// Runs the application with the grace period of ``BitNetServer/beginShutdown()``:
/// Hummingbird sees the same graceful shutdown (it stops accepting and waits for
/// in-flight requests), and this handler starts the clock that ends them.
struct GracefulApplication<App: ApplicationProtocol>: Service {
    let server: BitNetServer
    let application: App

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await application.run()
        } onGracefulShutdown: {
            server.beginShutdown()
        }
    }
}

extension Response {
    static func json(_ text: String, status: Int = 200) -> Response {
        Response(status: .init(code: status), headers: [.contentType: JSONResponse.contentType],
                 body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

enum JSONResponse {
    static let contentType = "application/json; charset=utf-8"
}

extension Duration {
    var milliseconds: Double {
        let (seconds, attoseconds) = components
        return ((Double(seconds) * 1000 + Double(attoseconds) / 1e15) * 1000).rounded() / 1000
    }
}
