import XCTest
@testable import BitNet

#if canImport(Glibc)
import Glibc
#endif

/// llama.cpp's TQ1_0 / TQ2_0 files load into the same ternary matrices as I2_S.
final class TernaryBlockTests: XCTestCase {
    /// Encoders written from docs/FORMATS.md §5.1–§5.2, independent of the decoder.
    static func encodeTQ2(_ t: [Int8], d: Float) -> [UInt8] {
        var out: [UInt8] = []
        for b in stride(from: 0, to: t.count, by: 256) {
            var qs = [UInt8](repeating: 0, count: 64)
            for h in 0..<2 { for m in 0..<32 { for n in 0..<4 {
                qs[32 * h + m] |= UInt8(Int(t[b + 128 * h + m + 32 * n]) + 1) << (2 * n)
            } } }
            let bits = Float16(d).bitPattern
            out += qs + [UInt8(bits & 0xff), UInt8(bits >> 8)]
        }
        return out
    }

    static func encodeTQ1(_ t: [Int8], d: Float) -> [UInt8] {
        func pack(_ trits: [Int]) -> UInt8 { // base 3, first most significant, then ceil(v·256/243)
            var v = 0
            for x in trits { v = v * 3 + x }
            for _ in trits.count..<5 { v *= 3 }
            return UInt8((v * 256 + 242) / 243)
        }
        var out: [UInt8] = []
        for b in stride(from: 0, to: t.count, by: 256) {
            let u = (0..<256).map { Int(t[b + $0]) + 1 }
            var block: [UInt8] = []
            for m in 0..<32 { block.append(pack((0..<5).map { u[m + 32 * $0] })) }
            for m in 0..<16 { block.append(pack((0..<5).map { u[160 + m + 16 * $0] })) }
            for j in 0..<4 { block.append(pack((0..<4).map { u[240 + j + 4 * $0] })) }
            let bits = Float16(d).bitPattern
            out += block + [UInt8(bits & 0xff), UInt8(bits >> 8)]
        }
        return out
    }

    func testBlockCodecsRoundTrip() throws {
        var rng = SeededGenerator(seed: 5)
        let t = (0..<(4 * 256)).map { _ in Int8(Int(rng.next() % 3) - 1) }
        // the library's encoders (used by bitnet convert --type tq*) agree with these spec encoders
        var lib2: [UInt8] = [], lib1: [UInt8] = []
        t.withUnsafeBufferPointer {
            TernaryBlockCodec.encodeTQ2($0, d: 0.25, into: &lib2)
            TernaryBlockCodec.encodeTQ1($0, d: 0.25, into: &lib1)
        }
        XCTAssertEqual(lib2, Self.encodeTQ2(t, d: 0.25))
        XCTAssertEqual(lib1, Self.encodeTQ1(t, d: 0.25))
        for type in [GGMLType.tq2_0, .tq1_0] {
            let bytes = type == .tq2_0 ? Self.encodeTQ2(t, d: 0.25) : Self.encodeTQ1(t, d: 0.25)
            let result = bytes.withUnsafeBytes { TernaryBlockCodec.decode($0, type: type, rows: 2, cols: 512) }
            guard case .success(let (values, scale)) = result else { return XCTFail("\(type): \(result)") }
            XCTAssertEqual(values, t, "\(type)")
            XCTAssertEqual(scale, 0.25)
        }
        // a block with another scale is not a per-tensor ternary weight
        let mixed = Self.encodeTQ2(Array(t[0..<256]), d: 0.25) + Self.encodeTQ2(Array(t[256..<512]), d: 0.5)
        let r = mixed.withUnsafeBytes { TernaryBlockCodec.decode($0, type: .tq2_0, rows: 1, cols: 512) }
        if case .success = r { XCTFail("mixed scales accepted") }
    }

    /// A model whose projections are TQ1_0/TQ2_0 runs exactly like its I2_S twin.
    func testTQModelsMatchTheirI2STwin() throws {
        let config = ModelConfig(architecture: .bitnetB158, vocabSize: 64, contextLength: 32, hiddenSize: 256,
                                 layerCount: 1, ffnSize: 512, headCount: 4, kvHeadCount: 2)
        let source = try ModelTests.writeModel(config, name: "tq-src")
        defer { unlink(source) }
        let reference = try ModelWeights(path: source)
        let file = reference.file
        for type in [GGMLType.tq2_0, .tq1_0] {
            let meta = file.metadataKeys.map { ($0, file.metadata[$0]!) }
            var tensors: [(name: String, dims: [Int], type: GGMLType, data: [UInt8])] = []
            for t in file.tensors {
                if t.type == .i2_s {
                    let m = t.rows, k = t.cols
                    let layer = reference.layers[0]
                    let matrix = [layer.q, layer.k, layer.v, layer.o, layer.gate, layer.up, layer.down]
                        .first { $0.rows == m && $0.cols == k && t.name.contains(Self.shortName($0, layer)) }!
                    var values = [Int8](repeating: 0, count: m * k)
                    for r in 0..<m { for c in 0..<k { values[r * k + c] = Int8(matrix.weight(row: r, col: c)) } }
                    let scale = Float(Float16(matrix.scale)) // TQ stores d in f16
                    tensors.append((t.name, t.dims, type, type == .tq2_0 ? Self.encodeTQ2(values, d: scale)
                                                                        : Self.encodeTQ1(values, d: scale)))
                } else {
                    let d = file.data(for: t)
                    tensors.append((t.name, t.dims, t.type, Array(d[0..<(t.byteCount ?? d.count)])))
                }
            }
            let path = "\(NSTemporaryDirectoryPath())/bitnet-test-\(getpid())-\(type).gguf"
            defer { unlink(path) }
            try GGUFWriter.write(to: path, metadata: meta, tensors: tensors)
            let loaded = try ModelWeights(path: path)
            let a = loaded.layers[0], b = reference.layers[0]
            for (x, y) in zip(a.projections, b.projections) {
                XCTAssertEqual(x.ternaryValues(), y.ternaryValues(), "\(type) ternary values")
                XCTAssertEqual(x.scale, Float(Float16(y.scale)), "\(type) scale")
            }
            let logits = try BitNetModel(weights: loaded, contextLength: 16, threads: 1).makeSession().forward([1, 2, 3])
            let want = ReferenceModel(weights: loaded).logits(tokens: [1, 2, 3]).last!
            XCTAssertLessThan(zip(logits, want).map { abs($0 - $1) }.max()!, 2e-3)
        }
    }

    private static func shortName(_ m: TernaryMatrix, _ l: LayerWeights) -> String {
        if m === l.q { return "attn_q" }
        if m === l.k { return "attn_k" }
        if m === l.v { return "attn_v" }
        if m === l.o { return "attn_output" }
        if m === l.gate { return "ffn_gate" }
        if m === l.up { return "ffn_up" }
        return "ffn_down"
    }
}
