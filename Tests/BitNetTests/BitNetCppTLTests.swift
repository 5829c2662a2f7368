import Foundation
import XCTest
@testable import BitNet

/// bitnet.cpp's own TL1 / TL2 layouts (BitNetCppTLLayout) against bytes made by
/// bitnet.cpp's converter functions: Fixtures/bitnetcpp-tl/fixture.json, written
/// by tools/tlcompat/make_bitnetcpp_tl_fixture.py (see it for how to regenerate).
///
/// The published shapes are large (up to 58.7 M weights); by default only those of
/// bitnet_b1_58-large (≤ 6.3 M weights each) are encoded, hashed and round-tripped.
/// Set BITNET_TL_FULL=1 to check all 24 (slow in debug builds).
final class BitNetCppTLTests: XCTestCase {
    typealias Layout = BitNetCppTLLayout

    struct Fixture: Decodable {
        struct Small: Decodable {
            let kind: String, rows: Int, cols: Int, BM: Int, BK: Int, bm: Int, seed: Int
            let packed_bytes: Int
            let data_base64: String
        }
        struct Published: Decodable {
            let source: String, kind: String, rows: Int, cols: Int, BM: Int, BK: Int, bm: Int, model: String
            let seed: Int?
            let packed_bytes: Int?
            let fnv1a64w: String?
            let error: String?
        }
        let small: [Small]
        let published: [Published]
        let unconvertible: [Published]
    }

