import XCTest
import CKernels
@testable import BitNet

#if canImport(Glibc)
import Glibc
#endif

/// The opt-in int8 head: requantization is faithful per row, and a model
/// with it stays close to the exact F16 head.
final class Q8HeadTests: XCTestCase {
    func testRequantizedHeadApproximatesTheF16Product() throws {
        var rng = SeededGenerator(seed: 21)
        let (rows, cols) = (37, 200)
        let halves = (0..<(rows * cols)).map { _ in Float16(rng.nextSigned() * (1 + Float(rng.next() % 4))).bitPattern }
        let owner = AlignedBuffer(byteCount: rows * cols * 2)
        let p = owner.typed(UInt16.self)
        for i in 0..<halves.count { p[i] = halves[i] }
        let head = HalfMatrix(rows: rows, cols: cols, pointer: UnsafePointer(p.baseAddress!), owner: owner)
        let q8 = try Q8Matrix(head)
        let x = (0..<cols).map { _ in rng.nextSigned() }
        let acts = try QuantizedActivations(capacity: 1, cols: cols)
        let kernels = Kernels.best
        try x.withUnsafeBufferPointer { try kernels.quantize($0, rows: 1, cols: cols, into: acts) }
        var y = [Float](repeating: 0, count: rows)
        q8.withDescriptor { m in
            y.withUnsafeMutableBufferPointer { out in
                kernels.table.pointee.q8_gemm(m, acts.values.typed(Int8.self).baseAddress, acts.scales.typed(Float.self).baseAddress,
                                              1, out.baseAddress, Int32(rows), 0, Int32((rows + 15) / 16 * 16))
            }
        }
        var err = 0.0, norm = 0.0
        for r in 0..<rows {
            var exact = 0.0
            for c in 0..<cols { exact += Double(Float(Float16(bitPattern: halves[r * cols + c]))) * Double(x[c]) }
            err += (Double(y[r]) - exact) * (Double(y[r]) - exact)
            norm += exact * exact
        }
        // two int8 roundings (weights per row, activations per token): ~1% relative error
        XCTAssertLessThan((err / norm).squareRoot(), 0.02)
    }

    /// Every stored int8 is round(w / d) ties-to-even with d = max|finite w| / 127, read back
    /// from the Q8_R16 layout (chunk c of a 16-row group: byte 4r + i is row r, column 4c + i);
    /// ties, a row of zeros, and a hostile row's ±inf (saturated) and NaN (0) included.
    func testRequantizationRoundsTiesToEvenAndSaturatesNonFiniteWeights() throws {
        let cols = 12
        let rowsOfValues: [[Float]] = [
            [127, 2.5, 3.5, -2.5, -3.5, 0.5, 1.5, -0.5, 126.5, -127, 0, 64.25],
            [Float](repeating: 0, count: cols),
            [.infinity, -.infinity, .nan, 8, -4, 2, 1, 0.25, 0, 3, 5, 7],
            [.infinity, .nan, 0, 0, 0, 0, 0, 0, 0, 0, 0, -.infinity],
        ]
        let rows = rowsOfValues.count
        let owner = AlignedBuffer(byteCount: rows * cols * 2)
        let p = owner.typed(UInt16.self)
        for r in 0..<rows { for c in 0..<cols { p[r * cols + c] = Float16(rowsOfValues[r][c]).bitPattern } }
        let q8 = try Q8Matrix(HalfMatrix(rows: rows, cols: cols, pointer: UnsafePointer(p.baseAddress!), owner: owner))
        let stored = q8.data.pointer.assumingMemoryBound(to: Int8.self)
        for r in 0..<rows {
            let w = rowsOfValues[r].map { Float(Float16($0)) }
            let amax = w.filter { $0.isFinite }.map { abs($0) }.max()!
            let d: Float = amax > 0 ? amax / 127 : 1
            XCTAssertEqual(q8.rowScale.typed(Float.self)[r], d, "row \(r)")
            for c in 0..<cols {
                let q = w[c] / d
                let expected: Int8 = q.isNaN ? 0 : Int8(Swift.min(127, Swift.max(-127, q)).rounded(.toNearestOrEven))
                XCTAssertEqual(stored[(c / 4) * 64 + r * 4 + c % 4], expected, "row \(r) column \(c): w = \(w[c])")
            }
        }
        // the ties of the first row (d = 1): 2.5 → 2, 3.5 → 4, −2.5 → −2, 0.5 → 0, 126.5 → 126
        XCTAssertEqual([1, 2, 3, 5, 8].map { stored[($0 / 4) * 64 + $0 % 4] }, [2, 4, -2, 0, 126])
    }

    func testModelWithQ8HeadTracksTheF16Head() throws {
        let config = ModelTests.tinyConfig(.llama)
        let path = try ModelTests.writeModel(config, name: "q8head")
        defer { unlink(path) }
        let weights = try ModelWeights(path: path)
        let input: [Int32] = [3, 14, 15, 9, 26, 5, 35, 8]
        let exact = try BitNetModel(weights: weights, contextLength: 16, threads: 2).makeSession().forward(input, allLogits: true)
        let model = try BitNetModel(weights: weights, contextLength: 16, threads: 2, headPrecision: .q8)
        let session = try model.makeSession()
        XCTAssertEqual(model.bytesPerToken, weights.bytesPerToken - config.vocabSize * config.hiddenSize)
        let approx = try session.forward(input, allLogits: true)
        var same = 0
        for p in 0..<input.count {
            let a = Array(exact[(p * config.vocabSize)..<((p + 1) * config.vocabSize)])
            let b = Array(approx[(p * config.vocabSize)..<((p + 1) * config.vocabSize)])
            let ma = a.reduce(0, +) / Float(a.count), mb = b.reduce(0, +) / Float(b.count)
            var sab: Float = 0, saa: Float = 0, sbb: Float = 0
            for i in 0..<a.count { sab += (a[i] - ma) * (b[i] - mb); saa += (a[i] - ma) * (a[i] - ma); sbb += (b[i] - mb) * (b[i] - mb) }
            XCTAssertGreaterThan(sab / (saa * sbb).squareRoot(), 0.999, "position \(p)")
            if Sampler.argmax(a) == Sampler.argmax(b) { same += 1 }
        }
        XCTAssertGreaterThanOrEqual(same, input.count - 1)
        // incremental decoding with the int8 head equals its own batched run
        let step = try BitNetModel(weights: weights, contextLength: 16, threads: 1, headPrecision: .q8)
        let stepSession = try step.makeSession()
        for (p, t) in input.enumerated() {
            let l = try stepSession.forward([t])
            XCTAssertLessThan(zip(l, approx[(p * config.vocabSize)..<((p + 1) * config.vocabSize)]).map { abs($0 - $1) }.max()!, 1e-4)
        }
    }
}
