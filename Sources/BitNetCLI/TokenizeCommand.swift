import ArgumentParser
import BitNet

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Show how a model's tokenizer splits text (ids, pieces or JSON)."
    )

    @Option(name: .shortAndLong, help: "Model or vocab-only GGUF file.") var model: String
    @Argument(help: "Text to tokenize (default: standard input).") var text: String?
    @Flag(help: "Print ids only, comma-separated.") var ids = false
    @Flag(help: "Print pieces only, one per line.") var pieces = false
    @Flag(help: "Print one JSON object: ids and pieces.") var json = false
    @Flag(help: "Recognise control tokens written in the text.") var special = false
    @Flag(name: .customLong("no-bos"), help: "Do not add the BOS token.") var noBOS = false

    func run() throws {
        let tokenizer = try Tokenizer(gguf: GGUFFile(path: model))
        let input = try readPrompt(text: text, file: nil)
        let tokens = tokenizer.encode(input, addSpecial: !noBOS, parseSpecial: special)
        if ids {
            print(tokens.map(String.init).joined(separator: ","))
        } else if json {
            let pieceList = try tokens.map { ReportValue.string(try tokenizer.tokenPiece($0)).text }
            print("{\"ids\": [\(tokens.map(String.init).joined(separator: ", "))], \"pieces\": [\(pieceList.joined(separator: ", "))]}")
        } else {
            for t in tokens {
                let piece = try tokenizer.tokenPiece(t)
                print(pieces ? piece : "\(String(t).padding(8)) \(ReportValue.string(piece).text)")
            }
        }
    }
}
