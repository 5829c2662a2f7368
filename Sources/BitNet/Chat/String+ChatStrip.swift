extension String {
    /// The text without leading and trailing whitespace, as Python's `str.strip()`
    /// (the reference `ChatFormat` strips message content with it, and Jinja's
    /// `trim` is the same function). Works on Unicode scalars, not Characters, so a
    /// space followed by a combining mark is still stripped as Python does.
    var chatStripped: String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.isPythonWhitespace }),
              let last = scalars.lastIndex(where: { !$0.isPythonWhitespace }) else { return "" }
        return String(scalars[first...last])
    }
}

extension Unicode.Scalar {
    /// Python's `str.isspace()`: the White_Space property plus the information
    /// separators U+001C…U+001F, which Python also counts as whitespace.
    var isPythonWhitespace: Bool {
        properties.isWhitespace || (0x1C...0x1F).contains(value)
    }
}
