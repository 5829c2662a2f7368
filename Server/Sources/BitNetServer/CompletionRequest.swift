import BitNet
import BitNetJSON

/// A validated `POST /v1/completions` or `POST /v1/chat/completions` body.
/// Parsing checks every field it uses (type and range) and refuses the OpenAI
/// options this engine cannot honour (n > 1, echo, suffix, tools)
/// instead of silently ignoring them; fields it does not know are ignored, as
/// clients send many.
public struct CompletionRequest: Sendable {
    public enum Kind: Sendable {
        case completion
        case chat
    }

    public enum Input: Sendable, Equatable {
        /// Completion prompt text (BOS added as the vocabulary asks).
        case text(String)
        /// Completion prompt as token ids, fed as they are.
        case tokens([Int32])
        /// Chat messages, rendered with the model's chat template.
        case messages([ChatMessage])
    }

    public var kind: Kind
    public var input: Input
    /// Most tokens to generate; nil: the default (16 for completions as in OpenAI's
    /// API, the rest of the context for chat).
    public var maxTokens: Int?
    public var sampling = SamplingParameters()
    /// Whether `seed` was given (otherwise a fresh random seed is used per request).
    public var hasSeed = false
    /// Strings that end the text; the text returned stops before the first one.
    public var stop: [String] = []
    public var stream = false
    /// `stream_options.include_usage`: a last chunk with `usage` before `[DONE]`.
    public var includeUsage = false
    /// The `model` field as sent (any name is accepted: the server has one model).
    public var model: String?
    /// Log-probabilities asked for: nil for none, else how many alternatives per token
    /// (completions: `logprobs: k`; chat: `logprobs: true` with `top_logprobs: k`).
    public var logprobs: Int?

    public init(kind: Kind, input: Input) {
        self.kind = kind
        self.input = input
    }

    /// Most stop strings accepted (OpenAI allows 4).
    public static let maxStopStrings = 16
    public static let maxStopLength = 256

    public static func parse(body: [UInt8], kind: Kind) throws -> CompletionRequest {
        let fields = try RequestFields(body: body)
        var request = CompletionRequest(kind: kind, input: .text(""))
        request.model = try fields.string("model")

        switch kind {
        case .completion:
            request.input = try parsePrompt(fields)
        case .chat:
            request.input = .messages(try parseMessages(fields))
        }

        let maxTokenKeys = kind == .chat ? ["max_tokens", "max_completion_tokens", "n_predict"] : ["max_tokens", "n_predict"]
        for key in maxTokenKeys {
            if let n = try fields.int(key, in: -1...Int(Int32.max), requirement: "an integer ≥ 0") {
                // -1 is llama.cpp's "no limit" for n_predict.
                if n < 0 {
                    guard key == "n_predict" else {
                        throw ServerError.invalidField(key, "an integer ≥ 0", got: fields.value(key))
                    }
                } else {
                    request.maxTokens = n
                }
                break
            }
        }

        var s = SamplingParameters()
        if let t = try fields.number("temperature", in: 0...100, requirement: "a number ≥ 0") { s.temperature = Float(t) }
        if let p = try fields.number("top_p", in: 0...1, requirement: "a number in 0...1") { s.topP = Float(p) }
        if let k = try fields.int("top_k", in: 0...Int(Int32.max), requirement: "an integer ≥ 0 (0 = off)") { s.topK = k }
        if let p = try fields.number("min_p", in: 0...1, requirement: "a number in 0...1") { s.minP = Float(p) }
        for key in ["repeat_penalty", "repetition_penalty"] {
            if let r = try fields.number(key, in: 1e-6...100, requirement: "a number > 0 (1 = off)") { s.repetitionPenalty = Float(r) }
        }
        if let p = try fields.number("presence_penalty", in: -100...100, requirement: "a number in -100...100") { s.presencePenalty = Float(p) }
        if let p = try fields.number("frequency_penalty", in: -100...100, requirement: "a number in -100...100") { s.frequencyPenalty = Float(p) }
        if let n = try fields.int("repeat_last_n", in: 0...1_000_000, requirement: "an integer ≥ 0") { s.penaltyWindow = n }
        if let seed = try fields.int("seed", in: Int.min...Int.max, requirement: "an integer") {
            s.seed = UInt64(bitPattern: Int64(seed))
            request.hasSeed = true
        }
        request.sampling = s

        if let stop = fields.value("stop") {
            switch stop {
            case .string(let text):
                request.stop = [text]
            case .array(let items):
                request.stop = try items.map { item in
                    guard let text = item.string else { throw ServerError.invalidField("stop", "a string or an array of strings", got: stop) }
                    return text
                }
            default:
                throw ServerError.invalidField("stop", "a string or an array of strings", got: stop)
            }
            guard request.stop.count <= maxStopStrings else {
                throw ServerError.invalidField("stop", "at most \(maxStopStrings) strings", got: stop)
            }
            if let bad = request.stop.first(where: { $0.isEmpty || $0.unicodeScalars.count > maxStopLength }) {
                throw ServerError.invalidField("stop", "non-empty strings of at most \(maxStopLength) characters",
                                               got: .string(bad))
            }
        }

        request.stream = try fields.bool("stream") ?? false
        if let options = fields.value("stream_options") {
            guard let object = options.object else {
                throw ServerError.invalidField("stream_options", "an object such as {\"include_usage\": true}", got: options)
            }
            let sub = RequestFields(object: object)
            do {
                request.includeUsage = try sub.bool("include_usage") ?? false
            } catch {
                throw ServerError.invalidField("stream_options.include_usage", "true or false", got: object["include_usage"])
            }
        }

        // OpenAI options this engine does not implement: refuse rather than ignore.
        if let n = fields.value("n"), RequestFields.integer(n) != 1 {
            throw ServerError.invalidField("n", "1 (one choice per request)", got: n)
        }
        if let b = fields.value("best_of"), RequestFields.integer(b) != 1 {
            throw ServerError.invalidField("best_of", "1", got: b)
        }
        request.logprobs = try parseLogprobs(fields, kind: kind)
        if let e = fields.value("echo"), e != .bool(false) {
            throw ServerError(status: 400, message: "field 'echo' is not supported by this server", param: "echo")
        }
        if fields.value("suffix") != nil {
            throw ServerError(status: 400, message: "field 'suffix' is not supported by this server", param: "suffix")
        }
        for key in ["tools", "functions"] {
            if let t = fields.value(key), t != .array([]) {
                throw ServerError(status: 400, message: "field '\(key)' is not supported by this server (no tool calling)", param: key)
            }
        }
        return request
    }

