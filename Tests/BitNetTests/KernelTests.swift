import XCTest
@testable import BitNet

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The Swift face of the kernels: every ISA this machine runs agrees bit for
/// bit with the scalar twins, and caller mistakes are thrown, not crashes.
/// (The C harness, Tests/c/test_kernels.c, covers the adversarial values.)
final class KernelTests: XCTestCase {
    private struct Rng {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
        mutating func ternary() -> Int8 { Int8(Int(next() % 3) - 1) }
        mutating func float() -> Float { Float(Double(next() >> 11) / Double(1 << 53)) * 4 - 2 }
    }

    private func product(_ kernels: Kernels, _ w: TernaryMatrix, _ x: [Float], rows n: Int, pool: WorkerPool? = nil) throws -> [Float] {
        let acts = try QuantizedActivations(capacity: n, cols: w.cols)
        try x.withUnsafeBufferPointer { try kernels.quantize($0, rows: n, cols: w.cols, into: acts) }
        var y = [Float](repeating: .nan, count: n * w.rows)
        try y.withUnsafeMutableBufferPointer { try kernels.matmul(w, acts, into: $0, pool: pool) }
        return y
    }

    func testEverySupportedISAMatchesScalar() throws {
        var rng = Rng(state: 0x1234_5678_9ABC_DEF1)
        let scalar = try Kernels(isa: .scalar)
        let levels = ISA.supported.filter { $0 != .scalar }
        for (m, k, n) in [(1, 1, 1), (17, 100, 3), (33, 1000, 1), (40, 8640, 2), (16, 128, 9), (70, 96, 128)] {
            let values = (0..<(m * k)).map { _ in rng.ternary() }
            let w = try TernaryMatrix(ternary: values, rows: m, cols: k, scale: 0.42)
            let x = (0..<(n * k)).map { _ in rng.float() }
            let want = try product(scalar, w, x, rows: n)
            // scalar spec against a direct evaluation of the BitLinear formula
            for t in 0..<n {
                let row = Array(x[(t * k)..<((t + 1) * k)])
                let amax = max(row.map(abs).max()!, 1e-5)
                let s: Float = 127 / amax
                let q = row.map { max(-128, min(127, ($0 * s).rounded(.toNearestOrEven))) }
                for r in 0..<m {
                    var dot = 0
                    for c in 0..<k { dot += Int(values[r * k + c]) * Int(q[c]) }
                    XCTAssertEqual(want[t * m + r], Float(dot) * (0.42 / s), "spec m=\(m) k=\(k) t=\(t) r=\(r)")
                }
            }
            for isa in levels {
                let got = try product(try Kernels(isa: isa), w, x, rows: n)
                XCTAssertEqual(got, want, "\(isa) m=\(m) k=\(k) n=\(n)")
            }
        }
    }

    func testCanonicalI2SRepackMatchesDirectPacking() throws {
        var rng = Rng(state: 99)
        for (m, k) in [(3, 1000), (7, 128), (5, 8640), (1, 33)] { // blocks straddle rows when k % 128 != 0
            let values = (0..<(m * k)).map { _ in rng.ternary() }
            // canonical layout built here from docs/FORMATS.md §3.2 independently of the C packer
            var canonical = [UInt8](repeating: 0x55, count: TernaryMatrix.canonicalByteCount(rows: m, cols: k))
            for (e, v) in values.enumerated() {
                let j = e % 128, byte = e / 128 * 32 + j % 32, shift = 6 - 2 * (j / 32)
                canonical[byte] = (canonical[byte] & ~UInt8(3 << shift)) | UInt8(Int(v) + 1) << shift
            }
            let a = try canonical.withUnsafeBytes { try TernaryMatrix(canonicalI2S: $0, rows: m, cols: k, scale: 1) }
            let b = try TernaryMatrix(ternary: values, rows: m, cols: k, scale: 1)
            XCTAssertEqual(a.withPackedI2R16(Array.init), b.withPackedI2R16(Array.init), "m=\(m) k=\(k)")
            for r in 0..<m { for c in stride(from: 0, to: k, by: 7) { XCTAssertEqual(a.weight(row: r, col: c), Int(values[r * k + c])) } }
        }
    }

