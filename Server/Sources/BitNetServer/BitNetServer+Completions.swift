import BitNet
import BitNetJSON
import Foundation
import Hummingbird
import Logging
import NIOCore

extension BitNetServer {
    /// `POST /v1/completions` and `/v1/chat/completions`.
    ///
    /// The body is parsed here (bounded by `maxBodyBytes`); then, if a place among
    /// `parallel + maxQueue` is free (else 503 at once), a thread of the request's
    /// own tokenizes the prompt, submits it to the scheduler and reads its tokens,
    /// sending text through a bounded ``GenerationPipe``. Errors up to admission
    /// (a prompt too long, a full queue) are answered with their status, streamed
    /// or not; after that a stream carries them as a last event.
    func completion(_ kind: CompletionRequest.Kind, request: Request, context: ServerContext) async throws -> Response {
        let start = ContinuousClock.now
        let completion = try CompletionRequest.parse(body: try await body(of: request), kind: kind)
        guard !shutdown.isStopping else { throw ServerError.unavailable("the server is shutting down") }
        guard admission.tryAcquire() else {
            let s = service.scheduler.configuration
            throw ServerError.unavailable("the server is busy: all \(s.parallel) slots are busy and the queue of "
                                          + "\(s.maxQueue) is full; try again later")
        }
        let pipe = GenerationPipe(capacity: configuration.streamBuffer)
        let peer = peers.state(for: context.channel)
        var logger = context.logger
        logger[metadataKey: "route"] = "\(kind == .chat ? "chat_completions" : "completions")"
        startGeneration(completion, pipe: pipe, peer: peer, start: start, logger: logger)

        // The first event says whether the request was admitted.
        switch await pipe.next() {
        case .admitted:
            break
        case .failed(let error):
            throw error
        case .text, .done, .probe, .none:
            throw ServerError.internalError("the generation ended before it was admitted")
        }
        let response = OpenAIResponse(kind: kind, model: service.modelName)
        if completion.stream {
            return streamResponse(completion, response: response, pipe: pipe, logger: logger, start: start)
        }
        var text = ""
        while let event = await pipe.next() {
            switch event {
            case .admitted:
                continue
            case .probe:
                return probingResponse(response, pipe: pipe)
            case .text(let piece, _):
                text += piece
            case .done(let outcome):
                if outcome.finishReason == .cancelled {
                    if shutdown.isExpired { throw ServerError.unavailable("the server is shutting down") }
                    // The client is gone: nobody reads this.
                    throw ServerError(status: 499, message: "client closed the request")
                }
                return .json(response.complete(outcome))
            case .failed(let error):
                throw error
            }
        }
        _ = text
        // The task was cancelled (Hummingbird ends a request whose connection closed).
        throw ServerError(status: 499, message: "client closed the request")
    }

