import ArgumentParser
import BitNet

/// Options shared by every command that runs a model.
struct ModelOptions: ParsableArguments {
    @Option(name: [.customShort("m"), .customLong("model")], help: ArgumentHelp(
        "Model file (GGUF: I2_S as published for bitnet.cpp, bitnet.cpp TL1/TL2 of its published shapes, our TL1/TL2, TQ1_0/TQ2_0, or F16/F32/BF16 projections).",
        discussion: "Default: $BITNET_MODEL, else the small Shakespeare model shipped with bitnet."))
    var modelPath: String?

    /// The model to load: -m, $BITNET_MODEL, or the shipped default.
    var model: String {
        get throws {
            if let modelPath { return modelPath }
            guard let path = DefaultModel.path() else {
                throw ValidationError("no model given (-m FILE) and the default model \(DefaultModel.fileName) " +
                                      "was not found next to the executable (set BITNET_MODEL or pass -m)")
            }
            return path
        }
    }

    // `.unconditional`: so that "-t -1" is parsed and refused by value (see GenerateCommand)
    @Option(name: [.customShort("t"), .long], parsing: .unconditional, help: "Threads (default: every online core).")
    var threads: Int?

    @Option(parsing: .unconditional, help: "Context length (default: the model's, capped to fit memory).")
    var ctx: Int?

    @Option(parsing: .unconditional, help: "Prompt tokens per batch.")
    var batch = 128

    @Option(help: "Kernel level: scalar, avx2, avx512, avx512vnni, amx, neon, dotprod (may only lower the detected one).")
    var isa: String?

    @Option(help: "Output head: f16 (the file's head as stored: exact, default), q8 (int8 per row, requantized at load), or a block type requantized at load for the native block kernels: q8_0, q6_k, q4_k, q4_0 (fewer bytes per token; logits shift slightly).")
    var head: String = "f16"

    @Option(help: "Decode kernel: auto (fastest per matrix shape, measured once per machine and cached; a TL1/TL2 file runs in place with its own kernel), i2_s, tl1 or tl2 (one not matching a TL file's layout repacks it at load).")
    var kernel = "auto"

    @Option(name: .customLong("kv"), help: "KV cache precision: f32 (exact, default) or f16 (half the memory and the bytes attention reads; logits move by ~1e-3).")
    var kvPrecision = "f32"

    func validate() throws {
        guard KernelSelection(name: kernel) != nil else { throw ValidationError("--kernel must be auto, i2_s, tl1 or tl2") }
        guard BitNetModel.HeadPrecision(rawValue: head) != nil else {
            throw ValidationError("--head must be one of \(BitNetModel.HeadPrecision.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(head)')")
        }
        guard KVCache.Precision(rawValue: kvPrecision) != nil else { throw ValidationError("--kv must be f32 or f16") }
        if let threads, !(1...1024).contains(threads) { throw ValidationError("-t must be in 1...1024 (got \(threads))") }
        if let ctx, ctx < 1 { throw ValidationError("--ctx must be positive (got \(ctx))") }
        if !(1...4096).contains(batch) { throw ValidationError("--batch must be in 1...4096 (got \(batch))") }
    }

    func kernels() throws -> Kernels {
        guard let isa else { return Kernels.best }
        guard let level = ISA(name: isa) else { throw ValidationError("unknown --isa '\(isa)'") }
        do { return try Kernels(isa: level) } catch { throw ValidationError("\(error)") }
    }

    /// Loads and prepares the model, with a progress bar and the load time on stderr.
    func load(quiet: Bool = false) throws -> (BitNetModel, Double) {
        let start = Stopwatch.now()
        let bar = quiet ? nil : ProgressBar(label: "loading", total: 1)
        let path = try model
        BusErrorHandler.install(mappedFile: path)
        let file = try GGUFFile(path: path)
        let selection = KernelSelection(name: kernel) ?? .auto
        let weights = try ModelWeights(file: file, lookupTables: LookupTableLoading(for: [selection], file: file)) { done, total in
            bar?.update(Double(done) / Double(total))
        }
        bar?.finish()
        let ids = try SpecialTokenIDs(gguf: weights.file, vocabularySize: weights.config.vocabSize)
        for ignored in ids.ignored { note("note: ignoring \(ignored): not a token of the \(weights.config.vocabSize)-token vocabulary") }
        let loaded = try BitNetModel(weights: weights, contextLength: ctx, threads: threads, kernels: kernels(),
                                     batchSize: batch, headPrecision: BitNetModel.HeadPrecision(rawValue: head) ?? .f16,
                                     kernel: selection,
                                     kvPrecision: KVCache.Precision(rawValue: kvPrecision) ?? .f32)
        return (loaded, Stopwatch.now() - start)
    }
}

/// Parses "1,2,3" into token ids.
func parseTokenList(_ text: String) throws -> [Int32] {
    try text.split(separator: ",").map { part in
        guard let v = Int32(part.filter { $0 != " " }) else {
            throw ValidationError("bad token id '\(part)' (expected comma-separated integers)")
        }
        return v
    }
}
