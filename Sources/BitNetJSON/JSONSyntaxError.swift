/// A document that is not JSON (RFC 8259), or nests deeper than `JSONParser.maxDepth`.
/// `reason` ends with the byte offset, so a typo in a multi-megabyte tokenizer.json
/// can be found. Callers that know more (the converter: which file of a checkpoint;
/// the server: the request) wrap it in their own error.
public struct JSONSyntaxError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What was parsed: a file's path, or a description such as "request body".
    public let path: String
    public let reason: String

    public var description: String { "\(path): invalid JSON: \(reason)" }
}
