import Foundation
import XCTest
@testable import BitNet
@testable import BitNetConvert
import CKernels

/// TL1/TL2 files run in place: the kernels read the file's mapped bytes, no copy of the
/// projections exists, and every path (prompt GEMM, decode GEMV, batched step, every
/// ISA and thread count) gives the I2_S answer bit for bit.
final class InPlaceLookupTableTests: XCTestCase {
    private static func tlFile(_ type: GGUFModelLayout.ProjectionType, config: ModelConfig, name: String) throws -> String {
        try ModelTests.writeModel(config, name: "inplace-\(name)-\(type.name)", projections: type)
    }

    private static func mediumConfig() -> ModelConfig {
        // odd K (a 3-wide TL2 slot straddles 32-column padding) and rows not a multiple of 32
        ModelConfig(architecture: .bitnetB158, vocabSize: 211, contextLength: 64, hiddenSize: 160, layerCount: 3,
                    ffnSize: 424, headCount: 5, kvHeadCount: 1, ropeTheta: 500_000)
    }

    private func tokens(_ n: Int, vocab: Int, seed: UInt64) -> [Int32] {
        var rng = SeededGenerator(seed: seed)
        return (0..<n).map { _ in Int32(rng.next() % UInt64(vocab)) }
    }

    /// Prompt logits (all rows: the TL GEMM) and token-by-token decode logits (the TL GEMV)
    /// equal the repacked I2_S model's, at every ISA this CPU runs and 1–3 threads; decoding
    /// one token at a time equals the full recompute.
    func testInPlaceEqualsRepackedOnEveryPath() throws {
        let config = Self.mediumConfig()
        for type in [GGUFModelLayout.ProjectionType.tl1, .tl2] {
            let path = try Self.tlFile(type, config: config, name: "paths")
            defer { unlink(path) }
            let file = try GGUFFile(path: path)
            let inPlace = try ModelWeights(file: file, lookupTables: .inPlace)
            let repacked = try ModelWeights(file: file, lookupTables: .repack)
            let kernel: MatrixKernel = type == .tl1 ? .tl1 : .tl2
            XCTAssertTrue(inPlace.layers.flatMap(\.projections).allSatisfy { $0.inPlaceKernel == kernel })
            XCTAssertTrue(repacked.layers.flatMap(\.projections).allSatisfy { $0.inPlaceKernel == nil })
            let prompt = tokens(19, vocab: config.vocabSize, seed: 5)
            for isa in ISA.allCases where (try? Kernels(isa: isa)) != nil {
                // the float ops (norms, attention, head) sum in each ISA's order: compare within an ISA
                let reference = try BitNetModel(weights: repacked, contextLength: 32, threads: 1, kernels: try Kernels(isa: isa),
                                                kernel: .fixed(.i2s)).makeSession().forward(prompt, allLogits: true)
                for threads in 1...3 {
                    // whatever is asked, a matrix held in place decodes with its own layout's kernel
                    let model = try BitNetModel(weights: inPlace, contextLength: 32, threads: threads,
                                                kernels: try Kernels(isa: isa), batchSize: 7, kernel: .fixed(.i2s))
                    XCTAssertEqual(Set(model.decodeKernels), [kernel])
                    let session = try model.makeSession()
                    XCTAssertTrue(try session.forward(prompt, allLogits: true) == reference, "\(type.name) \(isa) t\(threads) prompt")
                    session.reset()
                    var incremental: [Float] = []
                    for t in prompt { incremental += try session.forward([t]) }
                    XCTAssertTrue(incremental == reference, "\(type.name) \(isa) t\(threads) token by token")
                }
            }
        }
    }

