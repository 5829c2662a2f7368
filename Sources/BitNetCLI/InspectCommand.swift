import ArgumentParser
import BitNet

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

    func run() throws {
        guard cpu || path != nil else { throw ValidationError("give a GGUF file, or --cpu") }
        if cpu {
            print(ISA.report, terminator: "")
            print("available: " + ISA.supported.map(\.description).joined(separator: " "))
        }
        guard let path else { return }
        let file = try GGUFFile(path: path)
        print("file: \(path) (GGUF v\(file.version), \(ProgressBar.bytes(Double(file.fileSize))), " +
              "\(file.tensors.count) tensors, \(file.metadataKeys.count) metadata keys)")
        do {
            let c = try ModelConfig(gguf: file)
            print("architecture: \(c.architectureName) (\(c.architecture.rawValue) graph)")
            print("layers \(c.layerCount), hidden \(c.hiddenSize), ffn \(c.ffnSize), heads \(c.headCount), kv heads " +
                  "\(c.kvHeadCount), head dim \(c.headDim), vocab \(c.vocabSize), context \(c.contextLength)")
            print("rope θ \(c.ropeTheta) (\(c.ropeIsNeoX ? "NeoX rotate-half" : "adjacent pairs")), rms eps \(c.normEpsilon), " +
                  "ffn activation \(c.activation.rawValue)")
            let kv = KVCache.byteCount(capacity: BitNetModel.defaultContextLength(config: c), layerCount: c.layerCount,
                                       kvDim: c.kvDim)
            // the projections' storage in the file (all share one type in files this engine writes)
            let stored = Set(file.tensors.filter { $0.name.hasSuffix("attn_q.weight") }.map(\.type.description))
                .sorted().joined(separator: "/")
            print("kernels: \(stored.isEmpty ? "?" : stored) → I2_R16 \(Kernels.best.isa) (GEMV for decoding, GEMM for prompts); F16 head; " +
                  "KV cache f32, \(ProgressBar.bytes(Double(kv))) at the default context")
            // what --kernel auto will use per shape, when this machine measured it before
            let threads = cpuCount()
            let shapes = [(c.qDim, c.hiddenSize), (c.kvDim, c.hiddenSize), (c.hiddenSize, c.qDim),
                          (c.ffnSize, c.hiddenSize), (c.hiddenSize, c.ffnSize)]
            var seen = Set<String>()
            let choices = shapes.compactMap { (m, k) -> String? in
                guard seen.insert("\(m)x\(k)").inserted else { return nil }
                let kernel = KernelTuner.cachedChoice(rows: m, cols: k, isa: Kernels.best.isa, threads: threads)
                return "\(m)x\(k) \(kernel?.rawValue ?? "not measured yet")"
            }
            print("decode kernels (--kernel auto, \(threads) threads): " + choices.joined(separator: ", ") +
                  " (bitnet tune measures them)")
        } catch {
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
        // bitnet.cpp TL files: the tiling is not in the file; say which one will be assumed
        var tilings: [String: String] = [:]
        for t in file.tensors {
            guard let kind = BitNetCppTLLayout.Kind(t.type), t.dims.count >= 2 else { continue }
            let (m, k) = (t.dims[1], t.dims[0])
            let entry = BitNetCppTLLayout.published.first { $0.kind == kind && $0.rows == m && $0.cols == k }
            tilings["\(kind) \(m)×\(k)"] = entry.map { "\($0.tiling) (bitnet.cpp setup_env, \($0.model))" }
                ?? "no published tiling: this file cannot be loaded (use the model's I2_S file)"
        }
        if !tilings.isEmpty {
            print("\nbitnet.cpp TL layouts (the tiling is not stored in the file):")
            for (shape, tiling) in tilings.sorted(by: { $0.key < $1.key }) { print("  \(shape.padding(22)) \(tiling)") }
        }
    }
}

extension String {
    func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}
