/// Accumulates the token ids of a rendered chat. The two ways of adding text
/// mirror the two reference behaviours:
/// - `piece`: tokenized on its own, as BitNet's and Meta's `ChatFormat` encode the
///   role header and the content separately and concatenate the id lists;
/// - `text`: joined with the neighbouring text and tokenized as one string, as
///   Hugging Face's `apply_chat_template` renders the whole conversation first.
/// Special tokens are appended by id, so message content is never scanned for
/// control-token text (a user typing "<|eot_id|>" gets that text, not the token).
struct ChatTokenBuilder {
    let tokenizer: Tokenizer
    private(set) var tokens: [Int32] = []
    private var pendingText = ""

    init(tokenizer: Tokenizer) {
        self.tokenizer = tokenizer
    }

    mutating func piece(_ s: String) {
        flush()
        tokens += encode(s)
    }

    mutating func text(_ s: String) {
        pendingText += s
    }

    mutating func token(_ id: Int32) {
        flush()
        tokens.append(id)
    }

    mutating func tokens(_ ids: [Int32]) {
        flush()
        tokens += ids
    }

    /// Tokenizes any joined text still waiting and returns every id.
    mutating func finish() -> [Int32] {
        flush()
        return tokens
    }

    private mutating func flush() {
        guard !pendingText.isEmpty else { return }
        tokens += encode(pendingText)
        pendingText = ""
    }

    private func encode(_ s: String) -> [Int32] {
        s.isEmpty ? [] : tokenizer.encode(s, addSpecial: false, parseSpecial: false)
    }
}