    func testThreadedMatmulMatchesSingleThread() throws {
        var rng = Rng(state: 7)
        let (m, k) = (200, 640)
        let w = try TernaryMatrix(ternary: (0..<(m * k)).map { _ in rng.ternary() }, rows: m, cols: k, scale: 0.9)
        let x = (0..<(5 * k)).map { _ in rng.float() }
        let kernels = Kernels.best
        let single = try product(kernels, w, x, rows: 5)
        for threads in [2, 3] {
            let pool = try WorkerPool(threads: threads)
            XCTAssertEqual(try product(kernels, w, x, rows: 5, pool: pool), single, "threads=\(threads)")
            XCTAssertEqual(try product(kernels, w, Array(x.prefix(k)), rows: 1, pool: pool), Array(single.prefix(m)))
        }
    }

    /// Q, K, V (or gate, up) as one dispatch: each matrix's rows equal its own matmul
    /// bit for bit, at every ISA, with the units of odd-sized matrices split across
    /// threads mid-matrix (1 to 4 threads; 1 and 9 activation rows).
    func testMatmulManyEqualsSeparateMatmuls() throws {
        var rng = Rng(state: 99)
        let k = 160
        let shapes = [70, 33, 200] // 3, 2 and 7 units of 32 rows: thread ranges split inside matrices
        let ws = try shapes.map { m in
            try TernaryMatrix(ternary: (0..<(m * k)).map { _ in rng.ternary() }, rows: m, cols: k, scale: Float(m) / 100)
        }
        for isa in ISA.supported {
            let kernels = try Kernels(isa: isa)
            for n in [1, 9] {
                let x = (0..<(n * k)).map { _ in rng.float() }
                let acts = try QuantizedActivations(capacity: n, cols: k)
                try x.withUnsafeBufferPointer { try kernels.quantize($0, rows: n, cols: k, into: acts) }
                let expected = try ws.map { try product(kernels, $0, x, rows: n) }
                for threads in [1, 2, 3, 4] {
                    let pool = try WorkerPool(threads: threads)
                    var outs = ws.map { [Float](repeating: .nan, count: n * $0.rows) }
                    let buffers = outs.indices.map { i in
                        UnsafeMutableBufferPointer<Float>.allocate(capacity: outs[i].count)
                    }
                    defer { buffers.forEach { $0.deallocate() } }
                    try kernels.matmulMany(ws, acts, into: buffers, pool: pool)
                    for i in outs.indices { outs[i] = Array(buffers[i]) }
                    XCTAssertEqual(outs, expected, "isa \(isa), n \(n), threads \(threads)")
                }
                // a group with a mismatched output is refused before any C call
                let short = UnsafeMutableBufferPointer<Float>.allocate(capacity: 1)
                defer { short.deallocate() }
                XCTAssertThrowsError(try kernels.matmulMany(ws, acts, into: [short, short, short]))
            }
        }
    }

