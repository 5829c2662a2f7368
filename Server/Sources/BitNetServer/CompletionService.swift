import BitNet

/// The model behind the server: turns a ``CompletionRequest`` into prompt tokens
/// (chat messages through the model's ``ChatFormatter``) and generates them on a
/// ``BatchScheduler`` — `parallel` requests at once, each in a slot with its own
/// KV cache — applying stop tokens and stop strings on the caller's thread.
///
/// Prefix reuse: each slot keeps its cache between requests, and a request goes
/// to the free slot whose cached tokens share the longest prefix with its prompt
/// (a chat client resending the whole conversation), so a new chat turn costs its
/// own tokens, not the whole transcript's. Results do not depend on what was
/// cached or batched: positions are computed row by row (per-token int8
/// activations, exact integer dot products), so cached keys and values equal
/// recomputed ones — ServerTests compares with a cold run — and the sampler is
/// given the whole prompt as history either way.
public final class CompletionService: Sendable {
    public let model: BitNetModel
    public let tokenizer: Tokenizer
    public let formatter: ChatFormatter
    /// The model's name in responses and `/v1/models` (the file name).
    public let modelName: String
    /// Tokens that end a completion: EOS and the vocabulary's end-of-generation tokens.
    public let completionStopTokens: Set<Int32>
    /// Those plus the chat template's end of turn.
    public let chatStopTokens: Set<Int32>
    public let scheduler: BatchScheduler

    public init(model: BitNetModel, tokenizer: Tokenizer, formatter: ChatFormatter, modelName: String,
                scheduling: BatchScheduler.Configuration = BatchScheduler.Configuration()) throws {
        self.model = model
        self.tokenizer = tokenizer
        self.formatter = formatter
        self.modelName = modelName
        scheduler = try BatchScheduler(model: model, configuration: scheduling)
        var stops = tokenizer.endOfGenerationIDs
        if let eos = tokenizer.eosID { stops.insert(eos) }
        completionStopTokens = stops
        chatStopTokens = stops.union(formatter.stopTokens)
    }

    deinit { scheduler.close() }

    /// Context length in tokens.
    public var contextLength: Int { scheduler.slotContextLength }

    /// The prompt's token ids. Throws 400 for a prompt that is empty, holds ids
    /// outside the vocabulary, or does not fit the context (naming both lengths).
    public func promptTokens(for request: CompletionRequest) throws -> [Int32] {
        let ids: [Int32]
        let field: String
        switch request.input {
        case .text(let text):
            ids = tokenizer.encode(text)
            field = "prompt"
        case .tokens(let given):
            let vocabulary = model.config.vocabSize
            if let i = given.firstIndex(where: { Int($0) >= vocabulary }) {
                throw ServerError.invalidField("prompt[\(i)]", "a token id below the vocabulary size \(vocabulary)",
                                               got: .number(double: Double(given[i]), exact: Int(given[i])))
            }
            ids = given
            field = "prompt"
        case .messages(let messages):
            ids = formatter.tokens(for: messages, addGenerationPrompt: true)
            field = "messages"
        }
        guard !ids.isEmpty else {
            throw ServerError(status: 400, message: "field '\(field)' gives no tokens to start from", param: field)
        }
        guard ids.count <= contextLength else {
            throw ServerError(status: 400, message: "the prompt ('\(field)') is \(ids.count) tokens but the context holds "
                              + "\(contextLength) (shorten it, or start the server with a larger --ctx)", param: field)
        }
        return ids
    }

    /// A request accepted by the scheduler, whose events ``run(_:shouldContinue:onText:)`` reads.
    public struct Submission: Sendable {
        let request: CompletionRequest
        let job: ScheduledGeneration
        let stopTokens: Set<Int32>

        /// Frees the slot at the next step (no-op once finished).
        public func cancel() { job.cancel() }
    }

    /// Queues the completion of `prompt` (from ``promptTokens(for:)``). Throws 503 when
    /// every slot is busy and the queue is full (before any response is started).
    public func submit(_ request: CompletionRequest, prompt: [Int32]) throws -> Submission {
        let stopTokens = request.kind == .chat ? chatStopTokens : completionStopTokens
        let maxTokens = max(0, request.maxTokens ?? (request.kind == .completion ? 16 : contextLength))
        var sampling = request.sampling
        if !request.hasSeed { sampling.seed = UInt64.random(in: 0...UInt64.max) }
        let job = ScheduledGeneration(prompt: prompt, maxTokens: maxTokens, sampling: sampling, stopTokens: stopTokens,
                                      logprobs: request.logprobs)
        do {
            try scheduler.submit(job)
        } catch let error as SchedulerError {
            switch error {
            case .queueFull: throw ServerError.unavailable("the server is busy: \(error)")
            case .closed: throw ServerError.unavailable("the server is shutting down")
            case .promptTooLong, .emptyPrompt: throw ServerError.badRequest("\(error)")
            }
        }
        return Submission(request: request, job: job, stopTokens: stopTokens)
    }

