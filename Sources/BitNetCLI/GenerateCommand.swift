import Foundation
import ArgumentParser
import BitNet

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate a continuation of a prompt, streaming tokens to stdout and a summary to stderr."
    )

    @OptionGroup var options: ModelOptions

    @Option(name: .shortAndLong, help: "Prompt text (or use -f, or pipe it on stdin).")
    var prompt: String?

    @Option(name: .customShort("f"), help: "Read the prompt from a file.")
    var file: String?

    @Option(help: "Prompt as token ids, comma-separated (e.g. 128000,9906), bypassing the tokenizer.")
    var tokens: String?

    @Flag(help: "Recognise control tokens such as <|eot_id|> written in the prompt text.")
    var special = false

    @Flag(help: "Print generated token ids instead of text.")
    var ids = false

    @Option(name: .shortAndLong, help: "Tokens to generate.")
    var n = 128

    @Option(help: "Temperature (0 = greedy).") var temp: Float = 0.8
    @Option(name: .customLong("top-k"), help: "Top-k (0 = off).") var topK = 40
    @Option(name: .customLong("top-p"), help: "Top-p (1 = off).") var topP: Float = 0.95
    @Option(name: .customLong("min-p"), help: "Min-p (0 = off).") var minP: Float = 0.05
    @Option(name: .customLong("repeat-penalty"), help: "Repetition penalty (1 = off).") var repeatPenalty: Float = 1
    @Option(name: .customLong("presence-penalty"), help: "Presence penalty.") var presencePenalty: Float = 0
    @Option(name: .customLong("frequency-penalty"), help: "Frequency penalty.") var frequencyPenalty: Float = 0
    @Option(help: "Random seed.") var seed: UInt64 = 0
    @Option(name: .customLong("stop-token"), help: "Extra stop token ids, comma-separated.") var stopToken: String?
    @Flag(help: "Print the summary as one JSON object on stderr.") var json = false

    func validate() throws {
        guard n >= 0 else { throw ValidationError("-n must be ≥ 0") }
        guard temp >= 0, temp.isFinite else { throw ValidationError("--temp must be ≥ 0") }
        guard topK >= 0 else { throw ValidationError("--top-k must be ≥ 0") }
        guard (0...1).contains(topP), (0...1).contains(minP) else { throw ValidationError("--top-p and --min-p must be in 0...1") }
        guard repeatPenalty > 0 else { throw ValidationError("--repeat-penalty must be > 0") }
    }

    func run() throws {
        let (model, loadSeconds) = try options.load()
        let tokenizer = try? Tokenizer(gguf: model.weights.file)
        let input: [Int32]
        if let tokens {
            input = try parseTokenList(tokens)
        } else {
            guard let tokenizer else {
                throw ValidationError("\(model.weights.file.path) has no tokenizer metadata: give the prompt as --tokens 1,2,3")
            }
            input = tokenizer.encode(try readPrompt(text: prompt, file: file), parseSpecial: special)
        }
        guard !input.isEmpty else { throw ValidationError("the prompt is empty") }
        var sampling = SamplingParameters()
        sampling.temperature = temp
        sampling.topK = topK
        sampling.topP = topP
        sampling.minP = minP
        sampling.repetitionPenalty = repeatPenalty
        sampling.presencePenalty = presencePenalty
        sampling.frequencyPenalty = frequencyPenalty
        sampling.seed = seed
        var stops = tokenizer?.endOfGenerationIDs ?? []
        if let eos = try model.weights.file.optionalInteger("tokenizer.ggml.eos_token_id") { stops.insert(Int32(eos)) }
        if let stopToken { stops.formUnion(try parseTokenList(stopToken)) }
        let generator = Generator(session: try model.makeSession(), stopTokens: stops)
        var decoder = ids ? nil : tokenizer?.makeStreamingDecoder()
        var first = true
        let stats = try generator.generate(prompt: input, maxTokens: n, sampling: sampling) { token in
            if decoder != nil {
                if !stops.contains(token) { print(try decoder!.append(token), terminator: "") }
            } else {
                print((first ? "" : ",") + String(token), terminator: "")
            }
            first = false
            fflush(nil)
            return true
        }
        if decoder != nil { print(decoder!.finish(), terminator: "") }
        print("")
        let summary = Summary(load: loadSeconds, stats: stats, threads: model.pool.threads, isa: model.kernels.isa,
                              decodeKernels: Summary.describe(model))
        note(json ? summary.json : summary.text)
    }
}

/// The prompt from -p, -f or standard input (in that order).
func readPrompt(text: String?, file: String?) throws -> String {
    if let text { return text }
    if let file {
        guard let data = FileManagerLite.read(file) else { throw ValidationError("cannot read prompt file '\(file)'") }
        return String(decoding: data, as: UTF8.self)
    }
    guard isatty(0) == 0 else { throw ValidationError("give a prompt with -p, -f FILE, or on standard input") }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = read(0, &buffer, buffer.count)
        if n <= 0 { break }
        bytes += buffer[0..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Whole-file reads without Foundation.
enum FileManagerLite {
    static func read(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = Glibc.read(fd, &buffer, buffer.count)
            if n < 0 { return nil }
            if n == 0 { return bytes }
            bytes += buffer[0..<n]
        }
    }
}

/// The stderr summary of a generation.
struct Summary {
    let load: Double
    let stats: GenerationStats
    let threads: Int
    let isa: ISA
    /// "i2_s", or the per-shape choices when they differ ("2560x2560 tl2, 640x2560 i2_s").
    let decodeKernels: String

    static func describe(_ model: BitNetModel) -> String {
        let kinds = Set(model.weights.layers.flatMap(\.projections)
            .map(\.decodeKernel))
        if kinds.count == 1, let only = kinds.first { return only.rawValue }
        return model.kernelChoices.map { "\($0.shape) \($0.kernel)" }.joined(separator: ", ")
    }

    var text: String {
        String(format: "load %.2f s | prompt %d tokens, %.1f tok/s | generated %d tokens, %.1f tok/s",
               load, stats.promptTokens, stats.promptTokensPerSecond, stats.generatedTokens,
               stats.generatedTokensPerSecond) + " | stop: \(stats.stopReason.rawValue) | \(threads) threads, \(isa), " +
            "\(decodeKernels) decoding"
    }

    var json: String {
        jsonLine([("load_s", .double(load)), ("prompt_tokens", .int(stats.promptTokens)),
                  ("prompt_tok_s", .double(stats.promptTokensPerSecond)), ("generated_tokens", .int(stats.generatedTokens)),
                  ("gen_tok_s", .double(stats.generatedTokensPerSecond)), ("stop", .string(stats.stopReason.rawValue)),
                  ("threads", .int(threads)), ("isa", .string(isa.description)), ("decode_kernels", .string(decodeKernels))])
    }
}
