import Foundation
import XCTest
@testable import BitNet

/// Encode speed on English prose, printed, never asserted (timings depend on the
/// machine). Skipped unless `BITNET_TOKENIZER_BENCH_TEXT` names a text file;
/// `tools/tokenizer/bench_encode.sh` makes a corpus and runs this in release mode.
final class TokenizerBenchmarkTests: XCTestCase {
    func testEncodeThroughput() throws {
        guard let path = ProcessInfo.processInfo.environment["BITNET_TOKENIZER_BENCH_TEXT"] else {
            throw XCTSkip("set BITNET_TOKENIZER_BENCH_TEXT to a text file to measure encode speed")
        }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let megabytes = Double(text.utf8.count) / 1_000_000
        let clock = ContinuousClock()
        func seconds(_ d: Duration) -> Double {
            Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        }

        for name in ["llama-bpe", "gpt-2", "llama-spm"] {
            let file = TokenizerGoldenTests.fixtures.appendingPathComponent("ggml-vocab-\(name).gguf").path
            var tokenizer: Tokenizer?
            let load = try clock.measure { tokenizer = try Tokenizer(path: file) }
            guard let tokenizer else { continue }

            var ids: [Int32] = []
            var best = Double.infinity
            for _ in 0..<3 {
                let d = clock.measure { ids = tokenizer.encode(text, addSpecial: false) }
                best = min(best, seconds(d))
            }
            if case .sentencePiece(let split) = tokenizer.engine {
                // The word-split fast path must equal merging the whole text at once.
                var whole: [Int32] = []
                var scratch = SentencePieceEncoder.Scratch()
                Array(text.utf8).withUnsafeBufferPointer {
                    split.mergingWholeTexts().encode($0, addPrefix: true, into: &whole, scratch: &scratch)
                }
                XCTAssertEqual(whole, ids)
            }
            var decoded = ""
            let decode = try clock.measure { decoded = try tokenizer.decode(ids) }
            XCTAssertEqual(decoded, text)
            print(String(format: "bench %@: load %.2f s, encode %.2f MB/s (%.2f MB, %d tokens, %.1f ms), decode %.1f MB/s",
                         name, seconds(load), megabytes / best, megabytes, ids.count, best * 1000,
                         megabytes / seconds(decode)))
        }
    }
}
