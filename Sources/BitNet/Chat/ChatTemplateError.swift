/// Why a chat template cannot be used with a tokenizer.
public enum ChatTemplateError: Error, Equatable, CustomStringConvertible {
    /// The template needs a special token the vocabulary does not have
    /// (e.g. `--chat-template llama3` on a SentencePiece model).
    case missingToken(template: String, token: String)

    public var description: String {
        switch self {
        case .missingToken(let template, let token):
            return "chat template '\(template)' needs the token \(token), which this vocabulary does not have"
        }
    }
}
