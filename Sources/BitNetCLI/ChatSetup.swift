import ArgumentParser
import BitNet

/// The tokenizer and chat formatter `chat` and `serve` share: `--chat-template`
/// when given, else the template detected from the file; a template the
/// vocabulary cannot express falls back to plain completion with a note.
enum ChatSetup {
    static func formatter(for model: BitNetModel, chatTemplate: String?, command: String) throws
        -> (Tokenizer, ChatFormatter) {
        let file = model.weights.file
        let tokenizer: Tokenizer
        do {
            tokenizer = try Tokenizer(gguf: file)
        } catch {
            throw ValidationError("\(file.path) has no usable tokenizer metadata (\(error)): \(command) needs one")
        }
        let template: ChatTemplate
        if let name = chatTemplate, let chosen = ChatTemplate(name: name) {
            template = chosen
            note("chat template: \(chosen.name) (--chat-template)")
        } else {
            let detection = ChatTemplate.detect(gguf: file, tokenizer: tokenizer)
            template = detection.template
            note("chat template: \(detection.template.name): \(detection.reason)")
        }
        do {
            return (tokenizer, try template.formatter(tokenizer: tokenizer))
        } catch {
            note("\(error); using plain completion mode instead")
            return (tokenizer, try ChatTemplate.none.formatter(tokenizer: tokenizer))
        }
    }
}
