import CKernels

/// The weights of one BitLinear, repacked once into the kernels' I2_R16
/// layout (bitnet_kernels.h): rows padded to 32, columns to 32, 16-row
/// groups of 64-byte chunks. Any K works, including bitnet_b1_58-3B's 8640.
///
/// A TL1/TL2 file's matrix may instead stay in place: the kernels read the
/// file's mapped bytes (checked once by `bn_tl_check`) and no copy exists, so a
/// model that only fits in its file's size (a 100B shape on a 24 GB machine)
/// still loads; prompts then run the TL GEMM. Immutable after init.
package final class TernaryMatrix: @unchecked Sendable {
    /// Output features (M) and input features (K).
    package let rows: Int
    package let cols: Int
    package let paddedRows: Int
    package let paddedCols: Int
    /// Per-tensor weight scale s_w: y = (Σ w·q) · s_w / s_x.
    package let scale: Float
    /// (paddedRows/16, paddedCols/16, 64) I2_R16 packed; nil when the matrix is held in place.
    let storage: AlignedBuffer?
    /// The TL bytes this matrix was decoded from, or is held as (a TL file in a live
    /// mapping, kept alive by `owner`): with `storage`, a model choosing that kernel
    /// copies them instead of repacking; without, they are the matrix.
    let tlSource: (type: Int32, bytes: UnsafeRawBufferPointer, owner: AnyObject)?

    /// The lookup-table kernel that must decode this matrix when it is held in place
    /// (its file's layout), nil when it has an I2_R16 copy.
    package var inPlaceKernel: MatrixKernel? {
        guard storage == nil, let source = tlSource else { return nil }
        return source.type == 1 ? .tl1 : .tl2
    }

    package static var maxColumns: Int { Int(bn_i2s_max_k()) }

    private init(rows: Int, cols: Int, scale: Float,
                 tlSource: (type: Int32, bytes: UnsafeRawBufferPointer, owner: AnyObject)? = nil,
                 inPlace: Bool = false) throws {
        guard rows >= 1, rows <= Int(Int32.max) - 32, cols >= 1, cols <= Self.maxColumns else {
            throw KernelError.invalidShape(what: "ternary matrix", rows: rows, cols: cols)
        }
        self.rows = rows
        self.cols = cols
        paddedRows = Int(bn_pad_rows(Int32(rows)))
        paddedCols = Int(bn_pad_cols(Int32(cols)))
        self.scale = scale
        self.tlSource = tlSource
        storage = inPlace ? nil : AlignedBuffer(byteCount: bn_i2r16_bytes(Int32(rows), Int32(cols)), hugePages: true)
    }

    /// The I2_R16 bytes as the kernels' pointer (nil when held in place).
    private var i2r16: UnsafeMutablePointer<UInt8>? { storage?.pointer.assumingMemoryBound(to: UInt8.self) }

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
        bn_i2s_repack_canonical(base.assumingMemoryBound(to: UInt8.self), Int32(rows), Int32(cols), i2r16)
        // padding is written as code 1, so any 3 came from the file
        let invalid = bn_i2r16_count_code3(i2r16, bn_i2r16_bytes(Int32(rows), Int32(cols)))
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
            bn_i2r16_pack(src.baseAddress!, Int32(rows), Int32(cols), i2r16)
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
        let invalid = bn_tl_to_i2r16(type, base.assumingMemoryBound(to: UInt8.self), Int32(rows), Int32(cols), i2r16)
        guard invalid == 0 else { throw KernelError.invalidTableIndices(count: Int(invalid)) }
    }

    /// A TL1/TL2 matrix held in place: the kernels read `bytes` (kept alive by `owner`,
    /// e.g. the file's mapping) for every product, decode and prompt alike. Nothing is
    /// trusted: `bn_tl_check` reads every tile once (an index no packer writes, a
    /// TL2 negative-slot count that disagrees with its sign bits → throws).
    package convenience init(inPlaceLookupTable type: Int32, bytes: UnsafeRawBufferPointer, rows: Int, cols: Int,
                             scale: Float, owner: AnyObject) throws {
        guard type == 1 || type == 2, rows >= 1, rows <= Int(Int32.max) - 32, cols >= 1, cols <= Self.maxColumns else {
            throw KernelError.invalidShape(what: "TL\(type) matrix", rows: rows, cols: cols)
        }
        let needed = bn_tl_bytes(type, Int32(rows), Int32(cols))
        guard bytes.count >= needed, let base = bytes.baseAddress else {
            throw KernelError.bufferSize(what: "TL\(type) data", expected: needed, actual: bytes.count)
        }
        // the kernels load 32-bit words of the tiles
        guard Int(bitPattern: base) % 4 == 0 else {
            throw KernelError.bufferSize(what: "TL\(type) data alignment (4)", expected: 0, actual: Int(bitPattern: base) % 4)
        }
        let problems = bn_tl_check(type, base.assumingMemoryBound(to: UInt8.self), Int32(rows), Int32(cols))
        guard problems == 0 else { throw KernelError.invalidTableIndices(count: Int(problems)) }
        try self.init(rows: rows, cols: cols, scale: scale,
                      tlSource: (type, UnsafeRawBufferPointer(rebasing: bytes[0..<needed]), owner), inPlace: true)
    }

    /// From ternary values (row-major (rows, cols), each -1, 0 or 1) packed into this engine's
    /// TL`type` layout and held without an I2_R16 copy, like a TL file's matrix in place:
    /// for files whose own layout is smaller than I2_R16's 2 bits (TQ1_0's 1.69, bitnet.cpp's
    /// TL2), so loading them does not grow them by a fifth (TL2: 1.667 bits plus 32 per row).
    package convenience init(lookupTableOnly type: Int32, ternary values: [Int8], rows: Int, cols: Int, scale: Float) throws {
        guard type == 1 || type == 2, rows >= 1, rows <= Int(Int32.max) - 32, cols >= 1, cols <= Self.maxColumns else {
            throw KernelError.invalidShape(what: "TL\(type) matrix", rows: rows, cols: cols)
        }
        guard values.count == rows * cols else {
            throw KernelError.bufferSize(what: "ternary values", expected: rows * cols, actual: values.count)
        }
        if let bad = values.firstIndex(where: { $0 < -1 || $0 > 1 }) {
            throw KernelError.invalidTernaryValue(index: bad, value: values[bad])
        }
        let buffer = AlignedBuffer(byteCount: bn_tl_bytes(type, Int32(rows), Int32(cols)), hugePages: true)
        values.withUnsafeBufferPointer {
            bn_tl_pack(type, $0.baseAddress!, Int32(rows), Int32(cols), buffer.pointer.assumingMemoryBound(to: UInt8.self))
        }
        try self.init(rows: rows, cols: cols, scale: scale, tlSource: (type, UnsafeRawBufferPointer(buffer.bytes), buffer),
                      inPlace: true)
    }

    /// From bytes already in the I2_R16 layout (a repacked cache file, or a benchmark's random weights).
    package convenience init(packedI2R16 bytes: UnsafeRawBufferPointer, rows: Int, cols: Int, scale: Float) throws {
        try self.init(rows: rows, cols: cols, scale: scale)
        let expected = Int(bn_i2r16_bytes(Int32(rows), Int32(cols)))
        guard bytes.count == expected, let base = bytes.baseAddress, let i2r16 else {
            throw KernelError.bufferSize(what: "I2_R16 data", expected: expected, actual: bytes.count)
        }
        UnsafeMutableRawPointer(i2r16).copyMemory(from: base, byteCount: expected)
    }

    /// The weight at (row, col): -1, 0, +1 (or 2 for the invalid code 3 of a malformed file).
    package func weight(row: Int, col: Int) -> Int {
        if let i2r16 { return Int(bn_i2r16_code(i2r16, Int32(paddedCols), Int32(row), Int32(col))) - 1 }
        let source = tlSource!
        return Int(bn_tl_weight(source.type, source.bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(rows),
                                Int32(cols), Int32(row), Int32(col)))
    }

    /// The bytes one product reads: the I2_R16 copy, or the file's TL bytes when held in place.
    package var storedBytes: UnsafeRawBufferPointer {
        if let storage { return UnsafeRawBufferPointer(storage.bytes) }
        return tlSource!.bytes
    }

    /// `body` with the I2_R16 bytes (e.g. to write a pre-repacked cache file); a matrix
    /// held in place is decoded into a temporary buffer for the call.
    package func withPackedI2R16<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        if let storage { return try body(UnsafeRawBufferPointer(storage.bytes)) }
        let source = tlSource!
        let buffer = AlignedBuffer(byteCount: bn_i2r16_bytes(Int32(rows), Int32(cols)))
        // checked at init: no index is invalid
        _ = bn_tl_to_i2r16(source.type, source.bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(rows),
                           Int32(cols), buffer.pointer.assumingMemoryBound(to: UInt8.self))
        return try body(UnsafeRawBufferPointer(buffer.bytes))
    }

    /// The weights, row-major (rows, cols), each -1, 0 or 1 (code 3 of a malformed I2_R16 matrix reads as 2).
    package func ternaryValues() -> [Int8] {
        withPackedI2R16 { packed in
            [Int8](unsafeUninitializedCapacity: rows * cols) { out, count in
                bn_i2r16_unpack(packed.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(rows), Int32(cols),
                                out.baseAddress!)
                count = rows * cols
            }
        }
    }

    /// I2_S descriptor of the I2_R16 copy; nil for a matrix held in place (it has none).
    func withDescriptor<R>(_ body: (UnsafePointer<bn_i2s_matrix>?) throws -> R) rethrows -> R {
        guard let i2r16 else { return try body(nil) }
        var descriptor = bn_i2s_matrix(data: UnsafePointer(i2r16), m: Int32(rows), k: Int32(cols),
                                       m_pad: Int32(paddedRows), k_pad: Int32(paddedCols), scale: scale)
        return try withUnsafePointer(to: &descriptor) { try body($0) }
    }

    /// TL descriptor of a matrix held in place, tiled for `n` activation rows; nil with an I2_R16 copy.
    func withInPlaceDescriptor<R>(n: Int, _ body: (UnsafePointer<bn_tl_matrix>?) throws -> R) rethrows -> R {
        guard storage == nil, let source = tlSource else { return try body(nil) }
        var d = bn_tl_matrix_make(source.type, source.bytes.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                  Int32(rows), Int32(cols), scale)
        if n > 1 { d.tiling = bn_tl_default_tiling(source.type, Int32(rows), Int32(cols), Int32(clamping: n)) }
        return try withUnsafePointer(to: &d) { try body($0) }
    }
}

extension TernaryMatrix {
    /// The same weights with the scale multiplied by `factor` (folds a
    /// per-projection output scale into the kernel's epilogue). A matrix held in
    /// place stays in place (same bytes, new scale).
    package func rescaled(by factor: Float) throws -> TernaryMatrix {
        if storage == nil, let source = tlSource {
            return try TernaryMatrix(inPlaceLookupTable: source.type, bytes: source.bytes, rows: rows, cols: cols,
                                     scale: scale * factor, owner: source.owner)
        }
        return try withPackedI2R16 { try TernaryMatrix(packedI2R16: $0, rows: rows, cols: cols, scale: scale * factor) }
    }
}
