import Foundation
import XCTest
@testable import BitNet
@testable import BitNetConvert

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Input a hostile or careless user can hand the library (issue 13): token-id
/// metadata outside the vocabulary, FIFOs where files belong, safetensors
/// headers whose entries share bytes or mislabel their dtype. Each must end in
/// an error that names the file and the field, never a trap or a hang.
final class HostileInputTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = makeScratchFolder("hostile-\(UUID().uuidString.prefix(8))")
    }

    override func tearDownWithError() throws { removeTree(directory) }

    // MARK: - Token-id metadata

    /// Before: ModelConfig and `logits` accepted these files and `generate --tokens`
    /// trapped converting the eos id to Int32; the tokenizer said "id -1".
    func testBOSOrEOSOutsideTheVocabularyIsRefusedNamingKeyAndValue() throws {
        let model = "\(directory)/tiny.gguf"
        try TinyModelFile.write(to: model)
        let eos = "tokenizer.ggml.eos_token_id", bos = "tokenizer.ggml.bos_token_id"
        let cases: [(String, GGUFValue, String)] = [
            (eos, .uint32(UInt32.max), "4294967295"), (eos, .uint64(1 << 40), "1099511627776"),
            (eos, .int64(Int64.min), "-9223372036854775808"), (eos, .uint64(UInt64.max), "18446744073709551615"),
            (bos, .uint32(259), "259"), (bos, .int32(-1), "-1"),
        ]
        for (key, value, text) in cases {
            let bad = "\(directory)/bad.gguf"
            try TinyModelFile.rewrite(model, to: bad, setting: key, to: value)
            let expected = GGUFError.valueOutOfRange(path: bad, key: key, value: text,
                                                     target: "the vocabulary (token ids 0..<259)")
            XCTAssertThrowsError(try ModelConfig(gguf: GGUFFile(path: bad)), "\(key) = \(text)") { error in
                XCTAssertEqual(error as? GGUFError, expected)
            }
            XCTAssertThrowsError(try Tokenizer(gguf: GGUFFile(path: bad)), "\(key) = \(text)") { error in
                XCTAssertEqual(error as? GGUFError, expected)
            }
            XCTAssertThrowsError(try ModelWeights(path: bad)) { XCTAssertEqual($0 as? GGUFError, expected) }
        }
    }

    /// Optional ids that name no token are dropped (llama.cpp does the same with a
    /// warning) and listed so the CLI can warn; the model and tokenizer still load.
    func testOptionalTokenIDsOutsideTheVocabularyAreDroppedAndListed() throws {
        let model = "\(directory)/tiny.gguf", odd = "\(directory)/odd.gguf"
        try TinyModelFile.write(to: model)
        try TinyModelFile.rewrite(model, to: odd) { metadata in
            metadata.append(("tokenizer.ggml.eot_token_id", .uint32(UInt32.max)))
            metadata.append(("tokenizer.ggml.padding_token_id", .int64(-5)))
            metadata.append(("tokenizer.ggml.unknown_token_id", .uint16(100)))
        }
        let file = try GGUFFile(path: odd)
        let ids = try SpecialTokenIDs(gguf: file, vocabularySize: 259)
        XCTAssertEqual(ids, SpecialTokenIDs(bos: 257, eos: 258, unknown: 100, ignored: [
            "tokenizer.ggml.eot_token_id = 4294967295", "tokenizer.ggml.padding_token_id = -5",
        ]))
        XCTAssertEqual(try ModelConfig(gguf: file).vocabSize, 259)
        let tokenizer = try Tokenizer(gguf: file)
        XCTAssertEqual(tokenizer.eosID, 258)
        XCTAssertNil(tokenizer.padID)
    }

    func testNonIntegerTokenIDIsATypeMismatch() throws {
        let model = "\(directory)/tiny.gguf", bad = "\(directory)/bad.gguf"
        try TinyModelFile.write(to: model)
        try TinyModelFile.rewrite(model, to: bad, setting: "tokenizer.ggml.eot_token_id", to: .string("258"))
        XCTAssertThrowsError(try ModelConfig(gguf: GGUFFile(path: bad))) { error in
            XCTAssertEqual(error as? GGUFError, .typeMismatch(path: bad, key: "tokenizer.ggml.eot_token_id",
                                                             expected: "an integer token id", found: "string"))
        }
    }

    /// Before: "byte-level BPE vocabulary (tokenizer.ggml.model = gpt2) has no merges",
    /// with nothing to say which of a user's files it meant; the vocabulary checks run
    /// on data that no longer knows where it came from.
    func testTokenizerMetadataErrorsNameTheFileAndKey() throws {
        let model = "\(directory)/tiny.gguf", bad = "\(directory)/bad.gguf"
        try TinyModelFile.write(to: model)
        let merges = "tokenizer.ggml.merges", types = "tokenizer.ggml.token_type", kind = "tokenizer.ggml.model"
        let cases: [(String, (inout [(String, GGUFValue)]) -> Void, TokenizerError)] = [
            (merges, { m in m.removeAll { $0.0 == merges } }, .missingMerges),
            (merges, { m in m = m.map { $0.0 == merges ? ($0.0, .array(.string([]))) : $0 } }, .missingMerges),
            (kind, { m in m = m.map { $0.0 == kind ? ($0.0, .string("bert")) : $0 } }, .unsupportedModel("bert")),
            (types, { m in m = m.map { $0.0 == types ? ($0.0, .array(.int32([1, 1]))) : $0 } },
             .arrayLengthMismatch(key: "token_type", expected: 259, found: 2)),
        ]
        for (key, edit, inner) in cases {
            try TinyModelFile.rewrite(model, to: bad, edit: edit)
            XCTAssertThrowsError(try Tokenizer(gguf: GGUFFile(path: bad)), "\(inner)") { error in
                XCTAssertEqual(error as? TokenizerError, .inFile(path: bad, key: key, error: inner))
                let message = "\(error)"
                XCTAssertTrue(message.hasPrefix("\(bad): metadata key '\(key)': "), message)
                XCTAssertTrue(message.hasSuffix(inner.description), message)
            }
        }
    }

    // MARK: - FIFOs

    /// Before: open(2) without O_NONBLOCK waited for a writer forever, before the
    /// regular-file check could run.
    func testFIFOsAreRefusedWithoutWaitingForAWriter() throws {
        let fifo = "\(directory)/model.gguf"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        XCTAssertEqual(try finishes(unblocking: fifo) { try GGUFFile(path: fifo) } as? GGUFError,
                       .notARegularFile(path: fifo))

        let folder = "\(directory)/hf"
        try TinyCheckpoint(family: .b158, storage: .latent(.bf16)).write(to: folder)
        let shard = "\(folder)/model.safetensors"
        unlink(shard)
        XCTAssertEqual(mkfifo(shard, 0o600), 0)
        XCTAssertEqual(try finishes(unblocking: shard) { try HFConverter(folder: folder) } as? ConvertError,
                       .notARegularFile(path: shard, what: "safetensors shard"))

        let config = "\(folder)/config.json"
        unlink(config)
        XCTAssertEqual(mkfifo(config, 0o600), 0)
        XCTAssertEqual(try finishes(unblocking: config) { try HFModelConfig(path: config) } as? ConvertError,
                       .notARegularFile(path: config, what: "config.json"))
    }

    /// Runs `body` on a thread and returns what it threw; fails (and opens the
    /// FIFO's write end to release the reader) if it is still blocked after 10 s.
    private func finishes(unblocking fifo: String, _ body: @escaping @Sendable () throws -> Any) throws -> Error? {
        final class Outcome: @unchecked Sendable { var error: Error? }
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        Thread {
            do { _ = try body() } catch { outcome.error = error }
            done.signal()
        }.start()
        if done.wait(timeout: .now() + 10) == .timedOut {
            XCTFail("still blocked on the FIFO \(fifo) after 10 s")
            let fd = open(fifo, O_WRONLY | O_NONBLOCK)
            if fd >= 0 { close(fd) }
            _ = done.wait(timeout: .now() + 10)
        }
        return outcome.error
    }

    // MARK: - Safetensors headers

    /// Each entry's size matched its dtype × shape, so two entries sharing bytes passed.
    func testOverlappingSafetensorsOffsetsAreRefusedNamingBothTensors() throws {
        let path = "\(directory)/overlap.safetensors"
        var header = Array(("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, " +
                            "\"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}").utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        try TinyCheckpoint.write(path, TinyCheckpoint.varint64(UInt64(header.count)) + header + [UInt8](repeating: 0, count: 12))
        XCTAssertThrowsError(try SafetensorsFile(path: path)) { error in
            XCTAssertEqual(error as? ConvertError, .invalidTensor(
                path: path, tensor: "b", reason: "data_offsets [4, 12] overlap tensor 'a' at [0, 8]"))
        }
        // touching ranges and empty tensors are fine
        header = Array(("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, " +
                        "\"e\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [4, 4]}, " +
                        "\"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}").utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        try TinyCheckpoint.write(path, TinyCheckpoint.varint64(UInt64(header.count)) + header + [UInt8](repeating: 0, count: 12))
        XCTAssertEqual(try SafetensorsFile(path: path).tensors.count, 3)
    }

    /// F16 and BF16 are both 2 bytes, so a header naming the wrong one passes every
    /// size check; against config.json's torch_dtype the mislabel shows.
    func testHalfPrecisionDTypeContradictingTorchDTypeIsRefused() throws {
        let folder = "\(directory)/hf"
        let checkpoint = TinyCheckpoint(family: .b158, storage: .latent(.bf16))
        try checkpoint.write(to: folder)
        XCTAssertEqual(try HFConverter(folder: folder).plan.problems, [], "no torch_dtype: nothing to compare")
        var config = checkpoint.configJSON
        config.removeLast()
        try TinyCheckpoint.write("\(folder)/config.json", config + ", \"torch_dtype\": \"bfloat16\"}")
        XCTAssertEqual(try HFConverter(folder: folder).plan.problems, [], "BF16 tensors, bfloat16 declared")
        try TinyCheckpoint.write("\(folder)/model.safetensors", TinyCheckpoint.safetensors(
            checkpoint.tensors, dtypeOverride: ["model.norm.weight": "F16"]))
        XCTAssertEqual(try HFConverter(folder: folder).plan.problems, [.unsupportedDType(
            path: "\(folder)/model.safetensors", tensor: "model.norm.weight", dtype: "F16",
            reason: "contradicts config.json's torch_dtype 'bfloat16' (mislabelled half-precision data?)")])
    }

    // MARK: - Whole-file reads

    func testOversizedJSONIsRefusedBeforeReading() throws {
        let path = "\(directory)/config.json"
        try TinyCheckpoint.write(path, String(repeating: " ", count: 5000) + "{}")
        XCTAssertThrowsError(try FileBytes.contents(path: path, what: "config.json", limit: 4096)) { error in
            XCTAssertEqual(error as? ConvertError, .fileTooLarge(path: path, what: "config.json", size: 5002, limit: 4096))
        }
        XCTAssertEqual(try FileBytes.contents(path: path, what: "config.json", limit: 5002).count, 5002)
    }
}
