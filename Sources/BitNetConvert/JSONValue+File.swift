import BitNetJSON

extension JSONValue {
    /// Reads and parses a whole checkpoint file (config.json, tokenizer.json, ...), bounded by
    /// `FileBytes.maxContentsBytes`; a syntax error becomes `ConvertError.invalidJSON` so every
    /// conversion failure is one error type naming its file.
    static func read(path: String, what: String) throws -> JSONValue {
        let bytes = try FileBytes.contents(path: path, what: what)
        do {
            return try parse(bytes, path: path)
        } catch let error as JSONSyntaxError {
            throw ConvertError.invalidJSON(path: error.path, reason: error.reason)
        }
    }
}
