extension PreTokenizer {
    /// Llama-3:
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    ///
    /// Every scalar is matched by some alternative (letters by the 2nd, numbers by
    /// the 3rd, other non-space by the 4th, space by the last), so pieces are
    /// contiguous and `end` acts as the end of the text for the lookahead.
    static func scanLlama3(
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
            let cls = k[i]

            // (?i:'s|'t|'re|'ve|'m|'ll|'d)
            if c == 0x27, i + 1 < end {
                let n = contractionLength(s, i, end, caseInsensitive: true)
                if n > 0 {
                    emit(i..<(i + n))
                    i += n
                    continue
                }
            }

            // [^\r\n\p{L}\p{N}]?\p{L}+
            if cls & L != 0 {
                var j = i + 1
                while j < end, k[j] & L != 0 { j += 1 }
                emit(i..<j)
                i = j
                continue
            }
            if c != 0x0A, c != 0x0D, cls & N == 0, i + 1 < end, k[i + 1] & L != 0 {
                var j = i + 2
                while j < end, k[j] & L != 0 { j += 1 }
                emit(i..<j)
                i = j
                continue
            }

            // \p{N}{1,3}
            if cls & N != 0 {
                var j = i + 1
                while j < end, j < i + 3, k[j] & N != 0 { j += 1 }
                emit(i..<j)
                i = j
                continue
            }

            //  ?[^\s\p{L}\p{N}]+[\r\n]*
            let p = (c == 0x20 && i + 1 < end) ? i + 1 : i
            if k[p] & LNW == 0 {
                var j = p + 1
                while j < end, k[j] & LNW == 0 { j += 1 }
                while j < end, s[j] == 0x0A || s[j] == 0x0D { j += 1 }
                emit(i..<j)
                i = j
                continue
            }

            // Only whitespace is left. The run of whitespace starting here:
            var e = i + 1
            while e < end, k[e] & W != 0 { e += 1 }

            // \s*[\r\n]+ : backtracking ends the match right after the run's last newline.
            var lastNewline = -1
            var q = e - 1
            while q >= i {
                if s[q] == 0x0A || s[q] == 0x0D { lastNewline = q; break }
                q -= 1
            }
            if lastNewline >= 0 {
                emit(i..<(lastNewline + 1))
                i = lastNewline + 1
                continue
            }

            // \s+(?!\S) keeps the last space for the next word; \s+ takes a lone space.
            let stop = (e < end && e - i >= 2) ? e - 1 : e
            emit(i..<stop)
            i = stop
        }
    }

    /// Length of the contraction `'s|'t|'re|'ve|'m|'ll|'d` at `i` (an apostrophe), or 0.
    /// Case-insensitive matching follows Unicode simple case folding, under which
    /// U+017F LATIN SMALL LETTER LONG S also matches `s` (as in Rust `regex` and
    /// Oniguruma; llama.cpp's `'[sS]` adaptation differs only there).
    @inline(__always)
    static func contractionLength(
        _ s: UnsafeBufferPointer<UInt32>, _ i: Int, _ end: Int, caseInsensitive: Bool
    ) -> Int {
        @inline(__always) func lower(_ v: UInt32) -> UInt32 {
            guard caseInsensitive else { return v }
            if v >= 0x41, v <= 0x5A { return v | 0x20 }
            if v == 0x17F { return 0x73 }
            return v
        }
        let a = lower(s[i + 1])
        switch a {
        case 0x73, 0x74, 0x6D, 0x64:  // s t m d
            return 2
        case 0x72, 0x76:  // r v: 're 've
            return i + 2 < end && lower(s[i + 2]) == 0x65 ? 3 : 0
        case 0x6C:  // l: 'll
            return i + 2 < end && lower(s[i + 2]) == 0x6C ? 3 : 0
        default:
            return 0
        }
    }
}
