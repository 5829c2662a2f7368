import Foundation
import XCTest
@testable import BitNet
@testable import BitNetConvert

/// `bitnet convert model.gguf --type …`: projections change storage, nothing else changes.
final class GGUFReencoderTests: XCTestCase {
    private func path(_ name: String) -> String { "\(ModelTests.tmp)/bitnet-reencode-\(getpid())-\(name).gguf" }

    private func reencode(_ source: String, _ type: GGUFModelLayout.ProjectionType, _ name: String) throws -> String {
        let out = path(name)
        try GGUFReencoder(source: try GGUFFile(path: source), projectionType: type).write(to: out)
        return out
    }

    private func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    /// Exact layouts (TL1, TL2, our I2_R16-free paths) round-trip to the very same I2_S file.
    func testLosslessRoundTripsGiveTheSameFile() throws {
        let shipped = GoldenModelTests.modelPath
        for type in [GGUFModelLayout.ProjectionType.tl1, .tl2] {
            let there = try reencode(shipped, type, "there-\(type.name)")
            let back = try reencode(there, .i2s, "back-\(type.name)")
            defer { unlink(there); unlink(back) }
            XCTAssertEqual(try GGUFFile(path: there).tensor(named: "blk.0.ffn_up.weight")?.type,
                           type == .tl1 ? .bnTL1 : .bnTL2)
            XCTAssertEqual(try bytes(back), try bytes(shipped), "i2_s → \(type.name) → i2_s")
        }
    }

    /// TQ and F16 store the scale as f16: the same ternary codes, the scale rounded once.
    func testTQAndF16KeepTheCodesAndRoundTheScale() throws {
        let shipped = GoldenModelTests.modelPath
        let original = try ModelWeights(path: shipped)
        for type in [GGUFModelLayout.ProjectionType.tq2_0, .tq1_0, .f16] {
            let there = try reencode(shipped, type, "tq-\(type.name)")
            defer { unlink(there) }
            let file = try GGUFFile(path: there)
            XCTAssertEqual(file.metadataKeys, try GGUFFile(path: shipped).metadataKeys, "keys and their order kept")
            let weights = try ModelWeights(file: file)
            for (a, b) in zip(original.layers.flatMap(\.projections), weights.layers.flatMap(\.projections)) {
                XCTAssertEqual(a.ternaryValues(), b.ternaryValues(), "\(type.name): ternary codes")
                XCTAssertEqual(b.scale, Float(Float16(a.scale)), "\(type.name): scale rounded to f16")
            }
        }
    }

    /// The engine gives the same logits for the re-encoded file.
    func testReencodedModelGivesTheSameLogits() throws {
        let shipped = GoldenModelTests.modelPath
        let tl2 = try reencode(shipped, .tl2, "logits")
        defer { unlink(tl2) }
        func logits(_ p: String) throws -> [Float] {
            let model = try BitNetModel(weights: try ModelWeights(path: p), contextLength: 16, threads: 1, kernel: .fixed(.i2s))
            let session = try model.makeSession()
            return try session.forward([1, 50, 300, 7], allLogits: true)
        }
        XCTAssertEqual(try logits(tl2), try logits(shipped))
    }

    /// The embedding can be requantized on the way (an official F16 file → Q8_0 for bitnet.cpp):
    /// equal to quantizing the F16 values directly, and the model still predicts the same.
    func testEmbeddingRequantizedToQ8_0() throws {
        let shipped = GoldenModelTests.modelPath
        let out = path("q8-embd")
        defer { unlink(out) }
        try GGUFReencoder(source: try GGUFFile(path: shipped), projectionType: .i2s, embeddingType: .q8_0).write(to: out)
        let file = try GGUFFile(path: out), original = try GGUFFile(path: shipped)
        let t = try XCTUnwrap(file.tensor(named: TensorName.tokenEmbedding))
        XCTAssertEqual(t.type, .q8_0)
        // the F16 values, quantized directly
        let src = original.data(for: original.tensor(named: TensorName.tokenEmbedding)!)
        let floats = (0..<(4096 * 256)).map { Float(Float16(bitPattern: src.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) }
        var expected: [UInt8] = []
        floats.withUnsafeBufferPointer { BlockQuantizer.appendQ8_0($0.baseAddress!, count: $0.count, to: &expected) }
        XCTAssertTrue(file.data(for: t).prefix(expected.count).elementsEqual(expected))
        // everything else is the shipped file's
        XCTAssertEqual(try GGUFFile(path: out).tensor(named: "blk.3.ffn_up.weight")?.type, .i2_s)
        func top(_ p: String) throws -> Int {
            let logits = try BitNetModel(weights: try ModelWeights(path: p), contextLength: 8, threads: 1).makeSession().forward([1, 200, 37])
            return logits.indices.max { logits[$0] < logits[$1] }!
        }
        XCTAssertEqual(try top(out), try top(shipped))
    }

    /// Layouts that cannot hold the shapes are refused before anything is written.
    func testUnsupportedTargetsAreRefusedWithTheReason() throws {
        let shipped = GoldenModelTests.modelPath
        let file = try GGUFFile(path: shipped)
        XCTAssertThrowsError(try GGUFReencoder(source: file, projectionType: .bitnetcppTL2)) { error in
            guard case .invalidConfig(_, let key, let reason)? = error as? ConvertError else { return XCTFail("\(error)") }
            XCTAssertEqual(key, "--type bitnetcpp-tl2")
            XCTAssertTrue(reason.contains("256×768"), reason)
        }
        let tiny = try ModelTests.writeModel(ModelTests.tinyConfig(.bitnetB158), name: "reencode-tiny")
        defer { unlink(tiny) }
        XCTAssertThrowsError(try GGUFReencoder(source: try GGUFFile(path: tiny), projectionType: .tq2_0)) { error in
            guard case .invalidConfig(_, _, let reason)? = error as? ConvertError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("multiple of 256"), reason)
        }
    }
}

extension ModelTests {
    /// 1bitLLM files scale each projection's output by a separate F32 [1] tensor: re-encoding
    /// folds it into the weight scale and drops it, and the model computes the same logits.
    func testReencodingFoldsProjectionScales() throws {
        let scaled = try variant("reencode-scale") { t, _ in
            var data: [UInt8] = []
            withUnsafeBytes(of: Float(0.5).bitPattern.littleEndian) { data += $0 }
            t.append((name: TensorName.layerScale(0, TensorName.attnQ), dims: [1], type: .f32, data: data))
        }
        let out = "\(Self.tmp)/bitnet-reencode-\(getpid())-folded.gguf"
        defer { unlink(scaled); unlink(out) }
        try GGUFReencoder(source: try GGUFFile(path: scaled), projectionType: .tl2).write(to: out)
        XCTAssertNil(try GGUFFile(path: out).tensor(named: TensorName.layerScale(0, TensorName.attnQ)))
        func logits(_ p: String) throws -> [Float] {
            let model = try BitNetModel(weights: try ModelWeights(path: p), contextLength: 8, threads: 1, kernel: .fixed(.i2s))
            let session = try model.makeSession()
            return try session.forward([3, 9, 27], allLogits: true)
        }
        XCTAssertEqual(try logits(out), try logits(scaled))
        let unscaled = try Self.writeModel(Self.tinyConfig(.bitnetB158), name: "src-reencode-scale")
        defer { unlink(unscaled) }
        XCTAssertNotEqual(try logits(out), try logits(unscaled), "the 0.5 scale matters")
    }
}
