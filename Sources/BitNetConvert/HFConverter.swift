import BitNet
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Converts a Hugging Face BitNet checkpoint folder to a bitnet.cpp-compatible
/// GGUF, with no Python. `init` reads config.json, the tokenizer files and the
/// safetensors headers (no tensor data) and builds a `ConversionPlan`;
/// `convert` streams the tensors one at a time through `GGUFWriter`, then
/// re-reads the file and checks it against the plan before giving it its final
/// name.
///
/// Families (docs/FORMATS.md §7): (a) 2B4T bf16 master weights and (c) 1bitLLM
/// fp16 latent weights are ternarized per tensor; (b) packed uint8 +
/// `weight_scale` checkpoints are unpacked. The GGUF arch follows the graph:
/// `bitnet-b1.58` (attn_sub_norm/ffn_sub_norm), `bitnet` (1bitLLM's
/// inner_attn_ln/ffn_layernorm), `llama` (no sub-norms; Q/K rows permuted for
/// adjacent-pair RoPE, separate output head).
public final class HFConverter: @unchecked Sendable {
    public let folder: String
    public let options: ConversionOptions
    public let plan: ConversionPlan
    private let checkpoint: SafetensorsCheckpoint

    public init(folder: String, options: ConversionOptions = ConversionOptions()) throws {
        self.folder = folder
        self.options = options
        let projectionType = try options.resolvedProjectionType()
        let embeddingType = try options.resolvedEmbeddingType()
        guard FileBytes.isDirectory(folder) else {
            throw ConvertError.missingFile(path: folder, what: "checkpoint folder")
        }
        let configPath = "\(folder)/config.json"
        let hf = try HFModelConfig(path: configPath)
        let checkpoint = try SafetensorsCheckpoint(folder: folder)
        self.checkpoint = checkpoint
        let tensors = checkpoint.tensors
        var problems: [ConvertError] = []
        var warnings: [String] = []

        // architecture: the model class, then the sub-norm names decide the graph
        let layer0 = "model.layers.0"
        let hasInnerNorms = tensors["\(layer0).self_attn.inner_attn_ln.weight"] != nil
        let hasSubNorms = tensors["\(layer0).self_attn.attn_sub_norm.weight"] != nil
        let classes = Set(hf.architectures.map { $0.lowercased() })
        let architecture: ModelArchitecture
        if classes.contains("bitnetforcausallm") || (classes.isEmpty && hf.modelType == "bitnet") {
            architecture = hasInnerNorms ? .bitnet : .bitnetB158
        } else if classes.contains("llamaforcausallm") || (classes.isEmpty && hf.modelType == "llama") {
            architecture = hasInnerNorms ? .bitnet : (hasSubNorms ? .bitnetB158 : .llama)
        } else {
            throw ConvertError.unsupportedArchitecture(path: configPath, architecture: hf.architectureName)
        }

        let activation: Activation
        switch hf.hiddenAct?.lowercased() {
        case nil: activation = architecture.defaultActivation
        case "relu2", "relu_squared", "relu_sqr": activation = .relu2
        case "silu", "swish": activation = .silu
        case let other?:
            throw ConvertError.invalidConfig(path: configPath, key: "hidden_act", reason: "'\(other)' is not supported (relu2 or silu)")
        }
        let config = ModelConfig(
            architecture: architecture, vocabSize: hf.vocabSize,
            contextLength: hf.maxPositionEmbeddings ?? (architecture == .bitnetB158 ? 4096 : 2048),
            hiddenSize: hf.hiddenSize, layerCount: hf.layerCount, ffnSize: hf.intermediateSize,
            headCount: hf.headCount, kvHeadCount: hf.kvHeadCount, headDim: hf.headDim, ropeTheta: hf.ropeTheta,
            normEpsilon: hf.rmsNormEps ?? (architecture == .llama ? 1e-6 : 1e-5), activation: activation)
        do {
            try config.validate(path: configPath)
        } catch let ModelError.invalidHyperparameter(_, key, value, reason) {
            throw ConvertError.invalidConfig(path: configPath, key: key, reason: "\(value): \(reason)")
        }
        if architecture != .llama && config.qDim != config.hiddenSize {
            throw ConvertError.invalidConfig(path: configPath, key: "head_dim",
                                             reason: "heads × head_dim (\(config.qDim)) must equal hidden_size (\(config.hiddenSize))")
        }

        let tokenizer = try HFTokenizerMetadata(folder: folder, vocabSize: config.vocabSize, config: hf,
                                                pre: options.preTokenizer)
        warnings += tokenizer.warnings

        // head: tied unless config.json says otherwise and lm_head exists
        let hasHead = tensors["lm_head.weight"] != nil
        let tied = hf.tieWordEmbeddings ?? !hasHead
        if !tied && !hasHead {
            problems.append(.missingTensor(path: checkpoint.source, tensor: "lm_head.weight"))
        }
        if tied && hasHead {
            warnings.append("lm_head.weight is ignored: config.json ties the head to the embedding")
        }
        let name = options.name ?? hf.nameOrPath.flatMap { $0.split(separator: "/").last.map(String.init) }
            ?? Self.folderName(folder)
        if projectionType == .tq2_0 || projectionType == .tq1_0,
           let odd = [config.hiddenSize, config.qDim, config.ffnSize].first(where: { $0 % 256 != 0 }) {
            problems.append(.invalidConfig(path: configPath, key: "--type \(options.projectionType)",
                                           reason: "TQ blocks need every input width to be a multiple of 256 (\(odd) is not); use i2_s"))
        }
        var layout = GGUFModelLayout(config: config, name: name, projectionType: projectionType,
                                     hasOutput: architecture == .llama || !tied)
        layout.embeddingType = embeddingType
        if let block = embeddingType.blockSize, block > 1, config.hiddenSize % block != 0 {
            problems.append(.invalidConfig(path: configPath, key: "--embedding-type \(embeddingType.name.lowercased())",
                                           reason: "\(embeddingType) rows are \(block)-element blocks; hidden size \(config.hiddenSize) is not a multiple of \(block)"))
        }
        if let problem = layout.unsupportedShapes {
            problems.append(.invalidConfig(path: configPath, key: "--type \(options.projectionType)", reason: problem + "; use i2_s"))
        }

        // one step per GGUF tensor
        var used = Set<String>()
        var steps: [ConversionStep] = []
        func find(_ candidates: [String]) -> SafetensorsTensor? {
            for c in candidates { if let t = tensors[c] { used.insert(c); return t } }
            problems.append(.missingTensor(path: checkpoint.source, tensor: candidates[0]))
            return nil
        }
        func shape(_ t: SafetensorsTensor, _ expected: [Int]) -> Bool {
            // a scalar may be stored as [] or [1]
            if t.shape == expected || (expected == [1] && t.elementCount == 1) { return true }
            problems.append(.tensorShape(path: t.path, tensor: t.name, expected: expected, actual: t.shape))
            return false
        }
        func float(_ t: SafetensorsTensor) -> Bool {
            // F16 and BF16 have the same size, so a header that names the wrong one
            // passes every size check and yields silently wrong weights; a tensor in
            // the other half-precision format than config.json declares is refused.
            if let declared = hf.torchDType,
               (t.dtype == .f16 && declared == "bfloat16") || (t.dtype == .bf16 && declared == "float16") {
                problems.append(.unsupportedDType(path: t.path, tensor: t.name, dtype: t.dtype.rawValue,
                                                  reason: "contradicts config.json's torch_dtype '\(declared)' (mislabelled half-precision data?)"))
                return false
            }
            if t.dtype.isFloat { return true }
            problems.append(.unsupportedDType(path: t.path, tensor: t.name, dtype: t.dtype.rawValue,
                                              reason: "cannot be read as floats (expected BF16, F16 or F32)"))
            return false
        }
        let hfProjection = [TensorName.attnQ: "self_attn.q_proj", TensorName.attnK: "self_attn.k_proj",
                            TensorName.attnV: "self_attn.v_proj", TensorName.attnOutput: "self_attn.o_proj",
                            TensorName.ffnGate: "mlp.gate_proj", TensorName.ffnUp: "mlp.up_proj",
                            TensorName.ffnDown: "mlp.down_proj"]
        var kinds = Set<String>()
        for entry in layout.tensors {
            switch entry.role {
            case .tokenEmbedding, .output:
                let source = entry.role == .output && !tied ? "lm_head.weight" : "model.embed_tokens.weight"
                guard let t = find([source]), float(t), shape(t, [config.vocabSize, config.hiddenSize]) else { continue }
                steps.append(ConversionStep(entry: entry, recipe: .floats(t), permuteHeads: nil))
            case .outputNorm:
                guard let t = find(["model.norm.weight"]), float(t), shape(t, [config.hiddenSize]) else { continue }
                steps.append(ConversionStep(entry: entry, recipe: .floats(t), permuteHeads: nil))
            case .norm(let i, let norm, let count):
                let p = "model.layers.\(i)"
                let candidates: [String]
                switch norm {
                case TensorName.attnNorm: candidates = ["\(p).input_layernorm.weight"]
                case TensorName.ffnNorm: candidates = ["\(p).post_attention_layernorm.weight"]
                case TensorName.attnSubNorm: candidates = ["\(p).self_attn.attn_sub_norm.weight", "\(p).self_attn.inner_attn_ln.weight"]
                default: candidates = ["\(p).mlp.ffn_sub_norm.weight", "\(p).mlp.ffn_layernorm.weight"]
                }
                guard let t = find(candidates), float(t), shape(t, [count]) else { continue }
                steps.append(ConversionStep(entry: entry, recipe: .floats(t), permuteHeads: nil))
            case .projection(let i, let proj, let rows, let cols):
                let base = "model.layers.\(i).\(hfProjection[proj] ?? proj)"
                guard let t = find(["\(base).weight"]) else { continue }
                // llama.cpp's LlamaModel permutes Q with n_head and K with n_head_kv
                let permute = architecture == .llama
                    ? (proj == TensorName.attnQ ? config.headCount : proj == TensorName.attnK ? config.kvHeadCount : nil) : nil
                if t.dtype.isFloat {
                    guard shape(t, [rows, cols]) else { continue }
                    kinds.insert("\(t.dtype.rawValue) latent weights, ternarized per tensor")
                    steps.append(ConversionStep(entry: entry, recipe: .ternarize(t), permuteHeads: permute))
                } else if t.dtype.isPackedByte {
                    guard rows % 4 == 0 else {
                        problems.append(.tensorShape(path: t.path, tensor: t.name, expected: [rows, cols], actual: t.shape))
                        continue
                    }
                    guard shape(t, [rows / 4, cols]), let s = find(["\(base).weight_scale"]), float(s), shape(s, [1]) else { continue }
                    let multiply = hf.packedScaleMultiplies
                    kinds.insert("packed 2-bit + weight_scale (\(multiply ? "AutoBitLinear: multiply" : "BitLinear: divide"))")
                    steps.append(ConversionStep(entry: entry, recipe: .packed(t, scale: s, multiply: multiply), permuteHeads: permute))
                } else {
                    problems.append(.unsupportedDType(path: t.path, tensor: t.name, dtype: t.dtype.rawValue,
                                                      reason: "is neither float latent weights nor packed U8 codes"))
                }
            }
        }
        if tied && hasHead { used.insert("lm_head.weight") }
        for name in tensors.keys.sorted() where !used.contains(name) {
            // RoPE frequency buffers saved by old transformers versions carry no weights
            if name.hasSuffix("rotary_emb.inv_freq") { continue }
            problems.append(.unexpectedTensor(path: tensors[name]?.path ?? checkpoint.source, tensor: name))
        }
        if architecture == .llama && hf.linearClass == nil && kinds.contains(where: { $0.contains("latent") }) {
            warnings.append("config.json has no BitNet quantization_config: the float weights are assumed to be ternary-trained")
        }

        plan = ConversionPlan(folder: folder, config: config, layout: layout,
                              metadata: layout.metadata + tokenizer.entries, steps: steps, problems: problems,
                              warnings: warnings, checkpointKind: kinds.sorted().joined(separator: "; "),
                              tokenizerSummary: tokenizer.summary)
    }

