extension PreTokenizer {
    /// llama.cpp applies a list of regexes one after another: each one splits every
    /// piece left by the previous one into its matches and the unmatched text between
    /// them, and each piece is searched on its own (its end is the end of the text).
    static func splitInPasses(
        _ kind: PreTokenizer,
        _ s: UnsafeBufferPointer<UInt32>, _ k: UnsafeBufferPointer<UInt8>,
        _ count: Int, _ emit: (Range<Int>) -> Void
    ) {
        var pieces: [Range<Int>] = []
        // [\p{P}\$\+<=>\^~\|]+ (falcon adds the backtick)
        let withBacktick = kind == .falcon
        splitRuns(0..<count, into: &pieces) { i in
            if k[i] & CharacterClass.punctuation != 0 { return true }
            switch s[i] {
            case 0x24, 0x2B, 0x3C, 0x3D, 0x3E, 0x5E, 0x7E, 0x7C: return true
            case 0x60: return withBacktick
            default: return false
            }
        }

        var next: [Range<Int>] = []
        next.reserveCapacity(pieces.count * 2)
        for piece in pieces {
            scanGPT2(s, k, piece.lowerBound, piece.upperBound) { next.append($0) }
        }
        swap(&pieces, &next)

        if kind == .bpeDefault {
            // \p{N}+
            next.removeAll(keepingCapacity: true)
            for piece in pieces {
                splitRuns(piece, into: &next) { k[$0] & CharacterClass.number != 0 }
            }
            swap(&pieces, &next)
        }

        // [0-9][0-9][0-9]: leftmost non-overlapping triples of ASCII digits.
        @inline(__always) func isDigit(_ i: Int) -> Bool { s[i] >= 0x30 && s[i] <= 0x39 }
        for piece in pieces {
            var gapStart = piece.lowerBound
            var i = piece.lowerBound
            let end = piece.upperBound
            while i < end {
                if i + 3 <= end, isDigit(i), isDigit(i + 1), isDigit(i + 2) {
                    if gapStart < i { emit(gapStart..<i) }
                    emit(i..<(i + 3))
                    i += 3
                    gapStart = i
                } else {
                    i += 1
                }
            }
            if gapStart < end { emit(gapStart..<end) }
        }
    }

    /// Splits `range` into maximal runs of scalars that do and do not satisfy
    /// `matches` (a regex `[set]+` and the gaps between its matches).
    private static func splitRuns(_ range: Range<Int>, into out: inout [Range<Int>], _ matches: (Int) -> Bool) {
        var i = range.lowerBound
        while i < range.upperBound {
            let inside = matches(i)
            var j = i + 1
            while j < range.upperBound, matches(j) == inside { j += 1 }
            out.append(i..<j)
            i = j
        }
    }
}
