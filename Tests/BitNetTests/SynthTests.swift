import CKernels
import Foundation
import XCTest
@testable import BitNet
@testable import BitNetConvert

/// `bitnet synth` / `ModelSynthesizer`: the shape table, every --head-type loading as the
/// engine's native block head with finite logits, random blocks that decode to the F16
/// embedding's magnitude, TL tiles made piece by piece equal to packing the whole matrix,
/// the same bytes for the same seed on any thread count, the size printed before writing,
/// and bad head/shape combinations refused by name.
final class SynthTests: XCTestCase {
    private func path(_ name: String) -> String { "\(ModelTests.tmp)/bitnet-synth-\(getpid())-\(name).gguf" }
    private func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    /// llama (an untied head), hidden 256 (the K types' block). FFN 328: rows not a multiple of 32
    /// (a padded last tile), and as K, 328 = 13·24 + 16 = 20·16 + 8 (a TL2 and a TL1 group with
    /// columns past K, and a TL2 slot with one real column). Hidden 256 gives TL2 11 groups.
    static let config = ModelConfig(architecture: .llama, vocabSize: 301, contextLength: 32, hiddenSize: 256,
                                    layerCount: 2, ffnSize: 328, headCount: 4, kvHeadCount: 2, ropeTheta: 10_000)

    private func synth(_ config: ModelConfig = config, seed: UInt64 = 7, projections: ModelSynthesizer.ProjectionType = .i2s,
                       head: GGMLType = .f16, threads: Int = 2, pieceBytes: Int = 2048) -> ModelSynthesizer {
        var s = ModelSynthesizer(config: config, seed: seed)
        s.projectionType = projections
        s.headType = head
        s.threads = threads
        s.pieceBytes = pieceBytes // many pieces, several batches, even in a tiny model
        return s
    }

    private func write(_ s: ModelSynthesizer, _ name: String) throws -> String {
        let p = path(name)
        try s.write(to: p)
        return p
    }

    // MARK: - Shapes

    func testShapeTableHas70B() throws {
        let c = try XCTUnwrap(SynthShape(rawValue: "70b")).config
        XCTAssertEqual(c.architecture, .llama)
        XCTAssertEqual(c.hiddenSize, 8192)
        XCTAssertEqual(c.layerCount, 80)
        XCTAssertEqual(c.ffnSize, 28672)
        XCTAssertEqual(c.headCount, 64)
        XCTAssertEqual(c.kvHeadCount, 8)
        XCTAssertEqual(c.headDim, 128)
        XCTAssertEqual(c.vocabSize, 128_256)
        XCTAssertEqual(c.contextLength, 8192)
        XCTAssertEqual(c.ropeTheta, 500_000)
        XCTAssertTrue(SynthShape.allCases.contains(.b70))
    }

    /// The sizes `synth` prints before writing, for the large shapes (no file made). Every
    /// head type fits both shapes (8192 = 32·256); the head is the only difference.
    func testLargeShapeSizes() throws {
        for shape in [SynthShape.b70, .b100] {
            var line: [String] = []
            var previous = Int.max
            for head in ModelSynthesizer.headTypes {
                for type in [ModelSynthesizer.ProjectionType.i2s, .tl1, .tl2] {
                    var s = ModelSynthesizer(config: shape.config)
                    s.headType = head
                    s.projectionType = type
                    XCTAssertNil(s.unsupportedHeadType)
                    XCTAssertNil(s.layout.unsupportedShapes)
                    let size = try s.fileSize()
                    if type == .i2s {
                        XCTAssertLessThanOrEqual(size, previous, "\(shape) \(head): no larger than the head type before it")
                        previous = size
                    }
                    line.append("\(type.name)/\(head.name.lowercased()) \(String(format: "%.2f", Double(size) / 1e9)) GB")
                }
            }
            print("synth --shape \(shape.rawValue): " + line.joined(separator: ", "))
        }
        // 100B, I2_S, F16 head: 80 layers of 2-bit weights plus two 128256×8192 F16 matrices
        let c = SynthShape.b100.config
        let weights = c.layerCount * (2 * c.hiddenSize * c.hiddenSize + 2 * c.hiddenSize * c.kvDim +
                                      3 * c.hiddenSize * c.ffnSize)
        let size = try ModelSynthesizer(config: c).fileSize()
        XCTAssertEqual(Double(size), Double(weights / 4 + 2 * 2 * c.vocabSize * c.hiddenSize), accuracy: 50e6)
    }