    /// Two sequences in one batched step each equal their run alone.
    func testBatchedStepInPlaceEqualsAlone() throws {
        let config = Self.mediumConfig()
        let path = try Self.tlFile(.tl2, config: config, name: "batch")
        defer { unlink(path) }
        let model = try BitNetModel(weights: try ModelWeights(path: path), contextLength: 32, threads: 2)
        let a = tokens(9, vocab: config.vocabSize, seed: 1), b = tokens(4, vocab: config.vocabSize, seed: 2)
        let aloneA = try model.makeSession().forward(a), aloneB = try model.makeSession().forward(b)
        let sa = try model.makeSession(), sb = try model.makeSession()
        let out = try model.step([SequenceInput(session: sa, tokens: a), SequenceInput(session: sb, tokens: b)])
        XCTAssertEqual(out[0], aloneA)
        XCTAssertEqual(out[1], aloneB)
    }

    /// No copy: the bytes every product reads lie inside the file's mapping, the load
    /// estimate counts no projection, and loading adds almost no anonymous memory, while
    /// the repacked load adds the I2_R16 copy.
    func testInPlaceMakesNoCopy() throws {
        let config = ModelConfig(architecture: .llama, vocabSize: 256, contextLength: 64, hiddenSize: 1024, layerCount: 4,
                                 ffnSize: 4096, headCount: 8, kvHeadCount: 2, ropeTheta: 10_000)
        let path = try Self.tlFile(.tl2, config: config, name: "nocopy")
        defer { unlink(path) }
        let file = try GGUFFile(path: path)
        let mapping = file.bytes
        XCTAssertEqual(ModelWeights.anonymousBytes(config: config, file: file, lookupTables: .inPlace), 0)
        XCTAssertGreaterThan(ModelWeights.anonymousBytes(config: config, file: file, lookupTables: .repack), 14e6) // I2_R16: 2 bits
        func anonymous() -> Int { Self.statusField("RssAnon:") ?? 0 }
        let before = anonymous()
        let weights = try ModelWeights(file: file, lookupTables: .inPlace)
        let grown = anonymous() - before
        var projectionBytes = 0
        for m in weights.layers.flatMap(\.projections) {
            let bytes = m.storedBytes
            XCTAssertTrue(bytes.baseAddress! >= mapping.baseAddress! && bytes.baseAddress! + bytes.count <= mapping.baseAddress! + mapping.count)
            projectionBytes += bytes.count
        }
        XCTAssertGreaterThan(projectionBytes, 12_000_000) // TL2: 1.67 bits
        XCTAssertLessThan(grown, projectionBytes / 10, "in place: \(grown) anonymous bytes for \(projectionBytes) of projections")
        let before2 = anonymous()
        let repacked = try ModelWeights(file: file, lookupTables: .repack)
        let grown2 = anonymous() - before2
        let i2r16 = repacked.layers.flatMap(\.projections).reduce(0) { $0 + $1.storedBytes.count }
        // (matrices under 1 MiB come from malloc and may reuse freed heap, so not all of it shows as growth)
        XCTAssertGreaterThan(grown2, i2r16 / 2, "repacked: the I2_R16 copy is anonymous memory")
        withExtendedLifetime((weights, repacked)) {}
    }