    /// The generation thread of one admitted request.
    private func startGeneration(_ completion: CompletionRequest, pipe: GenerationPipe, peer: PeerState?,
                                 start: ContinuousClock.Instant, logger: Logger) {
        let (service, shutdown, admission, metrics) = (self.service, self.shutdown, self.admission, self.metrics)
        // A non-streamed request writes nothing until it is done, so the client's FIN is
        // all it sees (see PeerState): a client that half-closed and still reads, or one that
        // is gone. It then asks the response side to write a byte every 0.5 s (.probe): to a
        // gone client the second write fails, which cancels the generation. A stream notices
        // on its next write anyway.
        let probeOnInputClose = !completion.stream
        BlockingThread.start(name: "bitnet-request") { [self] in
            defer {
                pipe.finish()
                admission.release()
            }
            let submission: CompletionService.Submission
            do {
                let prompt = try service.promptTokens(for: completion)
                submission = try service.submit(completion, prompt: prompt)
                guard pipe.send(.admitted(promptTokens: prompt.count)) else {
                    submission.cancel()
                    return
                }
            } catch {
                pipe.send(.failed(error as? ServerError ?? ServerError.badRequest("\(error)")))
                return
            }
            defer { submission.cancel() }
            var last: ContinuousClock.Instant?
            var lastProbe: ContinuousClock.Instant?
            let shouldContinue = {
                if pipe.isConsumerGone || shutdown.isExpired { return false }
                if probeOnInputClose, peer?.isInputClosed ?? false {
                    let now = ContinuousClock.now
                    if lastProbe.map({ now - $0 >= .milliseconds(500) }) ?? true {
                        lastProbe = now
                        return pipe.send(.probe)
                    }
                }
                return true
            }
            do {
                let outcome = try service.run(submission, shouldContinue: shouldContinue) { text, logprobs in
                    let now = ContinuousClock.now
                    if text.isEmpty {
                        // the last tokens' logprobs, after the text: no new token
                    } else if let last {
                        metrics.interTokenLatency.recordNanoseconds(Int64((now - last).nanoseconds))
                    } else {
                        metrics.timeToFirstToken.recordNanoseconds(Int64((now - start).nanoseconds))
                    }
                    if !text.isEmpty { last = now }
                    return pipe.send(.text(text, logprobs))
                }
                metrics.completed(outcome)
                let status: Int
                if outcome.finishReason == .cancelled {
                    metrics.cancelled(reason: shutdown.isExpired ? "server_stopping" : "client_gone")
                    status = completion.stream ? 200 : shutdown.isExpired ? 503 : 499
                } else {
                    status = 200
                }
                // Logged here, where every ending is seen (a gone client reads no more events).
                log(outcome, logger: logger, start: start, status: status)
                pipe.send(.done(outcome))
            } catch {
                pipe.send(.failed(error as? ServerError ?? ServerError.internalError("generation failed: \(error)")))
            }
        }
    }

