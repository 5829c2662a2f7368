/// The token transcript of a conversation, kept turn by turn so a chat feeds the
/// model only what is new: the KV cache holds a prefix of `tokens`, and
/// ``pendingTokens(cached:)`` is what must still go in.
///
/// Replies are recorded as the ids the model generated (not re-tokenized text, which
/// could split differently), so the transcript always matches the cache.
public struct ChatConversation: Sendable {
    public let formatter: ChatFormatter
    public let systemPrompt: String?
    public private(set) var messages: [ChatMessage] = []
    /// Every id of the conversation so far: BOS, system message, turns and, after
    /// ``addUser(_:)``, the generation prompt.
    public private(set) var tokens: [Int32] = []

    public init(formatter: ChatFormatter, systemPrompt: String? = nil) {
        self.formatter = formatter
        self.systemPrompt = systemPrompt
        reset()
    }

    /// Back to the start: BOS and the system message only.
    public mutating func reset() {
        messages = []
        tokens = formatter.beginTokens
        if let systemPrompt {
            let message = ChatMessage.system(systemPrompt)
            messages.append(message)
            tokens += formatter.messageTokens(message)
        }
    }

    /// Appends a user message and the generation prompt; returns the ids added.
    @discardableResult
    public mutating func addUser(_ text: String) -> [Int32] {
        let message = ChatMessage.user(text)
        let added = formatter.continuationTokens(newMessages: [message], addGenerationPrompt: true)
        messages.append(message)
        tokens += added
        return added
    }

    /// Records the reply generated after the generation prompt: `generated` as the
    /// sampler produced it, where a final stop token (EOS, `<|eot_id|>`…) is dropped
    /// and the template's own end of turn is written instead. Returns the ids added.
    @discardableResult
    public mutating func addReply(generated: [Int32], text: String) -> [Int32] {
        var content = generated
        if let last = content.last, formatter.stopTokens.contains(last) { content.removeLast() }
        let added = formatter.closeReply(content: content)
        messages.append(.assistant(text))
        tokens += added
        return added
    }

    /// The ids after the first `cached` ones (those already in the KV cache), or
    /// nil when the cache holds more than the transcript, i.e. they went out of step.
    public func pendingTokens(cached: Int) -> [Int32]? {
        guard cached >= 0, cached <= tokens.count else { return nil }
        return Array(tokens[cached...])
    }
}
