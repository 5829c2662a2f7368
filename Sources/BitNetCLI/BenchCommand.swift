import ArgumentParser

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print ratios against baselines measured in the same run.",
        subcommands: [KernelBench.self, EndToEndBench.self]
    )
}
