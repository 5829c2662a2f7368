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

    // Numbers parse `.unconditional`ly: otherwise "-n -1" reads -1 as an option and
    // reports a missing value instead of the bad one (and "--presence-penalty -0.5"
    // could not be written at all).
    @Option(name: .shortAndLong, parsing: .unconditional, help: "Tokens to generate.")
    var n = 128

    @Option(parsing: .unconditional, help: "Temperature (0 = greedy).") var temp: Float = 0.8
    @Option(name: .customLong("top-k"), parsing: .unconditional, help: "Top-k (0 = off).") var topK = 40
    @Option(name: .customLong("top-p"), parsing: .unconditional, help: "Top-p (1 = off).") var topP: Float = 0.95
    @Option(name: .customLong("min-p"), parsing: .unconditional, help: "Min-p (0 = off).") var minP: Float = 0.05
    @Option(name: .customLong("repeat-penalty"), parsing: .unconditional, help: "Repetition penalty (1 = off).")
    var repeatPenalty: Float = 1
    @Option(name: .customLong("presence-penalty"), parsing: .unconditional, help: "Presence penalty.")
    var presencePenalty: Float = 0
    @Option(name: .customLong("frequency-penalty"), parsing: .unconditional, help: "Frequency penalty.")
    var frequencyPenalty: Float = 0
    @Option(parsing: .unconditional, help: "Random seed.") var seed: UInt64 = 0
    @Option(name: .customLong("stop-token"), help: "Extra stop token ids, comma-separated.") var stopToken: String?
    @Flag(help: "Print the summary as one JSON object on stderr.") var json = false

    func validate() throws {
        guard n >= 0 else { throw ValidationError("-n must be ≥ 0 (got \(n))") }
        try checkNumber("--temp", temp, "≥ 0") { $0 >= 0 }
        guard topK >= 0 else { throw ValidationError("--top-k must be ≥ 0 (got \(topK))") }
        try checkNumber("--top-p", topP, "in 0...1") { (0...1).contains($0) }
        try checkNumber("--min-p", minP, "in 0...1") { (0...1).contains($0) }
        try checkNumber("--repeat-penalty", repeatPenalty, "> 0") { $0 > 0 }
        try checkNumber("--presence-penalty", presencePenalty, "finite") { _ in true }
        try checkNumber("--frequency-penalty", frequencyPenalty, "finite") { _ in true }
    }

    func run() throws {
        let (model, loadSeconds) = try options.load()
        let tokenizer = try? Tokenizer(gguf: model.weights.file)
        let input: [Int32]
        if let tokens {
            input = try parseTokenList(tokens)
        } else {
            guard let tokenizer else {
                // present but unusable: rebuilding it throws the reason, which "no tokenizer" would hide
                if model.weights.file["tokenizer.ggml.model"] != nil { _ = try Tokenizer(gguf: model.weights.file) }
                throw ValidationError("\(model.weights.file.path) has no tokenizer metadata: give the prompt as --tokens 1,2,3")
            }
            let limit = promptByteLimit(contextLength: options.ctx ?? model.config.contextLength)
            let text = try readPrompt(text: prompt, file: file, limit: limit.bytes, limitReason: limit.reason)
            input = tokenizer.encode(text, parseSpecial: special)
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
        if let eos = try SpecialTokenIDs(gguf: model.weights.file, vocabularySize: model.config.vocabSize).eos { stops.insert(eos) }
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

/// Refuses a non-finite option value (a literal past Float's range such as 1e39
/// parses as inf) or one outside `range`, naming the option and the value.
func checkNumber(_ option: String, _ value: Float, _ range: String, _ ok: (Float) -> Bool) throws {
    guard value.isFinite else {
        throw ValidationError("\(option) must be a finite number (got \(value)\(value.isNaN ? "" : ": the value is too large for a 32-bit float"))")
    }
    guard ok(value) else { throw ValidationError("\(option) must be \(range) (got \(value))") }
}

/// Prompt files and standard input are read up to a limit, so that `-f /dev/zero`
/// or an endless pipe is refused by policy instead of reading until an allocation
/// aborts. Text read whole without a context to size it (perplexity, tokenize) stops here.
let maxTextBytes = 64 << 20

/// The prompt limit when the context is known: 64 bytes per context token (real
/// tokenizers average 3–5 bytes a token, so a larger prompt cannot fit), at least 1 MiB.
func promptByteLimit(contextLength: Int) -> (bytes: Int, reason: String) {
    let bytes = max(1 << 20, min(1 << 30, contextLength) * 64)
    return (bytes, "64 bytes per token of the \(contextLength)-token context; raise --ctx for a longer prompt")
}

/// The prompt from -p, -f or standard input (in that order), at most `limit` bytes.
func readPrompt(text: String?, file: String?, limit: Int = maxTextBytes,
                limitReason: String = "the most read as text") throws -> String {
    if let text { return text }
    if let file {
        let data = try FileManagerLite.read(file, limit: limit, limitReason: limitReason)
        return String(decoding: data, as: UTF8.self)
    }
    guard isatty(0) == 0 else { throw ValidationError("give a prompt with -p, -f FILE, or on standard input") }
    guard let bytes = try FileManagerLite.read(descriptor: 0, limit: limit, name: "standard input") else {
        throw ValidationError("the prompt on standard input is longer than \(ProgressBar.bytes(Double(limit))) " +
                              "(\(limitReason))")
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// Whole-file reads without Foundation, bounded.
enum FileManagerLite {
    /// A regular file of at most `limit` bytes. Anything else (a FIFO, a device such
    /// as /dev/zero, a directory) is refused by name before a read could block or run
    /// on forever; such input can come on standard input instead.
    static func read(_ path: String, limit: Int, limitReason: String) throws -> [UInt8] {
        // O_NONBLOCK: opening a FIFO would otherwise wait for a writer before fstat could refuse it
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            throw ValidationError("cannot read file '\(path)': \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw ValidationError("file '\(path)' is not a regular file (a FIFO, device or directory); " +
                                  "pipe such input on standard input instead")
        }
        let tooLong = ValidationError("file '\(path)' is longer than \(ProgressBar.bytes(Double(limit))) " +
                                      "(\(limitReason))")
        guard st.st_size <= limit, let bytes = try read(descriptor: fd, limit: limit, name: "file '\(path)'") else {
            throw tooLong
        }
        return bytes
    }

    /// Everything up to end of file, or nil once more than `limit` bytes arrive
    /// (one byte past the limit is read to tell the two apart).
    static func read(descriptor fd: Int32, limit: Int, name: String) throws -> [UInt8]? {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            #if canImport(Glibc)
            let n = Glibc.read(fd, &buffer, min(buffer.count, limit + 1 - bytes.count))
            #else
            let n = Darwin.read(fd, &buffer, min(buffer.count, limit + 1 - bytes.count))
            #endif
            if n < 0 {
                if errno == EINTR { continue }
                throw ValidationError("cannot read \(name): \(String(cString: strerror(errno)))")
            }
            if n == 0 { return bytes }
            bytes += buffer[0..<n]
            if bytes.count > limit { return nil }
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
        let kinds = Set(model.decodeKernels)
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
