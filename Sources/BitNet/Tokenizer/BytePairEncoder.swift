/// Byte-level BPE (`tokenizer.ggml.model = gpt2`): pre-tokenize into words, then
/// merge each word's bytes by merge rank, lowest rank first and leftmost first
/// among equal ranks (Hugging Face `tokenizers` and llama.cpp agree on this order).
struct BytePairEncoder: Sendable {
    let preTokenizer: PreTokenizer
    /// Llama-3's `ignore_merges`: a word that is itself a token is emitted whole.
    let ignoreMerges: Bool
    /// Raw bytes of every non-control token → id.
    let tokenTable: ByteStringTable
    let merges: MergeTable
    /// Token of each single byte; -1 where the vocabulary has none.
    let byteTokens: [Int32]
    let unknownID: Int32?

    /// Words cached per encode call; cleared when it grows past this many ids.
    static let cacheLimit = 1 << 20

    /// Working memory reused across the words of one encode call.
    struct Scratch {
        var cache = ByteStringTable()
        var cacheSpans: [UInt64] = []
        var cacheIDs: [Int32] = []
        var symbols: [Int32] = []
        var prev: [Int32] = []
        var next: [Int32] = []
        var heap: [UInt64] = []
    }

    /// Encodes a run of plain text (no special tokens in it).
    func encode(_ fragment: UnsafeBufferPointer<UInt8>, into out: inout [Int32],
                text: inout ScalarText, scratch: inout Scratch) {
        text.load(fragment)
        let offsets = text.offsets
        preTokenizer.split(text) { range in
            let word = UnsafeBufferPointer(rebasing: fragment[offsets[range.lowerBound]..<offsets[range.upperBound]])
            encodeWord(word, into: &out, scratch: &scratch)
        }
    }

    @inline(__always)
    func encodeWord(_ word: UnsafeBufferPointer<UInt8>, into out: inout [Int32], scratch: inout Scratch) {
        if word.count == 1 {
            appendByte(word[0], into: &out)
            return
        }
        if ignoreMerges, let id = tokenTable.value(for: word) {
            out.append(id)
            return
        }
        if let entry = scratch.cache.value(for: word) {
            let span = scratch.cacheSpans[Int(entry)]
            let start = Int(span >> 32)
            let count = Int(span & 0xFFFF_FFFF)
            out.append(contentsOf: scratch.cacheIDs[start..<(start + count)])
            return
        }
        let before = out.count
        merge(word, into: &out, scratch: &scratch)
        if scratch.cacheIDs.count > BytePairEncoder.cacheLimit {
            scratch.cache.removeAll()
            scratch.cacheSpans.removeAll(keepingCapacity: true)
            scratch.cacheIDs.removeAll(keepingCapacity: true)
        }
        scratch.cache.insert(word, value: Int32(scratch.cacheSpans.count))
        scratch.cacheSpans.append(UInt64(scratch.cacheIDs.count) << 32 | UInt64(out.count - before))
        scratch.cacheIDs.append(contentsOf: out[before...])
    }

    @inline(__always)
    private func appendByte(_ b: UInt8, into out: inout [Int32]) {
        let id = byteTokens[Int(b)]
        if id >= 0 {
            out.append(id)
        } else if let unknownID {
            out.append(unknownID)
        }
    }

    /// Merges one word. Symbols form a linked list over byte positions; a min-heap
    /// holds candidate pairs as `(rank << 32) | left position`, so popping gives the
    /// lowest rank and, among equal ranks, the leftmost pair. Entries made stale by
    /// an earlier merge are skipped when popped. O(n log n) for any word length.
    private func merge(_ word: UnsafeBufferPointer<UInt8>, into out: inout [Int32], scratch: inout Scratch) {
        let n = word.count
        // Swapped out of `scratch` so the closures below touch plain locals.
        var symbols: [Int32] = [], prev: [Int32] = [], next: [Int32] = [], heap: [UInt64] = []
        swap(&symbols, &scratch.symbols)
        swap(&prev, &scratch.prev)
        swap(&next, &scratch.next)
        swap(&heap, &scratch.heap)
        defer {
            swap(&symbols, &scratch.symbols)
            swap(&prev, &scratch.prev)
            swap(&next, &scratch.next)
            swap(&heap, &scratch.heap)
        }
        symbols.removeAll(keepingCapacity: true)
        prev.removeAll(keepingCapacity: true)
        next.removeAll(keepingCapacity: true)
        heap.removeAll(keepingCapacity: true)
        for i in 0..<n {
            symbols.append(byteTokens[Int(word[i])])
            prev.append(Int32(i - 1))
            next.append(i + 1 < n ? Int32(i + 1) : -1)
        }
        let dead: Int32 = -2
        let merges = self.merges
        symbols.withUnsafeMutableBufferPointer { sym in
            prev.withUnsafeMutableBufferPointer { prev in
                next.withUnsafeMutableBufferPointer { next in
                    @inline(__always) func candidate(_ left: Int) {
                        let a = sym[left], b = sym[Int(next[left])]
                        guard a >= 0, b >= 0, let found = merges.lookup(a, b) else { return }
                        MinHeap.push(&heap, (found & 0xFFFF_FFFF_0000_0000) | UInt64(left))
                    }
                    for i in 0..<(n - 1) { candidate(i) }
                    while let top = MinHeap.pop(&heap) {
                        let left = Int(top & 0xFFFF_FFFF)
                        let a = sym[left]
                        guard a >= 0 else { continue }
                        let rightIndex = next[left]
                        guard rightIndex >= 0 else { continue }
                        let right = Int(rightIndex)
                        let b = sym[right]
                        guard b >= 0, let found = merges.lookup(a, b),
                              found >> 32 == top >> 32 else { continue }
                        sym[left] = Int32(truncatingIfNeeded: found & 0xFFFF_FFFF)
                        sym[right] = dead
                        let after = next[right]
                        next[left] = after
                        if after >= 0 { prev[Int(after)] = Int32(left) }
                        if prev[left] >= 0 { candidate(Int(prev[left])) }
                        if after >= 0 { candidate(left) }
                    }
                }
            }
        }
        var i = 0
        while i >= 0 {
            let id = symbols[i]
            if id >= 0 {
                out.append(id)
            } else if let unknownID {
                // A byte the vocabulary cannot spell.
                out.append(unknownID)
            }
            i = Int(next[i])
        }
    }
}

/// A binary min-heap over a plain `[UInt64]` (priority packed into the value).
enum MinHeap {
    @inline(__always)
    static func push(_ heap: inout [UInt64], _ value: UInt64) {
        heap.append(value)
        heap.withUnsafeMutableBufferPointer { h in
            var i = h.count - 1
            while i > 0 {
                let parent = (i - 1) >> 1
                if h[parent] <= value { break }
                h[i] = h[parent]
                i = parent
            }
            h[i] = value
        }
    }

    @inline(__always)
    static func pop(_ heap: inout [UInt64]) -> UInt64? {
        guard let last = heap.popLast() else { return nil }
        if heap.isEmpty { return last }
        return heap.withUnsafeMutableBufferPointer { h in
            let top = h[0]
            let n = h.count
            var i = 0
            while true {
                var child = 2 * i + 1
                if child >= n { break }
                if child + 1 < n, h[child + 1] < h[child] { child += 1 }
                if h[child] >= last { break }
                h[i] = h[child]
                i = child
            }
            h[i] = last
            return top
        }
    }
}