    func testCallerMistakesAreThrownErrors() throws {
        XCTAssertThrowsError(try TernaryMatrix(ternary: [1, 0], rows: 1, cols: 3, scale: 1)) {
            XCTAssertEqual($0 as? KernelError, .bufferSize(what: "ternary values", expected: 3, actual: 2))
        }
        XCTAssertThrowsError(try TernaryMatrix(ternary: [1, 2, 0], rows: 1, cols: 3, scale: 1)) {
            XCTAssertEqual($0 as? KernelError, .invalidTernaryValue(index: 1, value: 2))
        }
        XCTAssertThrowsError(try TernaryMatrix(ternary: [], rows: 0, cols: 3, scale: 1))
        XCTAssertThrowsError(try TernaryMatrix(ternary: [], rows: 1, cols: TernaryMatrix.maxColumns + 1, scale: 1))
        XCTAssertThrowsError(try [UInt8](repeating: 0, count: 10).withUnsafeBytes {
            try TernaryMatrix(canonicalI2S: $0, rows: 2, cols: 128, scale: 1)
        }) { XCTAssertEqual($0 as? KernelError, .bufferSize(what: "canonical I2_S data", expected: 64, actual: 10)) }

        let w = try TernaryMatrix(ternary: [1, 0, -1, 1, 1, 1], rows: 2, cols: 3, scale: 1)
        let kernels = Kernels.best
        let acts = try QuantizedActivations(capacity: 2, cols: 3)
        XCTAssertThrowsError(try [Float](repeating: 1, count: 6).withUnsafeBufferPointer {
            try kernels.quantize($0, rows: 3, cols: 3, into: acts) // more rows than capacity
        })
        XCTAssertThrowsError(try [Float](repeating: 1, count: 4).withUnsafeBufferPointer {
            try kernels.quantize($0, rows: 2, cols: 3, into: acts) // input too short
        })
        XCTAssertThrowsError(try [Float](repeating: 1, count: 8).withUnsafeBufferPointer {
            try kernels.quantize($0, rows: 2, cols: 4, into: acts) // wrong width
        })
        var out4 = [Float](repeating: 0, count: 4), out3 = [Float](repeating: 0, count: 3), out8 = [Float](repeating: 0, count: 8)
        XCTAssertThrowsError(try out4.withUnsafeMutableBufferPointer {
            try kernels.matmul(w, acts, into: $0) // nothing quantized yet
        })
        try [Float](repeating: 1, count: 6).withUnsafeBufferPointer { try kernels.quantize($0, rows: 2, cols: 3, into: acts) }
        XCTAssertThrowsError(try out3.withUnsafeMutableBufferPointer {
            try kernels.matmul(w, acts, into: $0) // output needs 2×2
        }) { XCTAssertEqual($0 as? KernelError, .bufferSize(what: "matmul output", expected: 4, actual: 3)) }
        let other = try QuantizedActivations(capacity: 1, cols: 4)
        try [Float](repeating: 1, count: 4).withUnsafeBufferPointer { try kernels.quantize($0, rows: 1, cols: 4, into: other) }
        XCTAssertThrowsError(try out8.withUnsafeMutableBufferPointer {
            try kernels.matmul(w, other, into: $0)
        })
        XCTAssertThrowsError(try WorkerPool(threads: 0))
        var y = [Float](repeating: 0, count: 4)
        try y.withUnsafeMutableBufferPointer { try kernels.matmul(w, acts, into: $0) }
        XCTAssertEqual(y, [0, 3, 0, 3]) // x = 1 → q = 127, s = 127: rows sum to 0 and 3
    }

    func testBITNETISACanOnlyLowerTheLevel() throws {
        defer { unsetenv("BITNET_ISA") }
        setenv("BITNET_ISA", "scalar", 1)
        XCTAssertEqual(Kernels.best.isa, .scalar)
        XCTAssertTrue(ISA.report.contains("forced by BITNET_ISA=scalar"))
        setenv("BITNET_ISA", "no-such-isa", 1)
        XCTAssertEqual(Kernels.best.isa, ISA.detected)
        XCTAssertTrue(ISA.report.contains("ignored"))
        for isa in ISA.allCases where !isa.isSupported {
            setenv("BITNET_ISA", isa.description, 1) // a level above the CPU's is ignored
            XCTAssertEqual(Kernels.best.isa, ISA.detected)
            XCTAssertThrowsError(try Kernels(isa: isa))
        }
        for isa in ISA.supported {
            setenv("BITNET_ISA", isa.description, 1)
            XCTAssertEqual(Kernels.best.isa, isa)
        }
        XCTAssertEqual(ISA(name: "avx512vnni"), .avx512VNNI)
        XCTAssertEqual(ISA(name: "amx"), .amx)
        XCTAssertNil(ISA(name: "sse9"))
        // AMX ranks above VNNI though its raw value is the largest: a CPU with
        // AMX runs every x86 level, and one without it never reports it
        if ISA.detected == .amx {
            XCTAssertEqual(ISA.supported, [.scalar, .avx2, .avx512, .avx512VNNI, .amx])
        } else {
            XCTAssertFalse(ISA.amx.isSupported)
        }
    }
}

extension KernelTests {
    /// Code 3 is no ternary value: a canonical I2_S matrix holding one is refused at load
    /// (the I2_S kernels would compute it as +2, the TL conversion as +1).
    func testCanonicalI2SWithCode3IsRefused() throws {
        let rows = 32, cols = 128
        var bytes = [UInt8](repeating: 0x55, count: TernaryMatrix.canonicalByteCount(rows: rows, cols: cols)) // all code 1 = 0
        XCTAssertNoThrow(try bytes.withUnsafeBytes { try TernaryMatrix(canonicalI2S: $0, rows: rows, cols: cols, scale: 1) })
        bytes[77] = 0b01_11_01_11 // two codes of 3
        XCTAssertThrowsError(try bytes.withUnsafeBytes { try TernaryMatrix(canonicalI2S: $0, rows: rows, cols: cols, scale: 1) }) {
            XCTAssertEqual($0 as? KernelError, .invalidCodes(count: 2))
        }
    }
}