    /// The folder's own name, also for "." or a trailing slash.
    private static func folderName(_ folder: String) -> String {
        var resolved = folder
        if let p = realpath(folder, nil) {
            resolved = String(cString: p)
            free(p)
        }
        return resolved.split(separator: "/").last.map(String.init) ?? "model"
    }

    /// Writes the GGUF to `path`: streamed to `path.partial` (via the writer's
    /// own temporary name), re-read and checked, then renamed to `path`. On
    /// any failure nothing is left at `path` or at the temporary names.
    @discardableResult
    public func convert(to path: String, progress: ((ConversionProgress) -> Void)? = nil) throws -> ConversionReport {
        if let first = plan.problems.first { throw first }
        let tokenizerEntries = Array(plan.metadata.dropFirst(plan.layout.metadata.count))
        let writer = try plan.layout.declare(extraMetadata: tokenizerEntries)
        let partial = path + ".partial"
        let encoder = TensorEncoder(checkpoint: checkpoint)
        let steps = plan.steps
        var index = 0
        var dataStart = 0, total = 0
        do {
            try writer.write(to: partial, progress: { done, all in
                if index == 0 { dataStart = done }
                total = all
                progress?(ConversionProgress(tensor: index < steps.count ? steps[index].entry.name : "", index: index,
                                             count: steps.count, bytesWritten: done, totalBytes: all))
            }) { tensor, sink in
                guard index < steps.count, steps[index].entry.name == tensor.name else {
                    throw ConvertError.verificationFailed(path: partial, reason: "tensor order differs from the plan at '\(tensor.name)'")
                }
                let step = steps[index]
                try encoder.write(step, to: &sink) { written in
                    progress?(ConversionProgress(tensor: step.entry.name, index: index, count: steps.count,
                                                 bytesWritten: dataStart + tensor.offset + written, totalBytes: total))
                }
                index += 1
            }
            let report = try verify(partial, finalPath: path)
            guard rename(partial, path) == 0 else { throw ConvertError.io(path: path, operation: "rename", errno: errno) }
            return report
        } catch {
            unlink(partial)
            throw error
        }
    }

