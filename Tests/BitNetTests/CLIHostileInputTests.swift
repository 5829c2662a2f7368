import Foundation
import XCTest
@testable import BitNet

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The CLI given what a hostile user would give it (issue 13): each case once
/// crashed, hung, read without bound or blamed the wrong option. Every run must
/// exit by itself with a non-zero status and a message naming the culprit.
extension CLITests {
    private func scratch(_ name: String) -> String { NSTemporaryDirectory() + "/bitnet-cli-\(getpid())-\(name)" }

    private func assertCleanRefusal(_ r: Result, naming parts: [String], _ what: String,
                                    file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(r.status, 0, what, file: file, line: line)
        XCTAssertFalse(r.stderr.contains("Fatal error"), "\(what): \(r.stderr)", file: file, line: line)
        XCTAssertFalse(r.stderr.contains("Missing value"), "\(what): \(r.stderr)", file: file, line: line)
        for part in parts { XCTAssertTrue(r.stderr.contains(part), "\(what): '\(part)' not in \(r.stderr)", file: file, line: line) }
    }

    /// Before: `generate --tokens` died with SIGILL converting the id to Int32,
    /// `logits` and `inspect` accepted the file, `generate -p` said "no tokenizer".
    func testTokenIDMetadataOutsideTheVocabularyIsTheSameClearErrorInEveryCommand() throws {
        let key = "tokenizer.ggml.eos_token_id"
        for (value, text) in [(GGUFValue.uint32(UInt32.max), "4294967295"), (.uint64(1 << 40), "1099511627776"),
                              (.int64(Int64.min), "-9223372036854775808")] {
            let bad = scratch("eos.gguf")
            defer { unlink(bad) }
            try TinyModelFile.rewrite(Self.model, to: bad, setting: key, to: value)
            for args in [["generate", "-m", bad, "--tokens", "128000,9906", "-n", "2"],
                         ["generate", "-m", bad, "-p", "Hello", "-n", "2"],
                         ["logits", "-m", bad, "--tokens", "128000"]] {
                assertCleanRefusal(try run(args), naming: [bad, key, text], args.joined(separator: " "))
            }
            let inspect = try run(["inspect", bad])
            XCTAssertEqual(inspect.status, 0, inspect.stderr)
            XCTAssertTrue(inspect.stdout.contains("not runnable here: \(bad): metadata key '\(key)': value \(text)"),
                          inspect.stdout)
        }
    }

    /// Before: each of these blocked forever in open(2) or read without end.
    func testFIFOsAndDevicesAreRefusedNotWaitedOn() throws {
        let fifo = scratch("fifo")
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        defer { unlink(fifo) }
        for args in [["inspect", fifo], ["generate", "-m", fifo, "--tokens", "1"]] {
            assertCleanRefusal(try run(args, timeout: 30), naming: [fifo, "not a regular file"], args.joined(separator: " "))
        }
        for prompt in [fifo, "/dev/zero"] {
            let args = ["generate", "-m", Self.model, "-f", prompt, "-n", "1"]
            assertCleanRefusal(try run(args, timeout: 30), naming: ["'\(prompt)'", "not a regular file"], args.joined(separator: " "))
        }
        let folder = scratch("hf")
        defer { removeTree(folder) }
        try TinyCheckpoint(family: .b158, storage: .latent(.bf16)).write(to: folder)
        unlink("\(folder)/model.safetensors")
        XCTAssertEqual(mkfifo("\(folder)/model.safetensors", 0o600), 0)
        assertCleanRefusal(try run(["convert", folder, "--dry-run"], timeout: 30),
                           naming: ["\(folder)/model.safetensors", "not a regular file"], "convert")
    }

