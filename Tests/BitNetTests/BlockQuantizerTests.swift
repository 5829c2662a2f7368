import Foundation
import XCTest
@testable import BitNet
@testable import BitNetConvert

/// Q8_0 quantization (convert --embedding-type q8_0) against gguf-py's reference
/// (tools/gguf/make_quant_fixture.py), Q4_K and Q6_K against ggml's
/// (tools/gguf/make_k_quant_fixture.py), and a converted model end to end.
final class BlockQuantizerTests: XCTestCase {
    private struct Fixture: Decodable {
        struct Case: Decodable { let type: String; let rows: Int; let cols: Int; let f32: String; let blocks: String }
        let gguf_version: String
        let cases: [Case]
    }

    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func testQ8_0MatchesTheReferenceBitForBit() throws {
        let url = Self.root.appendingPathComponent("Tests/BitNetTests/Fixtures/dequant/quant.json")
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        XCTAssertEqual(fixture.cases.count, 7)
        for (n, c) in fixture.cases.enumerated() {
            let raw = try XCTUnwrap(Data(base64Encoded: c.f32))
            let x = raw.withUnsafeBytes { b in (0..<(c.rows * c.cols)).map { b.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) } }
            var out: [UInt8] = []
            x.withUnsafeBufferPointer { BlockQuantizer.appendQ8_0($0.baseAddress!, count: x.count, to: &out) }
            XCTAssertEqual(out, [UInt8](try XCTUnwrap(Data(base64Encoded: c.blocks))), "case \(n)")
            // and back: within half a step, plus what storing d as f16 costs (|q| ≤ 127)
            let back = try BlockDequantizer.dequantize(.q8_0, out.withUnsafeBytes { $0 }, rows: c.rows, cols: c.cols)
            for b in stride(from: 0, to: x.count, by: 32) {
                let d = x[b..<(b + 32)].map(abs).max()! / 127, d16 = Float(Float16(d))
                let bound = 0.5 * d * 1.001 + 127 * abs(d16 - d) * 1.001 + 1e-30
                for i in b..<(b + 32) { XCTAssertLessThanOrEqual(abs(back[i] - x[i]), bound, "case \(n) element \(i)") }
            }
        }
    }

    /// Q4_K and Q6_K bytes equal ggml's reference quantizers' (quantize_row_q4_K_ref and
    /// quantize_row_q6_K_ref: llama-quantize's bytes without an importance matrix) block for
    /// block, on Fixtures/dequant/quant_k.json (tools/gguf/make_k_quant_fixture.py, run on
    /// ggml's own ggml-quants.c): zeros, constants, spikes, one-signed and narrow ranges, sub-
    /// blocks whose sub-scale rounds to 0 (they keep the search's codes), f16 scales that
    /// underflow or overflow, f32 subnormals, ties, heavy tails and random rows of several
    /// blocks. Decoded back, the normal rows' RMS error stays below 8% (Q4_K) and 2% (Q6_K)
    /// of their RMS (measured 6.9-7.5% and 1.7-1.9%).
    func testQ4_KAndQ6_KMatchGGMLReferenceBitForBit() throws {
        struct Fixture: Decodable {
            struct Case: Decodable { let name: String; let rows: Int; let cols: Int; let f32: String; let q4_K: String; let q6_K: String }
            let cases: [Case]
        }
        let url = Self.root.appendingPathComponent("Tests/BitNetTests/Fixtures/dequant/quant_k.json")
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        var compared = 0
        for c in fixture.cases {
            let raw = try XCTUnwrap(Data(base64Encoded: c.f32))
            let x = raw.withUnsafeBytes { b in (0..<(raw.count / 4)).map { b.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) } }
            XCTAssertEqual(x.count, c.rows * c.cols, c.name)
            for (type, expected, limit) in [(GGMLType.q4_K, c.q4_K, 0.08), (.q6_K, c.q6_K, 0.02)] {
                let want = [UInt8](try XCTUnwrap(Data(base64Encoded: expected)))
                let got = try XCTUnwrap(KBlockQuantizer.encode(x, type: type))
                XCTAssertEqual(got.count, want.count, "\(type) \(c.name)")
                let size = type.typeSize!
                for b in 0..<min(got.count, want.count) / size where got[(b * size)..<((b + 1) * size)] != want[(b * size)..<((b + 1) * size)] {
                    XCTFail("\(type) \(c.name): block \(b) differs from ggml's")
                }
                compared += got.count / size
                guard c.name.hasPrefix("normals x") || c.name.hasPrefix("random") else { continue }
                let back = try got.withUnsafeBytes { try BlockDequantizer.dequantize(type, $0, rows: c.rows, cols: c.cols) }
                let rms = (x.map { Double($0 * $0) }.reduce(0, +) / Double(x.count)).squareRoot()
                let err = (zip(x, back).map { Double(($0 - $1) * ($0 - $1)) }.reduce(0, +) / Double(x.count)).squareRoot()
                XCTAssertLessThan(err / rms, limit, "\(type) \(c.name): relative RMS error")
            }
        }
        XCTAssertEqual(compared, 2 * 104, "blocks compared, Q4_K and Q6_K")
    }

    /// The shipped checkpoint converted with a Q8_0 embedding loads and predicts like the F16 one.
    func testQ8_0EmbeddingConversionLoadsAndAgrees() throws {
        let folder = Self.root.appendingPathComponent("tools/train/out/hf").path
        let out = NSTemporaryDirectory() + "/bitnet-q8-embd-\(getpid()).gguf"
        defer { unlink(out) }
        try HFConverter(folder: folder, options: ConversionOptions(embeddingType: "q8_0")).convert(to: out)
        let file = try GGUFFile(path: out)
        XCTAssertEqual(file.tensor(named: TensorName.tokenEmbedding)?.type, .q8_0)
        XCTAssertEqual(try GGUFFile(path: GoldenModelTests.modelPath).fileSize - file.fileSize,
                       4096 * 256 * 2 - 4096 * 256 / 32 * 34, "only the embedding shrank")
        func logits(_ p: String) throws -> [Float] {
            let model = try BitNetModel(weights: try ModelWeights(path: p), contextLength: 16, threads: 1)
            let session = try model.makeSession()
            return try session.forward([1, 200, 37, 1000, 5])
        }
        let a = try logits(out), b = try logits(GoldenModelTests.modelPath)
        XCTAssertEqual(a.indices.max { a[$0] < a[$1] }, b.indices.max { b[$0] < b[$1] }, "same prediction")
        let scale = b.map(abs).max()!
        XCTAssertLessThan(zip(a, b).map { abs($0 - $1) }.max()!, 0.05 * scale)
    }
}
