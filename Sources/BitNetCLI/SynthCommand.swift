import Foundation
import ArgumentParser
import BitNet
import BitNetConvert

struct SynthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "synth",
        abstract: "Write a model with random ternary weights, laid out like bitnet.cpp's official I2_S files.",
        discussion: """
        Shapes: \(SynthShape.allCases.map(\.rawValue).joined(separator: ", ")); or give --arch and the explicit \
        dimensions. The file streams to disk tensor by tensor, made on every core (a 100B shape needs a few \
        tens of MB of RAM and 29.4 GB of disk as I2_S with an F16 head; 26.4 GB with --head-type q4_0, 22.2 GB \
        with --type tl2 as well). Its size is printed first and checked against the free disk space.
        """
    )

    @Option(help: "A named shape (2b4t, large, 3b, 8b, falcon3-1b/3b/7b/10b, 70b, 100b).")
    var shape: String?

    @Option(name: .shortAndLong, help: "Output GGUF path.")
    var output: String

    @Option(help: "Copy the tokenizer.* metadata of this GGUF (e.g. a vocab-only file).")
    var vocab: String?

    @Option(parsing: .unconditional, help: "Random seed (same seed, same file).")
    var seed: UInt64 = 1

    @Option(help: "Architecture for explicit dimensions: bitnet-b1.58, bitnet or llama.")
    var arch: String?
    // numbers parse `.unconditional`ly so that "--hidden -1" is refused by value, not as a missing value
    @Option(parsing: .unconditional, help: "Hidden size.") var hidden: Int?
    @Option(parsing: .unconditional, help: "Layer count.") var layers: Int?
    @Option(parsing: .unconditional, help: "Attention heads.") var heads: Int?
    @Option(name: .customLong("kv-heads"), parsing: .unconditional, help: "KV heads (default: heads).") var kvHeads: Int?
    @Option(parsing: .unconditional, help: "FFN width.") var ffn: Int?
    @Option(name: .customLong("vocab-size"), parsing: .unconditional, help: "Vocabulary size.") var vocabSize: Int?
    @Option(parsing: .unconditional, help: "Context length.") var ctx: Int?
    @Option(name: .customLong("rope-theta"), parsing: .unconditional, help: "RoPE base.") var ropeTheta: Float?
    @Option(help: "FFN activation override: relu2 or silu.") var activation: String?
    @Option(name: .customLong("type"),
            help: "Projection storage: i2_s (default), tq2_0, tq1_0 (K a multiple of 256), tl1, tl2, f16 (latent weights), or bitnetcpp-tl1 / bitnetcpp-tl2 (bitnet.cpp's layouts; large, 3b and 8b shapes only).")
    var projectionType = "i2_s"
    @Flag(name: .customLong("f16-projections"), help: "Same as --type f16.")
    var f16Projections = false
    @Option(name: .customLong("head-type"),
            help: "Embedding/head storage: f16 (default, as the official files), q8_0, q6_k, q4_k or q4_0 (random valid blocks; the hidden size must be a multiple of 32 for q8_0/q4_0, of 256 for the K types).")
    var headType = "f16"

    func run() throws {
        var config: ModelConfig
        if let shape {
            guard let named = SynthShape(rawValue: shape) else {
                throw ValidationError("unknown --shape '\(shape)'; known: \(SynthShape.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            config = named.config
        } else {
            guard let archName = arch, let architecture = ModelArchitecture(ggufName: archName) else {
                throw ValidationError("give --shape, or --arch (bitnet-b1.58, bitnet, llama) with the dimensions")
            }
            guard let hidden, let layers, let heads, let ffn, let vocabSize else {
                throw ValidationError("explicit shapes need --hidden, --layers, --heads, --ffn and --vocab-size")
            }
            config = ModelConfig(architecture: architecture, architectureName: archName, vocabSize: vocabSize,
                                 contextLength: ctx ?? 2048, hiddenSize: hidden, layerCount: layers, ffnSize: ffn,
                                 headCount: heads, kvHeadCount: kvHeads ?? heads, ropeTheta: ropeTheta)
        }
        if let activation {
            guard let act = Activation(rawValue: activation) else { throw ValidationError("--activation must be relu2 or silu") }
            config.activation = act
        }
        do { try config.validate(path: output) } catch { throw ValidationError("\(error)") }
        guard config.hiddenSize % config.headCount == 0 else {
            throw ValidationError("--hidden (\(config.hiddenSize)) must be a multiple of --heads (\(config.headCount))")
        }
        guard let type = ModelSynthesizer.ProjectionType(name: f16Projections ? "f16" : projectionType) else {
            throw ValidationError("unknown --type '\(projectionType)'; known: \(ModelSynthesizer.ProjectionType.names)")
        }
        if type == .tq2_0 || type == .tq1_0, config.hiddenSize % 256 != 0 || config.ffnSize % 256 != 0 || config.qDim % 256 != 0 {
            throw ValidationError("--type \(projectionType) needs every projection's input size to be a multiple of 256")
        }
        var synth = ModelSynthesizer(config: config, seed: seed)
        synth.projectionType = type
        if let problem = synth.layout.unsupportedShapes { throw ValidationError("--type \(projectionType): \(problem)") }
        guard let head = ModelSynthesizer.headTypes.first(where: { $0.name.lowercased() == headType.lowercased() }) else {
            throw ValidationError("unknown --head-type '\(headType)'; known: \(ModelSynthesizer.headTypeNames)")
        }
        synth.headType = head
        if let problem = synth.unsupportedHeadType {
            let named = shape.map { "--shape \($0)" } ?? "--hidden \(config.hiddenSize)"
            throw ValidationError("--head-type \(headType) with \(named): \(problem)")
        }
        if let vocab {
            let file = try GGUFFile(path: vocab)
            synth.tokenizerMetadata = file.metadataKeys.filter { $0.hasPrefix("tokenizer.") }.compactMap { key in
                file.metadata[key].map { (key, $0) }
            }
            if let n = try file.optionalStringArray("tokenizer.ggml.tokens")?.count, n != config.vocabSize {
                throw ValidationError("\(vocab) has \(n) tokens but the model's vocabulary is \(config.vocabSize)")
            }
        }
        // the whole file is known before a byte is written: refuse early rather than fill the disk
        let size = try synth.fileSize()
        let free = ModelSynthesizer.freeBytes(forFile: output)
        note("writing \(output): \(ProgressBar.bytes(Double(size)))" +
             (free.map { " (\(ProgressBar.bytes(Double($0))) free on its disk)" } ?? ""))
        if let free, free < size {
            throw ValidationError("\(output) would take \(ProgressBar.bytes(Double(size))) (\(size) bytes) but its disk " +
                                  "has only \(ProgressBar.bytes(Double(free))) (\(free) bytes) free")
        }
        let start = Stopwatch.now()
        var bar: ProgressBar?
        try synth.write(to: output) { done, total in
            if bar == nil { bar = ProgressBar(label: "synth", total: Double(total), unit: ProgressBar.bytes) }
            let seconds = Stopwatch.now() - start
            bar?.update(Double(done), detail: seconds > 0.2 ? String(format: "%.0f MB/s", Double(done) / seconds / 1e6) : "")
        }
        bar?.finish()
        let seconds = Stopwatch.now() - start
        note("wrote \(output): \(config.architectureName), \(config.layerCount) layers, hidden \(config.hiddenSize), " +
             "\(ProgressBar.bytes(Double(size))) in \(String(format: "%.1f", seconds)) s " +
             "(\(String(format: "%.0f", Double(size) / max(seconds, 1e-9) / 1e6)) MB/s)")
    }
}
