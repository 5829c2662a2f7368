import XCTest
@testable import BitNet

#if canImport(Glibc)
import Glibc
#endif

final class PerplexityTests: XCTestCase {
    /// Windowed perplexity equals the same recipe computed from the reference forward pass.
    func testWindowedPerplexityMatchesTheReference() throws {
        let config = ModelTests.tinyConfig(.bitnetB158)
        let path = try ModelTests.writeModel(config, name: "ppl")
        defer { unlink(path) }
        let weights = try ModelWeights(path: path)
        let model = try BitNetModel(weights: weights, contextLength: 16, threads: 2)
        let session = try model.makeSession()
        var rng = SeededGenerator(seed: 17)
        let tokens = (0..<37).map { _ in Int32(rng.next() % UInt64(config.vocabSize)) }
        let reference = ReferenceModel(weights: weights)
        for (window, stride) in [(16, 16), (16, 8), (10, 3)] {
            let got = try Perplexity.evaluate(session: session, tokens: tokens, window: window, stride: stride)
            // the recipe, spelled out: windows start every `stride`, score tokens after the previous end
            var nll = 0.0, count = 0, previousEnd = 0, begin = 0
            while begin < tokens.count {
                let end = min(begin + window, tokens.count)
                let slice = Array(tokens[begin..<end])
                let logits = reference.logits(tokens: slice)
                for p in max(previousEnd, begin + 1)..<end {
                    let row = logits[p - begin - 1].map(Double.init)
                    let m = row.max()!
                    nll += log(row.map { exp($0 - m) }.reduce(0, +)) - (row[Int(tokens[p])] - m)
                    count += 1
                }
                previousEnd = end
                if end == tokens.count { break }
                begin += stride
            }
            // overlapping windows score every token but the text's first; disjoint ones also skip each window's first
            XCTAssertEqual(got.scoredTokens, stride < window ? tokens.count - 1 : tokens.count - got.windows)
            XCTAssertEqual(got.scoredTokens, count)
            XCTAssertEqual(got.value, exp(nll / Double(count)), accuracy: 1e-4 * exp(nll / Double(count)), "\(window)/\(stride)")
        }
        XCTAssertThrowsError(try Perplexity.evaluate(session: session, tokens: tokens, window: 17, stride: 4)) // > context
        XCTAssertThrowsError(try Perplexity.evaluate(session: session, tokens: tokens, window: 8, stride: 9))
    }
}

extension PerplexityTests {
    /// BOS windows: every token scored once, each chunk after a BOS, as the golden data defines it.
    func testBOSWindowsScoreEveryTokenOnce() throws {
        let config = ModelTests.tinyConfig(.llama)
        let path = try ModelTests.writeModel(config, name: "ppl-bos")
        defer { unlink(path) }
        let weights = try ModelWeights(path: path)
        let model = try BitNetModel(weights: weights, contextLength: 12, threads: 1)
        let session = try model.makeSession()
        var rng = SeededGenerator(seed: 29)
        let text = (0..<25).map { _ in Int32(1 + rng.next() % UInt64(config.vocabSize - 1)) }
        let got = try Perplexity.evaluate(session: session, text: text, bos: 0, window: 12)
        XCTAssertEqual(got.scoredTokens, 25)
        XCTAssertEqual(got.windows, 3) // 11 + 11 + 3
        let reference = ReferenceModel(weights: weights)
        var nll = 0.0
        for start in stride(from: 0, to: text.count, by: 11) {
            let chunk = Array(text[start..<min(text.count, start + 11)])
            let logits = reference.logits(tokens: [0] + chunk)
            for (i, t) in chunk.enumerated() {
                let row = logits[i].map(Double.init), m = row.max()!
                nll += log(row.map { exp($0 - m) }.reduce(0, +)) - (row[Int(t)] - m)
            }
        }
        XCTAssertEqual(got.negativeLogLikelihood, nll, accuracy: 1e-3)
    }
}
