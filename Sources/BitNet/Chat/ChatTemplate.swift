/// The chat formats `bitnet chat` knows. Templates are not run as Jinja: each is a
/// fixed format chosen from the file's `tokenizer.chat_template` text and vocabulary
/// (``detect(chatTemplate:architecture:tokenizer:)``) or by name. Rendering to token
/// ids is done by ``ChatFormatter``.
public enum ChatTemplate: String, Sendable, CaseIterable {
    /// BitNet-b1.58-2B-4T's canonical format (docs/FORMATS.md §6.6, reference: BN `gpu/tokenizer.py`
    /// `ChatFormat`): `<|begin_of_text|>System: …<|eot_id|>User: …<|eot_id|>Assistant: `,
    /// each "Role: " header and each stripped content tokenized separately.
    case bitnet
    /// Llama-3's header format: `<|start_header_id|>role<|end_header_id|>\n\n` content `<|eot_id|>`.
    case llama3
    /// Falcon3's format: `<|system|>\n…\n<|user|>\n…\n<|assistant|>\n…<|endoftext|>\n`.
    case falcon3
    /// Plain completion: message texts one after the other, no markers.
    case none

    /// The GGUF metadata key holding the Jinja template text.
    public static let metadataKey = "tokenizer.chat_template"

    public var name: String { rawValue }

    /// A template by name, as given to `--chat-template` (case-insensitive; a few
    /// aliases are accepted).
    public init?(name: String) {
        switch name.lowercased() {
        case "bitnet", "bitnet-b1.58", "bitnet-2b4t", "2b4t": self = .bitnet
        case "llama3", "llama-3", "llama-3.1", "llama3.1": self = .llama3
        case "falcon3", "falcon-3": self = .falcon3
        case "none", "plain", "completion", "raw": self = .none
        default: return nil
        }
    }

    /// Binds the template to a vocabulary; throws when a token it needs is missing.
    public func formatter(tokenizer: Tokenizer) throws -> ChatFormatter {
        try ChatFormatter(template: self, tokenizer: tokenizer)
    }

    /// Token ids of a whole conversation (see ``ChatFormatter/tokens(for:addGenerationPrompt:)``).
    public func tokens(for messages: [ChatMessage], addGenerationPrompt: Bool, tokenizer: Tokenizer) throws -> [Int32] {
        try formatter(tokenizer: tokenizer).tokens(for: messages, addGenerationPrompt: addGenerationPrompt)
    }

    // MARK: - Detection

    /// Chooses a template from a GGUF file's `tokenizer.chat_template` and
    /// `general.architecture` and the tokenizer's vocabulary.
    public static func detect(gguf: GGUFFile, tokenizer: Tokenizer) -> ChatTemplateDetection {
        // A key of the wrong type is treated as absent: the vocabulary still gives a hint.
        let text = (try? gguf.optionalString(metadataKey)) ?? nil
        let architecture = (try? gguf.optionalString("general.architecture")) ?? nil
        return detect(chatTemplate: text, architecture: architecture, tokenizer: tokenizer)
    }

    /// Chooses a template from the text of a Jinja chat template (nil: the file has
    /// none), the model architecture and the vocabulary. Unknown templates give
    /// ``none`` with `isRecognized == false` and a reason to show the user.
    public static func detect(chatTemplate: String?, architecture: String? = nil,
                              tokenizer: Tokenizer) -> ChatTemplateDetection {
        let hasLlama3Headers = ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
            .allSatisfy { tokenizer.tokenID(forText: $0) != nil }
        let isBitNet = architecture.map { $0.lowercased().hasPrefix("bitnet") } ?? false

        if let text = chatTemplate, !text.isEmpty {
            // bitnet.cpp's converter stores a placeholder containing "BITNET"
            // ("Human: …\n\nBITNETAssistant: …", docs/FORMATS.md §6.6); bitnet.cpp itself
            // ignores its text. The model was trained on the canonical format, so use that.
            if text.contains("BITNET") {
                return ChatTemplateDetection(
                    template: .bitnet, reason: "the file's placeholder template (marker BITNET): BitNet-b1.58-2B-4T format",
                    isRecognized: true)
            }
            if text.contains("<|start_header_id|>") {
                return ChatTemplateDetection(template: .llama3, reason: "the file's template uses <|start_header_id|>: Llama-3 format",
                                             isRecognized: true)
            }
            if text.contains("<|assistant|>") {
                return ChatTemplateDetection(template: .falcon3, reason: "the file's template uses <|assistant|>: Falcon3 format",
                                             isRecognized: true)
            }
            // The Hugging Face 2B4T template: capitalized role + ': ' + trimmed content +
            // '<|eot_id|>', generation prompt 'Assistant: '. Older "Assistant: " formats
            // (Falcon-1's) have no <|eot_id|>, so that token is required as well.
            if text.contains("Assistant: "), text.contains("<|eot_id|>") || tokenizer.tokenID(forText: "<|eot_id|>") != nil {
                return ChatTemplateDetection(template: .bitnet, reason: "the file's template is 2B4T-style (\"Assistant: \" + <|eot_id|>)",
                                             isRecognized: true)
            }
            return ChatTemplateDetection(
                template: .none,
                reason: "the file's chat template is not one this program knows; plain completion mode "
                    + "(choose one with --chat-template bitnet|llama3|falcon3)",
                isRecognized: false)
        }

        // No template in the file: the vocabulary and architecture tell the family.
        if hasLlama3Headers {
            if isBitNet {
                return ChatTemplateDetection(
                    template: .bitnet, reason: "no template in the file; a BitNet model with the Llama-3 vocabulary: 2B4T format",
                    isRecognized: true)
            }
            return ChatTemplateDetection(template: .llama3, reason: "no template in the file; Llama-3 vocabulary: Llama-3 format",
                                         isRecognized: true)
        }
        if tokenizer.tokenID(forText: "<|assistant|>") != nil, tokenizer.tokenID(forText: "<|user|>") != nil {
            return ChatTemplateDetection(template: .falcon3, reason: "no template in the file; <|assistant|> in the vocabulary: Falcon3 format",
                                         isRecognized: true)
        }
        return ChatTemplateDetection(
            template: .none,
            reason: "no chat template in the file; plain completion mode (choose one with --chat-template bitnet|llama3|falcon3)",
            isRecognized: false)
    }
}