    /// Before: `generate < /dev/zero` read until a 4.4 GB allocation aborted.
    func testPromptReadsAreBoundedByTheContext() throws {
        let limit = "64 bytes per token of the 64-token context"
        assertCleanRefusal(try run(["generate", "-m", Self.model, "-n", "1"], stdinFile: "/dev/zero", timeout: 60),
                           naming: ["standard input", limit], "stdin /dev/zero")
        let big = scratch("big.txt")
        defer { unlink(big) }
        try Data(repeating: UInt8(ascii: "a"), count: (1 << 20) + 1).write(to: URL(fileURLWithPath: big))
        assertCleanRefusal(try run(["generate", "-m", Self.model, "-f", big, "-n", "1"], timeout: 60),
                           naming: ["'\(big)'", limit], "-f over the limit")
    }

    /// Before: a negative number read as an option ("Missing value for '-n <n>'"),
    /// --window 0 blamed --ctx, and 1e39 (inf as a Float) was "not ≥ 0".
    func testNumericOptionsAreRefusedByNameAndValue() throws {
        let cases: [([String], String)] = [
            (["-n", "-1"], "-n must be ≥ 0 (got -1)"), (["--ctx", "-1"], "--ctx must be positive (got -1)"),
            (["-t", "-1"], "-t must be in 1...1024 (got -1)"), (["--seed", "-1"], "'-1' is invalid for '--seed"),
            (["--top-k", "-3"], "--top-k must be ≥ 0 (got -3)"),
            (["--temp", "1e39"], "--temp must be a finite number (got inf"),
            (["--top-p", "nan"], "--top-p must be a finite number (got nan"),
            (["--repeat-penalty", "-2"], "--repeat-penalty must be > 0 (got -2.0)"),
        ]
        for (bad, message) in cases {
            assertCleanRefusal(try run(["generate", "-m", Self.model, "--tokens", "1"] + bad), naming: [message], "\(bad)")
        }
        let text = scratch("ppl.txt")
        defer { unlink(text) }
        try "To be, or not to be.".write(toFile: text, atomically: true, encoding: .utf8)
        let window = try run(["perplexity", "-m", Self.model, "-f", text, "--window", "0"])
        assertCleanRefusal(window, naming: ["--window must be ≥ 2", "got 0"], "--window 0")
        XCTAssertFalse(window.stderr.contains("--ctx"), window.stderr)
        // a negative value that is valid now parses at all
        let penalty = try run(["generate", "-m", Self.model, "--tokens", "1", "-n", "1", "--presence-penalty", "-0.5"])
        XCTAssertEqual(penalty.status, 0, penalty.stderr)
    }

    /// The documented SIGBUS policy: a model file truncated while mapped ends the
    /// run with status 74 and a message naming the file, not "Bus error" and a core.
    func testModelTruncatedWhileMappedExitsNamingTheFile() throws {
        guard let binary = Self.binary else { throw XCTSkip("build the bitnet executable first (swift build)") }
        let copy = scratch("truncated.gguf")
        defer { unlink(copy) }
        try FileManager.default.copyItem(atPath: Self.model, toPath: copy)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        // `--head q8`: with the F16 head the model reads nothing of this file after loading
        // (projections repacked, head and tied embedding in panels); the int8 head leaves the
        // embedding in the map, so the next token's lookup meets the truncation
        p.arguments = ["chat", "-m", copy, "-n", "2", "--temp", "0", "-t", "1", "--head", "q8"]
        let input = Pipe(), out = Pipe(), err = Pipe()
        p.standardInput = input
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let watchdog = DispatchWorkItem { [p] in if p.isRunning { p.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 120, execute: watchdog)
        defer { watchdog.cancel() }
        // chat maps the model, loads it, then waits for a line: truncate in between
        var stderr = Data()
        while !String(decoding: stderr, as: UTF8.self).contains("loaded in") {
            let chunk = err.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            stderr += chunk
        }
        XCTAssertEqual(truncate(copy, 4096), 0)
        input.fileHandleForWriting.write(Data("Hello there\n".utf8))
        try input.fileHandleForWriting.close()
        stderr += err.fileHandleForReading.readDataToEndOfFile()
        _ = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: stderr, as: UTF8.self)
        XCTAssertEqual(p.terminationReason, .exit, text)
        XCTAssertEqual(p.terminationStatus, 74, text)
        XCTAssertTrue(text.contains("SIGBUS") && text.contains("'\(copy)'"), text)
    }
}
