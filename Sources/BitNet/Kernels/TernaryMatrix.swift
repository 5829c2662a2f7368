import CKernels

/// The weights of one BitLinear, repacked once into the kernels' I2_R16
/// layout (bitnet_kernels.h): rows padded to 32, columns to 32, 16-row
/// groups of 64-byte chunks. Any K works, including bitnet_b1_58-3B's 8640.
package final class TernaryMatrix: @unchecked Sendable {
    /// Output features (M) and input features (K).
    package let rows: Int
    package let cols: Int
    package let paddedRows: Int
    package let paddedCols: Int
    /// Per-tensor weight scale s_w: y = (Σ w·q) · s_w / s_x.
    package let scale: Float
    let storage: AlignedBuffer // (paddedRows/16, paddedCols/16, 64) I2_R16 packed
    /// The TL bytes this matrix was decoded from (a TL file in a live mapping, kept
    /// alive by `owner`): a model choosing that kernel copies them instead of repacking.
    let tlSource: (type: Int32, bytes: UnsafeRawBufferPointer, owner: AnyObject)?

    package static var maxColumns: Int { Int(bn_i2s_max_k()) }

    private init(rows: Int, cols: Int, scale: Float,
                 tlSource: (type: Int32, bytes: UnsafeRawBufferPointer, owner: AnyObject)? = nil) throws {
        guard rows >= 1, rows <= Int(Int32.max) - 32, cols >= 1, cols <= Self.maxColumns else {
            throw KernelError.invalidShape(what: "ternary matrix", rows: rows, cols: cols)
        }
        self.rows = rows
        self.cols = cols
        paddedRows = Int(bn_pad_rows(Int32(rows)))
        paddedCols = Int(bn_pad_cols(Int32(cols)))
        self.scale = scale
        self.tlSource = tlSource
        storage = AlignedBuffer(byteCount: bn_i2r16_bytes(Int32(rows), Int32(cols)))
    }

    /// Size of the canonical I2_S data of a `rows`×`cols` tensor, without the 32-byte scale tail.
    package static func canonicalByteCount(rows: Int, cols: Int) -> Int {
        Int(bn_i2s_canonical_bytes(Int32(clamping: rows), Int32(clamping: cols)))
    }

    /// From the canonical I2_S file layout (bitnet.cpp, docs/FORMATS.md §3.2):
    /// 128-element blocks of the flattened matrix, which may straddle rows.
    package convenience init(canonicalI2S bytes: UnsafeRawBufferPointer, rows: Int, cols: Int, scale: Float) throws {
        try self.init(rows: rows, cols: cols, scale: scale)
        let needed = Self.canonicalByteCount(rows: rows, cols: cols)
        guard bytes.count >= needed, let base = bytes.baseAddress else {
            throw KernelError.bufferSize(what: "canonical I2_S data", expected: needed, actual: bytes.count)
        }
        bn_i2s_repack_canonical(base.assumingMemoryBound(to: UInt8.self), Int32(rows), Int32(cols),
                                storage.pointer.assumingMemoryBound(to: UInt8.self))
        // padding is written as code 1, so any 3 came from the file
        let invalid = bn_i2r16_count_code3(storage.pointer.assumingMemoryBound(to: UInt8.self), storage.byteCount)
        guard invalid == 0 else { throw KernelError.invalidCodes(count: Int(invalid)) }
    }

    /// From ternary values, row-major (rows, cols), each -1, 0 or 1.
    package convenience init(ternary values: [Int8], rows: Int, cols: Int, scale: Float) throws {
        try self.init(rows: rows, cols: cols, scale: scale)
        guard values.count == rows * cols else {
            throw KernelError.bufferSize(what: "ternary values", expected: rows * cols, actual: values.count)
        }
        if let bad = values.firstIndex(where: { $0 < -1 || $0 > 1 }) {
            throw KernelError.invalidTernaryValue(index: bad, value: values[bad])
        }
        values.withUnsafeBufferPointer { src in
            bn_i2r16_pack(src.baseAddress!, Int32(rows), Int32(cols), storage.pointer.assumingMemoryBound(to: UInt8.self))
        }
    }

    /// From one of this engine's TL1/TL2 layouts (`type` 1 or 2, bitnet_kernels.h), e.g. a
    /// `bitnet convert --type tl2` file. Throws if a slot holds an index no packer writes.
    /// `owner` keeps `bytes` alive (e.g. the file's mapping): then choosing that TL kernel
    /// for decoding copies them instead of repacking.
    package convenience init(lookupTable type: Int32, bytes: UnsafeRawBufferPointer, rows: Int, cols: Int,
                            scale: Float, owner: AnyObject? = nil) throws {
        guard rows >= 1, rows <= Int(Int32.max) - 32, cols >= 1, cols <= Self.maxColumns else {
            throw KernelError.invalidShape(what: "ternary matrix", rows: rows, cols: cols)
        }
        let needed = bn_tl_bytes(type, Int32(rows), Int32(cols))
        guard bytes.count >= needed, let base = bytes.baseAddress else {
            throw KernelError.bufferSize(what: "TL\(type) data", expected: needed, actual: bytes.count)
        }
        try self.init(rows: rows, cols: cols, scale: scale,
                      tlSource: owner.map { (type, UnsafeRawBufferPointer(rebasing: bytes[0..<needed]), $0) })
        let invalid = bn_tl_to_i2r16(type, base.assumingMemoryBound(to: UInt8.self), Int32(rows), Int32(cols),
                                     storage.pointer.assumingMemoryBound(to: UInt8.self))
        guard invalid == 0 else { throw KernelError.invalidTableIndices(count: Int(invalid)) }
    }

    /// From bytes already in the I2_R16 layout (a repacked cache file, or a benchmark's random weights).
    package convenience init(packedI2R16 bytes: UnsafeRawBufferPointer, rows: Int, cols: Int, scale: Float) throws {
        try self.init(rows: rows, cols: cols, scale: scale)
        guard bytes.count == storage.byteCount, let base = bytes.baseAddress else {
            throw KernelError.bufferSize(what: "I2_R16 data", expected: storage.byteCount, actual: bytes.count)
        }
        storage.pointer.copyMemory(from: base, byteCount: storage.byteCount)
    }

    /// The weight at (row, col): -1, 0, +1 (or 2 for the invalid code 3 of a malformed file).
    package func weight(row: Int, col: Int) -> Int {
        Int(bn_i2r16_code(storage.pointer.assumingMemoryBound(to: UInt8.self), Int32(paddedCols), Int32(row), Int32(col))) - 1
    }

    /// Packed bytes (I2_R16), e.g. to write a pre-repacked cache file.
    package var packedBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(storage.bytes) }

    func withDescriptor<R>(_ body: (UnsafePointer<bn_i2s_matrix>) throws -> R) rethrows -> R {
        var descriptor = bn_i2s_matrix(
            data: UnsafePointer(storage.pointer.assumingMemoryBound(to: UInt8.self)),
            m: Int32(rows), k: Int32(cols), m_pad: Int32(paddedRows), k_pad: Int32(paddedCols), scale: scale)
        return try withUnsafePointer(to: &descriptor) { try body($0) }
    }
}

extension TernaryMatrix {
    /// The same weights with the scale multiplied by `factor` (folds a
    /// per-projection output scale into the kernel's epilogue).
    package func rescaled(by factor: Float) throws -> TernaryMatrix {
        try TernaryMatrix(packedI2R16: packedBytes, rows: rows, cols: cols, scale: scale * factor)
    }
}