    /// TQ1_0 (1.69 bits per weight) loads as TL2 (1.67) instead of growing to I2_R16's 2 bits:
    /// same logits as repacked, the estimate equals what loading allocates, about the file's bytes.
    func testTQ1_0LoadsAsTL2WithoutGrowing() throws {
        let config = ModelConfig(architecture: .llama, vocabSize: 96, contextLength: 64, hiddenSize: 256, layerCount: 2,
                                 ffnSize: 768, headCount: 4, kvHeadCount: 2, ropeTheta: 10_000)
        let path = try Self.tlFile(.tq1_0, config: config, name: "tq1")
        defer { unlink(path) }
        let file = try GGUFFile(path: path)
        XCTAssertEqual(LookupTableLoading.ownKernel(file), .tl2)
        let inPlace = try ModelWeights(file: file, lookupTables: .inPlace)
        let repacked = try ModelWeights(file: file, lookupTables: .repack)
        let matrices = inPlace.layers.flatMap(\.projections)
        XCTAssertTrue(matrices.allSatisfy { $0.inPlaceKernel == .tl2 })
        let held = matrices.reduce(0) { $0 + $1.storedBytes.count }
        XCTAssertEqual(ModelWeights.anonymousBytes(config: config, file: file, lookupTables: .inPlace), Double(held))
        // TL2 is 1.667 bits per weight plus 32 bits per row (TQ1_0: 1.6875): about the file's size
        // (below it from K ≈ 2048 on), and always below I2_R16's 2 bits
        let fileBytes = file.tensors.filter { $0.type == .tq1_0 }.reduce(0) { $0 + ($1.byteCount ?? 0) }
        XCTAssertLessThanOrEqual(Double(held), Double(fileBytes) * 1.1)
        XCTAssertLessThan(held, repacked.layers.flatMap(\.projections).reduce(0) { $0 + $1.storedBytes.count })
        for (a, b) in zip(matrices, repacked.layers.flatMap(\.projections)) { XCTAssertEqual(a.ternaryValues(), b.ternaryValues()) }
        let prompt = tokens(7, vocab: config.vocabSize, seed: 9)
        func logits(_ w: ModelWeights) throws -> [Float] {
            try BitNetModel(weights: w, contextLength: 16, threads: 2, kernel: .fixed(.i2s)).makeSession().forward(prompt, allLogits: true)
        }
        XCTAssertTrue(try logits(inPlace) == logits(repacked))
    }

    /// A kernel request decides the loading: in place unless a kernel other than the file's layout is fixed.
    func testLoadingFollowsTheKernelRequest() throws {
        let path = try Self.tlFile(.tl2, config: ModelTests.tinyConfig(.bitnetB158), name: "choice")
        defer { unlink(path) }
        let file = try GGUFFile(path: path)
        XCTAssertEqual(LookupTableLoading(for: [.auto], file: file), .inPlace)
        XCTAssertEqual(LookupTableLoading(for: [.fixed(.tl2)], file: file), .inPlace)
        XCTAssertEqual(LookupTableLoading(for: [.auto, .fixed(.tl2)], file: file), .inPlace)
        XCTAssertEqual(LookupTableLoading(for: [.fixed(.i2s)], file: file), .repack)
        XCTAssertEqual(LookupTableLoading(for: [.auto, .fixed(.tl1)], file: file), .repack)
        let repacked = try BitNetModel(weights: try ModelWeights(file: file, lookupTables: .repack), contextLength: 8,
                                       threads: 1, kernel: .fixed(.tl1))
        XCTAssertEqual(Set(repacked.decodeKernels), [.tl1])
    }

    /// A hostile TL file fails the in-place check with the tensor named: an index no packer
    /// writes, or a TL2 negative-slot count that disagrees with the sign bits (the kernels
    /// add it to every sum).
    func testCorruptInPlaceDataIsRefused() throws {
        let config = ModelTests.tinyConfig(.bitnetB158)
        let source = try Self.tlFile(.tl2, config: config, name: "corrupt")
        defer { unlink(source) }
        let file = try GGUFFile(path: source)
        let t = try XCTUnwrap(file.tensor(named: "blk.1.ffn_up.weight"))
        let packed = Int(bn_tl_bytes(2, Int32(config.ffnSize), Int32(config.hiddenSize)))
        let start = file.dataOffset + t.offset
        for (what, offset, byte) in [("index", start + 3, UInt8(0xEE)), ("count", start + packed - 4, UInt8(0x7F))] {
            var bytes = try Data(contentsOf: URL(fileURLWithPath: source))
            bytes[offset] = byte
            let bad = "\(ModelTests.tmp)/bitnet-inplace-\(getpid())-bad-\(what).gguf"
            try bytes.write(to: URL(fileURLWithPath: bad))
            defer { unlink(bad) }
            XCTAssertThrowsError(try ModelWeights(path: bad)) { error in
                XCTAssertTrue("\(error)".contains("blk.1.ffn_up.weight") && "\(error)".contains(bad), "\(what): \(error)")
            }
        }
    }

    private static func statusField(_ name: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            return Int(line.dropFirst(name.count).filter(\.isNumber)).map { $0 * 1024 }
        }
        return nil
    }
}
