import Foundation
import ArgumentParser
import BitNet

struct LogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits",
        abstract: "Print the logits after a token sequence (top-k, mean, std) to compare numerics with other engines."
    )

    @OptionGroup var options: ModelOptions
    @Option(help: "Token ids, comma-separated.") var tokens: String
    @Option(parsing: .unconditional, help: "How many of the largest logits to print.") var top = 20
    @Flag(name: .customLong("all-positions"), help: "Every position, not just the last.") var allPositions = false
    @Flag(help: "One JSON object per position.") var json = false

    func run() throws {
        let input = try parseTokenList(tokens)
        guard !input.isEmpty else { throw ValidationError("--tokens is empty") }
        guard top >= 1 else { throw ValidationError("--top must be ≥ 1 (got \(top))") }
        let (model, _) = try options.load(quiet: true)
        let vocab = model.config.vocabSize
        let logits = try model.makeSession().forward(input, allLogits: allPositions)
        let positions = allPositions ? Array(0..<input.count) : [input.count - 1]
        for (row, position) in positions.enumerated() {
            let v = Array(logits[(row * vocab)..<((row + 1) * vocab)])
            let mean = v.reduce(0.0) { $0 + Double($1) } / Double(vocab)
            let std = (v.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(vocab)).squareRoot()
            let best = v.indices.sorted { v[$0] > v[$1] || (v[$0] == v[$1] && $0 < $1) }.prefix(top)
            if json {
                let ids = best.map(String.init).joined(separator: ", ")
                let values = best.map { ReportValue.double(Double(v[$0])).text }.joined(separator: ", ")
                print("{\"position\": \(position), \"input_token\": \(input[position])" +
                      ", \"top_ids\": [\(ids)], \"top_logits\": [\(values)], \"mean\": \(ReportValue.double(mean).text)" +
                      ", \"std\": \(ReportValue.double(std).text)}")
            } else {
                print("position \(position): mean \(String(format: "%.6f", mean)) std \(String(format: "%.6f", std))")
                for id in best { print(String(format: "  %8d  %.6f", id, v[id])) }
            }
        }
    }
}
