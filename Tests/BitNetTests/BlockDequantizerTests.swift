import Foundation
import XCTest
@testable import BitNet

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// llama.cpp block types (Q4_0 ... Q6_K, IQ4_NL, IQ4_XS) dequantized against gguf-py's reference
/// (Fixtures/dequant/dequant.json, tools/gguf/make_dequant_fixture.py), and embeddings / heads
/// stored in them loading like their F16 twins.
final class BlockDequantizerTests: XCTestCase {
    struct Fixture: Decodable {
        struct Case: Decodable {
            let type: String, id: UInt32, rows: Int, cols: Int
            let blocks: String, f32: String
        }
        let gguf_version: String
        let cases: [Case]
    }

    static let fixture: Fixture? = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/dequant/dequant.json")
        guard let data = try? Data(contentsOf: url) else { return nil }
        return try? JSONDecoder().decode(Fixture.self, from: data)
    }()

    private func bytes(_ base64: String) throws -> [UInt8] {
        try XCTUnwrap(Data(base64Encoded: base64).map { [UInt8]($0) }, "bad base64 in the fixture")
    }

    /// Every supported type, bit for bit in f32, whole tensors and row by row; and the F16 copy
    /// equals Float16(reference) (or reports the first value beyond F16's range).
    func testEveryTypeMatchesGGUFPyBitExactly() throws {
        guard let fixture = Self.fixture else { throw XCTSkip("Fixtures/dequant/dequant.json missing or unreadable") }
        XCTAssertEqual(Set(fixture.cases.map(\.id)), Set(BlockDequantizer.supportedTypes.map(\.rawValue)),
                       "the fixture covers exactly the supported types")
        for c in fixture.cases {
            let type = GGMLType(rawValue: c.id)
            XCTAssertEqual(type.name, c.type)
            let raw = try bytes(c.blocks)
            let wantBytes = try bytes(c.f32)
            XCTAssertEqual(wantBytes.count, c.rows * c.cols * 4)
            let want: [UInt32] = (0..<(c.rows * c.cols)).map { i -> UInt32 in
                var v: UInt32 = 0
                for k in 0..<4 { v |= UInt32(wantBytes[4 * i + k]) << UInt32(8 * k) }
                return v
            }
            XCTAssertEqual(try BlockDequantizer.byteCount(type, rows: c.rows, cols: c.cols), raw.count, c.type)
            let got = try raw.withUnsafeBytes { try BlockDequantizer.dequantize(type, $0, rows: c.rows, cols: c.cols) }
            var mismatches = 0
            for i in 0..<want.count where got[i].bitPattern != want[i] {
                if mismatches < 5 {
                    XCTFail("\(c.type) \(c.rows)×\(c.cols) element \(i): \(got[i]) vs gguf-py \(Float(bitPattern: want[i]))")
                }
                mismatches += 1
            }
            XCTAssertEqual(mismatches, 0, "\(c.type): \(mismatches) of \(want.count) values differ")

            // one row at a time, at an unaligned source offset
            let rowBytes = raw.count / c.rows
            var row = [Float](repeating: .nan, count: c.cols)
            let shifted = [0x5A] + raw
            for r in 0..<c.rows {
                shifted.withUnsafeBytes { src in
                    row.withUnsafeMutableBufferPointer {
                        BlockDequantizer.dequantizeRow(type, src.baseAddress! + 1 + r * rowBytes, count: c.cols,
                                                       into: $0.baseAddress!)
                    }
                }
                XCTAssertEqual(row.map(\.bitPattern), Array(want[(r * c.cols)..<((r + 1) * c.cols)]), "\(c.type) row \(r)")
            }

            // the F16 copy the loader makes
            var half = [UInt16](repeating: 0, count: c.rows * c.cols)
            let firstBeyond = want.firstIndex { !Float16(Float(bitPattern: $0)).isFinite }
            do {
                try raw.withUnsafeBytes { (src: UnsafeRawBufferPointer) throws -> Void in
                    try half.withUnsafeMutableBufferPointer { (dst: inout UnsafeMutableBufferPointer<UInt16>) throws -> Void in
                        try BlockDequantizer.dequantizeToHalf(type, src, rows: c.rows, cols: c.cols, into: dst.baseAddress!)
                    }
                }
                XCTAssertNil(firstBeyond, "\(c.type): a value beyond F16 was accepted")
                XCTAssertEqual(half, want.map { Float16(Float(bitPattern: $0)).bitPattern }, "\(c.type) F16")
            } catch let e as BlockDequantizer.Failure {
                let i = try XCTUnwrap(firstBeyond, "\(c.type): \(e)")
                XCTAssertEqual(e, .beyondHalfRange(row: i / c.cols, col: i % c.cols, value: Float(bitPattern: want[i])))
            }
        }
    }

    /// The loader's f32 → f16 rounding is Float16's (nearest even; subnormals; overflow to inf).
    func testHalfConversionMatchesFloat16() {
        var lows: [UInt32] = [0x0000, 0x0001, 0x0FFF, 0x1000, 0x1001, 0x1FFF, 0x2000, 0x2FFF, 0x3000, 0x3001,
                              0x5000, 0x7000, 0x8FFF, 0x9000, 0xD000, 0xF000, 0xFFFF]
        var rng = SeededGenerator(seed: 11)
        for _ in 0..<3 { lows.append(UInt32(truncatingIfNeeded: rng.next()) & 0xFFFF) }
        var failures = 0
        for high in UInt32(0)...0xFFFF {
            for low in lows {
                let x = Float(bitPattern: high << 16 | low)
                let got = BlockDequantizer.halfBits(x), want = Float16(x)
                if want.isNaN ? !Float16(bitPattern: got).isNaN : got != want.bitPattern {
                    if failures < 5 { XCTFail("\(x) (0x\(String(x.bitPattern, radix: 16))): \(got) vs \(want.bitPattern)") }
                    failures += 1
                }
            }
        }
        XCTAssertEqual(failures, 0)
    }

    /// Many rows (uneven chunks over cores) give the same F16 as row-by-row conversion.
    func testManyRowsAreSplitOverCoresCorrectly() throws {
        var rng = SeededGenerator(seed: 3)
        for (type, cols) in [(GGMLType.q6_K, 512), (.q4_K, 256), (.q5_0, 96)] {
            let rows = 131
            let (_, typeSize) = type.blockLayout!
            let blockSize = type.blockSize!
            var raw = (0..<(rows * cols / blockSize * typeSize)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            Self.setScales(&raw, type: type) { _ in Float16(Float(rng.nextSigned()) * 0.01).bitPattern }
            let f32 = try raw.withUnsafeBytes { try BlockDequantizer.dequantize(type, $0, rows: rows, cols: cols) }
            var half = [UInt16](repeating: 0, count: rows * cols)
            try raw.withUnsafeBytes { src in
                try half.withUnsafeMutableBufferPointer {
                    try BlockDequantizer.dequantizeToHalf(type, src, rows: rows, cols: cols, into: $0.baseAddress!)
                }
            }
            XCTAssertEqual(half, f32.map { Float16($0).bitPattern }, "\(type)")
        }
    }

    func testRowsThatAreNotWholeBlocksAndShortDataAreErrors() {
        XCTAssertThrowsError(try BlockDequantizer.byteCount(.q8_0, rows: 3, cols: 48)) {
            XCTAssertEqual($0 as? BlockDequantizer.Failure, .rowNotBlockMultiple(type: .q8_0, cols: 48, blockSize: 32))
        }
        XCTAssertThrowsError(try BlockDequantizer.byteCount(.q6_K, rows: 5, cols: 64)) {
            XCTAssertEqual($0 as? BlockDequantizer.Failure, .rowNotBlockMultiple(type: .q6_K, cols: 64, blockSize: 256))
        }
        let raw = [UInt8](repeating: 0, count: 3 * 34 * 2)
        XCTAssertThrowsError(try raw.withUnsafeBytes { try BlockDequantizer.dequantize(.q8_0, $0, rows: 3, cols: 48) }) {
            XCTAssertEqual($0 as? BlockDequantizer.Failure, .rowNotBlockMultiple(type: .q8_0, cols: 48, blockSize: 32))
        }
        XCTAssertThrowsError(try raw.withUnsafeBytes { try BlockDequantizer.dequantize(.q8_0, $0, rows: 3, cols: 96) }) {
            XCTAssertEqual($0 as? BlockDequantizer.Failure, .truncated(type: .q8_0, have: 204, need: 306))
        }
        XCTAssertThrowsError(try BlockDequantizer.byteCount(.tq2_0, rows: 1, cols: 256)) {
            XCTAssertEqual($0 as? BlockDequantizer.Failure, .unsupportedType(.tq2_0))
        }
    }

    /// An infinite or NaN block scale is an error naming the row and block, for every type.
    func testNonFiniteScalesAreErrors() throws {
        for type in BlockDequantizer.supportedTypes {
            let (blockSize, typeSize) = type.blockLayout!
            let rows = 3, blocksPerRow = 2, cols = blocksPerRow * blockSize
            for (which, bits) in [(0, UInt16(0x7C00)), (0, 0xFE00), (1, 0xFC00)] {
                let offsets = Self.scaleOffsets(type)
                guard which < offsets.count else { continue }
                var raw = [UInt8](repeating: 0x37, count: rows * blocksPerRow * typeSize)
                Self.setScales(&raw, type: type) { _ in Float16(0.125).bitPattern }
                let bad = (2 * blocksPerRow + 1) * typeSize + offsets[which] // row 2, block 1
                raw[bad] = UInt8(bits & 0xFF)
                raw[bad + 1] = UInt8(bits >> 8)
                let expected = BlockDequantizer.Failure.nonFiniteScale(type: type, row: 2, block: 1)
                XCTAssertThrowsError(try raw.withUnsafeBytes { try BlockDequantizer.dequantize(type, $0, rows: rows, cols: cols) }) {
                    XCTAssertEqual($0 as? BlockDequantizer.Failure, expected, "\(type) f32")
                }
                var half = [UInt16](repeating: 0, count: rows * cols)
                XCTAssertThrowsError(try raw.withUnsafeBytes { src in
                    try half.withUnsafeMutableBufferPointer {
                        try BlockDequantizer.dequantizeToHalf(type, src, rows: rows, cols: cols, into: $0.baseAddress!)
                    }
                }) { XCTAssertEqual($0 as? BlockDequantizer.Failure, expected, "\(type) f16") }
            }
        }
    }

    // MARK: - model level

    /// A tiny model whose embedding and head are re-encoded as Q8_0 with values exactly
    /// representable (F16 values first rounded to q·d) gives the same logits as its F16 twin
    /// holding those values; Q4_K embeddings with a Q6_K head (llama-quantize's usual pair)
    /// load as their dequantized F16 twin.
    func testQuantizedEmbeddingsAndHeadsMatchTheirF16Twins() throws {
        // Q8_0: llama (separate head) and bitnet-b1.58 (tied) at hidden 64
        for arch in [ModelArchitecture.llama, .bitnetB158] {
            try checkTwins(config: ModelTests.tinyConfig(arch), name: "q8-\(arch.rawValue)",
                           types: [TensorName.tokenEmbedding: .q8_0, TensorName.output: .q8_0]) { values, _ in
                Self.encodeQ8_0(values)
            }
        }
        // K types need rows of 256
        let config = ModelConfig(architecture: .llama, vocabSize: 37, contextLength: 32, hiddenSize: 256,
                                 layerCount: 1, ffnSize: 512, headCount: 4, kvHeadCount: 2, ropeTheta: 10_000)
        var rng = SeededGenerator(seed: 21)
        try checkTwins(config: config, name: "k", types: [TensorName.tokenEmbedding: .q4_K, TensorName.output: .q6_K]) {
            values, type in
            // random codes and sub-scales, block scales sized like the F16 values
            let typeSize = type.typeSize!
            var raw = (0..<(values.count / 256 * typeSize)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            Self.setScales(&raw, type: type) { _ in Float16(Float(rng.nextSigned()) * 0.002).bitPattern }
            return raw
        }
    }

    /// Writes `config`'s model with the tensors in `types` re-encoded by `encode` (from their F16
    /// values), and its F16 twin holding the dequantized values; both must load to the same
    /// F16 matrices and give identical logits.
    private func checkTwins(config: ModelConfig, name: String, types: [String: GGMLType],
                            encode: ([Float], GGMLType) -> [UInt8]) throws {
        let source = try ModelTests.writeModel(config, name: "dequant-src-\(name)")
        defer { unlink(source) }
        let file = try GGUFFile(path: source)
        let meta = file.metadataKeys.map { ($0, file.metadata[$0]!) }
        var quantized: [(name: String, dims: [Int], type: GGMLType, data: [UInt8])] = []
        var twin = quantized
        var replaced = 0
        for t in file.tensors {
            let d = file.data(for: t)
            let bytes = Array(d[0..<(t.byteCount ?? d.count)])
            guard let type = types[t.name] else {
                quantized.append((t.name, t.dims, t.type, bytes))
                twin.append((t.name, t.dims, t.type, bytes))
                continue
            }
            XCTAssertEqual(t.type, .f16, t.name)
            let values = stride(from: 0, to: bytes.count, by: 2).map {
                Float(Float16(bitPattern: UInt16(bytes[$0]) | UInt16(bytes[$0 + 1]) << 8))
            }
            let encoded = encode(values, type)
            let decoded = try encoded.withUnsafeBytes {
                try BlockDequantizer.dequantize(type, $0, rows: t.dims[1], cols: t.dims[0])
            }
            if type == .q8_0 {
                XCTAssertTrue(decoded.allSatisfy { Float(Float16($0)) == $0 }, "\(t.name): q·d values are exact in F16")
            }
            replaced += 1
            quantized.append((t.name, t.dims, type, encoded))
            twin.append((t.name, t.dims, .f16, decoded.flatMap { v -> [UInt8] in
                let h = Float16(v).bitPattern
                return [UInt8(h & 0xFF), UInt8(h >> 8)]
            }))
        }
        XCTAssertEqual(replaced, types.keys.filter { file.tensor(named: $0) != nil }.count)
        XCTAssertGreaterThan(replaced, 0)
        let qPath = "\(ModelTests.tmp)/bitnet-test-\(getpid())-dequant-\(name)-q.gguf"
        let fPath = "\(ModelTests.tmp)/bitnet-test-\(getpid())-dequant-\(name)-f16.gguf"
        defer { unlink(qPath); unlink(fPath) }
        try GGUFWriter.write(to: qPath, metadata: meta, tensors: quantized)
        try GGUFWriter.write(to: fPath, metadata: meta, tensors: twin)
        // expanded as before the native block heads (BlockHeadTests covers those): this checks the dequantizer
        let q = try ModelWeights(path: qPath, expandBlockHeads: true), f = try ModelWeights(path: fPath)
        for (a, b, what) in [(q.tokenEmbedding, f.tokenEmbedding, "embedding"), (q.output, f.output, "head")] {
            XCTAssertEqual(a.rows, b.rows)
            XCTAssertEqual(a.cols, b.cols)
            let equal = (0..<a.rows).allSatisfy { memcmp(a.row($0), b.row($0), 2 * a.cols) == 0 }
            XCTAssertTrue(equal, "\(name) \(what): F16 matrices differ")
        }
        var rng = SeededGenerator(seed: 5)
        let tokens = (0..<7).map { _ in Int32(rng.next() % UInt64(config.vocabSize)) }
        let lq = try BitNetModel(weights: q, contextLength: 16, threads: 2).makeSession().forward(tokens, allLogits: true)
        let lf = try BitNetModel(weights: f, contextLength: 16, threads: 2).makeSession().forward(tokens, allLogits: true)
        XCTAssertEqual(lq.map(\.bitPattern), lf.map(\.bitPattern), "\(name): logits differ from the F16 twin")
    }

    /// A block type the loader does not dequantize keeps a clear error listing what it does.
    func testUnsupportedHeadTypeListsTheSupportedTypes() throws {
        let config = ModelTests.tinyConfig(.llama)
        let source = try ModelTests.writeModel(config, name: "dequant-unsupported")
        defer { unlink(source) }
        let file = try GGUFFile(path: source)
        let meta = file.metadataKeys.map { ($0, file.metadata[$0]!) }
        let tensors = file.tensors.map { t -> (name: String, dims: [Int], type: GGMLType, data: [UInt8]) in
            let d = file.data(for: t)
            if t.name == TensorName.output { return (t.name, t.dims, .i8, [UInt8](repeating: 1, count: t.rows * t.cols)) }
            return (t.name, t.dims, t.type, Array(d[0..<(t.byteCount ?? d.count)]))
        }
        let path = "\(ModelTests.tmp)/bitnet-test-\(getpid())-dequant-i8.gguf"
        defer { unlink(path) }
        try GGUFWriter.write(to: path, metadata: meta, tensors: tensors)
        XCTAssertThrowsError(try ModelWeights(path: path)) {
            guard case .unsupportedTensorType(_, let name, let type, let reason) = $0 as? ModelError else {
                return XCTFail("\($0)")
            }
            XCTAssertEqual(name, TensorName.output)
            XCTAssertEqual(type, "I8")
            XCTAssertTrue(reason.contains("Q6_K") && reason.contains("Q8_0") && reason.contains("F16"), reason)
        }
        // a NaN block scale in the embedding (row 2, block 1 of hidden 64) names the tensor and row
        let bad = file.tensors.map { t -> (name: String, dims: [Int], type: GGMLType, data: [UInt8]) in
            let d = file.data(for: t)
            let bytes = Array(d[0..<(t.byteCount ?? d.count)])
            guard t.name == TensorName.tokenEmbedding else { return (t.name, t.dims, t.type, bytes) }
            let values = stride(from: 0, to: bytes.count, by: 2).map {
                Float(Float16(bitPattern: UInt16(bytes[$0]) | UInt16(bytes[$0 + 1]) << 8))
            }
            var q = Self.encodeQ8_0(values)
            q[34 * 5] = 0x00
            q[34 * 5 + 1] = 0x7E
            return (t.name, t.dims, .q8_0, q)
        }
        let badPath = "\(ModelTests.tmp)/bitnet-test-\(getpid())-dequant-nan.gguf"
        defer { unlink(badPath) }
        try GGUFWriter.write(to: badPath, metadata: meta, tensors: bad)
        XCTAssertThrowsError(try ModelWeights(path: badPath)) { error in
            guard case .invalidTensorData(let file, let name, let reason) = error as? ModelError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(file, badPath)
            XCTAssertEqual(name, TensorName.tokenEmbedding)
            XCTAssertTrue(reason.contains("row 2") && reason.contains("block 1") && reason.contains("non-finite"), reason)
        }
    }

    // MARK: - helpers

    /// Q8_0 with a power-of-two d ≥ max|x| / 127 (ggml's quantizer uses max|x| / 127 itself):
    /// q = round(x / d), so every q·d (|q| ≤ 127, 7 bits) is exactly an F16 value and the
    /// F16 twin holds precisely what the Q8_0 file decodes to.
    static func encodeQ8_0(_ values: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        for b in stride(from: 0, to: values.count, by: 32) {
            let block = values[b..<(b + 32)]
            let amax = block.map { abs($0) }.max()!
            var df: Float = 1.0 / 16_777_216 // 2^-24, the smallest F16 step
            while df * 127 < amax { df *= 2 }
            let d = Float16(df)
            out += [UInt8(d.bitPattern & 0xFF), UInt8(d.bitPattern >> 8)]
            out += block.map { UInt8(bitPattern: Int8(df > 0 ? max(-127, min(127, ($0 / df).rounded())) : 0)) }
        }
        return out
    }

    /// Byte offsets of the f16 scale fields (d, then dmin / m) in one block.
    static func scaleOffsets(_ type: GGMLType) -> [Int] {
        switch type {
        case .q4_1, .q5_1, .q4_K, .q5_K: return [0, 2]
        case .q2_K: return [80, 82]
        case .q3_K: return [108]
        case .q6_K: return [208]
        default: return [0]
        }
    }

    /// Overwrites every block's f16 scale fields with `value(blockIndex)`.
    static func setScales(_ raw: inout [UInt8], type: GGMLType, _ value: (Int) -> UInt16) {
        let typeSize = type.typeSize!
        for b in 0..<(raw.count / typeSize) {
            for off in scaleOffsets(type) {
                let v = value(b)
                raw[b * typeSize + off] = UInt8(v & 0xFF)
                raw[b * typeSize + off + 1] = UInt8(v >> 8)
            }
        }
    }
}
