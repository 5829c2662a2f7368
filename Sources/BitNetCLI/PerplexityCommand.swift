import ArgumentParser
import BitNet

struct PerplexityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity",
        abstract: "Perplexity of a text file, in fixed-length windows (Hugging Face's recipe).",
        discussion: """
        The text is tokenized once (BOS first when the model adds one). Windows of --window \
        tokens start every --stride tokens (default: non-overlapping); each is evaluated from an \
        empty cache and scores only the tokens no earlier window scored.
        """
    )

    @OptionGroup var options: ModelOptions
    @Option(name: .customShort("f"), help: "Text file.") var file: String
    @Option(help: "Window length in tokens (default: 256, at most the context).") var window = 256
    @Option(help: "Tokens between window starts (default: the window length).") var stride: Int?
    @Flag(name: .customLong("no-bos"), help: "Do not prepend BOS.") var noBOS = false
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        var opts = options
        if opts.ctx == nil { opts.ctx = window }
        let (model, _) = try opts.load(quiet: json)
        guard let tokenizer = try? Tokenizer(gguf: model.weights.file) else {
            throw ValidationError("\(model.weights.file.path) has no tokenizer metadata")
        }
        let text = try readPrompt(text: nil, file: file)
        let tokens = tokenizer.encode(text, addSpecial: !noBOS)
        guard tokens.count >= 2 else { throw ValidationError("\(file) has fewer than 2 tokens") }
        let bar = json ? nil : ProgressBar(label: "perplexity", total: Double(tokens.count - 1))
        let start = Stopwatch.now()
        let result = try Perplexity.evaluate(model: model, tokens: tokens, window: window, stride: stride ?? window) {
            done, _ in bar?.update(Double(done))
        }
        bar?.finish()
        let seconds = Stopwatch.now() - start
        if json {
            print(jsonLine([("file", .string(file)), ("tokens", .int(tokens.count)), ("scored", .int(result.scoredTokens)),
                            ("window", .int(window)), ("stride", .int(stride ?? window)), ("windows", .int(result.windows)),
                            ("mean_nll", .double(result.meanNLL)), ("perplexity", .double(result.value)),
                            ("seconds", .double(seconds))]))
        } else {
            print(String(format: "perplexity %.4f (mean NLL %.5f) over %d tokens in %d windows of %d, stride %d; %.1f s, %.0f tok/s",
                         result.value, result.meanNLL, result.scoredTokens, result.windows, window, stride ?? window,
                         seconds, Double(result.scoredTokens) / seconds))
        }
    }
}
