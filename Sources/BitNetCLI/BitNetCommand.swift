import ArgumentParser
import BitNet

@main
struct BitNetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bitnet",
        abstract: "Run 1.58-bit ternary LLMs (BitNet b1.58) fast on ordinary CPUs.",
        version: LibraryVersion.string,
        subcommands: [GenerateCommand.self, ChatCommand.self, TokenizeCommand.self, LogitsCommand.self, PerplexityCommand.self, InspectCommand.self, SynthCommand.self, ConvertCommand.self, TuneCommand.self, ServeCommand.self,
                      BenchCommand.self]
    )
}