    // MARK: - Head types

    /// Every head type loads; the block types as native blocks (embedding and the untied
    /// head), and the model gives finite logits of a sane size.
    func testEveryHeadTypeLoadsAndGivesFiniteLogits() throws {
        for head in ModelSynthesizer.headTypes {
            let p = try write(synth(head: head), "head-\(head.name)")
            defer { unlink(p) }
            let file = try GGUFFile(path: p)
            XCTAssertEqual(file.tensor(named: TensorName.tokenEmbedding)?.type, head)
            XCTAssertEqual(file.tensor(named: TensorName.output)?.type, head)
            let weights = try ModelWeights(path: p)
            XCTAssertEqual(weights.embeddingBlocks != nil, head != .f16, "\(head): native block embedding")
            XCTAssertEqual(weights.outputBlocks != nil, head != .f16, "\(head): native block head")
            let model = try BitNetModel(weights: weights, contextLength: 16, threads: 2)
            let logits = try model.makeSession().forward([1, 17, 300, 5], allLogits: true)
            XCTAssertEqual(logits.count, 4 * Self.config.vocabSize)
            XCTAssertTrue(logits.allSatisfy(\.isFinite), "\(head)")
            let largest = logits.map(abs).max() ?? 0
            XCTAssertGreaterThan(largest, 0.01, "\(head)")
            XCTAssertLessThan(largest, 1000, "\(head)")
        }
    }

    /// The random blocks decode (with the engine's dequantizer) to finite values of about the
    /// F16 embedding's magnitude (uniform ±1: RMS 0.58; the blocks 0.40–0.51), never beyond ±2.
    func testRandomBlocksDecodeLikeTheF16Embedding() throws {
        let c = Self.config
        for head in ModelSynthesizer.headTypes {
            let p = try write(synth(head: head), "decode-\(head.name)")
            defer { unlink(p) }
            let file = try GGUFFile(path: p)
            let t = try XCTUnwrap(file.tensor(named: TensorName.tokenEmbedding))
            let values: [Float]
            if head == .f16 {
                values = file.data(for: t).withMemoryRebound(to: UInt16.self) { halves in
                    halves.prefix(c.vocabSize * c.hiddenSize).map { Float(Float16(bitPattern: $0)) }
                }
            } else {
                values = try BlockDequantizer.dequantize(head, UnsafeRawBufferPointer(file.data(for: t)),
                                                         rows: c.vocabSize, cols: c.hiddenSize)
            }
            XCTAssertTrue(values.allSatisfy(\.isFinite), "\(head)")
            let rms = (values.reduce(0) { $0 + Double($1 * $1) } / Double(values.count)).squareRoot()
            let mean = values.reduce(0) { $0 + Double($1) } / Double(values.count)
            let largest = values.map(abs).max() ?? 0
            XCTAssertLessThanOrEqual(largest, 2, "\(head)")
            XCTAssertGreaterThan(rms, 0.35, "\(head)")
            XCTAssertLessThan(rms, 0.8, "\(head)")
            XCTAssertLessThan(abs(mean), 0.1, "\(head)")
        }
    }

    /// Block rows need whole blocks: q6_k/q4_k on a hidden size that is not a multiple of
    /// 256 (q8_0/q4_0: 32) are refused, naming the type and the size; the CLI names the shape.
    func testHeadTypeThatDoesNotFitTheShapeIsRefused() throws {
        var c = Self.config
        c.hiddenSize = 320 // 10 × 32, not a multiple of 256
        for head in [GGMLType.q6_K, .q4_K] {
            let s = synth(c, head: head)
            let problem = try XCTUnwrap(s.unsupportedHeadType, "\(head)")
            XCTAssertTrue(problem.contains(head.name.lowercased()) && problem.contains("320") && problem.contains("256"),
                          problem)
            XCTAssertThrowsError(try s.write(to: path("refused"))) { XCTAssertTrue("\($0)".contains("320"), "\($0)") }
            XCTAssertFalse(FileManager.default.fileExists(atPath: path("refused")))
        }
        for head in [GGMLType.f16, .q8_0, .q4_0] { XCTAssertNil(synth(c, head: head).unsupportedHeadType, "\(head)") }
        c.hiddenSize = 336 // not a multiple of 32 either
        XCTAssertNotNil(synth(c, head: .q8_0).unsupportedHeadType)
    }

