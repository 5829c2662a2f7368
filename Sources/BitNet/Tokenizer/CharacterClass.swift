/// The Unicode classes the pre-tokenizer regexes test, as bit flags per scalar.
///
/// `\p{L}` is general category L* (Lu Ll Lt Lm Lo), `\p{N}` is N* (Nd Nl No),
/// `\p{P}` is P*, and `\s` is the White_Space property, as in the Rust `regex`
/// and Oniguruma engines behind Hugging Face `tokenizers`. Combining marks (M*)
/// are none of these, so "e\u{301}" splits after the "e" exactly as the regex does.
enum CharacterClass {
    static let letter: UInt8 = 1
    static let number: UInt8 = 2
    static let whitespace: UInt8 = 4
    static let punctuation: UInt8 = 8

    /// Classes of U+0000…U+FFFF, computed once: the stdlib's property lookups are
    /// far too slow to run on every scalar of a multi-megabyte text.
    static let basicPlane: [UInt8] = {
        var table = [UInt8](repeating: 0, count: 0x10000)
        for v in 0..<0x10000 { table[v] = compute(UInt32(v)) }
        return table
    }()

    /// Classes of a scalar outside the basic plane (emoji, CJK extensions, …),
    /// and 0 for the invalid-byte markers `ScalarText` uses (they act like U+FFFD).
    static func of(_ v: UInt32) -> UInt8 {
        v < 0x10000 ? basicPlane[Int(v)] : compute(v)
    }

    static func compute(_ v: UInt32) -> UInt8 {
        guard let scalar = Unicode.Scalar(v) else { return 0 }
        let properties = scalar.properties
        var flags: UInt8 = properties.isWhitespace ? whitespace : 0
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            flags |= letter
        case .decimalNumber, .letterNumber, .otherNumber:
            flags |= number
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
             .initialPunctuation, .finalPunctuation, .otherPunctuation:
            flags |= punctuation
        default:
            break
        }
        return flags
    }
}
