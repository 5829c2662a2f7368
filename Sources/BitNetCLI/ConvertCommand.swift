import Foundation
import ArgumentParser
import BitNet
import BitNetJSON
import BitNetConvert

/// `bitnet convert`: a Hugging Face checkpoint folder → GGUF, in one process,
/// streaming tensor by tensor (see `HFConverter`).
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert a Hugging Face BitNet checkpoint (safetensors + config.json + tokenizer) to GGUF.",
        discussion: """
        Families: microsoft/bitnet-b1.58-2B-4T-bf16 master weights and 1bitLLM fp16 latent weights are \
        ternarized per tensor; packed uint8 + weight_scale checkpoints (bitnet-b1.58-2B-4T, Llama3-8B-1.58, \
        Falcon3-1.58bit) are unpacked. Llama-family models get the Q/K row permutation for adjacent-pair RoPE. \
        The file is written under a temporary name, re-read and checked, and only then renamed to -o.

        Given a GGUF file instead of a folder, convert re-encodes its ternary projections with --type \
        (e.g. a llama.cpp TQ2_0 or bitnet.cpp TL2 file → I2_S, or I2_S → TQ2_0 for llama.cpp) and copies \
        every other tensor and key.
        """
    )

    @Argument(help: "The Hugging Face checkpoint folder (config.json, *.safetensors, tokenizer files), or a GGUF model to re-encode with another --type.")
    var folder: String

    @Option(name: .shortAndLong, help: "Output GGUF path (not needed with --dry-run).")
    var output: String?

    @Option(name: .customLong("type"), help: "Projection storage: i2_s (default, bitnet.cpp's format), tq2_0 / tq1_0 (llama.cpp's), tl1 / tl2 (this engine's lookup-table layouts), f16, or bitnetcpp-tl1 / bitnetcpp-tl2 (bitnet.cpp's TL layouts, for the shapes it publishes kernels for).")
    var projectionType = "i2_s"

    @Option(name: .customLong("embedding-type"), help: "Embedding/head storage: f16 (default, as the official files), q8_0, q6_k, q4_k or q4_0 (8.5, 6.56, 4.5, 4.5 bits per weight; computed natively from the blocks by this engine). For a GGUF input: keep (default), f16, q8_0, q6_k, q4_k or q4_0.")
    var embeddingTypeOption: String?
    var embeddingType: String { embeddingTypeOption ?? (isGGUFInput ? "keep" : "f16") }

    @Option(help: "Override the detected tokenizer.ggml.pre (e.g. llama-bpe, falcon3, gpt-2, default).")
    var pre: String?

    @Option(help: "general.name (default: the checkpoint's _name_or_path or folder name).")
    var name: String?

    @Flag(name: .customLong("dry-run"), help: "List the planned keys, tensors and problems; write nothing.")
    var dryRun = false

    @Flag(help: "Print the plan (with --dry-run) or the result as JSON on stdout.")
    var json = false

    func run() throws {
        guard dryRun || output != nil else { throw ValidationError("give -o <out.gguf>, or --dry-run") }
        if isGGUFInput { return try reencode() }
        let options = ConversionOptions(projectionType: projectionType, embeddingType: embeddingType,
                                        preTokenizer: pre, name: name)
        let start = Stopwatch.now()
        let converter = try HFConverter(folder: folder, options: options)
        let plan = converter.plan
        if dryRun {
            if json { print(Self.json(plan: plan)) } else { printPlan(plan) }
            if !plan.problems.isEmpty { throw ExitCode(1) }
            return
        }
        guard let output else { return }
        for w in plan.warnings { note("warning: \(w)") }
        if let problem = plan.problems.first {
            for p in plan.problems.dropFirst() { note("error: \(p)") }
            throw problem
        }
        var bar: ProgressBar?
        let report = try converter.convert(to: output) { p in
            if bar == nil { bar = ProgressBar(label: "convert", total: Double(p.totalBytes), unit: ProgressBar.bytes) }
            bar?.update(Double(p.bytesWritten), detail: p.tensor.isEmpty ? "" : "[\(p.index + 1)/\(p.count)] \(p.tensor)")
        }
        bar?.finish()
        let seconds = Stopwatch.now() - start
        let peak = report.peakResidentBytes ?? ProcessMemory.peakResidentBytes()
        if json {
            print(Self.object([
                ("output", Self.string(report.path)), ("bytes", String(report.fileBytes)),
                ("tensors", String(report.tensorCount)), ("metadata_keys", String(report.metadataCount)),
                ("seconds", String(format2(seconds))), ("peak_rss_bytes", peak.map(String.init) ?? "null"),
                ("largest_source_tensor_bytes", String(plan.largestSourceBytes)),
            ]))
        }
        note("wrote \(report.path): \(plan.config.architectureName), \(report.tensorCount) tensors, " +
             "\(ProgressBar.bytes(Double(report.fileBytes))) in \(format2(seconds)) s; checked by re-reading")
        note("peak memory (VmHWM): \(peak.map { ProgressBar.bytes(Double($0)) } ?? "unknown"); largest source tensor " +
             ProgressBar.bytes(Double(plan.largestSourceBytes)))
    }

    /// A file (not a folder) is a GGUF model to re-encode.
    private var isGGUFInput: Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) && !isDirectory.boolValue
    }

    /// A GGUF model in, the same model with its projections in --type out.
    private func reencode() throws {
        guard let type = GGUFModelLayout.ProjectionType(name: projectionType) else {
            throw ValidationError("unknown --type '\(projectionType)'; known: \(GGUFModelLayout.ProjectionType.names)")
        }
        for (flag, given) in [("--pre", pre != nil), ("--name", name != nil)] where given {
            throw ValidationError("\(flag) applies to Hugging Face checkpoints; a GGUF input keeps its tokenizer and name")
        }
        let embedding: GGMLType?
        switch embeddingType.lowercased() {
        case "keep": embedding = nil
        case "f16": embedding = .f16
        case "q8_0": embedding = .q8_0
        case "q6_k": embedding = .q6_K
        case "q4_k": embedding = .q4_K
        case "q4_0": embedding = .q4_0
        default: throw ValidationError("--embedding-type for a GGUF input: keep (default), f16, q8_0, q6_k, q4_k or q4_0")
        }
        let start = Stopwatch.now()
        let reencoder = try GGUFReencoder(source: try GGUFFile(path: folder), projectionType: type, embeddingType: embedding)
        let c = reencoder.config
        if dryRun {
            note("\(folder): \(c.architectureName), \(c.layerCount) layers; projections would be written as \(type.name)")
            return
        }
        guard let output else { return }
        var bar: ProgressBar?
        try reencoder.write(to: output) { done, total in
            if bar == nil { bar = ProgressBar(label: "convert", total: Double(total), unit: ProgressBar.bytes) }
            bar?.update(Double(done))
        }
        bar?.finish()
        _ = try ModelWeights(path: output) // re-read: every tensor must load back
        let bytes = (try? GGUFFile(path: output).fileSize) ?? 0
        let seconds = Stopwatch.now() - start
        if json {
            print(Self.object([("output", Self.string(output)), ("bytes", String(bytes)), ("type", Self.string(type.name)),
                               ("seconds", String(format2(seconds)))]))
        }
        note("wrote \(output): \(c.architectureName), projections \(type.name), \(ProgressBar.bytes(Double(bytes))) " +
             "in \(format2(seconds)) s; checked by re-reading")
    }

    private func format2(_ x: Double) -> String { String(Double(Int(x * 100)) / 100) }

    private func printPlan(_ plan: ConversionPlan) {
        let c = plan.config
        print("checkpoint: \(plan.folder)")
        print("architecture: \(c.architectureName): layers \(c.layerCount), hidden \(c.hiddenSize), ffn \(c.ffnSize), " +
              "heads \(c.headCount)/\(c.kvHeadCount), head dim \(c.headDim), vocab \(c.vocabSize), ctx \(c.contextLength), " +
              "rope θ \(c.ropeTheta), eps \(c.normEpsilon), \(c.activation.rawValue)")
        print("weights: \(plan.checkpointKind.isEmpty ? "(none found)" : plan.checkpointKind)")
        print("tokenizer: \(plan.tokenizerSummary)")
        print("\nmetadata (\(plan.metadata.count) keys):")
        for (key, value) in plan.metadata {
            let text = "\(value)"
            print("  \(key) = \(text.count > 100 ? String(text.prefix(97)) + "..." : text)")
        }
        print("\ntensors (\(plan.steps.count), \(ProgressBar.bytes(Double(plan.outputTensorBytes)))):")
        for step in plan.steps {
            let e = step.entry
            print("  \(e.name) \(e.dims) \(e.type) ← \(step.summary)")
        }
        for w in plan.warnings { print("warning: \(w)") }
        for p in plan.problems { print("problem: \(p)") }
        print(plan.problems.isEmpty ? "\nready to convert" : "\n\(plan.problems.count) problem(s): nothing would be written")
    }

    // MARK: - JSON output (tiny encoder: strings, numbers, arrays, objects)

    static func string(_ s: String) -> String { JSONWriter.quoted(s) }

    static func object(_ fields: [(String, String)]) -> String {
        "{" + fields.map { "\(string($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
    }

    static func array(_ items: [String]) -> String { "[" + items.joined(separator: ", ") + "]" }

    static func json(plan: ConversionPlan) -> String {
        let c = plan.config
        let tensors = plan.steps.map { s in
            object([("name", string(s.entry.name)), ("dims", array(s.entry.dims.map(String.init))),
                    ("type", string(s.entry.type.name)), ("bytes", String(s.entry.byteCount)),
                    ("source", string(s.summary))])
        }
        let metadata = plan.metadata.map { key, value -> String in
            let text = "\(value)"
            return object([("key", string(key)), ("type", string(value.typeName)),
                           ("value", string(text.count > 200 ? String(text.prefix(197)) + "..." : text))])
        }
        return object([
            ("folder", string(plan.folder)),
            ("architecture", string(c.architectureName)),
            ("config", object([("vocab_size", String(c.vocabSize)), ("context_length", String(c.contextLength)),
                               ("hidden_size", String(c.hiddenSize)), ("layers", String(c.layerCount)),
                               ("ffn_size", String(c.ffnSize)), ("heads", String(c.headCount)),
                               ("kv_heads", String(c.kvHeadCount)), ("head_dim", String(c.headDim)),
                               ("activation", string(c.activation.rawValue))])),
            ("weights", string(plan.checkpointKind)),
            ("tokenizer", string(plan.tokenizerSummary)),
            ("metadata", array(metadata)),
            ("tensors", array(tensors)),
            ("output_tensor_bytes", String(plan.outputTensorBytes)),
            ("largest_source_tensor_bytes", String(plan.largestSourceBytes)),
            ("warnings", array(plan.warnings.map(string))),
            ("problems", array(plan.problems.map { string("\($0)") })),
        ])
    }
}