    static let fixture: Fixture? = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/bitnetcpp-tl/fixture.json")
        guard let data = try? Data(contentsOf: url) else { return nil }
        return try? JSONDecoder().decode(Fixture.self, from: data)
    }()

    func loadFixture() throws -> Fixture {
        guard let f = Self.fixture else { throw XCTSkip("Fixtures/bitnetcpp-tl/fixture.json missing or unreadable") }
        return f
    }

    /// The fixture's weight generator (make_bitnetcpp_tl_fixture.py):
    /// x = (r·7919 + c·104729 + seed·31) mod 2³², x = x·2654435761 mod 2³², w = ((x >> 16) mod 3) − 1.
    static func weights(rows: Int, cols: Int, seed: Int) -> [Int8] {
        [Int8](unsafeUninitializedCapacity: rows * cols) { out, count in
            let s = UInt32(truncatingIfNeeded: seed) &* 31
            for r in 0..<rows {
                let rowPart = UInt32(truncatingIfNeeded: r) &* 7919 &+ s
                for c in 0..<cols {
                    let x = (rowPart &+ UInt32(truncatingIfNeeded: c) &* 104729) &* 2654435761
                    out[r * cols + c] = Int8((x >> 16) % 3) - 1
                }
            }
            count = rows * cols
        }
    }

    /// FNV-1a 64 over little-endian u64 words (bytes zero-padded to a multiple of 8), as hex.
    static func fnv1a64w(_ bytes: [UInt8]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        bytes.withUnsafeBytes { raw in
            let words = raw.count / 8
            for i in 0..<words {
                h = (h ^ UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))) &* 0x100_0000_01b3
            }
            if raw.count % 8 != 0 {
                var last: UInt64 = 0
                for (k, i) in (8 * words..<raw.count).enumerated() { last |= UInt64(raw[i]) << (8 * UInt64(k)) }
                h = (h ^ last) &* 0x100_0000_01b3
            }
        }
        return String(repeating: "0", count: 16 - String(h, radix: 16).count) + String(h, radix: 16)
    }

    static func kind(_ s: String) -> Layout.Kind { s == "tl1" ? .tl1 : .tl2 }

    func testSmallShapesMatchBitnetCppBytes() throws {
        let f = try loadFixture()
        XCTAssertEqual(f.small.count, 8)
        for s in f.small {
            let kind = Self.kind(s.kind)
            let tiling = Layout.Tiling(BM: s.BM, BK: s.BK, bm: s.bm)
            let label = "\(kind) \(s.rows)×\(s.cols) \(tiling)"
            guard let data = Data(base64Encoded: s.data_base64) else { return XCTFail("\(label): bad base64") }
            let bytes = [UInt8](data)
            XCTAssertEqual(bytes.count, s.packed_bytes, label)
            XCTAssertEqual(Layout.packedByteCount(type: kind, rows: s.rows, cols: s.cols, tiling: tiling), bytes.count, label)
            XCTAssertNil(Layout.unsupportedReason(type: kind, rows: s.rows, cols: s.cols, tiling: tiling), label)
            let w = Self.weights(rows: s.rows, cols: s.cols, seed: s.seed)
            let decoded = try bytes.withUnsafeBytes {
                try Layout.decode($0, type: kind, rows: s.rows, cols: s.cols, tiling: tiling)
            }
            XCTAssertEqual(decoded, w, "\(label): decode")
            XCTAssertEqual(Layout.encode(w, type: kind, rows: s.rows, cols: s.cols, tiling: tiling), bytes, "\(label): encode")
        }
    }

    /// The table agrees with setup_env.py and the preset .ini files as the script parsed them.
    func testPublishedTableMatchesBitnetCppSources() throws {
        let f = try loadFixture()
        let fromSetupEnv = f.published.filter { $0.source == "setup_env" }
        XCTAssertEqual(fromSetupEnv.count, Layout.published.count)
        XCTAssertEqual(Layout.published.count, 20)
        for p in fromSetupEnv {
            let tiling = Layout.tiling(type: Self.kind(p.kind), rows: p.rows, cols: p.cols)
            XCTAssertEqual(tiling, Layout.Tiling(BM: p.BM, BK: p.BK, bm: p.bm), "\(p.kind) \(p.rows)×\(p.cols)")
        }
        let presets = f.published.filter { $0.source == "preset_ini" }
        XCTAssertEqual(presets.count, Layout.published.filter { $0.presetIni != nil }.count)
        for p in presets {
            XCTAssertEqual(Layout.presetIniTiling(type: Self.kind(p.kind), rows: p.rows, cols: p.cols),
                           Layout.Tiling(BM: p.BM, BK: p.BK, bm: p.bm), "\(p.kind) \(p.rows)×\(p.cols)")
        }
        // the preset bitnet.cpp's converter rejects (TL2 bm = 64) is rejected here too, and not offered
        XCTAssertEqual(f.unconvertible.count, 1)
        for u in f.unconvertible {
            let kind = Self.kind(u.kind)
            XCTAssertNotNil(Layout.unsupportedReason(type: kind, rows: u.rows, cols: u.cols,
                                                     tiling: Layout.Tiling(BM: u.BM, BK: u.BK, bm: u.bm)))
            XCTAssertNil(Layout.presetIniTiling(type: kind, rows: u.rows, cols: u.cols))
        }
        for e in Layout.published {
            XCTAssertNil(Layout.unsupportedReason(type: e.kind, rows: e.rows, cols: e.cols, tiling: e.tiling))
        }
    }

    func testPublishedShapesEncodeToBitnetCppBytes() throws {
        let f = try loadFixture()
        let full = ProcessInfo.processInfo.environment["BITNET_TL_FULL"] == "1"
        var checked = 0
        for p in f.published where full || p.rows * p.cols <= 6_400_000 {
            let kind = Self.kind(p.kind)
            let tiling = Layout.Tiling(BM: p.BM, BK: p.BK, bm: p.bm)
            let label = "\(p.source) \(kind) \(p.rows)×\(p.cols) \(tiling)"
            let w = Self.weights(rows: p.rows, cols: p.cols, seed: p.seed ?? 1)
            let bytes = Layout.encode(w, type: kind, rows: p.rows, cols: p.cols, tiling: tiling)
            XCTAssertEqual(bytes.count, p.packed_bytes, label)
            XCTAssertEqual(Self.fnv1a64w(bytes), p.fnv1a64w, label)
            let back = try bytes.withUnsafeBytes { try Layout.decode($0, type: kind, rows: p.rows, cols: p.cols, tiling: tiling) }
            XCTAssertTrue(back == w, "\(label): decode(encode(w)) != w")
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, 6)
    }

    func testInvalidCodesThrow() throws {
        let f = try loadFixture()
        func expectInvalid(_ s: Fixture.Small, at offset: Int, byte: UInt8, file: StaticString = #filePath, line: UInt = #line) {
            var bytes = [UInt8](Data(base64Encoded: s.data_base64)!)
            bytes[offset] = byte
            let tiling = Layout.Tiling(BM: s.BM, BK: s.BK, bm: s.bm)
            XCTAssertThrowsError(try bytes.withUnsafeBytes {
                try Layout.decode($0, type: Self.kind(s.kind), rows: s.rows, cols: s.cols, tiling: tiling)
            }, file: file, line: line) { error in
                guard case BitNetCppTLError.invalidCode(_, _, _, let at, let b, _) = error else {
                    return XCTFail("unexpected \(error)", file: file, line: line)
                }
                XCTAssertEqual(at, offset, file: file, line: line)
                XCTAssertEqual(b, byte, file: file, line: line)
                XCTAssertTrue("\(error)".contains("byte \(offset)"), file: file, line: line)
            }
        }
        let tl1 = f.small.first { $0.kind == "tl1" }!
        expectInvalid(tl1, at: 100, byte: 0x94)        // high nibble 9
        expectInvalid(tl1, at: 5, byte: 0x4f)          // low nibble 15
        // TL2 with a tail: 64×320, BK 96 → threeK 288: codes 3072 bytes, signs 768, tail 512
        let tl2 = f.small.first { $0.kind == "tl2" && $0.cols == 320 }!
        expectInvalid(tl2, at: 7, byte: 0xe0)          // triplet magnitude 14
        expectInvalid(tl2, at: 3071, byte: 0x3f)       // magnitude 15
        expectInvalid(tl2, at: 3072 + 768 + 3, byte: 0x49)  // tail pair code 9
        // sign bits and the zero padding take any value
        var bytes = [UInt8](Data(base64Encoded: tl2.data_base64)!)
        for i in 3072..<(3072 + 768) { bytes[i] = 0xff }
        for i in (3072 + 768 + 512)..<bytes.count { bytes[i] = 0xff }
        XCTAssertNoThrow(try bytes.withUnsafeBytes {
            try Layout.decode($0, type: .tl2, rows: 64, cols: 320, tiling: Layout.Tiling(BM: 64, BK: 96, bm: 32))
        })
    }

    func testShortBufferAndBadTilingThrow() throws {
        let f = try loadFixture()
        for s in f.small {
            let bytes = [UInt8](Data(base64Encoded: s.data_base64)!).dropLast()
            let tiling = Layout.Tiling(BM: s.BM, BK: s.BK, bm: s.bm)
            XCTAssertThrowsError(try Array(bytes).withUnsafeBytes {
                try Layout.decode($0, type: Self.kind(s.kind), rows: s.rows, cols: s.cols, tiling: tiling)
            }) { error in
                XCTAssertEqual(error as? BitNetCppTLError,
                               .shortBuffer(kind: Self.kind(s.kind), rows: s.rows, cols: s.cols,
                                            needed: s.packed_bytes, actual: s.packed_bytes - 1))
            }
        }
        let filler = [UInt8](repeating: 0x44, count: 1 << 16)
        for (kind, rows, cols, tiling) in [
            (Layout.Kind.tl1, 64, 128, Layout.Tiling(BM: 64, BK: 64, bm: 16)),   // bm not 32/64
            (.tl1, 96, 128, Layout.Tiling(BM: 64, BK: 64, bm: 32)),              // M % BM
            (.tl1, 64, 96, Layout.Tiling(BM: 64, BK: 64, bm: 32)),               // K % BK
            (.tl2, 64, 256, Layout.Tiling(BM: 64, BK: 96, bm: 64)),              // TL2 bm 64
            (.tl2, 64, 272, Layout.Tiling(BM: 64, BK: 96, bm: 32)),              // K % BK = 80
            (.tl2, 64, 256, Layout.Tiling(BM: 64, BK: 60, bm: 32)),              // BK % 24
        ] {
            XCTAssertThrowsError(try filler.withUnsafeBytes {
                try Layout.decode($0, type: kind, rows: rows, cols: cols, tiling: tiling)
            }, "\(kind) \(rows)×\(cols) \(tiling)") { error in
                guard case BitNetCppTLError.unsupportedTiling = error else { return XCTFail("unexpected \(error)") }
            }
        }
    }

    func testUnknownShapesHaveNoTiling() {
        // BitNet-b1.58-2B-4T (setup_env generates 3B kernels for it) and Falcon3 shapes
        XCTAssertNil(Layout.tiling(type: .tl2, rows: 2560, cols: 2560))
        XCTAssertNil(Layout.tiling(type: .tl1, rows: 6912, cols: 2560))
        XCTAssertNil(Layout.tiling(type: .tl2, rows: 640, cols: 2560))
        XCTAssertNil(Layout.tiling(type: .tl1, rows: 3072, cols: 3072))
        // the same shape exists for the other kind only with its own tiling
        XCTAssertEqual(Layout.tiling(type: .tl1, rows: 1536, cols: 1536), Layout.Tiling(BM: 128, BK: 64, bm: 64))
        XCTAssertEqual(Layout.tiling(type: .tl2, rows: 1536, cols: 1536), Layout.Tiling(BM: 128, BK: 192, bm: 32))
        XCTAssertEqual(Layout.Kind(GGMLType.tl1), .tl1)
        XCTAssertEqual(Layout.Kind(GGMLType.tl2), .tl2)
        XCTAssertNil(Layout.Kind(GGMLType.i2_s))
    }

    /// Sizes agree with the fork's ggml_nbytes, and the scale sits in the slot after them.
    func testSizesAndScaleSlot() throws {
        for e in Layout.published {
            let (m, k) = (e.rows, e.cols)
            var nbytes: Int
            if e.kind == .tl1 {
                nbytes = m * k / 4 + 32
            } else {
                nbytes = (k - 256) * m / 3 * 5 / 8 + 256 * m / 2 * 4 / 8
                if nbytes % 32 != 0 { nbytes += 32 - nbytes % 32 }
                nbytes += 32
            }
            XCTAssertEqual(Layout.tensorByteCount(type: e.kind, rows: m, cols: k, tiling: e.tiling), nbytes)
        }
        let t = Layout.Tiling(BM: 64, BK: 96, bm: 32)
        let w = Self.weights(rows: 64, cols: 320, seed: 9)
        var file = Layout.encode(w, type: .tl2, rows: 64, cols: 320, tiling: t)
        XCTAssertEqual(file.count, 4949)
        let at = Layout.scaleOffset(type: .tl2, rows: 64, cols: 320, tiling: t)
        XCTAssertEqual(at, 4960)
        file += [UInt8](repeating: 0, count: at - file.count)
        withUnsafeBytes(of: Float(0.75).bitPattern.littleEndian) { file += $0 }
        file += [UInt8](repeating: 0, count: 28)
        XCTAssertEqual(file.count, Layout.tensorByteCount(type: .tl2, rows: 64, cols: 320, tiling: t))
        XCTAssertEqual(try file.withUnsafeBytes { try Layout.scale($0, type: .tl2, rows: 64, cols: 320, tiling: t) }, 0.75)
        XCTAssertEqual(try file.withUnsafeBytes { try Layout.decode($0, type: .tl2, rows: 64, cols: 320, tiling: t) }, w)
        XCTAssertThrowsError(try file.prefix(at + 3).withUnsafeBytes {
            try Layout.scale(UnsafeRawBufferPointer($0), type: .tl2, rows: 64, cols: 320, tiling: t)
        })
    }
}
