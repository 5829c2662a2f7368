extension PreTokenizer {
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    ///
    /// llama.cpp's copy lacks the final `\s+`; the only text it leaves unmatched is a
    /// single whitespace scalar before a non-space, which then becomes a piece of
    /// its own, the same piece `\s+` gives. So one scanner serves both, and also the
    /// second pass of `default` and `falcon`.
    static func scanGPT2(
        _ s: UnsafeBufferPointer<UInt32>, _ k: UnsafeBufferPointer<UInt8>,
        _ start: Int, _ end: Int, _ emit: (Range<Int>) -> Void
    ) {
        let L = CharacterClass.letter
        let N = CharacterClass.number
        let W = CharacterClass.whitespace
        let LNW = L | N | W
        var i = start
        while i < end {
            let c = s[i]

            if c == 0x27, i + 1 < end {
                let n = contractionLength(s, i, end, caseInsensitive: false)
                if n > 0 {
                    emit(i..<(i + n))
                    i += n
                    continue
                }
            }

            // An optional leading space joins the letters, digits or symbols after it.
            let p = (c == 0x20 && i + 1 < end) ? i + 1 : i
            let cls = k[p]
            let run: UInt8
            if cls & L != 0 {
                run = L
            } else if cls & N != 0 {
                run = N
            } else if cls & LNW == 0 {
                run = 0
            } else {
                // Whitespace: \s+(?!\S) keeps the last space for the next word.
                var e = i + 1
                while e < end, k[e] & W != 0 { e += 1 }
                let stop = (e < end && e - i >= 2) ? e - 1 : e
                emit(i..<stop)
                i = stop
                continue
            }
            var j = p + 1
            if run == 0 {
                while j < end, k[j] & LNW == 0 { j += 1 }
            } else {
                while j < end, k[j] & run != 0 { j += 1 }
            }
            emit(i..<j)
            i = j
        }
    }
}
