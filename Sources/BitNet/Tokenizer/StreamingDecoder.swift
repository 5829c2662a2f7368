/// Turns generated tokens into text one token at a time without ever printing half
/// a character: byte-level tokens often end inside a UTF-8 sequence (an emoji is
/// typically 2–3 tokens), so the bytes of an incomplete trailing sequence are held
/// back until the tokens that complete it arrive.
public struct StreamingDecoder: Sendable {
    public let tokenizer: Tokenizer
    public var renderSpecial: Bool
    private var pending: [UInt8] = []
    private var atStart = true

    public init(tokenizer: Tokenizer, renderSpecial: Bool = false) {
        self.tokenizer = tokenizer
        self.renderSpecial = renderSpecial
    }

    /// Bytes held back, waiting for the rest of a character.
    public var pendingByteCount: Int { pending.count }

    /// Adds one token and returns the text that became complete ("" if none).
    /// Bytes that can never become valid UTF-8 are returned as U+FFFD.
    public mutating func append(_ id: Int32) throws -> String {
        try tokenizer.appendPiece(id, to: &pending, atStart: &atStart, renderSpecial: renderSpecial)
        let complete = StreamingDecoder.completePrefixLength(pending)
        guard complete > 0 else { return "" }
        let text = String(decoding: pending[..<complete], as: UTF8.self)
        pending.removeFirst(complete)
        return text
    }

    /// Ends the stream: whatever is still held back comes out, broken bytes as U+FFFD.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Starts a new stream (the next piece counts as the first again).
    public mutating func reset() {
        pending.removeAll()
        atStart = true
    }

    /// Length of the prefix of `bytes` that does not end inside a UTF-8 sequence
    /// that could still be completed by later bytes.
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        let n = bytes.count
        var k = 1
        while k <= min(3, n) {
            let b = bytes[n - k]
            if b & 0xC0 == 0x80 {
                k += 1
                continue
            }
            let need: Int
            switch b {
            case 0xC2...0xDF: need = 2
            case 0xE0...0xEF: need = 3
            case 0xF0...0xF4: need = 4
            default: return n  // ASCII or a byte that never starts a sequence
            }
            guard k < need else { return n }  // the sequence is complete (or too long)
            // Hold back only what is still a valid prefix.
            if k >= 2 {
                let second = bytes[n - k + 1]
                let ok: Bool
                switch b {
                case 0xE0: ok = second >= 0xA0
                case 0xED: ok = second <= 0x9F
                case 0xF0: ok = second >= 0x90
                case 0xF4: ok = second <= 0x8F
                default: ok = true
                }
                if !ok { return n }
            }
            return n - k
        }
        return n
    }
}
