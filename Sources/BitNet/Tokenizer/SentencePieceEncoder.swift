/// SentencePiece BPE (`tokenizer.ggml.model = llama`), with the semantics of
/// llama.cpp's `llm_tokenizer_spm` and SentencePiece's `bpe_model.cc`: spaces
/// become "▁" (plus one in front when the dummy prefix applies), the text starts
/// as one symbol per UTF-8 character, and the adjacent pair whose concatenation
/// is a piece with the highest score is merged first (leftmost among equal
/// scores) until no pair is a piece. A final symbol that is not a piece is
/// spelled with byte-fallback tokens `<0xNN>`.
struct SentencePieceEncoder: Sendable {
    /// Pieces that may result from merging: normal, user-defined and unused tokens
    /// (SentencePiece never produces control, unknown or byte pieces by merging).
    let pieces: ByteStringTable
    let scores: [Float]
    /// `<0xNN>` token of each byte; -1 where the vocabulary has none.
    let byteTokens: [Int32]
    let unknownID: Int32?

    fileprivate struct Bigram {
        var score: Float
        var left: Int32
        var right: Int32
        var size: Int32

        /// Pops first: higher score, then the leftmost.
        @inline(__always)
        func before(_ other: Bigram) -> Bool {
            score > other.score || (score == other.score && left < other.left)
        }
    }

    /// True when no piece has a "▁" right after another character: then no merge
    /// can reach across the start of a word ("▁" after a non-"▁"), so words can be
    /// merged separately and cached with the same result as merging the whole text.
    private(set) var splitsAtWordStarts: Bool

    init(pieces: ByteStringTable, pieceTexts: [[UInt8]], scores: [Float], byteTokens: [Int32], unknownID: Int32?) {
        self.pieces = pieces
        self.scores = scores
        self.byteTokens = byteTokens
        self.unknownID = unknownID
        splitsAtWordStarts = !pieceTexts.contains { piece in
            var i = 1
            while i + 2 < piece.count {
                if piece[i] == 0xE2, piece[i + 1] == 0x96, piece[i + 2] == 0x81 {
                    let afterSpace = i >= 3 && piece[i - 3] == 0xE2 && piece[i - 2] == 0x96 && piece[i - 1] == 0x81
                    if !afterSpace { return true }
                }
                i += 1
            }
            return false
        }
    }

    /// The same encoder merging whole texts (to test that splitting changes nothing).
    func mergingWholeTexts() -> SentencePieceEncoder {
        var copy = self
        copy.splitsAtWordStarts = false
        return copy
    }

    /// Words cached per encode call; cleared when it grows past this many ids.
    static let cacheLimit = 1 << 20

    struct Scratch {
        var text: [UInt8] = []
        var start: [Int32] = []
        var length: [Int32] = []
        var prev: [Int32] = []
        var next: [Int32] = []
        fileprivate var heap: [Bigram] = []
        var cache = ByteStringTable()
        var cacheSpans: [UInt64] = []
        var cacheIDs: [Int32] = []
    }

    /// Encodes a run of plain text; `addPrefix` puts the dummy "▁" in front.
    func encode(_ fragment: UnsafeBufferPointer<UInt8>, addPrefix: Bool,
                into out: inout [Int32], scratch: inout Scratch) {
        var text: [UInt8] = []
        swap(&text, &scratch.text)
        defer { swap(&text, &scratch.text) }
        text.removeAll(keepingCapacity: true)
        let space: [UInt8] = [0xE2, 0x96, 0x81]  // "▁"
        if addPrefix { text.append(contentsOf: space) }
        for b in fragment {
            if b == 0x20 { text.append(contentsOf: space) } else { text.append(b) }
        }
        guard !text.isEmpty else { return }

        text.withUnsafeBufferPointer { t in
            guard splitsAtWordStarts else {
                mergeWord(t, into: &out, scratch: &scratch)
                return
            }
            @inline(__always) func isSpace(_ i: Int) -> Bool {
                i + 2 < t.count && t[i] == 0xE2 && t[i + 1] == 0x96 && t[i + 2] == 0x81
            }
            var wordStart = 0
            var i = 0
            var previousWasSpace = false
            while i < t.count {
                if isSpace(i) {
                    if !previousWasSpace, i > wordStart {
                        encodeWord(UnsafeBufferPointer(rebasing: t[wordStart..<i]), into: &out, scratch: &scratch)
                        wordStart = i
                    }
                    previousWasSpace = true
                    i += 3
                } else {
                    previousWasSpace = false
                    i += 1
                }
            }
            encodeWord(UnsafeBufferPointer(rebasing: t[wordStart..<t.count]), into: &out, scratch: &scratch)
        }
    }

    private func encodeWord(_ word: UnsafeBufferPointer<UInt8>, into out: inout [Int32], scratch: inout Scratch) {
        if let entry = scratch.cache.value(for: word) {
            let span = scratch.cacheSpans[Int(entry)]
            let start = Int(span >> 32)
            out.append(contentsOf: scratch.cacheIDs[start..<(start + Int(span & 0xFFFF_FFFF))])
            return
        }
        let before = out.count
        mergeWord(word, into: &out, scratch: &scratch)
        if scratch.cacheIDs.count > SentencePieceEncoder.cacheLimit {
            scratch.cache.removeAll()
            scratch.cacheSpans.removeAll(keepingCapacity: true)
            scratch.cacheIDs.removeAll(keepingCapacity: true)
        }
        scratch.cache.insert(word, value: Int32(scratch.cacheSpans.count))
        scratch.cacheSpans.append(UInt64(scratch.cacheIDs.count) << 32 | UInt64(out.count - before))
        scratch.cacheIDs.append(contentsOf: out[before...])
    }

