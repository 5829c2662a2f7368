/// The model behind the server: turns a ``CompletionRequest`` into prompt tokens
/// (chat messages through the model's ``ChatFormatter``), generates with stop
/// tokens and stop strings, and keeps the KV cache between requests.
///
/// Prefix reuse: the service remembers which tokens the cache holds. A request
/// whose prompt starts with the same tokens (a chat client resending the whole
/// conversation, the same long instruction with another question) truncates the
/// cache to the longest common prefix and computes only the rest, so a new chat
/// turn costs its own tokens, not the whole transcript's. Results do not depend
/// on what was cached: positions are computed row by row (per-token int8
/// activations, exact integer dot products), so cached keys and values equal
/// recomputed ones — ServerTests compares with a cold run — and the sampler is
/// given the whole prompt as history either way (``Generator`` would see only
/// the fed part, so penalties would differ).
///
/// One request at a time: ``complete(_:prompt:shouldContinue:onText:)`` holds a
/// lock for the whole generation (``BitNetServer`` queues requests in front of it).
public final class CompletionService: @unchecked Sendable {
    public let model: BitNetModel
    public let tokenizer: Tokenizer
    public let formatter: ChatFormatter
    /// The model's name in responses and `/v1/models` (the file name).
    public let modelName: String
    /// Tokens that end a completion: EOS and the vocabulary's end-of-generation tokens.
    public let completionStopTokens: Set<Int32>
    /// Those plus the chat template's end of turn.
    public let chatStopTokens: Set<Int32>

    private let lock = ServerLock()
    /// The tokens whose keys and values are in `model.cache`, in order.
    private var cached: [Int32] = []

    public init(model: BitNetModel, tokenizer: Tokenizer, formatter: ChatFormatter, modelName: String) {
        self.model = model
        self.tokenizer = tokenizer
        self.formatter = formatter
        self.modelName = modelName
        var stops = tokenizer.endOfGenerationIDs
        if let eos = tokenizer.eosID { stops.insert(eos) }
        completionStopTokens = stops
        chatStopTokens = stops.union(formatter.stopTokens)
        model.cache.reset()
    }

    /// Context length in tokens.
    public var contextLength: Int { model.cache.capacity }

    /// The tokens the KV cache holds now.
    public var cachedTokens: [Int32] { lock.withLock { cached } }

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

    /// Generates the completion of `prompt` (from ``promptTokens(for:)``).
    /// `onText` receives the text as it becomes final (stop strings held back and
    /// cut) and returns false to stop; `shouldContinue` is asked before each token.
    /// A failed forward pass throws and leaves an empty cache.
    public func complete(_ request: CompletionRequest, prompt: [Int32], shouldContinue: () -> Bool = { true },
                         onText: (String) -> Bool = { _ in true }) throws -> CompletionOutcome {
        try lock.withLock {
            try run(request, prompt: prompt, shouldContinue: shouldContinue, onText: onText)
        }
    }

    private func run(_ request: CompletionRequest, prompt: [Int32], shouldContinue: () -> Bool,
                     onText: (String) -> Bool) throws -> CompletionOutcome {
        let cache = model.cache
        guard !prompt.isEmpty else { throw ServerError.badRequest("the prompt gives no tokens") }
        guard prompt.count <= cache.capacity else {
            throw ServerError.badRequest("the prompt is \(prompt.count) tokens but the context holds \(cache.capacity)")
        }
        // Someone else (an embedder) used the model: what the cache holds is unknown.
        if cache.count != cached.count {
            cache.reset()
            cached = []
        }
        // Keep the longest common prefix, but feed at least one token: its logits
        // give the first generated token.
        var common = 0
        let limit = min(cached.count, prompt.count - 1)
        while common < limit, cached[common] == prompt[common] { common += 1 }
        cache.truncate(to: common)
        cached.removeLast(cached.count - common)

        var outcome = CompletionOutcome()
        outcome.promptTokens = prompt.count
        outcome.cachedTokens = common
        let stopTokens = request.kind == .chat ? chatStopTokens : completionStopTokens
        let maxTokens = max(0, request.maxTokens ?? (request.kind == .completion ? 16 : cache.capacity))
        var sampling = request.sampling
        if !request.hasSeed { sampling.seed = UInt64.random(in: 0...UInt64.max) }
        var sampler = Sampler(sampling)
        var decoder = tokenizer.makeStreamingDecoder()
        var matcher = StopStringMatcher(stops: request.stop)
        var history = prompt
        var stats = GenerationStats()

        do {
            let feed = Array(prompt[common...])
            stats.promptTokens = feed.count
            let promptStart = ServerClock.now()
            var logits = try model.forward(feed)
            cached += feed
            stats.promptSeconds = ServerClock.now() - promptStart

            let decodeStart = ServerClock.now()
            var finish = CompletionOutcome.FinishReason.length
            var clientGone = false
            func emit(_ text: String) {
                guard !text.isEmpty, !clientGone else { return }
                outcome.text += text
                if !onText(text) { clientGone = true }
            }
            while stats.generatedTokens < maxTokens {
                guard shouldContinue() else { finish = .cancelled; break }
                let token = sampler.sample(logits, history: history)
                stats.generatedTokens += 1
                if stopTokens.contains(token) { finish = .stop; break }
                emit(matcher.append(try decoder.append(token)))
                if clientGone { finish = .cancelled; break }
                if matcher.isStopped { finish = .stop; break }
                if stats.generatedTokens >= maxTokens || cache.count >= cache.capacity { break }
                history.append(token)
                logits = try model.forward([token])
                cached.append(token)
            }
            // Bytes held back by the decoder and text held back for a possible stop
            // string are final now (unless a stop already cut the text).
            if finish != .cancelled, !matcher.isStopped {
                emit(matcher.append(decoder.finish()))
                emit(matcher.finish())
                if matcher.isStopped { finish = .stop }
                if clientGone { finish = .cancelled }
            }
            stats.generateSeconds = ServerClock.now() - decodeStart
            stats.stopReason = finish == .stop ? .stopToken : finish == .cancelled ? .cancelled : .maxTokens
            outcome.finishReason = finish
            outcome.stats = stats
            return outcome
        } catch {
            // A failed forward pass leaves the cache in an unknown state.
            cache.reset()
            cached = []
            throw error
        }
    }
}
