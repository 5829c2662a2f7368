/// The outcome of ``ChatTemplate/detect(chatTemplate:architecture:tokenizer:)``:
/// the template to use and, for the user, why it was chosen.
public struct ChatTemplateDetection: Sendable, Equatable {
    public var template: ChatTemplate
    /// One line saying what the choice was based on.
    public var reason: String
    /// False when the file's template was not recognised (or there was none and
    /// the vocabulary gave no hint), so `template` is the plain completion mode.
    public var isRecognized: Bool

    public init(template: ChatTemplate, reason: String, isRecognized: Bool) {
        self.template = template
        self.reason = reason
        self.isRecognized = isRecognized
    }
}
