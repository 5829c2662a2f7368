import XCTest
import CKernels
@testable import BitNet

/// The F16 head's 16-row panels: every element where `bn_f16_gemm_fn` reads it when
/// the copy is split over threads and ranges, and one copy per loaded weights.
final class HalfPanelsTests: XCTestCase {
    func testPanelsHoldEveryElementAcrossRangesAndThreads() throws {
        // two ranges of 256 panels and a partial last panel (4133 = 258 × 16 + 5 rows)
        let (rows, cols) = (HalfPanels.panelsPerRange * 16 + 37, 3)
        let owner = AlignedBuffer(byteCount: rows * cols * 2)
        let source = owner.typed(UInt16.self)
        for i in 0..<(rows * cols) { source[i] = UInt16(truncatingIfNeeded: i &* 2654435761 >> 7) | 1 } // never 0
        let half = HalfMatrix(rows: rows, cols: cols, pointer: UnsafePointer(source.baseAddress!), owner: owner)
        for threads in [1, 3] {
            let panels = try HalfPanels(half, threads: threads, releasingFilePages: false, path: "test")
            let count = bn_f16_panels_bytes(Int32(rows), Int32(cols)) / 2
            XCTAssertEqual(count, (rows + 15) / 16 * 16 * cols)
            var misplaced = 0
            for p in 0..<((rows + 15) / 16) {
                for c in 0..<cols {
                    for i in 0..<16 {
                        let r = 16 * p + i
                        let want: UInt16 = r < rows ? source[r * cols + c] : 0
                        if panels.pointer[(p * cols + c) * 16 + i] != want { misplaced += 1 }
                    }
                }
            }
            XCTAssertEqual(misplaced, 0, "threads \(threads)")
        }
    }

    func testModelsOnOneWeightsShareOnePanelCopy() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("panels-\(getpid()).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try TinyModelFile.write(to: path)
        let weights = try ModelWeights(path: path)
        let a = try BitNetModel(weights: weights, threads: 1)
        let b = try BitNetModel(weights: weights, threads: 2)
        let q8 = try BitNetModel(weights: weights, threads: 1, headPrecision: .q8)
        XCTAssertNotNil(a.halfHead)
        XCTAssertEqual(a.halfHead?.pointer, b.halfHead?.pointer)
        XCTAssertNil(q8.halfHead, "an int8 head needs no F16 panels")
        // the panels hold the file's head: row 258 (the last, in a partial panel), column 5
        let head = weights.output
        XCTAssertEqual(a.halfHead!.pointer[(258 / 16 * head.cols + 5) * 16 + 258 % 16], head.row(258)[5])
    }

    func testEmbeddingRowsComeBackOutOfThePanels() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("panel-rows-\(getpid()).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try TinyModelFile.write(to: path)
        let weights = try ModelWeights(path: path)
        XCTAssertTrue(weights.headIsTied)
        XCTAssertNil(weights.madeHeadPanels, "nothing made before a model asks")
        let q8 = try BitNetModel(weights: weights, threads: 1, headPrecision: .q8)
        let model = try BitNetModel(weights: weights, threads: 1)
        XCTAssertEqual(weights.madeHeadPanels?.pointer, model.halfHead?.pointer)
        let panels = try XCTUnwrap(model.halfHead)
        let embedding = weights.tokenEmbedding
        var row = [UInt16](repeating: 0, count: embedding.cols)
        for r in [0, 15, 16, 17, embedding.rows - 1] { // panel edges and the last, partial panel
            row.withUnsafeMutableBufferPointer { panels.row(r, into: $0.baseAddress!) }
            XCTAssertEqual(row, Array(UnsafeBufferPointer(start: embedding.row(r), count: embedding.cols)), "row \(r)")
        }
        // a q8-head model on these weights (made first, so no panels of its own) embeds from
        // them now too: its prompt's logits equal a fresh load's, where the file is intact
        let fresh = try BitNetModel(weights: try ModelWeights(path: path), threads: 1, headPrecision: .q8)
        let prompt: [Int32] = [1, 17, 258, 3]
        XCTAssertEqual(try q8.makeSession().forward(prompt), try fresh.makeSession().forward(prompt))
    }
}