    /// The merge loop over one escaped text (a word, or the whole text).
    private func mergeWord(_ t: UnsafeBufferPointer<UInt8>, into out: inout [Int32], scratch: inout Scratch) {
        var start: [Int32] = [], length: [Int32] = []
        var prev: [Int32] = [], next: [Int32] = [], heap: [Bigram] = []
        swap(&start, &scratch.start); swap(&length, &scratch.length)
        swap(&prev, &scratch.prev); swap(&next, &scratch.next); swap(&heap, &scratch.heap)
        defer {
            swap(&start, &scratch.start); swap(&length, &scratch.length)
            swap(&prev, &scratch.prev); swap(&next, &scratch.next); swap(&heap, &scratch.heap)
        }
        start.removeAll(keepingCapacity: true)
        length.removeAll(keepingCapacity: true)
        prev.removeAll(keepingCapacity: true)
        next.removeAll(keepingCapacity: true)
        heap.removeAll(keepingCapacity: true)

        // One symbol per character; a broken sequence is one symbol per byte.
        var i = 0
        while i < t.count {
            let (_, n) = ScalarText.decode(t, at: i)
            start.append(Int32(i))
            length.append(Int32(n))
            i += n
        }
        let count = start.count
        for i in 0..<count {
            prev.append(Int32(i - 1))
            next.append(i + 1 < count ? Int32(i + 1) : -1)
        }

        @inline(__always) func candidate(_ left: Int, _ right: Int) {
            let from = Int(start[left])
            let size = Int(length[left] + length[right])
            guard let id = pieces.value(for: UnsafeBufferPointer(rebasing: t[from..<(from + size)])) else { return }
            let bigram = Bigram(score: scores[Int(id)], left: Int32(left), right: Int32(right), size: Int32(size))
            SentencePieceEncoder.push(&heap, bigram)
        }
        for i in 1..<max(count, 1) { candidate(i - 1, i) }
        while let top = SentencePieceEncoder.pop(&heap) {
            let left = Int(top.left), right = Int(top.right)
            // Stale: one side was merged away or has grown since the pair was queued.
            guard length[left] > 0, length[right] > 0,
                  length[left] + length[right] == top.size else { continue }
            length[left] += length[right]
            length[right] = 0
            let after = next[right]
            next[left] = after
            if after >= 0 { prev[Int(after)] = Int32(left) }
            if prev[left] >= 0 { candidate(Int(prev[left]), left) }
            if after >= 0 { candidate(left, Int(after)) }
        }

        var k = 0
        while k >= 0, count > 0 {
            let from = Int(start[k])
            let symbol = UnsafeBufferPointer(rebasing: t[from..<(from + Int(length[k]))])
            if let id = pieces.value(for: symbol) {
                out.append(id)
            } else {
                appendBytes(symbol, into: &out)
            }
            k = Int(next[k])
        }
    }

    /// The byte a `<0xNN>` piece stands for.
    static func byteValue(_ text: [UInt8]) -> UInt8? {
        guard text.count == 6, text[0] == 0x3C, text[1] == 0x30, text[2] == 0x78, text[5] == 0x3E,
              let hi = hexDigit(text[3]), let lo = hexDigit(text[4]) else { return nil }
        return hi << 4 | lo
    }

    private static func hexDigit(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }

    /// Appends `piece` with every "▁" turned back into a space.
    static func unescapeSpaces(_ piece: [UInt8], into out: inout [UInt8]) {
        var i = 0
        while i < piece.count {
            if i + 2 < piece.count, piece[i] == 0xE2, piece[i + 1] == 0x96, piece[i + 2] == 0x81 {
                out.append(0x20)
                i += 3
            } else {
                out.append(piece[i])
                i += 1
            }
        }
    }

    private func appendBytes(_ symbol: UnsafeBufferPointer<UInt8>, into out: inout [Int32]) {
        if symbol.allSatisfy({ byteTokens[Int($0)] >= 0 }) {
            for b in symbol { out.append(byteTokens[Int(b)]) }
        } else if let unknownID {
            out.append(unknownID)
        }
    }

    private static func push(_ heap: inout [Bigram], _ value: Bigram) {
        heap.append(value)
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) >> 1
            if !value.before(heap[parent]) { break }
            heap[i] = heap[parent]
            i = parent
        }
        heap[i] = value
    }

    private static func pop(_ heap: inout [Bigram]) -> Bigram? {
        guard let last = heap.popLast() else { return nil }
        if heap.isEmpty { return last }
        let top = heap[0]
        let n = heap.count
        var i = 0
        while true {
            var child = 2 * i + 1
            if child >= n { break }
            if child + 1 < n, heap[child + 1].before(heap[child]) { child += 1 }
            if !heap[child].before(last) { break }
            heap[i] = heap[child]
            i = child
        }
        heap[i] = last
        return top
    }
}
