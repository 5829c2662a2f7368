import ArgumentParser
import BitNet
import Foundation

struct TuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tune",
        abstract: "Time I2_S, TL1 and TL2 decoding on a model's matrix shapes and cache the fastest (what --kernel auto uses)."
    )

    @OptionGroup var options: ModelOptions
    @Flag(help: "One JSON object per shape.") var json = false

    func run() throws {
        let weights = try ModelWeights(path: try options.model)
        let model = try BitNetModel(weights: weights, contextLength: 8, threads: options.threads,
                                    kernels: options.kernels(), kernel: .auto, tuneCache: false)
        for choice in model.kernelChoices {
            let t = choice.timings
            if json {
                print(jsonLine([("shape", .string(choice.shape)), ("kernel", .string(choice.kernel.rawValue)),
                                ("i2_s_s", .double(t[.i2s] ?? .nan)), ("tl1_s", .double(t[.tl1] ?? .nan)),
                                ("tl2_s", .double(t[.tl2] ?? .nan)), ("threads", .int(model.pool.threads)),
                                ("isa", .string(model.kernels.isa.description))]))
            } else {
                print(choice.shape.padding(12) + " → " + choice.kernel.rawValue.padding(5) +
                      MatrixKernel.allCases.map { k in
                          String(format: "  %@ %.1f µs", k.rawValue, (t[k] ?? .nan) * 1e6)
                      }.joined())
            }
        }
        KernelTuner(kernels: model.kernels, pool: model.pool).remember(model.kernelChoices)
        if !json { note("cached in \(KernelTuner.cachePath ?? "(no cache directory)")") }
    }
}
