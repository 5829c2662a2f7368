import ArgumentParser
import BitNet

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show what the kernels detected on this CPU (and, later, a model's contents)."
    )

    @Flag(name: .long, help: "Print the CPU features detected, the kernel level chosen and why.")
    var cpu = false

    func run() throws {
        guard cpu else {
            throw ValidationError("nothing to inspect: pass --cpu (model inspection arrives with the GGUF engine)")
        }
        print(ISA.report, terminator: "")
        print("available: " + ISA.supported.map(\.description).joined(separator: " "))
    }
}
