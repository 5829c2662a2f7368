import XCTest
@testable import BitNet

/// Weight buffers on huge pages: aligned to the huge page size, marked for huge pages,
/// zero-filled like every buffer, and unmapped whole (no head or tail left behind).
final class AlignedBufferTests: XCTestCase {
    func testHugePageBufferIsAlignedZeroedAndMarked() throws {
        guard let huge = SystemMemory.hugePageSize else { throw XCTSkip("no transparent huge pages on this system") }
        // not a multiple of the page size: the tail unmapping must round up, as munmap does
        let count = 2 * huge + 4096 * 3 + 123
        let buffer = AlignedBuffer(byteCount: count, hugePages: true)
        XCTAssertEqual(Int(bitPattern: buffer.pointer) % huge, 0, "starts on a huge page")
        let bytes = buffer.bytes
        var nonzero = 0
        for i in stride(from: 0, to: count, by: 4093) where bytes[i] != 0 { nonzero += 1 }
        XCTAssertEqual(nonzero, 0)
        XCTAssertEqual(bytes[count - 1], 0)
        for i in stride(from: 0, to: count, by: 4096) { bytes[i] = 7 }
        bytes[count - 1] = 9 // the last byte is mapped and writable
        XCTAssertEqual(bytes[count - 1], 9)

        let flags = try XCTUnwrap(Self.vmFlags(containing: Int(bitPattern: buffer.pointer)), "mapping listed in smaps")
        XCTAssertTrue(flags.contains("hg"), "MADV_HUGEPAGE applied: \(flags)")
    }

    func testPlainBuffersAreNotMarked() throws {
        guard SystemMemory.hugePageSize != nil else { throw XCTSkip("no transparent huge pages on this system") }
        let buffer = AlignedBuffer(byteCount: 8 << 20) // a KV cache's kind: 4 KiB pages, resident as used
        let flags = try XCTUnwrap(Self.vmFlags(containing: Int(bitPattern: buffer.pointer)))
        XCTAssertFalse(flags.contains("hg"), flags)
    }

    func testHugePageBuffersLeaveNoMappingsBehind() throws {
        guard let huge = SystemMemory.hugePageSize else { throw XCTSkip("no transparent huge pages on this system") }
        func mappedBytes() throws -> Int {
            let lines = try XCTUnwrap(Self.procText("/proc/self/maps")).split(separator: "\n")
            XCTAssertGreaterThan(lines.count, 10)
            return lines.reduce(0) { total, line in
                let range = line.split(separator: " ")[0].split(separator: "-").compactMap { UInt($0, radix: 16) }
                return range.count == 2 && range[1] > range[0] ? total + Int(range[1] - range[0]) : total
            }
        }
        for size in [huge, huge + 1, 3 * huge - 4096, 5 * huge + 777] { _ = AlignedBuffer(byteCount: size, hugePages: true) }
        let before = try mappedBytes()
        for round in 0..<40 {
            let buffers = [huge, huge + 1, 3 * huge - 4096, 5 * huge + 777 + round].map { AlignedBuffer(byteCount: $0, hugePages: true) }
            XCTAssertEqual(buffers.count, 4)
        }
        // the head and tail trimmed off each mapping add up to one huge page: left mapped, 160 buffers
        // would leave 320 MiB behind; the margin is for other tests' threads mapping meanwhile
        XCTAssertLessThan(abs(try mappedBytes() - before), 32 * huge, "address space after 160 buffers came and went")
    }

    /// A /proc file read to its end (they report size 0, so not by their size).
    private static func procText(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        return String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
    }

    /// The VmFlags line of the /proc/self/smaps entry whose range holds `address`.
    private static func vmFlags(containing address: Int) -> String? {
        guard let text = procText("/proc/self/smaps") else { return nil }
        var inside = false
        for line in text.split(separator: "\n") {
            if let dash = line.firstIndex(of: "-"), let space = line.firstIndex(of: " "), dash < space,
               let lo = Int(line[..<dash], radix: 16), let hi = Int(line[line.index(after: dash)..<space], radix: 16) {
                inside = lo <= address && address < hi
            } else if inside, line.hasPrefix("VmFlags:") {
                return String(line)
            }
        }
        return nil
    }
}
