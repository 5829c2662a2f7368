/// One sequence's part of a forward step (``BitNetModel/step(_:)``): the new
/// tokens of a session — a whole prompt, a chunk of one, or the one token a
/// decoding sequence sampled last — and which rows of logits it wants back.
public struct SequenceInput {
    public enum LogitRows: Sendable {
        /// None (a prompt chunk that is not the prompt's end): the head is skipped.
        case none
        /// The last token's (vocab floats): what sampling needs.
        case last
        /// Every token's (tokens.count × vocab, row-major): perplexity.
        case all
    }

    public var session: Session
    public var tokens: [Int32]
    public var logits: LogitRows

    public init(session: Session, tokens: [Int32], logits: LogitRows = .last) {
        self.session = session
        self.tokens = tokens
        self.logits = logits
    }
}
