import ArgumentParser
import BitNet

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `bitnet serve`: runs the `bitnet-server` executable (the OpenAI-compatible HTTP
/// service, its own package under `Server/` on Hummingbird) with the same arguments.
/// The server lives apart so that the BitNet library and this CLI never link
/// SwiftNIO; this command keeps the spelling users know. It looks for
/// `bitnet-server` next to this executable (where `make` puts it), then on `PATH`,
/// and replaces this process with it (`execv`), so signals, stdout (the
/// "listening on …" line) and the exit status are the server's own.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve a model over HTTP with an OpenAI-compatible API (runs bitnet-server).",
        discussion: """
            Runs the bitnet-server executable built beside bitnet (make builds both) with these arguments; \
            `bitnet serve --help` shows its options. When no -m is given and $BITNET_MODEL is unset, the \
            model shipped with bitnet is passed.
            """
    )

    @Argument(parsing: .captureForPassthrough, help: "Arguments for bitnet-server (see bitnet-server --help).")
    var arguments: [String] = []

    func run() throws {
        guard let server = Self.locateServer() else {
            note("""
                error: bitnet serve runs the bitnet-server executable, which was not found next to \
                \(DefaultModel.executableDirectory() ?? "bitnet") or on PATH. Build it with `make` (or: \
                swift build -c release --package-path Server --product bitnet-server, then copy \
                Server/.build/release/bitnet-server next to bitnet).
                """)
            throw ExitCode(1)
        }
        var argv = [server] + arguments
        let givesModel = arguments.contains { $0 == "-m" || $0 == "--model" || $0.hasPrefix("--model=") }
        let wantsHelp = arguments.contains { $0 == "-h" || $0 == "--help" }
        if !givesModel, !wantsHelp, getenv("BITNET_MODEL") == nil, let model = DefaultModel.path() {
            argv += ["-m", model]
        }
        fflush(nil)
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) }
        cArgs.append(nil)
        execv(server, &cArgs)
        let reason = String(cString: strerror(errno))
        note("error: could not run \(server): \(reason)")
        throw ExitCode(1)
    }

    /// `bitnet-server` beside this executable, else the first on `PATH`.
    static func locateServer() -> String? {
        if let dir = DefaultModel.executableDirectory() {
            let candidate = dir + "/bitnet-server"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        guard let path = getenv("PATH") else { return nil }
        for dir in String(cString: path).split(separator: ":") where !dir.isEmpty {
            let candidate = "\(dir)/bitnet-server"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }
}