    /// ``submit(_:prompt:)`` and ``run(_:shouldContinue:onText:)`` in one call.
    public func complete(_ request: CompletionRequest, prompt: [Int32], shouldContinue: () -> Bool = { true },
                         onText: (String, [LogprobEntry]) -> Bool = { _, _ in true }) throws -> CompletionOutcome {
        try run(submit(request, prompt: prompt), shouldContinue: shouldContinue, onText: onText)
    }

    /// Reads a submission's tokens as they come. `onText` receives the text as it
    /// becomes final (stop strings held back and cut) and returns false to stop;
    /// `shouldContinue` is asked at every token and ten times a second while waiting
    /// (false cancels: the slot is freed at the next step).
    ///
    /// With `logprobs` asked for, `onText` also gets the entries of the tokens whose
    /// text begins in the text handed out so far (the last ones may come with empty
    /// text at the end); a token whose text lies wholly after a stop string's cut is
    /// not reported, nor are stop tokens.
    public func run(_ submission: Submission, shouldContinue: () -> Bool = { true },
                    onText: (String, [LogprobEntry]) -> Bool = { _, _ in true }) throws -> CompletionOutcome {
        let (request, job, stopTokens) = (submission.request, submission.job, submission.stopTokens)
        defer { job.cancel() } // a thrown decoder error must not leave the slot generating
        var generated = ""
        var decoder = tokenizer.makeStreamingDecoder()
        var matcher = StopStringMatcher(stops: request.stop)
        var clientGone = false
        var consumed = 0 // tokens this side has seen (the scheduler may have sampled one more before a cancel)
        var stopTokenSeen = false
        var eventIndex = 0 // `.token` events read: the index of their logprobs
        var entries: [LogprobEntry] = [] // every consumed token's, when asked
        var released = 0 // entries handed to onText
        var decodedScalars = 0 // text the decoder has returned, before stop strings
        var generatedScalars = 0
        func emit(_ text: String, final: Bool = false) {
            guard !clientGone else { return }
            generated += text
            generatedScalars += text.unicodeScalars.count
            var end = released
            while end < entries.count, final || entries[end].textOffset < generatedScalars { end += 1 }
            guard !text.isEmpty || end > released else { return }
            let piece = Array(entries[released..<end])
            released = end
            if !onText(text, piece) { clientGone = true }
        }
        var ending: GenerationStats.StopReason = .cancelled
        events: while true {
            guard let event = job.next(timeout: 0.1) else {
                if !shouldContinue() { job.cancel() }
                continue
            }
            switch event {
            case .token(let token):
                eventIndex += 1
                if clientGone || matcher.isStopped || stopTokenSeen { continue } // sampled before our cancel arrived
                consumed += 1
                if stopTokens.contains(token) { stopTokenSeen = true; continue }
                if request.logprobs != nil, let logprobs = job.logprobs(at: eventIndex - 1) {
                    entries.append(LogprobEntry(logprobs, textOffset: decodedScalars, tokenizer: tokenizer))
                }
                let piece = try decoder.append(token)
                decodedScalars += piece.unicodeScalars.count
                emit(matcher.append(piece))
                if clientGone || matcher.isStopped || !shouldContinue() { job.cancel() }
            case .finished(let reason):
                ending = reason
                break events
            case .failed(let message):
                throw ServerError.internalError("generation failed: \(message)")
            }
        }
        var finish: CompletionOutcome.FinishReason
        if clientGone {
            finish = .cancelled
        } else if matcher.isStopped || stopTokenSeen {
            finish = .stop
        } else if ending == .cancelled {
            finish = .cancelled
        } else {
            finish = .length
        }
        // Bytes held back by the decoder and text held back for a possible stop
        // string are final now (unless a stop already cut the text).
        if finish != .cancelled, !matcher.isStopped {
            emit(matcher.append(decoder.finish()))
            // not cut by a stop string: every token's text is in (also one that decoded to nothing)
            emit(matcher.finish(), final: !matcher.isStopped)
            if matcher.isStopped { finish = .stop }
            if clientGone { finish = .cancelled }
        }
        var stats = job.stats
        stats.generatedTokens = consumed
        stats.stopReason = finish == .stop ? .stopToken : finish == .cancelled ? .cancelled : .maxTokens
        var outcome = CompletionOutcome(text: generated, finishReason: finish, promptTokens: job.prompt.count,
                                        cachedTokens: job.cachedTokens, stats: stats)
        if request.logprobs != nil { outcome.logprobs = Array(entries[..<released]) }
        return outcome
    }
}
