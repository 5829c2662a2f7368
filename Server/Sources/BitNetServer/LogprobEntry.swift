import BitNet

/// One generated token's log-probabilities as the OpenAI responses show them: the
/// token's text and bytes, its log-probability, where its text starts in the
/// completion, and the most likely alternatives at its position.
///
/// The numbers are the model's distribution (log-softmax of the raw logits, before
/// penalties, temperature and filters): see ``BitNet/TokenLogprobs`` for why.
public struct LogprobEntry: Sendable, Equatable {
    public struct Alternative: Sendable, Equatable {
        /// The token's text; a token holding part of a UTF-8 character is written as
        /// `bytes:\xNN…` (as OpenAI does), its bytes are in `bytes` either way.
        public var token: String
        public var bytes: [UInt8]
        public var logprob: Float
    }

    public var chosen: Alternative
    /// Offset of the token's text in the completion text, in Unicode scalars (Python
    /// `str` indices); a token that only completes a character started by the one
    /// before shares its offset.
    public var textOffset: Int
    /// The most likely tokens at this position, most likely first.
    public var top: [Alternative]

    /// OpenAI writes -9999 for tokens the model rules out; JSON has no -∞.
    static let floor: Float = -9999

    init(_ logprobs: TokenLogprobs, textOffset: Int, tokenizer: Tokenizer) {
        func alternative(_ id: Int32, _ logprob: Float) -> Alternative {
            let bytes = (try? tokenizer.tokenBytes(id)) ?? []
            let text = String(decoding: bytes, as: UTF8.self)
            let token = Array(text.utf8) == bytes ? text : "bytes:" + bytes.map { "\\x" + Self.hex($0) }.joined()
            return Alternative(token: token, bytes: bytes, logprob: logprob.isNaN ? Self.floor : max(Self.floor, logprob))
        }
        chosen = alternative(logprobs.token, logprobs.logprob)
        self.textOffset = textOffset
        top = logprobs.top.map { alternative($0.token, $0.logprob) }
    }

    private static func hex(_ b: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(b >> 4)], digits[Int(b & 15)]])
    }

    /// A Float as JSON with its own shortest digits (-1.2345, not -1.2345000505447388).
    static func json(_ value: Float) -> Double { Double("\(value)") ?? Double(value) }
}
