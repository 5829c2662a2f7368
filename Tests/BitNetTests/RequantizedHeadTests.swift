import XCTest
@testable import BitNet

/// `--head q8_0|q6_k|q4_k|q4_0`: the F16 head requantized at load and computed by the
/// native block kernels (fewer bytes per token on files that store F16).
final class RequantizedHeadTests: XCTestCase {
    private static let blockHeads: [BitNetModel.HeadPrecision] = [.q8_0, .q6_k, .q4_k, .q4_0]

    /// The head's bytes are exactly the quantizer's on the F16 values, row for row, whatever
    /// the thread count that split the work.
    func testRequantizedHeadIsTheQuantizersBytes() throws {
        let weights = try ModelWeights(path: GoldenModelTests.modelPath)
        let c = weights.config
        var floats = [Float](repeating: 0, count: c.vocabSize * c.hiddenSize) // (vocab, hidden)
        for r in 0..<c.vocabSize {
            let row = weights.output.row(r)
            for j in 0..<c.hiddenSize { floats[r * c.hiddenSize + j] = Float(Float16(bitPattern: row[j])) }
        }
        for head in Self.blockHeads {
            let expected = try XCTUnwrap(KBlockQuantizer.encode(floats, type: head.blockType!))
            for threads in [1, 3] {
                let m = try BlockQuantizedMatrix.requantizedHead(of: weights, to: head.blockType!, threads: threads)
                XCTAssertEqual(m.type, head.blockType)
                XCTAssertEqual(m.byteCount, head.headBytes(weights))
                XCTAssertTrue(UnsafeRawBufferPointer(start: m.pointer, count: m.byteCount).elementsEqual(expected),
                              "\(head) with \(threads) thread(s)")
            }
        }
    }

    /// A model with a requantized head predicts like the F16 head (same greedy tokens on the
    /// shipped model's text, logits close) and reads fewer bytes per token.
    func testRequantizedHeadPredictsLikeF16() throws {
        let weights = try ModelWeights(path: GoldenModelTests.modelPath)
        let prompt: [Int32] = [1, 50, 300, 7, 99, 1000, 12, 4000, 3, 77]
        let reference = try BitNetModel(weights: weights, contextLength: 32, threads: 2).makeSession().forward(prompt, allLogits: true)
        let f16Bytes = try BitNetModel(weights: weights, contextLength: 32, threads: 2).bytesPerToken
        let v = weights.config.vocabSize
        func argmax(_ x: ArraySlice<Float>) -> Int { x.indices.max { x[$0] < x[$1] }! }
        for head in Self.blockHeads {
            let model = try BitNetModel(weights: weights, contextLength: 32, threads: 2, headPrecision: head)
            XCTAssertEqual(model.blockHead?.type, head.blockType)
            XCTAssertLessThan(model.bytesPerToken, f16Bytes)
            let logits = try model.makeSession().forward(prompt, allLogits: true)
            var agree = 0, worst: Float = 0, spread: Float = 0
            for t in 0..<prompt.count {
                let a = reference[(t * v)..<((t + 1) * v)], b = logits[(t * v)..<((t + 1) * v)]
                agree += argmax(a) == argmax(b) ? 1 : 0
                worst = max(worst, zip(a, b).map { abs($0 - $1) }.max()!)
                spread = max(spread, a.max()! - a.min()!)
            }
            // near-ties of this small model's logits flip under 4-bit heads (Q4_0 agrees on 8 of 10)
            XCTAssertGreaterThanOrEqual(agree, prompt.count - (head == .q8_0 || head == .q6_k ? 1 : 3), "\(head): greedy agreement")
            // 4-bit heads move logits by a few percent of their range, 8-bit by well under one
            XCTAssertLessThan(worst, spread * (head == .q8_0 ? 0.01 : 0.08), "\(head): largest logit change \(worst)")
            XCTAssertGreaterThan(worst, 0, "\(head): the head really changed")
        }
    }

    /// A block type whose block does not divide the hidden size is refused naming both.
    func testIndivisibleHiddenSizeIsRefused() throws {
        let path = try ModelTests.writeModel(ModelTests.tinyConfig(.bitnetB158), name: "requant-64")
        defer { unlink(path) }
        let weights = try ModelWeights(path: path)
        XCTAssertThrowsError(try BitNetModel(weights: weights, contextLength: 8, threads: 1, headPrecision: .q6_k)) { error in
            XCTAssertTrue("\(error)".contains("256") && "\(error)".contains("64") && "\(error)".contains("--head"), "\(error)")
        }
        XCTAssertNoThrow(try BitNetModel(weights: weights, contextLength: 8, threads: 1, headPrecision: .q8_0))
    }
}
