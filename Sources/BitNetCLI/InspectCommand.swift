import ArgumentParser
import BitNet
import BitNetJSON

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a model's architecture, hyperparameters and tensors, or what the kernels detected on this CPU."
    )

    @Argument(help: "A GGUF file.")
    var path: String?

    @Flag(name: .long, help: "Print the CPU features detected, the kernel level chosen and why.")
    var cpu = false

    @Flag(help: "List every metadata key (long arrays abbreviated).")
    var metadata = false

    @Flag(help: "Print one JSON object (hyperparameters, tensors, decode kernels) instead of text.")
    var json = false

    func run() throws {
        guard cpu || path != nil else { throw ValidationError("give a GGUF file, or --cpu") }
        if cpu {
            print(ISA.report, terminator: "")
            print("available: " + ISA.supported.map(\.description).joined(separator: " "))
        }
        guard let path else { return }
        let file = try GGUFFile(path: path)
        let config: Result<ModelConfig, Error> = Result { try ModelConfig(gguf: file) }
        let tilings = Self.bitnetCppTilings(file)
        if json {
            print(Self.json(path: path, file: file, config: config, tilings: tilings, metadata: metadata))
            return
        }
        print("file: \(path) (GGUF v\(file.version), \(ProgressBar.bytes(Double(file.fileSize))), " +
              "\(file.tensors.count) tensors, \(file.metadataKeys.count) metadata keys)")
        switch config {
        case .success(let c):
            print("architecture: \(c.architectureName) (\(c.architecture.rawValue) graph)")
            print("layers \(c.layerCount), hidden \(c.hiddenSize), ffn \(c.ffnSize), heads \(c.headCount), kv heads " +
                  "\(c.kvHeadCount), head dim \(c.headDim), vocab \(c.vocabSize), context \(c.contextLength)")
            print("rope θ \(c.ropeTheta) (\(c.ropeIsNeoX ? "NeoX rotate-half" : "adjacent pairs")), rms eps \(c.normEpsilon), " +
                  "ffn activation \(c.activation.rawValue)")
            let kv = KVCache.byteCount(capacity: BitNetModel.defaultContextLength(config: c), layerCount: c.layerCount,
                                       kvDim: c.kvDim)
            let stored = Self.storage(file)
            let headType = (file.tensor(named: TensorName.output) ?? file.tensor(named: TensorName.tokenEmbedding))?.type
            let headPath = headType == .f16 ? "F16"
                : headType.map(BlockQuantizedMatrix.isNative) == true ? "\(stored.head) (its blocks, native)" : "\(stored.head) → F16"
            print("kernels: \(stored.projections) → I2_R16 \(Kernels.best.isa) (GEMV for decoding, GEMM for " +
                  "prompts); head \(headPath); KV cache f32, \(ProgressBar.bytes(Double(kv))) at the " +
                  "default context")
            let choices = Self.decodeKernels(c).map { "\($0.shape) \($0.kernel ?? "not measured yet")" }
            print("decode kernels (--kernel auto, \(cpuCount()) threads): " + choices.joined(separator: ", ") +
                  " (bitnet tune measures them)")
        case .failure(let error):
            print("model: not runnable here: \(error)")
        }
        if metadata {
            print("\nmetadata:")
            for key in file.metadataKeys {
                let text = file.metadata[key].map { "\($0)" } ?? ""
                print("  \(key) = \(text.count > 120 ? String(text.prefix(117)) + "..." : text)")
            }
        }
        print("\ntensors:")
        var total = 0
        for t in file.tensors {
            let bytes = t.byteCount ?? t.extent
            total += bytes
            let shape = t.dims.map(String.init).joined(separator: " × ")
            print("  " + t.name.padding(36) + " " + shape.padding(20) + " " + t.type.description.padding(8) + " " +
                  String(bytes))
        }
        print("total tensor bytes: \(total) (\(ProgressBar.bytes(Double(total))))")
        if !tilings.isEmpty {
            print("\nbitnet.cpp TL layouts (the tiling is not stored in the file):")
            for t in tilings { print("  \(t.shape.padding(22)) \(t.tiling)") }
        }
    }

    // MARK: - What is printed, as data

    /// The projections' storage (all share one type in the files engines write) and the head's.
    static func storage(_ file: GGUFFile) -> (projections: String, head: String) {
        let stored = Set(file.tensors.filter { $0.name.hasSuffix("attn_q.weight") }.map(\.type.description))
            .sorted().joined(separator: "/")
        let head = file.tensor(named: TensorName.output) ?? file.tensor(named: TensorName.tokenEmbedding)
        return (stored.isEmpty ? "?" : stored, head?.type.description ?? "?")
    }

    /// What --kernel auto will use per distinct shape, when this machine measured it before.
    static func decodeKernels(_ c: ModelConfig) -> [(shape: String, kernel: String?)] {
        let shapes = [(c.qDim, c.hiddenSize), (c.kvDim, c.hiddenSize), (c.hiddenSize, c.qDim),
                      (c.ffnSize, c.hiddenSize), (c.hiddenSize, c.ffnSize)]
        var seen = Set<String>()
        return shapes.compactMap { (m, k) in
            guard seen.insert("\(m)x\(k)").inserted else { return nil }
            let kernel = KernelTuner.cachedChoice(rows: m, cols: k, isa: Kernels.best.isa, threads: cpuCount())
            return ("\(m)x\(k)", kernel?.rawValue)
        }
    }

    /// bitnet.cpp TL files: the tiling is not in the file; the one that will be assumed, per shape.
    static func bitnetCppTilings(_ file: GGUFFile) -> [(shape: String, tiling: String)] {
        var tilings: [String: String] = [:]
        for t in file.tensors {
            guard let kind = BitNetCppTLLayout.Kind(t.type), t.dims.count >= 2 else { continue }
            let (m, k) = (t.dims[1], t.dims[0])
            let entry = BitNetCppTLLayout.published.first { $0.kind == kind && $0.rows == m && $0.cols == k }
            tilings["\(kind) \(m)×\(k)"] = entry.map { "\($0.tiling) (bitnet.cpp setup_env, \($0.model))" }
                ?? "no published tiling: this file cannot be loaded (use the model's I2_S file)"
        }
        return tilings.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    static func json(path: String, file: GGUFFile, config: Result<ModelConfig, Error>,
                     tilings: [(shape: String, tiling: String)], metadata: Bool) -> String {
        var w = JSONWriter()
        w.object { w in
            w.field("path", path)
            w.field("gguf_version", Int(file.version))
            w.field("file_bytes", file.fileSize)
            w.field("alignment", file.alignment)
            switch config {
            case .success(let c):
                w.object("model") { m in
                    m.field("architecture", c.architectureName)
                    m.field("graph", c.architecture.rawValue)
                    m.field("layers", c.layerCount)
                    m.field("hidden", c.hiddenSize)
                    m.field("ffn", c.ffnSize)
                    m.field("heads", c.headCount)
                    m.field("kv_heads", c.kvHeadCount)
                    m.field("head_dim", c.headDim)
                    m.field("vocab", c.vocabSize)
                    m.field("context", c.contextLength)
                    m.field("rope_theta", Double(c.ropeTheta))
                    m.field("rope_neox", c.ropeIsNeoX)
                    m.field("rms_eps", Double(c.normEpsilon))
                    m.field("activation", c.activation.rawValue)
                    let stored = storage(file)
                    m.field("projection_type", stored.projections)
                    m.field("head_type", stored.head)
                }
                w.array("decode_kernels") { a in
                    for d in decodeKernels(c) {
                        a.object { o in
                            o.field("shape", d.shape)
                            if let k = d.kernel { o.field("kernel", k) } else { o.nullField("kernel") }
                        }
                    }
                }
            case .failure(let error):
                w.field("error", "\(error)")
            }
            if metadata {
                w.object("metadata") { m in
                    for key in file.metadataKeys { m.field(key, file.metadata[key].map { "\($0)" } ?? "") }
                }
            }
            w.array("tensors") { a in
                for t in file.tensors {
                    a.object { o in
                        o.field("name", t.name)
                        o.array("dims") { d in for x in t.dims { d.int(x) } }
                        o.field("type", t.type.description)
                        o.field("bytes", t.byteCount ?? t.extent)
                    }
                }
            }
            if !tilings.isEmpty {
                w.object("bitnet_cpp_tilings") { o in for t in tilings { o.field(t.shape, t.tiling) } }
            }
        }
        return w.text
    }
}

extension String {
    func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}