    func testCLIRefusesAHeadTypeTheShapeCannotHold() throws {
        let out = path("cli-refused")
        let explicit = try runCLI(["synth", "--arch", "llama", "--hidden", "320", "--layers", "1", "--heads", "5",
                                   "--ffn", "512", "--vocab-size", "64", "--head-type", "q6_k", "-o", out])
        XCTAssertNotEqual(explicit.status, 0)
        XCTAssertTrue(explicit.stderr.contains("--head-type q6_k") && explicit.stderr.contains("--hidden 320"),
                      explicit.stderr)
        let named = try runCLI(["synth", "--shape", "3b", "--head-type", "q4_k", "-o", out]) // hidden 3200
        XCTAssertNotEqual(named.status, 0)
        XCTAssertTrue(named.stderr.contains("--head-type q4_k") && named.stderr.contains("--shape 3b") &&
                      named.stderr.contains("3200"), named.stderr)
        let unknown = try runCLI(["synth", "--shape", "3b", "--head-type", "q5_k", "-o", out])
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.stderr.contains("q5_k") && unknown.stderr.contains("q4_0"), unknown.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + ".tmp"))
    }

    /// The CLI prints the size before writing (the exact size of the file it then writes)
    /// and the free space it checked.
    func testCLIPrintsTheSizeFirst() throws {
        let out = path("cli-size")
        defer { unlink(out) }
        let r = try runCLI(["synth", "--arch", "llama", "--hidden", "256", "--layers", "1", "--heads", "4",
                            "--ffn", "512", "--vocab-size", "64", "--head-type", "q4_k", "--type", "tl2", "-o", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: out)[.size] as? Int)
        XCTAssertTrue(r.stderr.hasPrefix("writing \(out): "), r.stderr)
        XCTAssertTrue(r.stderr.contains("free on its disk"), r.stderr)
        XCTAssertTrue(r.stderr.contains("MB/s"), r.stderr)
        var s = ModelSynthesizer(config: try ModelWeights(path: out).config)
        s.headType = .q4_K
        s.projectionType = .tl2
        XCTAssertEqual(try s.fileSize(), size)
    }

    // MARK: - Bytes

    /// `fileSize` (printed and checked against the free space before writing) is exact.
    func testFileSizeIsExact() throws {
        for (projections, head) in [(ModelSynthesizer.ProjectionType.i2s, GGMLType.f16), (.tl1, .q6_K), (.tl2, .q4_0),
                                    (.f16, .q8_0)] {
            var s = synth(projections: projections, head: head)
            s.tokenizerMetadata = TinyModelFile.tokenizerMetadata
            let p = try write(s, "size")
            defer { unlink(p) }
            XCTAssertEqual(try s.fileSize(), try GGUFFile(path: p).fileSize, "\(projections) \(head)")
        }
        XCTAssertNotNil(ModelSynthesizer.freeBytes(forFile: path("x")))
        XCTAssertNotNil(ModelSynthesizer.freeBytes(forFile: "relative.gguf"))
    }

    /// Progress comes within tensors too (a 100B head is 2 GB: the bar must move while it is
    /// written), never goes back, and ends at the file's size.
    func testProgressMovesWithinTensors() throws {
        let s = synth(projections: .tl2, head: .q8_0)
        var reports: [(Int, Int)] = []
        let p = path("progress")
        defer { unlink(p) }
        try s.write(to: p) { reports.append(($0, $1)) }
        let size = try s.fileSize()
        XCTAssertGreaterThan(reports.count, 2 * (try s.declare().tensors.count), "reports within tensors")
        XCTAssertTrue(reports.allSatisfy { $0.1 == size })
        XCTAssertTrue(zip(reports, reports.dropFirst()).allSatisfy { $0.0 <= $1.0 }, "never back")
        XCTAssertEqual(reports.last?.0, size)
    }

    /// I2_S bytes, F16 values and norms are the sequential `SeededGenerator` stream synth has
    /// always written (one draw per byte or value, tensor after tensor), however pieces and
    /// threads split it: a seed keeps its file, and tests built on synthetic models keep
    /// their weights. A block head keeps the projections and norms of the F16 file.
    func testTheFileStreamIsTheSequentialSeededStream() throws {
        var validBytes: [UInt8] = []
        for a in 0..<3 { for b in 0..<3 { for d in 0..<3 { for e in 0..<3 { validBytes.append(UInt8(a << 6 | b << 4 | d << 2 | e)) } } } }
        for projections in [ModelSynthesizer.ProjectionType.i2s, .f16] {
            let s = synth(projections: projections, threads: 3)
            let p = try write(s, "stream-\(projections.name)")
            let q4 = try write(synth(projections: projections, head: .q4_K), "stream-q4k-\(projections.name)")
            defer { unlink(p); unlink(q4) }
            let file = try GGUFFile(path: p), blockFile = try GGUFFile(path: q4)
            var rng = SeededGenerator(seed: s.seed)
            for t in file.tensors {
                var expected: [UInt8] = []
                switch t.type {
                case .i2_s:
                    let packed = TernaryMatrix.canonicalByteCount(rows: t.rows, cols: t.cols)
                    expected = (0..<packed).map { _ in validBytes[Int(rng.next() % 81)] }
                case .f16:
                    let head = t.name == TensorName.tokenEmbedding || t.name == TensorName.output
                    let scale: Float = head ? 1 : 1 / Float(t.cols).squareRoot()
                    for _ in 0..<t.elementCount {
                        withUnsafeBytes(of: Float16(rng.nextSigned() * scale).bitPattern.littleEndian) { expected += $0 }
                    }
                default:
                    XCTAssertEqual(t.type, .f32)
                    for _ in 0..<t.elementCount {
                        withUnsafeBytes(of: (1 + 0.1 * rng.nextSigned()).bitPattern.littleEndian) { expected += $0 }
                    }
                }
                XCTAssertEqual(Array(file.data(for: t).prefix(expected.count)), expected, "\(projections.name) \(t.name)")
                if t.name != TensorName.tokenEmbedding && t.name != TensorName.output {
                    let other = try XCTUnwrap(blockFile.tensor(named: t.name))
                    XCTAssertEqual(Array(blockFile.data(for: other).prefix(expected.count)), expected, "q4_k head: \(t.name)")
                }
            }
        }
    }

    /// Same seed, same bytes, whatever the thread count; another seed, other bytes.
    func testSameSeedSameBytesOnAnyThreadCount() throws {
        var cases: [(ModelSynthesizer.ProjectionType, GGMLType)] = ModelSynthesizer.headTypes.map { (.i2s, $0) }
        cases += [(.tl1, .q4_K), (.tl2, .q6_K), (.f16, .f16)]
        for (projections, head) in cases {
            let a = try write(synth(projections: projections, head: head, threads: 1), "seed-a")
            let b = try write(synth(projections: projections, head: head, threads: 4), "seed-b")
            let c = try write(synth(seed: 8, projections: projections, head: head, threads: 4), "seed-c")
            defer { unlink(a); unlink(b); unlink(c) }
            let bytesA = try bytes(a)
            XCTAssertEqual(bytesA, try bytes(b), "\(projections) \(head): 1 thread vs 4")
            XCTAssertNotEqual(bytesA, try bytes(c), "\(projections) \(head): seed 7 vs 8")
        }
        let tq = ModelConfig(architecture: .bitnetB158, vocabSize: 64, contextLength: 16, hiddenSize: 256,
                             layerCount: 1, ffnSize: 512, headCount: 4, kvHeadCount: 4)
        let a = try write(synth(tq, projections: .tq2_0, threads: 1), "tq-a")
        let b = try write(synth(tq, projections: .tq2_0, threads: 3), "tq-b")
        defer { unlink(a); unlink(b) }
        XCTAssertEqual(try bytes(a), try bytes(b))
    }

    /// TL tiles made piece by piece (and packed here rather than by `bn_tl_pack`) are what
    /// `bn_tl_pack` writes for the whole matrix, negative-slot counts and scale tail included;
    /// TL1, TL2 and TQ2_0 files of one seed hold the same weights.
    func testLookupTableTilesEqualPackingTheWholeMatrix() throws {
        let tl1 = try write(synth(projections: .tl1), "tl1")
        let tl2 = try write(synth(projections: .tl2), "tl2")
        defer { unlink(tl1); unlink(tl2) }
        let files = [try GGUFFile(path: tl1), try GGUFFile(path: tl2)]
        var checked = 0
        for t in files[0].tensors where t.type == .bnTL1 {
            let m = t.rows, k = t.cols
            var weights: [[Int8]] = []
            for (type, file) in zip([Int32(1), 2], files) {
                let info = try XCTUnwrap(file.tensor(named: t.name))
                let data = Array(file.data(for: info))
                let packed = Int(bn_tl_bytes(type, Int32(m), Int32(k)))
                XCTAssertEqual(info.byteCount, packed + 32)
                let values = data.withUnsafeBufferPointer { d in
                    (0..<(m * k)).map { Int8(bn_tl_weight(type, d.baseAddress!, Int32(m), Int32(k), Int32($0 / k), Int32($0 % k))) }
                }
                var whole = [UInt8](repeating: 0, count: packed)
                values.withUnsafeBufferPointer { bn_tl_pack(type, $0.baseAddress!, Int32(m), Int32(k), &whole) }
                XCTAssertEqual(Array(data[0..<packed]), whole, "TL\(type) \(t.name) (\(m)×\(k))")
                let scale = data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: packed, as: Float.self) }
                XCTAssertEqual(scale, 1 / Float(k).squareRoot())
                XCTAssertEqual(Array(data[(packed + 4)...]), [UInt8](repeating: 0, count: 28))
                XCTAssertEqual(Set(values), [-1, 0, 1])
                weights.append(values)
                checked += 1
            }
            XCTAssertEqual(weights[0], weights[1], "\(t.name): TL1 and TL2 hold the same weights")
        }
        XCTAssertEqual(checked, 2 * 7 * Self.config.layerCount)

        // the same values in TQ2_0 (K a multiple of 256 there)
        let tqConfig = ModelConfig(architecture: .llama, vocabSize: 64, contextLength: 16, hiddenSize: 256,
                                   layerCount: 1, ffnSize: 512, headCount: 4, kvHeadCount: 2)
        let tq = try write(synth(tqConfig, projections: .tq2_0), "tq2")
        let tl = try write(synth(tqConfig, projections: .tl2), "tq-tl2")
        defer { unlink(tq); unlink(tl) }
        let tqFile = try GGUFFile(path: tq), tlFile = try GGUFFile(path: tl)
        for t in tqFile.tensors where t.type == .tq2_0 {
            let (values, _) = try TernaryBlockCodec.decode(tqFile.data(for: t), type: .tq2_0, rows: t.rows, cols: t.cols).get()
            let info = try XCTUnwrap(tlFile.tensor(named: t.name))
            let tlValues = Array(tlFile.data(for: info)).withUnsafeBufferPointer { d in
                (0..<(t.rows * t.cols)).map {
                    Int8(bn_tl_weight(2, d.baseAddress!, Int32(t.rows), Int32(t.cols), Int32($0 / t.cols), Int32($0 % t.cols)))
                }
            }
            XCTAssertEqual(values, tlValues, t.name)
        }
    }

    /// A TL2 file runs under every decode kernel with I2_S's logits (TL2 adopts the file's tiles
    /// in place, so their negative-slot counts must be right).
    func testLookupTableFilesGiveTheSameLogitsOnEveryKernel() throws {
        let p = try write(synth(projections: .tl2, head: .q8_0), "tl2-kernels")
        defer { unlink(p) }
        let weights = try ModelWeights(path: p)
        var reference: [Float]?
        for kernel in MatrixKernel.allCases {
            let model = try BitNetModel(weights: weights, contextLength: 16, threads: 2, kernel: .fixed(kernel))
            let session = try model.makeSession()
            var logits: [Float] = []
            for token: Int32 in [3, 200, 41] { logits += try session.forward([token]) }
            XCTAssertTrue(logits.allSatisfy(\.isFinite))
            if let reference { XCTAssertEqual(logits, reference, "\(kernel)") } else { reference = logits }
        }
    }

    // MARK: - CLI

    private struct CLIResult { var status: Int32; var stderr: String }

    private func runCLI(_ args: [String]) throws -> CLIResult {
        guard let binary = CLITests.binary else { throw XCTSkip("build the bitnet executable first (swift build)") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        try p.run()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return CLIResult(status: p.terminationStatus, stderr: String(decoding: e, as: UTF8.self))
    }
}