    /// A non-streamed reply to a client that half-closed: 200 at once, then a space (JSON
    /// allows leading whitespace) at each probe while the generation runs, then the body.
    /// A client that is gone makes a write fail, which cancels its generation.
    private func probingResponse(_ response: OpenAIResponse, pipe: GenerationPipe) -> Response {
        let shutdown = self.shutdown
        return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: ResponseBody { writer in
            do {
                try await writer.write(ByteBuffer(string: " "))
                events: while let event = await pipe.next() {
                    switch event {
                    case .admitted, .text:
                        continue
                    case .probe:
                        try await writer.write(ByteBuffer(string: " "))
                    case .done(let outcome):
                        if outcome.finishReason == .cancelled {
                            let error = shutdown.isExpired ? ServerError.unavailable("the server is shutting down")
                                : ServerError(status: 499, message: "client closed the request")
                            try await writer.write(ByteBuffer(string: error.json))
                        } else {
                            try await writer.write(ByteBuffer(string: response.complete(outcome)))
                        }
                        break events
                    case .failed(let error):
                        try await writer.write(ByteBuffer(string: error.json))
                        break events
                    }
                }
                try await writer.finish(nil)
            } catch {
                pipe.cancel() // the client is gone: the generation stops at its next check
                throw error
            }
        })
    }

    private func streamResponse(_ completion: CompletionRequest, response: OpenAIResponse, pipe: GenerationPipe,
                                logger: Logger, start: ContinuousClock.Instant) -> Response {
        let headers: HTTPFields = [.contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-cache"]
        let shutdown = self.shutdown
        return Response(status: .ok, headers: headers, body: ResponseBody { [self] writer in
            func send(_ json: String) async throws {
                try await writer.write(ByteBuffer(string: "data: " + json + "\n\n"))
            }
            do {
                if response.kind == .chat { try await send(response.chunk(text: "", role: true)) }
                events: while let event = await pipe.next() {
                    switch event {
                    case .admitted, .probe:
                        continue
                    case .text(let text, let logprobs):
                        try await send(response.chunk(text: text, logprobs: completion.logprobs == nil ? nil : logprobs))
                    case .done(let outcome):
                        if outcome.finishReason == .cancelled {
                            // Only the server stopping gets here with a client still reading.
                            try await send(ServerError.unavailable("the server is shutting down").json)
                            break events
                        }
                        try await send(response.finalChunk(outcome))
                        if completion.includeUsage { try await send(response.usageChunk(outcome)) }
                        try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                    case .failed(let error):
                        logger.error("generation failed", metadata: ["error": "\(error.message)"])
                        try await send(error.json)
                        break events
                    }
                }
                _ = shutdown
                try await writer.finish(nil)
            } catch {
                // The write failed: the client is gone. The generation stops at its next token.
                pipe.cancel()
                logger.info("client disconnected during the stream", metadata: ["error": "\(error)"])
                throw error
            }
        })
    }

    /// One structured line per completion: tokens, timings and how it ended.
    func log(_ outcome: CompletionOutcome, logger: Logger, start: ContinuousClock.Instant, status: Int) {
        let end: String
        switch outcome.finishReason {
        case .cancelled: end = shutdown.isExpired ? "cancelled: server stopping" : "client disconnected"
        default: end = outcome.openAIFinishReason
        }
        logger.info("completion \(end)", metadata: [
            "status": "\(status)",
            "prompt_tokens": "\(outcome.promptTokens)",
            "cached_tokens": "\(outcome.cachedTokens)",
            "generated_tokens": "\(outcome.completionTokens)",
            "prompt_ms": "\((outcome.stats.promptSeconds * 1e6).rounded() / 1e3)",
            "generate_ms": "\((outcome.stats.generateSeconds * 1e6).rounded() / 1e3)",
            "total_ms": "\((ContinuousClock.now - start).milliseconds)",
            "finish": "\(end)",
        ])
    }

    // MARK: - Tokenizer endpoints (llama-server's shapes)

    /// `POST /tokenize` `{"content": "…", "add_special": false, "with_pieces": false}` →
    /// `{"tokens": [ids]}`, or with pieces `{"tokens": [{"id": 1, "piece": "…"}]}`.
    func tokenize(request: Request) async throws -> Response {
        let fields = try RequestFields(body: try await body(of: request))
        guard let content = try fields.string("content") else {
            throw ServerError(status: 400, message: "field 'content' is required (a string)", param: "content")
        }
        let addSpecial = try fields.bool("add_special") ?? false
        let parseSpecial = try fields.bool("parse_special") ?? true
        let withPieces = try fields.bool("with_pieces") ?? false
        let tokenizer = service.tokenizer
        let text = try await blocking {
            let ids = tokenizer.encode(content, addSpecial: addSpecial, parseSpecial: parseSpecial)
            var w = JSONWriter()
            w.object { o in
                o.array("tokens") { a in
                    for id in ids {
                        if withPieces {
                            a.object { t in
                                t.field("id", Int(id))
                                t.key("piece")
                                t.string((try? tokenizer.decode([id], renderSpecial: true)) ?? "")
                            }
                        } else {
                            a.int(Int(id))
                        }
                    }
                }
            }
            return w.text
        }
        return .json(text)
    }

    /// `POST /detokenize` `{"tokens": [ids]}` → `{"content": "…"}`.
    func detokenize(request: Request) async throws -> Response {
        let fields = try RequestFields(body: try await body(of: request))
        guard let value = fields.value("tokens") else {
            throw ServerError(status: 400, message: "field 'tokens' is required (an array of token ids)", param: "tokens")
        }
        guard let items = value.array else {
            throw ServerError.invalidField("tokens", "an array of token ids", got: value)
        }
        let vocabulary = service.tokenizer.vocabularySize
        var ids: [Int32] = []
        for (i, item) in items.enumerated() {
            guard let id = RequestFields.integer(item), id >= 0, id < vocabulary else {
                throw ServerError.invalidField("tokens[\(i)]", "a token id in 0..<\(vocabulary)", got: item)
            }
            ids.append(Int32(id))
        }
        let tokenizer = service.tokenizer
        let tokens = ids
        let text = try await blocking { () throws -> String in
            var w = JSONWriter()
            w.object { o in
                o.key("content")
                o.string((try? tokenizer.decode(tokens)) ?? "")
            }
            return w.text
        }
        return .json(text)
    }

    /// Tokenizer work on a thread of its own, counted against the same admission
    /// limit as generations (503 when all places are taken).
    private func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        guard admission.tryAcquire() else { throw ServerError.unavailable("the server is busy; try again later") }
        let admission = self.admission
        return try await BlockingThread.run(name: "bitnet-tokenize") {
            defer { admission.release() }
            return try body()
        }
    }
}

extension Duration {
    var nanoseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1e9 + Double(attoseconds) / 1e9
    }
}
