import Foundation
import XCTest

/// The `bitnet` executable end to end: help, a tiny synthetic model through
/// synth / inspect / generate / tokenize / logits / chat / perplexity, the
/// benchmark's JSON, and clear errors (non-zero exit, the culprit named) for bad input.
final class CLITests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let vocab = root.appendingPathComponent("Tests/BitNetTests/Fixtures/tokenizers/ggml-vocab-llama-bpe.gguf").path
    /// The executable of the same build as these tests first (a `--scratch-path`
    /// build has its own), then the default build folders.
    static var binary: String? {
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let candidates = [beside.appendingPathComponent("bitnet").path] +
            [".build/debug/bitnet", ".build/release/bitnet"].map { root.appendingPathComponent($0).path }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
    static let model = NSTemporaryDirectory() + "/bitnet-cli-\(getpid()).gguf"

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs the CLI. `stdinFile` (e.g. /dev/zero) replaces the `stdin` text; a run
    /// past `timeout` seconds is killed and fails the test, so a hang is a failure
    /// rather than a stuck test run.
    @discardableResult
    func run(_ args: [String], stdin: String? = nil, stdinFile: String? = nil, timeout: Double = 120,
             launcher: [String] = []) throws -> Result {
        guard let binary = Self.binary else { throw XCTSkip("build the bitnet executable first (swift build)") }
        let p = Process()
        // launcher: a program that runs bitnet with these arguments (e.g. taskset -c 0)
        p.executableURL = URL(fileURLWithPath: launcher.first ?? binary)
        p.arguments = launcher.isEmpty ? args : Array(launcher.dropFirst()) + [binary] + args
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardError = err
        if let stdinFile {
            p.standardInput = try XCTUnwrap(FileHandle(forReadingAtPath: stdinFile))
        } else {
            p.standardInput = input
        }
        try p.run()
        let watchdog = DispatchWorkItem { [p] in if p.isRunning { p.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        if stdinFile == nil {
            if let stdin { input.fileHandleForWriting.write(stdin.data(using: .utf8)!) }
            try input.fileHandleForWriting.close()
        }
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        watchdog.cancel()
        if p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGTERM {
            XCTFail("bitnet \(args.joined(separator: " ")) still ran after \(timeout) s")
        }
        return Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                      stderr: String(decoding: e, as: UTF8.self))
    }

    override func setUpWithError() throws {
        if !FileManager.default.fileExists(atPath: Self.model) {
            let r = try run(["synth", "--arch", "bitnet-b1.58", "--hidden", "128", "--layers", "2", "--heads", "4",
                             "--kv-heads", "2", "--ffn", "256", "--vocab-size", "128256", "--ctx", "64",
                             "--vocab", Self.vocab, "-o", Self.model])
            XCTAssertEqual(r.status, 0, r.stderr)
        }
    }

    override class func tearDown() { unlink(model) }

    func testHelpListsTheCommands() throws {
        let r = try run(["--help"])
        XCTAssertEqual(r.status, 0)
        for command in ["generate", "chat", "tokenize", "logits", "perplexity", "inspect", "synth", "bench", "serve",
                        "convert", "tune"] {
            XCTAssertTrue(r.stdout.contains(command), "help lists \(command)")
        }
    }

    func testInspectGenerateTokenizeLogits() throws {
        let inspect = try run(["inspect", Self.model])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        XCTAssertTrue(inspect.stdout.contains("architecture: bitnet-b1.58"))
        XCTAssertTrue(inspect.stdout.contains("blk.1.ffn_down.weight"))
        let inspectJSON = try run(["inspect", "--json", Self.model])
        XCTAssertEqual(inspectJSON.status, 0, inspectJSON.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(inspectJSON.stdout.utf8)) as? [String: Any])
        let modelInfo = try XCTUnwrap(object["model"] as? [String: Any])
        XCTAssertEqual(modelInfo["layers"] as? Int, 2)
        XCTAssertEqual(modelInfo["hidden"] as? Int, 128)
        XCTAssertEqual(modelInfo["projection_type"] as? String, "I2_S")
        XCTAssertEqual((object["tensors"] as? [Any])?.count, 2 + 2 * 11) // embedding, output norm, 11 per layer

        let gen = try run(["generate", "-m", Self.model, "-p", "Hello", "-n", "5", "--temp", "0", "--json", "-t", "1"])
        XCTAssertEqual(gen.status, 0, gen.stderr)
        XCTAssertTrue(gen.stderr.contains("\"generated_tokens\": 5"), gen.stderr)
        let ids = try run(["generate", "-m", Self.model, "--tokens", "128000,9906", "-n", "5", "--temp", "0", "--ids"])
        XCTAssertEqual(ids.status, 0, ids.stderr)
        XCTAssertEqual(ids.stdout.split(separator: ",").count, 5, "five ids: \(ids.stdout)")
        // greedy with the same prompt is deterministic, text or ids
        let again = try run(["generate", "-m", Self.model, "--tokens", "128000,9906", "-n", "5", "--temp", "0", "--ids"])
        XCTAssertEqual(ids.stdout, again.stdout)

        let tok = try run(["tokenize", "-m", Self.model, "Hello world", "--ids"])
        XCTAssertEqual(tok.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "128000,9906,1917")

        let logits = try run(["logits", "-m", Self.model, "--tokens", "128000,9906", "--top", "3", "--json", "--all-positions"])
        XCTAssertEqual(logits.status, 0, logits.stderr)
        let lines = logits.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        let obj = try JSONSerialization.jsonObject(with: Data(lines[1].utf8)) as? [String: Any]
        XCTAssertEqual((obj?["top_ids"] as? [Any])?.count, 3)
        XCTAssertEqual(obj?["input_token"] as? Int, 9906)
    }

    func testChatFeedsOnlyTheNewTurn() throws {
        let r = try run(["chat", "-m", Self.model, "-n", "4", "--temp", "0", "--verbose-prompt"],
                        stdin: "Hello there\nWhat is 2+2?\n/exit\n")
        XCTAssertEqual(r.status, 0, r.stderr)
        let feeds = r.stderr.split(separator: "\n").filter { $0.contains("feeding") }
        XCTAssertEqual(feeds.count, 2, r.stderr)
        XCTAssertTrue(feeds[1].contains("128009"), "turn 2 closes the previous reply with <|eot_id|>")
        XCTAssertFalse(feeds[1].contains("128000"), "turn 2 does not re-feed BOS or the history")
    }

    func testPerplexityAndBenchmarkJSON() throws {
        let text = NSTemporaryDirectory() + "/bitnet-cli-text-\(getpid()).txt"
        try String(repeating: "To be, or not to be, that is the question. ", count: 8).write(toFile: text, atomically: true,
                                                                                             encoding: .utf8)
        defer { unlink(text) }
        let ppl = try run(["perplexity", "-m", Self.model, "-f", text, "--window", "32", "--json"])
        XCTAssertEqual(ppl.status, 0, ppl.stderr)
        let obj = try JSONSerialization.jsonObject(with: Data(ppl.stdout.utf8)) as? [String: Any]
        XCTAssertGreaterThan(obj?["perplexity"] as? Double ?? 0, 1)

        let bench = try run(["bench", "kernels", "--shapes", "64x128", "--threads", "1", "--batch", "4",
                             "--working-set-mb", "1", "--budget", "0.001", "--json", "--no-cached"])
        XCTAssertEqual(bench.status, 0, bench.stderr)
        let kernels = try bench.stdout.split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        XCTAssertTrue(kernels.contains { $0?["kernel"] as? String == "read_bandwidth" && $0?["gbps"] != nil })
        XCTAssertTrue(kernels.contains { $0?["kernel"] as? String == "int8_peak" && $0?["gops"] != nil })
        for name in ["i2_s", "openblas_f32", "scalar"] {
            XCTAssertTrue(kernels.contains { $0?["kernel"] as? String == name && $0?["median_s"] != nil && $0?["weight_gbps"] != nil },
                          name)
        }
    }

    /// `bench e2e --parallel` in text mode with no single-stream run in the list: its
    /// "× single" column has no baseline (it crashed formatting that line with the int8 head).
    func testBatchedBenchWithoutASingleStreamRun() throws {
        for head in ["q8", "f16"] {
            let r = try run(["bench", "e2e", "-m", Self.model, "--parallel", "2", "-t", "1", "-p", "2", "-n", "2", "-r", "1",
                             "--head", head])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("threads 1, parallel  2: aggregate tg"), r.stdout)
            XCTAssertTrue(r.stdout.contains("= 1.00x single; ceilings: compute"), r.stdout)
            XCTAssertEqual(r.stdout.contains("head at the f32 FMA peak"), head == "f16", r.stdout)
        }
    }

    /// Two threads confined to one core measure one core's int8 peak: the benchmarks say their
    /// 2-thread figures do not compare instead of printing fractions above 100%.
    func testBenchWarnsWhenThreadsOutnumberFreeCores() throws {
        let taskset = ["/usr/bin/taskset", "/bin/taskset"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let taskset else { throw XCTSkip("taskset (util-linux) not installed") }
        // `--parallel` runs the same check (ParallelBench); one case keeps the debug build's probes short
        let r = try run(["bench", "e2e", "-m", Self.model, "-t", "1,2", "-p", "2", "-n", "2", "-r", "1"],
                        launcher: [taskset, "-c", "0"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("warning: at 2 threads the int8 probe measured"), r.stderr)
    }

    func testBadInputIsAClearErrorNotACrash() throws {
        let missing = try run(["generate", "-m", "/nonexistent/model.gguf", "--tokens", "1"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("/nonexistent/model.gguf"), missing.stderr)

        let truncated = NSTemporaryDirectory() + "/bitnet-cli-trunc-\(getpid()).gguf"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Self.model)).prefix(5000)
        try bytes.write(to: URL(fileURLWithPath: truncated))
        defer { unlink(truncated) }
        let t = try run(["generate", "-m", truncated, "--tokens", "1"])
        XCTAssertNotEqual(t.status, 0)
        XCTAssertTrue(t.stderr.contains(truncated), t.stderr)
        XCTAssertFalse(t.stderr.contains("Fatal error"), t.stderr)

        let long = try run(["generate", "-m", Self.model, "--tokens", Array(repeating: "1", count: 10).joined(separator: ","),
                            "--ctx", "8", "-n", "1"])
        XCTAssertNotEqual(long.status, 0)
        XCTAssertTrue(long.stderr.contains("context"), long.stderr)

        let range = try run(["generate", "-m", Self.model, "--tokens", "999999", "-n", "1"])
        XCTAssertNotEqual(range.status, 0)
        XCTAssertTrue(range.stderr.contains("999999"), range.stderr)

        for bad in [["--temp", "-1"], ["--top-p", "2"], ["-t", "0"], ["--head", "q4"], ["--isa", "sse9"]] {
            let r = try run(["generate", "-m", Self.model, "--tokens", "1"] + bad)
            XCTAssertNotEqual(r.status, 0, "\(bad)")
            XCTAssertFalse(r.stderr.isEmpty, "\(bad)")
        }
    }
}