    /// Re-reads the written file: the tensor table (names, dims, types) and key
    /// set must be the planned ones, and the model config must read back equal.
    private func verify(_ partial: String, finalPath: String) throws -> ConversionReport {
        let file = try GGUFFile(path: partial)
        let planned = plan.layout.tensors
        guard file.tensors.count == planned.count else {
            throw ConvertError.verificationFailed(path: partial, reason: "\(file.tensors.count) tensors, \(planned.count) planned")
        }
        for (got, want) in zip(file.tensors, planned) where got.name != want.name || got.dims != want.dims || got.type != want.type {
            throw ConvertError.verificationFailed(
                path: partial, reason: "tensor '\(got.name)' \(got.dims) \(got.type) differs from the planned '\(want.name)' \(want.dims) \(want.type)")
        }
        let keys = Set(plan.metadata.map(\.0))
        guard Set(file.metadataKeys) == keys else {
            throw ConvertError.verificationFailed(path: partial, reason: "metadata keys differ from the plan")
        }
        let config = try ModelConfig(gguf: file)
        guard config == plan.config else {
            throw ConvertError.verificationFailed(path: partial, reason: "the model config reads back as \(config), planned \(plan.config)")
        }
        return ConversionReport(path: finalPath, fileBytes: file.fileSize, tensorCount: file.tensors.count,
                                metadataCount: file.metadataKeys.count, peakResidentBytes: ProcessMemory.peakResidentBytes())
    }
}
