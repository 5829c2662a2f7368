import Foundation
import ArgumentParser
import BitNet

struct PerplexityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity",
        abstract: "Perplexity of a text file, in fixed-length windows.",
        discussion: """
        Default: the text is tokenized without BOS and cut into non-overlapping chunks of \
        --window − 1 tokens; each chunk is evaluated as [BOS] + chunk from an empty cache and \
        every token is scored exactly once (BOS predicts the first). This is the windowing of \
        the golden data (tools/train/make_golden.py). With --stride: Hugging Face's sliding \
        windows over the text (BOS first when the model adds one), each scoring only the tokens \
        no earlier window scored.
        """
    )

    @OptionGroup var options: ModelOptions
    @Option(name: .customShort("f"), help: "Text file.") var file: String
    @Option(parsing: .unconditional, help: "Window length in tokens (default: 256, at most the context).") var window = 256
    @Option(parsing: .unconditional, help: "Sliding windows starting every N tokens (Hugging Face's recipe) instead of BOS windows.")
    var stride: Int?
    @Flag(name: .customLong("no-bos"), help: "With --stride: do not prepend BOS.") var noBOS = false
    @Flag(help: "Print one JSON object.") var json = false

    // Checked here: the window also becomes the default --ctx, whose own check
    // would otherwise blame --ctx for a bad --window.
    func validate() throws {
        guard window >= 2 else { throw ValidationError("--window must be ≥ 2 (BOS and one scored token; got \(window))") }
        if let stride, !(1...window).contains(stride) {
            throw ValidationError("--stride must be in 1...\(window) (the window; got \(stride))")
        }
    }

    func run() throws {
        var opts = options
        if opts.ctx == nil { opts.ctx = window }
        let (model, _) = try opts.load(quiet: json)
        guard model.weights.file["tokenizer.ggml.model"] != nil else {
            throw ValidationError("\(model.weights.file.path) has no tokenizer metadata")
        }
        let tokenizer = try Tokenizer(gguf: model.weights.file)
        let text = try readPrompt(text: nil, file: file)
        let tokens = tokenizer.encode(text, addSpecial: stride != nil && !noBOS)
        guard tokens.count >= 2 else { throw ValidationError("\(file) has fewer than 2 tokens") }
        let bar = json ? nil : ProgressBar(label: "perplexity", total: Double(tokens.count))
        let start = Stopwatch.now()
        let result: Perplexity
        if let stride {
            result = try Perplexity.evaluate(session: try model.makeSession(), tokens: tokens, window: window, stride: stride) { done, _ in
                bar?.update(Double(done))
            }
        } else {
            guard let bos = tokenizer.bosID else { throw ValidationError("the tokenizer has no BOS token; use --stride") }
            result = try Perplexity.evaluate(session: try model.makeSession(), text: tokens, bos: bos, window: window) { done, _ in
                bar?.update(Double(done))
            }
        }
        bar?.finish()
        let seconds = Stopwatch.now() - start
        if json {
            print(jsonLine([("file", .string(file)), ("tokens", .int(tokens.count)), ("scored", .int(result.scoredTokens)),
                            ("window", .int(window)), ("mode", .string(stride == nil ? "bos_windows" : "sliding")),
                            ("stride", .int(stride ?? window - 1)), ("windows", .int(result.windows)),
                            ("mean_nll", .double(result.meanNLL)), ("perplexity", .double(result.value)),
                            ("seconds", .double(seconds))]))
        } else {
            print(String(format: "perplexity %.4f (mean NLL %.5f) over %d tokens in %d windows of %d", result.value,
                         result.meanNLL, result.scoredTokens, result.windows, window) +
                  (stride.map { ", stride \($0)" } ?? " (BOS + chunk)") +
                  String(format: "; %.1f s, %.0f tok/s", seconds, Double(result.scoredTokens) / seconds))
        }
    }
}
