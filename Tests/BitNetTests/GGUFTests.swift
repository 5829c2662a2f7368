import Foundation
import XCTest

@testable import BitNet

final class GGUFTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("gguf-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    // MARK: - Metadata round trip

    /// One value of every type, arrays of every element type, and the edge
    /// cases that trip up encoders: empty strings and arrays, non-ASCII text,
    /// extreme integers, NUL inside a string, nested arrays.
    /// Computed rather than a `static let`: LeakSanitizer reports the arrays
    /// inside a global's enum payloads as leaks.
    private static var everyValue: [(String, GGUFValue)] { [
        ("general.architecture", .string("bitnet-b1.58")),
        ("t.u8", .uint8(255)),
        ("t.i8", .int8(-128)),
        ("t.u16", .uint16(65535)),
        ("t.i16", .int16(-32768)),
        ("t.u32", .uint32(4_000_000_000)),
        ("t.i32", .int32(-2_000_000_000)),
        ("t.f32", .float32(-1.5e-5)),
        ("t.bool.true", .bool(true)),
        ("t.bool.false", .bool(false)),
        ("t.string", .string("hello")),
        ("t.string.empty", .string("")),
        ("t.string.unicode", .string("Ġhello ▁wörld 你好 🦙 \u{10FFFF}")),
        ("t.string.nul", .string("a\u{0}b")),
        ("t.u64", .uint64(UInt64.max)),
        ("t.i64", .int64(Int64.min)),
        ("t.f64", .float64(Double.pi)),
        ("t.array.u8", .array(.uint8([0, 1, 255]))),
        ("t.array.i8", .array(.int8([-128, 0, 127]))),
        ("t.array.u16", .array(.uint16([0, 65535]))),
        ("t.array.i16", .array(.int16([-32768, 32767]))),
        ("t.array.u32", .array(.uint32([0, UInt32.max]))),
        ("t.array.i32", .array(.int32([Int32.min, -1, 0, Int32.max]))),
        ("t.array.f32", .array(.float32([0, -0.0, 1.5, .infinity, -.greatestFiniteMagnitude]))),
        ("t.array.bool", .array(.bool([true, false, true]))),
        ("t.array.string", .array(.string(["", "a", "Ġthe", "🦙🦙", "<|eot_id|>"]))),
        ("t.array.u64", .array(.uint64([0, UInt64.max]))),
        ("t.array.i64", .array(.int64([Int64.min, Int64.max]))),
        ("t.array.f64", .array(.float64([-0.0, 1e300, .leastNonzeroMagnitude]))),
        ("t.array.empty.u8", .array(.uint8([]))),
        ("t.array.empty.string", .array(.string([]))),
        ("t.array.empty.f32", .array(.float32([]))),
        ("t.array.empty.bool", .array(.bool([]))),
        ("t.array.nested", .array(.array([.int32([1, 2]), .string(["x"]), .array([.uint8([7])]), .float64([])]))),
        ("t.ünïcode.key", .uint8(1)),
    ] }

    func testMetadataRoundTripsEveryValueType() throws {
        XCTAssertEqual(Set(Self.everyValue.map { $0.1.type }), Set(GGUFValueType.allCases))
        let file = path("values.gguf")
        try GGUFWriter.write(to: file, metadata: Self.everyValue,
                             tensors: [("x", [8], .f32, [UInt8](repeating: 1, count: 32))])
        let g = try GGUFFile(path: file)
        XCTAssertEqual(g.version, 3)
        XCTAssertEqual(g.metadataKeys, Self.everyValue.map { $0.0 })
        XCTAssertEqual(g.metadata.count, Self.everyValue.count)
        for (key, value) in Self.everyValue {
            XCTAssertEqual(g[key], value, key)
        }
    }

    func testNaNAndLargeArraysRoundTrip() throws {
        let floats = (0..<100_000).map { Float($0) * 0.25 } + [.nan, -.nan]
        let strings = (0..<20_000).map { "tok\($0)" }
        let file = path("big.gguf")
        try GGUFWriter.write(to: file, metadata: [
            ("n", .float32(.nan)),
            ("floats", .array(.float32(floats))),
            ("strings", .array(.string(strings))),
        ], tensors: [])
        let g = try GGUFFile(path: file)
        guard case .float32(let nan) = try XCTUnwrap(g["n"]) else { return XCTFail("type") }
        XCTAssertEqual(nan.bitPattern, Float.nan.bitPattern)
        XCTAssertEqual(try g.float32Array("floats").map(\.bitPattern), floats.map(\.bitPattern))
        XCTAssertEqual(try g.stringArray("strings"), strings)
        XCTAssertTrue(g.tensors.isEmpty)
    }

    func testTypedAccessors() throws {
        let file = path("accessors.gguf")
        try GGUFWriter.write(to: file, metadata: [
            ("s", .string("gpt2")),
            ("u32", .uint32(30)),
            ("u64", .uint64(128256)),
            ("i8", .int8(-3)),
            ("u64.huge", .uint64(UInt64.max)),
            ("f32", .float32(1e-5)),
            ("f64", .float64(500000)),
            ("f64.huge", .float64(1e300)),
            ("b", .bool(true)),
            ("tokens", .array(.string(["a", "b"]))),
            ("types.i32", .array(.int32([1, 2, 3]))),
            ("types.u8", .array(.uint8([1, 6]))),
            ("types.u64", .array(.uint64([1, UInt64(Int32.max) + 1]))),
            ("scores.f64", .array(.float64([0.5, -1]))),
        ], tensors: [])
        let g = try GGUFFile(path: file)
        XCTAssertEqual(try g.string("s"), "gpt2")
        XCTAssertEqual(try g.integer("u32"), 30)
        XCTAssertEqual(try g.integer("u64"), 128256)
        XCTAssertEqual(try g.integer("i8"), -3)
        XCTAssertEqual(try g.float("f32"), 1e-5)
        XCTAssertEqual(try g.float("f64"), 500000)
        XCTAssertEqual(try g.float("u32"), 30)
        XCTAssertEqual(try g.bool("b"), true)
        XCTAssertEqual(try g.stringArray("tokens"), ["a", "b"])
        XCTAssertEqual(try g.int32Array("types.i32"), [1, 2, 3])
        XCTAssertEqual(try g.int32Array("types.u8"), [1, 6])
        XCTAssertEqual(try g.float32Array("scores.f64"), [0.5, -1])
        XCTAssertEqual(try g.float32Array("types.u8"), [1, 6])

        XCTAssertNil(try g.optionalString("missing"))
        XCTAssertNil(try g.optionalInteger("missing"))
        XCTAssertNil(try g.optionalFloat("missing"))
        XCTAssertNil(try g.optionalBool("missing"))
        XCTAssertEqual(try g.optionalInteger("u32"), 30)

        expectError(try g.string("missing")) { if case .keyNotFound(file, "missing") = $0 { true } else { false } }
        expectError(try g.integer("s")) {
            if case .typeMismatch(file, "s", "an integer", "string") = $0 { true } else { false }
        }
        expectError(try g.optionalString("u32")) { if case .typeMismatch(_, "u32", "string", "u32") = $0 { true } else { false } }
        expectError(try g.optionalBool("u32")) { if case .typeMismatch(_, "u32", _, _) = $0 { true } else { false } }
        expectError(try g.float("s")) { if case .typeMismatch(_, "s", _, _) = $0 { true } else { false } }
        expectError(try g.stringArray("types.i32")) {
            if case .typeMismatch(_, "types.i32", "array[string]", "array[i32]") = $0 { true } else { false }
        }
        expectError(try g.int32Array("tokens")) { if case .typeMismatch(_, "tokens", _, _) = $0 { true } else { false } }
        expectError(try g.integer("u64.huge")) { if case .valueOutOfRange(_, "u64.huge", _, "Int") = $0 { true } else { false } }
        expectError(try g.float("f64.huge")) { if case .valueOutOfRange(_, "f64.huge", _, "Float") = $0 { true } else { false } }
        expectError(try g.int32Array("types.u64")) {
            if case .valueOutOfRange(_, "types.u64", "[1] = 2147483648", "Int32") = $0 { true } else { false }
        }
    }

    // MARK: - Tensor round trip

    func testTensorTableAndDataRoundTripAtAlignments32And64() throws {
        for alignment in [32, 64] {
            var rng = SeededGenerator(seed: UInt64(alignment))
            let specs: [(String, [Int], GGMLType)] = [
                ("token_embd.weight", [64, 10], .f16),
                ("output_norm.weight", [64], .f32),
                ("blk.0.attn_q.weight", [128, 16], .i2_s),
                ("blk.0.ffn_up.weight", [256, 3], .tq2_0),
                ("blk.0.ffn_gate.weight", [256, 2], .tq1_0),
                ("blk.0.attn_k.weight", [32, 5], .q8_0),
                ("blk.0.scalar", [3], .bf16),
                ("blk.0.cube", [2, 3, 4, 5], .f32),
            ]
            let tensors = try specs.map { name, dims, type in
                let size = try type.byteCount(dims: dims)
                return (name: name, dims: dims, type: type, data: (0..<size).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            }
            let file = path("tensors\(alignment).gguf")
            try GGUFWriter.write(to: file, alignment: alignment,
                                 metadata: [("general.architecture", .string("bitnet-b1.58"))], tensors: tensors)
            let g = try GGUFFile(path: file)
            defer { withExtendedLifetime(g) {} }  // data views point into g's mapping
            XCTAssertEqual(g.alignment, alignment)
            XCTAssertEqual(g.dataOffset % alignment, 0)
            XCTAssertEqual(g.fileSize, try XCTUnwrap(FileManager.default.attributesOfItem(atPath: file)[.size] as? Int))
            if alignment == 32 {
                XCTAssertNil(g["general.alignment"], "the default alignment is not written")
            } else {
                XCTAssertEqual(g["general.alignment"], .uint32(64))
            }
            XCTAssertEqual(g.tensors.map(\.name), specs.map(\.0))
            for (info, t) in zip(g.tensors, tensors) {
                XCTAssertEqual(info.dims, t.dims)
                XCTAssertEqual(info.type, t.type)
                XCTAssertEqual(info.offset % alignment, 0)
                XCTAssertEqual(info.extent, (t.data.count + alignment - 1) / alignment * alignment)
                XCTAssertEqual(info.byteCount, t.data.count)
                XCTAssertEqual(g.tensor(named: t.name), info)
                let bytes = try g.data(named: t.name)
                XCTAssertEqual(Array(bytes.prefix(t.data.count)), t.data, "\(t.name) @ \(alignment)")
                XCTAssertTrue(bytes.dropFirst(t.data.count).allSatisfy { $0 == 0 }, "padding is zero")
            }
            let cube = try XCTUnwrap(g.tensor(named: "blk.0.cube"))
            XCTAssertEqual(cube.elementCount, 120)
            XCTAssertEqual(cube.cols, 2)
            XCTAssertEqual(cube.rows, 60)
            expectError(try g.data(named: "nope")) { if case .tensorNotFound(file, "nope") = $0 { true } else { false } }
        }
    }

    func testStreamingWriterChunksAndProgress() throws {
        var writer = GGUFWriter(alignment: 32)
        writer.set("general.architecture", .string("llama"))
        // 3 MiB crosses the sink's 1 MiB buffer both by many small and by large writes.
        try writer.addTensor(name: "big", dims: [1024, 768], type: .f32)
        try writer.addTensor(name: "small", dims: [5], type: .f32)
        try writer.addTensor(name: "opaque", dims: [10], type: .tl2, byteCount: 77)
        XCTAssertEqual(writer.tensors.map(\.offset), [0, 3 << 20, (3 << 20) + 32])
        XCTAssertEqual(writer.byteCount(of: writer.tensors[2]), 77)
        var calls: [(Int, Int)] = []
        let file = path("stream.gguf")
        try writer.write(to: file, progress: { calls.append(($0, $1)) }) { tensor, sink in
            switch tensor.name {
            case "big":
                let row = (0..<1024).map { Float($0) }
                for _ in 0..<700 { try sink.write(contentsOf: row) }
                let rest = [Float](repeating: -1, count: 1024 * 68)
                try sink.write(contentsOf: rest)
            case "small":
                try sink.write(contentsOf: [Float](repeating: 2, count: 5))
            default:
                XCTAssertEqual(sink.remaining, 77)
                try sink.write([UInt8](repeating: 9, count: 70))
                try sink.writeZeros(7)
            }
        }
        let g = try GGUFFile(path: file)
        defer { withExtendedLifetime(g) {} }  // data views point into g's mapping
        XCTAssertEqual(calls.count, 4)
        XCTAssertEqual(calls.last?.0, g.fileSize)
        XCTAssertTrue(calls.allSatisfy { $0.1 == g.fileSize })
        XCTAssertEqual(calls.map(\.0), calls.map(\.0).sorted())
        let big = try g.data(named: "big")
        XCTAssertEqual(big.count, 3 << 20)
        XCTAssertEqual(big.loadUnaligned(fromByteOffset: 4 * 1023, as: Float.self), 1023)
        XCTAssertEqual(big.loadUnaligned(fromByteOffset: 4 * (1024 * 700), as: Float.self), -1)
        let opaque = try XCTUnwrap(g.tensor(named: "opaque"))
        XCTAssertNil(opaque.byteCount)
        XCTAssertEqual(opaque.extent, 96)
        XCTAssertEqual(Array(g.data(for: opaque).prefix(78)), [UInt8](repeating: 9, count: 70) + [UInt8](repeating: 0, count: 8))
        XCTAssertFalse(FileManager.default.fileExists(atPath: file + ".tmp"))
    }

    func testWriterRejectsWrongByteCountsAndCleansUp() throws {
        var writer = GGUFWriter()
        try writer.addTensor(name: "a", dims: [8], type: .f32)
        let file = path("short.gguf")

        expectError(try writer.write(to: file) { _, sink in try sink.write([UInt8](repeating: 0, count: 31)) }) {
            if case .tensorSizeMismatch(_, "a", 32, 31) = $0 { true } else { false }
        }
        expectError(try writer.write(to: file) { _, sink in try sink.write([UInt8](repeating: 0, count: 33)) }) {
            if case .tensorSizeMismatch(_, "a", 32, 33) = $0 { true } else { false }
        }
        struct Boom: Error {}
        XCTAssertThrowsError(try writer.write(to: file) { _, _ in throw Boom() }) { XCTAssertTrue($0 is Boom) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: file))
        XCTAssertFalse(FileManager.default.fileExists(atPath: file + ".tmp"))

        expectError(try writer.addTensor(name: "a", dims: [8], type: .f32)) {
            if case .duplicateTensorName(_, "a") = $0 { true } else { false }
        }
        expectError(try writer.addTensor(name: String(repeating: "n", count: 64), dims: [8], type: .f32)) {
            if case .invalidArgument = $0 { true } else { false }
        }
        expectError(try writer.addTensor(name: "b", dims: [1, 2, 3, 4, 5], type: .f32)) {
            if case .invalidArgument = $0 { true } else { false }
        }
        expectError(try writer.addTensor(name: "b", dims: [0], type: .f32)) {
            if case .invalidDimension(_, "b", 0, "0") = $0 { true } else { false }
        }
        expectError(try writer.addTensor(name: "b", dims: [10], type: .tl1)) {
            if case .unknownTypeSize(_, "b", .tl1) = $0 { true } else { false }
        }
        expectError(try writer.addTensor(name: "b", dims: [33], type: .q8_0)) {
            if case .rowNotBlockMultiple(_, "b", .q8_0, 33, 32) = $0 { true } else { false }
        }
        expectError(try writer.addTensor(name: "b", dims: [8], type: .f32, byteCount: 31)) {
            if case .invalidArgument = $0 { true } else { false }
        }
        var conflicting = GGUFWriter(alignment: 64)
        conflicting.set("general.alignment", .uint32(32))
        expectError(try conflicting.write(to: file) { _, _ in }) {
            if case .invalidArgument(_, "general.alignment", _) = $0 { true } else { false }
        }
    }

    // MARK: - bitnet.cpp quirks

    /// bitnet.cpp writes hidden `*_scale` bytes that no tensor-info entry
    /// describes: the extent must come from the offsets, not the type.
    func testExtentIncludesHiddenBytesBetweenTensors() throws {
        let i2sSize = 128 * 4 / 4 + 32  // [128, 4] I2_S = 160 bytes
        var data = [UInt8](repeating: 0x55, count: i2sSize)
        data += [UInt8](repeating: 0xAB, count: 32)  // hidden scale block
        data += [UInt8](repeating: 0, count: 32)     // next tensor, F32 [8]
        let file = try writeRaw(RawGGUF(tensors: [
            .init(name: "blk.0.attn_q.weight", dims: [128, 4], type: 36, offset: 0),
            .init(name: "blk.0.attn_norm.weight", dims: [8], type: 0, offset: UInt64(i2sSize + 32)),
        ], data: data))
        let g = try GGUFFile(path: file)
        defer { withExtendedLifetime(g) {} }  // data views point into g's mapping
        let q = try XCTUnwrap(g.tensor(named: "blk.0.attn_q.weight"))
        XCTAssertEqual(q.type, .i2_s)
        XCTAssertEqual(q.byteCount, 160)
        XCTAssertEqual(q.extent, 192)
        XCTAssertEqual(g.data(for: q).last, 0xAB)
    }

    func testUnknownTensorTypesAreListedWithTheirExtent() throws {
        let file = try writeRaw(RawGGUF(tensors: [
            .init(name: "future", dims: [100], type: 999, offset: 0),
            .init(name: "tl2", dims: [256, 4], type: 39, offset: 64),
        ], data: [UInt8](repeating: 1, count: 96)))
        let g = try GGUFFile(path: file)
        XCTAssertEqual(g.tensors.map(\.extent), [64, 32])
        XCTAssertEqual(g.tensors[0].type.name, "type(999)")
        XCTAssertNil(g.tensors[0].byteCount)
        XCTAssertEqual(g.tensors[1].type, .tl2)
    }

    func testGGMLTypeSizes() throws {
        XCTAssertEqual(try GGMLType.i2_s.byteCount(dims: [2560, 640]), 2560 * 640 / 4 + 32)
        XCTAssertEqual(try GGMLType.i2_s.byteCount(dims: [6912, 2560]), 6912 * 2560 / 4 + 32)
        XCTAssertEqual(try GGMLType.f16.byteCount(dims: [2560, 128256]), 2560 * 128256 * 2)
        XCTAssertEqual(try GGMLType.bf16.byteCount(dims: [3]), 6)
        XCTAssertEqual(try GGMLType.f32.byteCount(dims: [2560]), 10240)
        XCTAssertEqual(try GGMLType.q8_0.byteCount(dims: [64, 2]), 4 * 34)
        XCTAssertEqual(try GGMLType.tq1_0.byteCount(dims: [2560, 2]), 20 * 54)
        XCTAssertEqual(try GGMLType.tq2_0.byteCount(dims: [2560, 2]), 20 * 66)
        XCTAssertEqual(try GGMLType.i2r16.byteCount(dims: [100, 40]), 128 * 64 / 4 + 32)
        XCTAssertEqual(GGMLType.tq2_0.blockSize, 256)
        XCTAssertEqual(GGMLType.q8_0.typeSize, 34)
        XCTAssertEqual(GGMLType(rawValue: 36), .i2_s)
        XCTAssertEqual(GGMLType.tl2.rawValue, 39)
        XCTAssertEqual([GGMLType.i2_s, .tl1, .tl2, .tq1_0, .tq2_0, .bf16, .i2r16].map(\.name),
                       ["I2_S", "TL1", "TL2", "TQ1_0", "TQ2_0", "BF16", "I2_R16"])
        for type in [GGMLType.tl1, .tl2, .q8_1, .i8_s, GGMLType(rawValue: 4), GGMLType(rawValue: 999)] {
            XCTAssertFalse(type.hasKnownSize, type.name)
            expectError(try type.byteCount(dims: [256])) { if case .unknownTypeSize("", "", type) = $0 { true } else { false } }
        }
        expectError(try GGMLType.tq2_0.byteCount(dims: [100])) {
            if case .rowNotBlockMultiple(_, _, .tq2_0, 100, 256) = $0 { true } else { false }
        }
        expectError(try GGMLType.f32.byteCount(dims: [1 << 62])) { if case .sizeOverflow = $0 { true } else { false } }
        expectError(try GGMLType.f32.byteCount(dims: [1 << 32, 1 << 32])) { if case .sizeOverflow = $0 { true } else { false } }
    }

    func testUTF8Validation() {
        func valid(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBufferPointer { UTF8Validation.isValid($0) } }
        XCTAssertTrue(valid([]))
        XCTAssertTrue(valid(Array("plain ascii, longer than eight bytes".utf8)))
        XCTAssertTrue(valid(Array("Ġ▁你好🦙\u{10FFFF}\u{7F}\u{80}\u{7FF}\u{800}\u{FFFF}\u{10000}".utf8)))
        let invalid: [[UInt8]] = [
            [0x80], [0xBF], [0xC0, 0x80], [0xC1, 0xBF],          // stray continuation, overlong 2-byte
            [0xE0, 0x80, 0x80], [0xE0, 0x9F, 0xBF],              // overlong 3-byte
            [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF],              // surrogates
            [0xF0, 0x80, 0x80, 0x80], [0xF4, 0x90, 0x80, 0x80],  // overlong 4-byte, > U+10FFFF
            [0xF5, 0x80, 0x80, 0x80], [0xFF],
            [0xE4, 0xBD], [0xF0, 0x9F, 0xA6],                    // truncated at the end
            [0xE4, 0x41, 0xA0], [0xF0, 0x9F, 0x41, 0x99],        // bad continuation
            Array("12345678".utf8) + [0xC3],                     // after the ASCII fast path
        ]
        for bytes in invalid { XCTAssertFalse(valid(bytes), "\(bytes)") }
    }

    // MARK: - Malformed files

    /// A small valid file whose every strict prefix must be rejected: its last
    /// tensor ends exactly at the end of the file, so no prefix is valid.
    private func smallValidFile() -> RawGGUF {
        RawGGUF(
            kvs: [
                .init(key: "general.architecture", type: 8) { $0.string("bitnet-b1.58") },
                .init(key: "tokenizer.ggml.tokens", type: 9) { b in
                    b.u32(8); b.u64(3); b.string("a"); b.string("Ġb"); b.string("")
                },
                .init(key: "tokenizer.ggml.scores", type: 9) { b in b.u32(6); b.u64(2); b.u32(0); b.u32(0x3F80_0000) },
                .init(key: "general.alignment", type: 4) { $0.u32(32) },
                .init(key: "x.nested", type: 9) { b in b.u32(9); b.u64(1); b.u32(0); b.u64(2); b.u8(1); b.u8(2) },
            ],
            tensors: [
                .init(name: "a", dims: [4, 2], type: 0, offset: 0),
                .init(name: "b", dims: [8], type: 0, offset: 32),
            ],
            data: (0..<64).map { UInt8($0) })
    }

    func testSmallValidFileParses() throws {
        let g = try GGUFFile(path: try writeRaw(smallValidFile()))
        XCTAssertEqual(g.tensors.map(\.name), ["a", "b"])
        XCTAssertEqual(try g.stringArray("tokenizer.ggml.tokens"), ["a", "Ġb", ""])
        XCTAssertEqual(try g.float32Array("tokenizer.ggml.scores"), [0, 1])
        XCTAssertEqual(g["x.nested"], .array(.array([.uint8([1, 2])])))
        XCTAssertEqual(g.dataOffset + 64, g.fileSize)
    }

    func testEveryTruncationThrowsWithoutCrashing() throws {
        let full = smallValidFile().bytes
        let file = path("prefix.gguf")
        for length in 0..<full.count {
            try writeBytes(Array(full.prefix(length)), to: file)
            do {
                _ = try GGUFFile(path: file)
                XCTFail("prefix of \(length) / \(full.count) bytes was accepted")
            } catch let error as GGUFError {
                switch error {
                case .emptyFile: XCTAssertEqual(length, 0)
                case .truncated, .tensorOutOfBounds, .countTooLarge: break
                default: XCTFail("prefix \(length): unexpected \(error)")
                }
            }
        }
    }

    /// Seeded corruption of a complete model file (overwritten bytes and 0xFF runs,
    /// a u64 count or length made huge, bytes inserted or deleted in the header,
    /// cut ends), each variant taken through what a run does with a file: parse,
    /// hyperparameters, weights, tokenizer, logits of a short prompt. Every variant
    /// must end in one of two ways:
    /// - a thrown GGUFError, ModelError or TokenizerError naming the file;
    /// - a load. Where what the model computes with is unchanged (hyperparameters,
    ///   tensor table, tensor bytes), the logits must be the original's bit for bit,
    ///   and the tokenization too where the tokenizer keys are unchanged; where a
    ///   weight or a hyperparameter changed, that it ran to the end is all one can ask.
    func testRandomCorruptionEndsInACleanErrorOrTheOriginalModel() throws {
        let original = path("tiny.gguf")
        try TinyModelFile.write(to: original)
        let full = Array(try Data(contentsOf: URL(fileURLWithPath: original)))
        let reference = try CorruptionProbe(path: original)
        let headerEnd = try GGUFFile(path: original).dataOffset
        let file = path("fuzz.gguf")
        var rng = SeededGenerator(seed: 42)
        var outcomes = (errors: 0, unchanged: 0, changed: 0)
        for round in 0..<1500 {
            var bytes = full
            Self.corrupt(&bytes, headerEnd: headerEnd, rng: &rng)
            try writeBytes(bytes, to: file)
            let probe: CorruptionProbe
            do {
                probe = try CorruptionProbe(path: file)
            } catch let error as GGUFError {
                XCTAssertEqual(error.path, file, "round \(round): \(error)")
                outcomes.errors += 1
                continue
            } catch let error as ModelError {
                XCTAssertTrue(error.description.contains(file), "round \(round): \(error)")
                outcomes.errors += 1
                continue
            } catch let error as TokenizerError {
                XCTAssertTrue(error.description.contains(file), "round \(round): \(error)")
                outcomes.errors += 1
                continue
            }
            if probe.computesLike(reference) {
                XCTAssertEqual(probe.logits, reference.logits, "round \(round): same weights, different logits")
                if probe.tokenizerMetadata == reference.tokenizerMetadata {
                    XCTAssertEqual(probe.tokens, reference.tokens, "round \(round)")
                }
                outcomes.unchanged += 1
            } else {
                outcomes.changed += 1
            }
        }
        // The generator must reach all three outcomes, or the checks above prove little.
        XCTAssertGreaterThan(outcomes.errors, 300, "\(outcomes)")
        XCTAssertGreaterThan(outcomes.unchanged, 50, "\(outcomes)")
        XCTAssertGreaterThan(outcomes.changed, 50, "\(outcomes)")
    }

    /// Most mutations aim at the header, metadata and tensor table (the first
    /// `headerEnd` bytes): that is where a bad value can mislead the reader.
    private static func corrupt(_ bytes: inout [UInt8], headerEnd: Int, rng: inout SeededGenerator) {
        func position(inHeader: Bool) -> Int { Int(rng.next() % UInt64(inHeader ? headerEnd : bytes.count)) }
        switch rng.next() % 8 {
        case 0...3:  // overwrite 1–4 runs of random bytes or 0xFF
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let at = position(inHeader: rng.next() % 4 != 0)
                let run = min(bytes.count - at, 1 + Int(rng.next() % 8))
                let fill: UInt8? = rng.next() % 2 == 0 ? 0xFF : nil
                for k in at..<(at + run) { bytes[k] = fill ?? UInt8(truncatingIfNeeded: rng.next()) }
            }
        case 4, 5:  // a huge u64 where a count, length, dimension or offset may be
            let at = min(position(inHeader: true), bytes.count - 8)
            let huge: [UInt64] = [.max, 1 << 40, 1 << 62, UInt64(Int64.max), 1 << 32, 0x8000_0000_0000_0000]
            let value = huge[Int(rng.next() % UInt64(huge.count))]
            withUnsafeBytes(of: value.littleEndian) { bytes.replaceSubrange(at..<(at + 8), with: $0) }
        case 6:  // bytes inserted or deleted: everything after shifts
            let at = position(inHeader: true)
            let count = 1 + Int(rng.next() % 8)
            if rng.next() % 2 == 0 {
                bytes.removeSubrange(at..<min(bytes.count, at + count))
            } else {
                bytes.insert(contentsOf: (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
            }
        default:  // cut short
            bytes.removeSubrange(position(inHeader: rng.next() % 2 == 0)...)
        }
    }

    func testEmptyFile() throws {
        expectError(raw: []) { if case .emptyFile = $0 { true } else { false } }
    }

    func testBadMagic() throws {
        var bytes = smallValidFile().bytes
        bytes[0] = UInt8(ascii: "X")
        expectError(raw: bytes) { if case .badMagic(_, 0x4655_4758) = $0 { true } else { false } }
        expectError(raw: Array("GGU".utf8)) { if case .truncated(_, "header.magic", 0, 4, 3) = $0 { true } else { false } }
    }

    func testUnsupportedVersions() throws {
        for version: UInt32 in [0, 1, 4, 0x0300_0000] {
            var file = smallValidFile()
            file.version = version
            expectError(raw: file.bytes) { if case .unsupportedVersion(_, version) = $0 { true } else { false } }
        }
        var v2 = smallValidFile()
        v2.version = 2
        XCTAssertEqual(try GGUFFile(path: try writeRaw(v2)).version, 2)
    }

    func testAbsurdCounts() throws {
        var file = smallValidFile()
        file.tensorCount = 1 << 60
        expectError(raw: file.bytes) {
            if case .countTooLarge(_, "header.tensor_count", 1 << 60, _) = $0 { true } else { false }
        }
        file = smallValidFile()
        file.kvCount = 1 << 60
        expectError(raw: file.bytes) { if case .countTooLarge(_, "header.kv_count", 1 << 60, _) = $0 { true } else { false } }
        file = smallValidFile()
        file.kvCount = UInt64.max
        expectError(raw: file.bytes) { if case .countTooLarge(_, "header.kv_count", _, _) = $0 { true } else { false } }
        // A count within the bound that claims more entries than exist: the
        // extra "entry" is read from padding and data, and must fail somehow.
        file = smallValidFile()
        file.tensorCount = 3
        expectError(raw: file.bytes) { _ in true }
    }

    func testArrayCountsAndTypes() throws {
        let cases: [(String, (inout ByteWriter) -> Void, (GGUFError) -> Bool)] = [
            ("huge string array", { b in b.u32(8); b.u64(1 << 60) }, {
                if case .countTooLarge(_, "kv[0] 'k'.count", 1 << 60, _) = $0 { true } else { false }
            }),
            ("huge f32 array", { b in b.u32(6); b.u64(UInt64.max / 4) }, {
                if case .countTooLarge(_, "kv[0] 'k'.count", _, _) = $0 { true } else { false }
            }),
            ("unknown element type", { b in b.u32(13); b.u64(0) }, {
                if case .unknownValueType(_, "kv[0] 'k'.element_type", 13) = $0 { true } else { false }
            }),
            ("string element past EOF", { b in b.u32(8); b.u64(2); b.string("ok"); b.u64(1000) }, {
                if case .truncated(_, "kv[0] 'k'[1]", _, 1000, _) = $0 { true } else { false }
            }),
            ("bad UTF-8 element", { b in b.u32(8); b.u64(2); b.string("ok"); b.u64(2); b.u8(0xC0); b.u8(0xAF) }, {
                if case .invalidUTF8(_, "kv[0] 'k'[1]") = $0 { true } else { false }
            }),
            ("nested too deep", { b in for _ in 0..<20 { b.u32(9); b.u64(1) }; b.u32(0); b.u64(0) }, {
                if case .arrayNestingTooDeep(_, _, 8) = $0 { true } else { false }
            }),
        ]
        for (name, body, match) in cases {
            let file = RawGGUF(kvs: [.init(key: "k", type: 9, body: body)], tensors: [], data: [])
            expectError(raw: file.bytes + [UInt8](repeating: 0, count: 64), name, match)
        }
    }

    func testStringLengthPastEOF() throws {
        var b = ByteWriter()
        b.header(tensors: 0, kvs: 1)
        b.u64(1 << 40)
        b.bytes += Array("general".utf8)
        expectError(raw: b.bytes) {
            if case .truncated(_, "kv[0].key", 32, 1 << 40, 39) = $0 { true } else { false }
        }
        let valueTooLong = RawGGUF(kvs: [.init(key: "name", type: 8) { $0.u64(99) }], tensors: [], data: [])
        expectError(raw: valueTooLong.bytes) { if case .truncated(_, "kv[0] 'name'", _, 99, _) = $0 { true } else { false } }
    }

    func testBadUTF8Key() throws {
        var file = smallValidFile()
        file.kvs.insert(.init(keyBytes: [0x67, 0xFF, 0x67], type: 0) { $0.u8(1) }, at: 1)
        expectError(raw: file.bytes) { if case .invalidUTF8(_, "kv[1].key") = $0 { true } else { false } }
        var tensorName = smallValidFile()
        tensorName.tensors[1].nameBytes = [0xED, 0xA0, 0x80]
        expectError(raw: tensorName.bytes) { if case .invalidUTF8(_, "tensor[1].name") = $0 { true } else { false } }
    }

    func testUnknownValueType() throws {
        var file = smallValidFile()
        file.kvs[2].type = 13
        expectError(raw: file.bytes) {
            if case .unknownValueType(_, "kv[2] 'tokenizer.ggml.scores'.type", 13) = $0 { true } else { false }
        }
        expectError(raw: file.bytes) {
            $0.description.hasSuffix("kv[2] 'tokenizer.ggml.scores'.type: unknown value type id 13 (valid: 0–12)")
        }
    }

    func testTooManyDimensions() throws {
        var file = smallValidFile()
        file.tensors[0].dims = [1, 1, 1, 1, 8]
        expectError(raw: file.bytes) { if case .tooManyDimensions(_, "a", 5) = $0 { true } else { false } }
        file.tensors[0].dims = []
        file.tensors[0].nDimsOverride = 0xFFFF_FFFF
        expectError(raw: file.bytes) { if case .tooManyDimensions(_, "a", 0xFFFF_FFFF) = $0 { true } else { false } }
    }

    func testZeroAndHugeDimensions() throws {
        var file = smallValidFile()
        file.tensors[1].dims = [8, 0]
        expectError(raw: file.bytes) { if case .invalidDimension(_, "b", 1, "0") = $0 { true } else { false } }
        file.tensors[1].dims = [UInt64(Int.max) + 1]
        expectError(raw: file.bytes) {
            if case .invalidDimension(_, "b", 0, "9223372036854775808") = $0 { true } else { false }
        }
    }

    func testDimensionProductOverflow() throws {
        var file = smallValidFile()
        file.tensors[1].dims = [1 << 32, 1 << 32]
        expectError(raw: file.bytes) { if case .sizeOverflow(_, "b", [1 << 32, 1 << 32]) = $0 { true } else { false } }
        // The element count fits but the byte size does not.
        file.tensors[1].dims = [1 << 31, 1 << 31]
        expectError(raw: file.bytes) { if case .sizeOverflow(_, "b", _) = $0 { true } else { false } }
    }

    func testMisalignedOffset() throws {
        var file = smallValidFile()
        file.tensors[1].offset = 36
        expectError(raw: file.bytes) { if case .misalignedOffset(_, "b", 36, 32) = $0 { true } else { false } }
    }

    func testTensorPastEndOfFile() throws {
        var file = smallValidFile()
        file.tensors[1].offset = 64
        expectError(raw: file.bytes) { if case .tensorOutOfBounds(_, "b", 64, 32, 64, _) = $0 { true } else { false } }
        file.tensors[1].offset = 123_456_768
        let url = try writeRaw(file, name: "model.gguf")
        expectError(try GGUFFile(path: url)) {
            $0.description == "\(url): tensor 'b': offset 123456768 + 32 bytes runs past the end of the data section "
                + "(64 bytes; file size \(file.bytes.count))"
        }
        // A type whose computed size is larger than what is left.
        file = smallValidFile()
        file.tensors[1].dims = [16]  // F32 [16] = 64 bytes, only 32 left
        expectError(raw: file.bytes) { if case .tensorOutOfBounds(_, "b", 32, 64, 64, _) = $0 { true } else { false } }
    }

    func testOverlappingTensors() throws {
        var file = smallValidFile()
        file.tensors[0].dims = [16]  // 64 bytes, but "b" starts at 32
        expectError(raw: file.bytes) { if case .tensorOverlap(_, "a", 0, 64, "b", 32) = $0 { true } else { false } }
        file = smallValidFile()
        file.tensors[1].offset = 0  // same offset as "a"
        expectError(raw: file.bytes) { if case .tensorOverlap = $0 { true } else { false } }
    }

    func testBlockTypeWithPartialRow() throws {
        var file = smallValidFile()
        file.tensors[1].type = 8  // Q8_0 needs ne0 % 32 == 0
        expectError(raw: file.bytes) { if case .rowNotBlockMultiple(_, "b", .q8_0, 8, 32) = $0 { true } else { false } }
    }

    func testDuplicateTensorName() throws {
        var file = smallValidFile()
        file.tensors[1].nameBytes = Array("a".utf8)
        expectError(raw: file.bytes) { if case .duplicateTensorName(_, "a") = $0 { true } else { false } }
    }

    func testDuplicateKey() throws {
        var file = smallValidFile()
        file.kvs.append(.init(key: "general.architecture", type: 8) { $0.string("llama") })
        expectError(raw: file.bytes) {
            if case .duplicateKey(_, "kv[5].key", "general.architecture") = $0 { true } else { false }
        }
    }

    func testInvalidAlignment() throws {
        let bad: [(UInt32, (inout ByteWriter) -> Void)] = [
            (4, { $0.u32(0) }), (4, { $0.u32(48) }), (4, { $0.u32(0x8000_0001) }),
            (10, { $0.u64(32) }), (8, { $0.string("32") }),
        ]
        for (type, body) in bad {
            var file = smallValidFile()
            file.kvs[3] = .init(key: "general.alignment", type: type, body: body)
            expectError(raw: file.bytes) { if case .invalidAlignment = $0 { true } else { false } }
        }
        var file = smallValidFile()
        file.kvs[3] = .init(key: "general.alignment", type: 4) { $0.u32(16) }
        file.alignment = 16
        file.tensors[1].offset = 32
        let g = try GGUFFile(path: try writeRaw(file))
        XCTAssertEqual(g.alignment, 16)
        XCTAssertEqual(g.dataOffset % 16, 0)
    }

    func testNotAFile() throws {
        let missing = path("missing.gguf")
        expectError(try GGUFFile(path: missing)) {
            if case .io(missing, "open", ENOENT) = $0 { true } else { false }
        }
        expectError(try GGUFFile(path: directory.path)) { if case .notARegularFile = $0 { true } else { false } }
        expectError(try GGUFFile(path: missing)) { $0.description.contains("open failed") }
    }

    // MARK: - Interoperability

    /// Our writer's output must be readable by llama.cpp's own Python reader.
    /// Needs `pip install gguf`; skipped (never downloaded) when it is absent.
    func testPyPIReaderAcceptsWriterOutput() throws {
        guard run(["python3", "-c", "import gguf"]).status == 0 else {
            throw XCTSkip("python3 with the PyPI 'gguf' package is not available")
        }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("tools/check_gguf_with_pypi.py").path
        guard FileManager.default.fileExists(atPath: script) else { throw XCTSkip("\(script) not found") }

        // Upstream gguf-py knows neither I2_S nor TL1/TL2, so only upstream types here.
        let metadata = Self.everyValue.filter { $0.0 != "t.array.nested" }  // gguf-py cannot print nested arrays
        var rng = SeededGenerator(seed: 7)
        let tensors: [(name: String, dims: [Int], type: GGMLType, data: [UInt8])] = try [
            ("token_embd.weight", [64, 6], GGMLType.f16),
            ("output_norm.weight", [64], .f32),
            ("blk.0.ffn_up.weight", [256, 2], .tq2_0),
            ("blk.0.ffn_down.weight", [256, 1], .tq1_0),
            ("blk.0.attn_q.weight", [32, 3], .q8_0),
        ].map { name, dims, type in
            (name, dims, type, (0..<(try type.byteCount(dims: dims))).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        }
        for alignment in [32, 64] {
            let file = path("pypi\(alignment).gguf")
            try GGUFWriter.write(to: file, alignment: alignment, metadata: metadata, tensors: tensors)
            let result = run(["python3", script, file])
            XCTAssertEqual(result.status, 0, result.output)
            let lines = result.output.split(separator: "\n").map(String.init)
            XCTAssertTrue(lines.contains("version\t3"), result.output)
            XCTAssertTrue(lines.contains("alignment\t\(alignment)"), result.output)
            XCTAssertTrue(lines.contains("kv\tgeneral.architecture\tstring\t'bitnet-b1.58'"), result.output)
            XCTAssertTrue(lines.contains("kv\tt.u64\tuint64\t18446744073709551615"), result.output)
            XCTAssertTrue(lines.contains("kv\tt.array.string\tstring[5]\t['', 'a', 'Ġthe', '🦙🦙', '<|eot_id|>']"), result.output)
            let g = try GGUFFile(path: file)
            defer { withExtendedLifetime(g) {} }  // data views point into g's mapping
            for t in g.tensors {
                let bytes = Array(g.data(for: t).prefix(try XCTUnwrap(t.byteCount)))
                let shape = t.dims.map(String.init).joined(separator: ",")
                let crc = String(format: "%08x", crc32(bytes))
                let expected = "tensor\t\(t.name)\t\(t.type.name)\t\(shape)\t\(bytes.count)\t\(g.dataOffset + t.offset)\t\(crc)"
                XCTAssertTrue(lines.contains(expected), "missing: \(expected)\n\(result.output)")
            }
        }
    }

    /// A real file written by llama.cpp's gguf-py (the Llama 3 vocabulary that
    /// 2B4T shares): we read it, and re-encoding its metadata in file order
    /// reproduces it byte for byte.
    func testRealVocabularyFileReadsAndReencodesIdentically() throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/tokenizers/ggml-vocab-llama-bpe.gguf").path
        guard FileManager.default.fileExists(atPath: fixture) else { throw XCTSkip("\(fixture) not found") }
        let g = try GGUFFile(path: fixture)
        XCTAssertEqual(g.version, 3)
        XCTAssertEqual(try g.string("general.architecture"), "llama")
        XCTAssertEqual(try g.integer("llama.vocab_size"), 128_256)
        XCTAssertEqual(try g.float("llama.rope.freq_base"), 500_000)
        let tokens = try g.stringArray("tokenizer.ggml.tokens")
        let merges = try g.stringArray("tokenizer.ggml.merges")
        XCTAssertEqual(tokens.count, 128_256)
        XCTAssertEqual(merges.count, 280_147)
        XCTAssertEqual(Array(merges.prefix(2)), ["Ġ Ġ", "Ġ ĠĠĠ"])
        XCTAssertEqual(tokens[128_000], "<|begin_of_text|>")
        XCTAssertEqual(try g.integer("tokenizer.ggml.bos_token_id"), 128_000)
        XCTAssertTrue(g.tensors.isEmpty)

        var writer = GGUFWriter(alignment: g.alignment)
        for key in g.metadataKeys { writer.set(key, try XCTUnwrap(g[key])) }
        let copy = path("copy.gguf")
        try writer.write(to: copy) { _, _ in }
        let reread = try GGUFFile(path: copy)
        withExtendedLifetime((g, reread)) {
            XCTAssertEqual(reread.fileSize, (g.fileSize + 31) / 32 * 32)
            XCTAssertTrue(reread.bytes.prefix(g.fileSize).elementsEqual(g.bytes), "re-encoded metadata differs")
        }
    }

    // MARK: - Speed

    /// A tokenizer the size of Llama 3's (128k tokens, 280k merges) must parse
    /// quickly; the bound is loose so debug builds on slow machines pass.
    func testLargeVocabularyParsesQuickly() throws {
        let file = path("vocab.gguf")
        try Self.writeVocabularyFile(to: file)
        let start = DispatchTime.now()
        let g = try GGUFFile(path: file)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        XCTAssertEqual(try g.stringArray("tokenizer.ggml.tokens").count, 128_256)
        XCTAssertEqual(try g.stringArray("tokenizer.ggml.merges").count, 280_147)
        XCTAssertEqual(try g.int32Array("tokenizer.ggml.token_type").count, 128_256)
        XCTAssertLessThan(seconds, 10)
        print("GGUFTests: parsed 128k-token / 280k-merge vocabulary in \(Int(seconds * 1000)) ms")
    }

    static func writeVocabularyFile(to file: String) throws {
        var rng = SeededGenerator(seed: 1)
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzĠĊ▁éü你好".unicodeScalars)
        func word() -> String {
            var s = String.UnicodeScalarView()
            for _ in 0..<(1 + Int(rng.next() % 9)) { s.append(alphabet[Int(rng.next() % UInt64(alphabet.count))]) }
            return String(s)
        }
        let tokens = (0..<128_256).map { "\($0)" + word() }
        let merges = (0..<280_147).map { _ in word() + " " + word() }
        try GGUFWriter.write(to: file, metadata: [
            ("general.architecture", .string("bitnet-b1.58")),
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.tokens", .array(.string(tokens))),
            ("tokenizer.ggml.scores", .array(.float32((0..<128_256).map { Float($0) }))),
            ("tokenizer.ggml.token_type", .array(.int32([Int32](repeating: 1, count: 128_256)))),
            ("tokenizer.ggml.merges", .array(.string(merges))),
        ], tensors: [])
    }

    // MARK: - Helpers

    private func expectError<T>(
        _ expression: @autoclosure () throws -> T, _ message: String = "",
        file: StaticString = #filePath, line: UInt = #line, _ match: (GGUFError) -> Bool
    ) {
        do {
            _ = try expression()
            XCTFail("expected a GGUFError \(message)", file: file, line: line)
        } catch let error as GGUFError {
            XCTAssertTrue(match(error), "\(message): unexpected error .\(Mirror(reflecting: error).children.first?.label ?? "?"): \(error)", file: file, line: line)
        } catch {
            XCTFail("\(message): not a GGUFError: \(error)", file: file, line: line)
        }
    }

    private func expectError(
        raw bytes: [UInt8], _ message: String = "",
        file: StaticString = #filePath, line: UInt = #line, _ match: (GGUFError) -> Bool
    ) {
        let url = path("raw-\(UUID().uuidString).gguf")
        do {
            try writeBytes(bytes, to: url)
        } catch {
            return XCTFail("cannot write \(url): \(error)", file: file, line: line)
        }
        expectError(try GGUFFile(path: url), message, file: file, line: line, match)
    }

    private func writeRaw(_ raw: RawGGUF, name: String? = nil) throws -> String {
        let url = path(name ?? "raw-\(UUID().uuidString).gguf")
        try writeBytes(raw.bytes, to: url)
        return url
    }

    /// Plain POSIX writes: Foundation's `Data.write` costs milliseconds per
    /// call on Linux, which the per-prefix and fuzz loops would multiply.
    private func writeBytes(_ bytes: [UInt8], to file: String) throws {
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
        defer { close(fd) }
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else { throw CocoaError(.fileWriteUnknown) }
    }

    private func run(_ arguments: [String]) -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { return (-1, "\(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    private func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = (crc >> 1) ^ (0xEDB8_8320 & (0 &- (crc & 1))) }
        }
        return ~crc
    }
}

// MARK: - Hand-built files

/// Little-endian byte building for files the writer would refuse to produce.
private struct ByteWriter {
    var bytes: [UInt8] = []
    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func string(_ s: String) { raw(Array(s.utf8)) }
    mutating func raw(_ b: [UInt8]) { u64(UInt64(b.count)); bytes += b }
    mutating func header(version: UInt32 = 3, tensors: UInt64, kvs: UInt64) {
        bytes += Array("GGUF".utf8)
        u32(version)
        u64(tensors)
        u64(kvs)
    }
}

/// A GGUF file as plain fields, every one of which a test may corrupt.
private struct RawGGUF {
    struct KV {
        var keyBytes: [UInt8]
        var type: UInt32
        var body: (inout ByteWriter) -> Void
        init(key: String, type: UInt32, body: @escaping (inout ByteWriter) -> Void) {
            self.init(keyBytes: Array(key.utf8), type: type, body: body)
        }
        init(keyBytes: [UInt8], type: UInt32, body: @escaping (inout ByteWriter) -> Void) {
            self.keyBytes = keyBytes
            self.type = type
            self.body = body
        }
    }

    struct Tensor {
        var nameBytes: [UInt8]
        var dims: [UInt64]
        var nDimsOverride: UInt32?
        var type: UInt32
        var offset: UInt64
        init(name: String, dims: [UInt64], type: UInt32, offset: UInt64) {
            self.nameBytes = Array(name.utf8)
            self.dims = dims
            self.type = type
            self.offset = offset
        }
    }

    var version: UInt32 = 3
    var tensorCount: UInt64?
    var kvCount: UInt64?
    var kvs: [KV] = []
    var tensors: [Tensor]
    var alignment = 32
    var data: [UInt8]

    var bytes: [UInt8] {
        var b = ByteWriter()
        b.header(version: version, tensors: tensorCount ?? UInt64(tensors.count), kvs: kvCount ?? UInt64(kvs.count))
        for kv in kvs {
            b.raw(kv.keyBytes)
            b.u32(kv.type)
            kv.body(&b)
        }
        for t in tensors {
            b.raw(t.nameBytes)
            b.u32(t.nDimsOverride ?? UInt32(t.dims.count))
            for d in t.dims { b.u64(d) }
            b.u32(t.type)
            b.u64(t.offset)
        }
        while b.bytes.count % alignment != 0 { b.u8(0) }
        return b.bytes + data
    }
}