    /// OpenAI's two spellings: completions take `logprobs` as the number of alternatives
    /// (0 = the chosen token's only); chat takes `logprobs: true` and `top_logprobs` (0...20),
    /// which is refused without it, as OpenAI does.
    private static func parseLogprobs(_ fields: RequestFields, kind: Kind) throws -> Int? {
        let most = TokenLogprobs.maxTop
        switch kind {
        case .completion:
            if fields.value("logprobs") == .bool(false) { return nil }
            return try fields.int("logprobs", in: 0...most, requirement: "an integer in 0...\(most) (alternatives per token)")
        case .chat:
            let top = try fields.int("top_logprobs", in: 0...most, requirement: "an integer in 0...\(most)")
            guard try fields.bool("logprobs") == true else {
                if top != nil {
                    throw ServerError(status: 400, message: "field 'top_logprobs' needs \"logprobs\": true", param: "top_logprobs")
                }
                return nil
            }
            return top ?? 0
        }
    }

    private static func parsePrompt(_ fields: RequestFields) throws -> Input {
        guard let prompt = fields.value("prompt") else {
            throw ServerError(status: 400, message: "field 'prompt' is required (a string)", param: "prompt")
        }
        let requirement = "a string, an array of one string, or an array of token ids"
        switch prompt {
        case .string(let text):
            return .text(text)
        case .array(let items):
            if items.count == 1, let text = items[0].string { return .text(text) }
            if items.count > 1, items.allSatisfy({ $0.string != nil }) {
                throw ServerError.invalidField("prompt", "one prompt (this server answers one prompt per request)", got: prompt)
            }
            var ids: [Int32] = []
            for (i, item) in items.enumerated() {
                guard let id = RequestFields.integer(item), id >= 0, id <= Int(Int32.max) else {
                    throw ServerError.invalidField("prompt[\(i)]", "a token id (an integer ≥ 0)", got: item)
                }
                ids.append(Int32(id))
            }
            guard !ids.isEmpty else { throw ServerError.invalidField("prompt", requirement, got: prompt) }
            return .tokens(ids)
        default:
            throw ServerError.invalidField("prompt", requirement, got: prompt)
        }
    }

    private static func parseMessages(_ fields: RequestFields) throws -> [ChatMessage] {
        guard let value = fields.value("messages") else {
            throw ServerError(status: 400, message: "field 'messages' is required (an array of {\"role\", \"content\"})",
                              param: "messages")
        }
        guard let items = value.array, !items.isEmpty else {
            throw ServerError.invalidField("messages", "a non-empty array of {\"role\", \"content\"} objects", got: value)
        }
        return try items.enumerated().map { i, item in
            let field = "messages[\(i)]"
            guard let object = item.object else {
                throw ServerError.invalidField(field, "an object {\"role\", \"content\"}", got: item)
            }
            guard let roleValue = object["role"], let roleName = roleValue.string else {
                throw ServerError.invalidField("\(field).role", "one of \"system\", \"user\", \"assistant\"", got: object["role"] ?? .null)
            }
            let role: ChatMessage.Role
            switch roleName {
            case "system", "developer": role = .system
            case "user": role = .user
            case "assistant": role = .assistant
            default:
                throw ServerError.invalidField("\(field).role", "one of \"system\", \"user\", \"assistant\"", got: roleValue)
            }
            let content = try messageContent(object["content"] ?? .null, field: "\(field).content")
            return ChatMessage(role: role, content: content)
        }
    }

    /// A message's text: a string, or an array of `{"type": "text", "text": …}` parts (joined).
    private static func messageContent(_ value: JSONValue, field: String) throws -> String {
        switch value {
        case .string(let text):
            return text
        case .array(let parts):
            var text = ""
            for (i, part) in parts.enumerated() {
                guard let object = part.object, object["type"]?.string == "text", let piece = object["text"]?.string else {
                    throw ServerError.invalidField("\(field)[\(i)]", "a text part {\"type\": \"text\", \"text\": …} "
                                                   + "(this model reads text only)", got: part)
                }
                text += piece
            }
            return text
        default:
            throw ServerError.invalidField(field, "a string or an array of text parts", got: value)
        }
    }
}
