/// Cuts generated text at the first stop string without ever letting part of one
/// out: text that could still turn into a stop string (a suffix that is a prefix
/// of one) is held back until the next piece decides. Works on Unicode scalars,
/// the units the streaming decoder emits whole.
public struct StopStringMatcher: Sendable {
    public let stops: [[Unicode.Scalar]]
    private var pending: [Unicode.Scalar] = []
    public private(set) var isStopped = false

    public init(stops: [String]) {
        self.stops = stops.map { Array($0.unicodeScalars) }.filter { !$0.isEmpty }
    }

    /// Adds generated text; returns what may be shown now. After a stop string
    /// appears, ``isStopped`` is true and the text before it is the last returned.
    public mutating func append(_ text: String) -> String {
        guard !isStopped else { return "" }
        if stops.isEmpty { return text }
        pending += text.unicodeScalars
        if let cut = firstMatch() {
            isStopped = true
            let out = String(String.UnicodeScalarView(pending[..<cut]))
            pending.removeAll()
            return out
        }
        let keep = heldBackCount()
        let out = String(String.UnicodeScalarView(pending[..<(pending.count - keep)]))
        pending.removeFirst(pending.count - keep)
        return out
    }

    /// The end of generation: what was held back was not a stop string after all.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return isStopped ? "" : String(String.UnicodeScalarView(pending))
    }

    /// Start of the earliest complete stop string in `pending`.
    private func firstMatch() -> Int? {
        var best: Int? = nil
        for stop in stops where stop.count <= pending.count {
            var start = 0
            while start + stop.count <= pending.count, start < (best ?? Int.max) {
                if pending[start] == stop[0], pending[start..<(start + stop.count)].elementsEqual(stop) {
                    best = start
                    break
                }
                start += 1
            }
        }
        return best
    }

    /// Length of the longest suffix of `pending` that begins some stop string.
    private func heldBackCount() -> Int {
        var longest = 0
        for stop in stops {
            var length = min(stop.count - 1, pending.count)
            while length > longest {
                if pending[(pending.count - length)...].elementsEqual(stop[..<length]) {
                    longest = length
                    break
                }
                length -= 1
            }
        }
        return longest
    }
}
