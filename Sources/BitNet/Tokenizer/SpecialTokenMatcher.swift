/// Finds special tokens written out in input text, before any pre-tokenization,
/// the way Hugging Face splits added tokens (leftmost, then longest):
/// - user-defined tokens are always matched (HF's non-special added tokens);
/// - control and unknown tokens (`<|eot_id|>`, `<s>`) only when the caller asks,
///   so ordinary text that happens to spell one is still encoded as text.
struct SpecialTokenMatcher: Sendable {
    enum Fragment {
        case text(Range<Int>)
        case token(Int32)
    }

    /// Node 0 is the root. Edge key: `node << 8 | byte`.
    private var edges: [Int: Int32] = [:]
    private var tokenAtNode: [Int32] = [-1]
    private var alwaysAtNode: [Bool] = [false]
    /// Whether some token starts with this byte (with: any token; always: an always-matched one).
    private var startsAny = [Bool](repeating: false, count: 256)
    private var startsAlways = [Bool](repeating: false, count: 256)
    private(set) var hasAlwaysMatched = false
    private(set) var isEmpty = true

    /// `always`: matched even when special parsing is off.
    mutating func add(_ bytes: [UInt8], id: Int32, always: Bool) {
        guard let first = bytes.first else { return }
        var node = 0
        for b in bytes {
            let key = node << 8 | Int(b)
            if let child = edges[key] {
                node = Int(child)
            } else {
                let child = tokenAtNode.count
                tokenAtNode.append(-1)
                alwaysAtNode.append(false)
                edges[key] = Int32(child)
                node = child
            }
        }
        guard tokenAtNode[node] < 0 else { return }  // first token with this text wins
        tokenAtNode[node] = id
        alwaysAtNode[node] = always
        startsAny[Int(first)] = true
        if always {
            startsAlways[Int(first)] = true
            hasAlwaysMatched = true
        }
        isEmpty = false
    }

    /// Calls `body` with the text runs and matched tokens of `bytes`, in order.
    func partition(_ bytes: UnsafeBufferPointer<UInt8>, parseSpecial: Bool, _ body: (Fragment) -> Void) {
        guard !bytes.isEmpty else { return }
        guard parseSpecial ? !isEmpty : hasAlwaysMatched else {
            body(.text(0..<bytes.count))
            return
        }
        let starts = parseSpecial ? startsAny : startsAlways
        var textStart = 0
        var i = 0
        while i < bytes.count {
            guard starts[Int(bytes[i])] else {
                i += 1
                continue
            }
            // Longest allowed token starting at i.
            var node = 0
            var j = i
            var matchEnd = -1
            var matchID: Int32 = -1
            while j < bytes.count, let child = edges[node << 8 | Int(bytes[j])] {
                node = Int(child)
                j += 1
                if tokenAtNode[node] >= 0, parseSpecial || alwaysAtNode[node] {
                    matchEnd = j
                    matchID = tokenAtNode[node]
                }
            }
            if matchEnd < 0 {
                i += 1
                continue
            }
            if textStart < i { body(.text(textStart..<i)) }
            body(.token(matchID))
            i = matchEnd
            textStart = i
        }
        if textStart < bytes.count { body(.text(textStart..<bytes.count)) }
    }
}
