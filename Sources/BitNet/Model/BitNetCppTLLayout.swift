/// bitnet.cpp's own lookup-table tensor layouts, TL1 (ggml type 38, ARM) and
/// TL2 (ggml type 39, x86), decoded back to ternary values and re-encoded.
///
/// bitnet.cpp permutes a TL tensor's packed weights for the kernels it
/// generated for that model, and the tiling (BM, BK, bm) is not recorded in the
/// GGUF file: its converter (`utils/convert-hf-to-gguf-bitnet.py`,
/// `preprocess_weights_tl1` / `preprocess_weights_tl2`) reads it from
/// `include/kernel_config.ini`, which `utils/codegen_tl1.py` / `codegen_tl2.py`
/// write from the parameters `setup_env.py` passes per model. `published`
/// lists those parameters for every shape bitnet.cpp can convert, so a TL file
/// of a published model can be decoded from its (M, K) alone.
///
/// Byte layouts (checked by running the converter's own functions, see
/// `tools/tlcompat/make_bitnetcpp_tl_fixture.py` and `BitNetCppTLTests`).
/// Rows are the output dimension M (ggml ne[1]), columns the input K (ne[0]);
/// the ternary matrix is the Hugging Face `[out, in]` one, row-major.
///
/// TL1, `M·K/4` bytes. A pair of columns (2j, 2j+1) of one row gives the code
/// `3·w[2j] + w[2j+1] + 4` (0…8). One byte holds the codes of four consecutive
/// columns 4g…4g+3: the first pair in the high nibble, the second in the low
/// one. Bytes run, outermost first: M tile of BM rows; K block of BK columns;
/// sub-tile of bm rows; column group of `by = 256/bm` columns; group of 16 rows;
/// 4-column group within `by`; row within the 16.
///
/// TL2. K splits into `threeK = ⌊K/BK⌋·BK` and a tail `twoK = K − threeK`.
///  1. Three-weight codes, `threeK·M/6` bytes. A triplet of columns (3t, 3t+1,
///     3t+2) gives `v = 9·w0 + 3·w1 + w2` (−13…13), stored as |v| (4 bits) plus a
///     sign bit (1 when v < 0). One byte holds |v| of two consecutive triplets,
///     the first in the high nibble. Order: M tile (BM); K block (BK); 32-row
///     sub-tile; 6-column group (`BK/6` of them), each a 32-byte chunk with one
///     byte per row, whose four 8-row quarters are stored in the order 0, 2, 1, 3.
///  2. Sign bits, `threeK·M/24` bytes: per M tile, K block, 32-row sub-tile, and
///     24-column group (8 triplets), 16 little-endian u16 words. Bit `15 − i` of
///     word c is the sign of triplet `i/2` of the group, row `16·(i mod 2) + c`.
///  3. The tail, `twoK·M/4` bytes, TL1-style pair codes: M tile (BM); 32-column
///     block; 32-row sub-tile; 4-column group, each a 32-byte chunk with one
///     byte per row (first pair high), quarters again in the order 0, 2, 1, 3.
///  4. Zeros up to `(K−256)·M/3·5/8 + 256·M/2·4/8` bytes (the size ggml_nbytes
///     assumes, Python floor division as the converter pads).
///
/// After the packed bytes (zero-padded to the 32-byte GGUF alignment) comes the
/// hidden `<name>_scale` tensor: one f32, `max|W|`, in a 32-byte slot with no
/// tensor-info entry of its own (docs/FORMATS.md §1.4, §4.1).
package struct BitNetCppTLLayout: Sendable {
    /// Which of bitnet.cpp's two lookup-table types.
    package enum Kind: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
        case tl1, tl2

        /// The kind of a tensor of ggml type 38 or 39 (nil for any other type).
        package init?(_ type: GGMLType) {
            switch type {
            case .tl1: self = .tl1
            case .tl2: self = .tl2
            default: return nil
            }
        }

        package var ggmlType: GGMLType { self == .tl1 ? .tl1 : .tl2 }
        package var description: String { self == .tl1 ? "TL1" : "TL2" }
    }

    /// The kernel tiling of one matrix shape, as in `kernel_config.ini`, whose keys
    /// are `bm` (= BM), `bk` (= BK) and `bmm` (= bm).
    package struct Tiling: Hashable, Sendable, CustomStringConvertible {
        /// Rows per M tile.
        package let BM: Int
        /// Columns per K block (TL2: the block of the three-weight part).
        package let BK: Int
        /// Rows per SIMD sub-tile (TL1: 32 or 64; TL2: 32).
        package let bm: Int

        package init(BM: Int, BK: Int, bm: Int) {
            self.BM = BM
            self.BK = BK
            self.bm = bm
        }

        /// Columns per sub-tile column group: `256/bm` for TL1, `192/bm` (= 6) for
        /// TL2's three-weight part (its tail always uses 4).
        package func by(_ kind: Kind) -> Int { bm > 0 ? (kind == .tl1 ? 256 : 192) / bm : 0 }

        package var description: String { "BM=\(BM) BK=\(BK) bm=\(bm)" }
    }

    /// One matrix shape bitnet.cpp can convert to TL1 or TL2, with its tiling.
    package struct Entry: Sendable {
        package let kind: Kind
        package let rows: Int
        package let cols: Int
        /// What `setup_env.py` gives codegen, hence what its converter used.
        package let tiling: Tiling
        /// `preset_kernels/<model>/kernel_config_tl{1,2}.ini`, where it differs
        /// from `tiling` (a file made with it is possible only by hand; see `published`).
        package let presetIni: Tiling?
        /// The `codegen_tl*.py --model` key whose `ModelShapeDict` lists the shape.
        package let model: String
    }

    /// bitnet.cpp's published TL tilings (microsoft/BitNet, HEAD 16da220, and
    /// unchanged since its initial commit 6cfd883, as is the converter's TL code).
    ///
    /// Source: `setup_env.py`, `gen_code()`: per model it runs
    /// `utils/codegen_tl1.py` (arm64) or `utils/codegen_tl2.py` (x86-64) with
    /// `--BM/--BK/--bm` lists, one value per shape of `ModelShapeDict` (defined in
    /// both codegen scripts; shape = [M, K]). Codegen writes
    /// `include/kernel_config.ini`, which the converter then reads.
    ///
    /// `preset_kernels/<model>/kernel_config_tl{1,2}.ini` (`--use-pretuned`) is NOT
    /// what a user's file was made with: `gen_code()` copies it (arm64 only; on x86
    /// only the .h is copied) and then runs codegen unconditionally, which
    /// overwrites `include/kernel_config.ini` with the `setup_env.py` values. The
    /// presets differ from those in two places, kept in `presetIni` for reference:
    /// - TL1, Llama3-8B: all four shapes (preset 256/128/64, 256/128/32, 128/64/64,
    ///   128/64/32 versus setup_env 256/128/32, 128/64/64, 256/128/32, 128/64/64).
    ///   Both decode any TL1 bytes to valid ternary values, so the file cannot tell
    ///   them apart; `tiling(type:rows:cols:)` answers the setup_env value only.
    /// - TL2, large, [4096, 1536]: the preset says bm = 64, which the converter
    ///   cannot even use (its three-weight reshape fails with an IndexError), so no
    ///   file has it; not listed.
    ///
    /// Models: Falcon3 and Falcon-E run codegen with the Llama3-8B shapes, and
    /// BitNet-b1.58-2B-4T with the bitnet_b1_58-3B ones. 2B4T's shapes (2560, 6912,
    /// 640) are not in that table, and the Falcon models' hidden sizes are not 4096
    /// (from their Hugging Face configs, not checked file by file), so bitnet.cpp's
    /// converter raises NotImplementedError for them: bitnet.cpp makes no TL file of
    /// those models, and `tiling(...)` returns nil for their shapes.
    package static let published: [Entry] = {
        func add(_ kind: Kind, _ model: String, _ shapes: [(Int, Int)], BM: [Int], BK: [Int], bm: [Int],
                 preset: [Tiling?]? = nil) -> [Entry] {
            shapes.indices.map { i in
                Entry(kind: kind, rows: shapes[i].0, cols: shapes[i].1,
                      tiling: Tiling(BM: BM[i], BK: BK[i], bm: bm[i]), presetIni: preset?[i], model: model)
            }
        }
        // ModelShapeDict (utils/codegen_tl1.py, utils/codegen_tl2.py), [M, K] in this order
        let large = [(1536, 4096), (1536, 1536), (4096, 1536)]
        let b3 = [(3200, 8640), (3200, 3200), (8640, 3200)]
        let llama = [(14336, 4096), (4096, 14336), (1024, 4096), (4096, 4096)]
        var all: [Entry] = []
        // arm64 branch of gen_code()
        all += add(.tl1, "bitnet_b1_58-large", large, BM: [256, 128, 256], BK: [128, 64, 128], bm: [32, 64, 32])
        all += add(.tl1, "bitnet_b1_58-3B", b3, BM: [160, 320, 320], BK: [64, 128, 64], bm: [32, 64, 32])
        all += add(.tl1, "Llama3-8B-1.58-100B-tokens", llama, BM: [256, 128, 256, 128], BK: [128, 64, 128, 64],
                   bm: [32, 64, 32, 64],
                   preset: [Tiling(BM: 256, BK: 128, bm: 64), Tiling(BM: 256, BK: 128, bm: 32),
                            Tiling(BM: 128, BK: 64, bm: 64), Tiling(BM: 128, BK: 64, bm: 32)])
        // x86-64 branch of gen_code()
        all += add(.tl2, "bitnet_b1_58-large", large, BM: [256, 128, 256], BK: [96, 192, 96], bm: [32, 32, 32])
        all += add(.tl2, "bitnet_b1_58-3B", b3, BM: [160, 320, 320], BK: [96, 96, 96], bm: [32, 32, 32])
        all += add(.tl2, "Llama3-8B-1.58-100B-tokens", llama, BM: [256, 128, 256, 128], BK: [96, 96, 96, 96],
                   bm: [32, 32, 32, 32])
        return all
    }()

    /// The tiling bitnet.cpp's default setup used for this shape, or nil when
    /// bitnet.cpp publishes none (its converter cannot write such a file).
    package static func tiling(type: Kind, rows: Int, cols: Int) -> Tiling? {
        published.first { $0.kind == type && $0.rows == rows && $0.cols == cols }?.tiling
    }

    /// The tiling of `preset_kernels/*/kernel_config_tl*.ini` where it differs from
    /// `tiling(type:rows:cols:)` and the converter can use it (see `published`).
    package static func presetIniTiling(type: Kind, rows: Int, cols: Int) -> Tiling? {
        published.first { $0.kind == type && $0.rows == rows && $0.cols == cols }?.presetIni
    }

    // MARK: sizes

    /// Why `tiling` cannot describe a (rows, cols) tensor of this kind, or nil when it can.
    /// The conditions are those under which bitnet.cpp's converter produces the layout above.
    package static func unsupportedReason(type: Kind, rows: Int, cols: Int, tiling t: Tiling) -> String? {
        guard rows > 0, cols > 0, t.BM > 0, t.BK > 0, t.bm > 0 else { return "sizes must be positive" }
        guard rows % t.BM == 0 else { return "M = \(rows) is not a multiple of BM = \(t.BM)" }
        guard t.BM % t.bm == 0 else { return "BM = \(t.BM) is not a multiple of bm = \(t.bm)" }
        switch type {
        case .tl1:
            guard t.bm == 32 || t.bm == 64 else { return "TL1 needs bm = 32 or 64" }
            guard cols % t.BK == 0 else { return "K = \(cols) is not a multiple of BK = \(t.BK)" }
            guard t.BK % t.by(.tl1) == 0 else { return "BK = \(t.BK) is not a multiple of by = \(t.by(.tl1))" }
        case .tl2:
            guard t.bm == 32 else { return "TL2 needs bm = 32" }
            guard t.BK % 24 == 0 else { return "TL2 needs BK a multiple of 24 (8 sign triplets), got \(t.BK)" }
            let twoK = cols % t.BK
            guard twoK % 32 == 0 else { return "K mod BK = \(twoK) is not a multiple of 32" }
            guard contentByteCount(type: type, rows: rows, cols: cols, tiling: t)
                <= paddedSizeTL2(rows: rows, cols: cols) else {
                return "K mod BK = \(twoK) leaves more data than ggml's TL2 size formula"
            }
        }
        return nil
    }

    /// Bytes that carry codes (TL2: without the zero padding of step 4).
    static func contentByteCount(type: Kind, rows: Int, cols: Int, tiling t: Tiling) -> Int {
        switch type {
        case .tl1:
            return rows * cols / 4
        case .tl2:
            let threeK = cols / t.BK * t.BK
            return threeK * rows / 6 + threeK * rows / 24 + (cols - threeK) * rows / 4
        }
    }

    /// `(K − 256)·M // 3 · 5 // 8 + 256·M // 2 · 4 // 8` with Python's floor
    /// division, the length the converter pads TL2 data to. For K ≥ 256 (every
    /// published shape) this equals ggml_nbytes' C formula minus its padding and
    /// scale slot; for K < 256 C's truncating division can give one byte more.
    static func paddedSizeTL2(rows: Int, cols: Int) -> Int {
        func floorDiv(_ a: Int, _ b: Int) -> Int { let q = a / b; return (a % b != 0 && a < 0) ? q - 1 : q }
        let three = floorDiv(floorDiv((cols - 256) * rows, 3) * 5, 8)
        return three + 256 * rows / 2 * 4 / 8
    }

    /// The packed data bytes bitnet.cpp's converter writes for one tensor: the
    /// bytes before the scale slot's alignment padding (TL1 `M·K/4`; TL2 the
    /// ggml formula, see `paddedSizeTL2`, which does not depend on the tiling).
    package static func packedByteCount(type: Kind, rows: Int, cols: Int, tiling: Tiling) -> Int {
        type == .tl1 ? rows * cols / 4 : paddedSizeTL2(rows: rows, cols: cols)
    }

    /// Offset of the hidden f32 scale from the tensor's data offset: the packed bytes
    /// rounded up to the GGUF alignment (32 in bitnet.cpp's files, whose TL kernels
    /// assume 32: TL1 reads the scale at `M·K/4`, TL2 at the 32-rounded formula).
    package static func scaleOffset(type: Kind, rows: Int, cols: Int, tiling: Tiling, alignment: Int = 32) -> Int {
        let n = packedByteCount(type: type, rows: rows, cols: cols, tiling: tiling)
        return (n + alignment - 1) / alignment * alignment
    }

    /// The tensor's whole extent in the data section, scale slot included
    /// (= ggml_nbytes of the fork for K ≥ 256).
    package static func tensorByteCount(type: Kind, rows: Int, cols: Int, tiling: Tiling, alignment: Int = 32) -> Int {
        scaleOffset(type: type, rows: rows, cols: cols, tiling: tiling, alignment: alignment) + alignment
    }

    /// The f32 scale stored after the packed data (`bytes` starting at the tensor's offset).
    package static func scale(_ bytes: UnsafeRawBufferPointer, type: Kind, rows: Int, cols: Int, tiling: Tiling,
                             alignment: Int = 32) throws -> Float {
        let at = scaleOffset(type: type, rows: rows, cols: cols, tiling: tiling, alignment: alignment)
        guard bytes.count >= at + 4 else {
            throw BitNetCppTLError.shortBuffer(kind: type, rows: rows, cols: cols, needed: at + 4, actual: bytes.count)
        }
        return Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self)))
    }

    /// A tensor's whole extent as bitnet.cpp's converter writes it: the packed
    /// bytes, zeros to the 32-byte alignment, then the 32-byte slot of the hidden
    /// `<name>_scale` tensor (the f32 `scale`, then zeros).
    package static func tensorBytes(_ values: [Int8], type: Kind, rows: Int, cols: Int, tiling: Tiling,
                                   scale: Float) -> [UInt8] {
        var out = encode(values, type: type, rows: rows, cols: cols, tiling: tiling)
        let at = scaleOffset(type: type, rows: rows, cols: cols, tiling: tiling)
        out += [UInt8](repeating: 0, count: at + 32 - out.count)
        withUnsafeBytes(of: scale.bitPattern.littleEndian) { out.replaceSubrange(at..<(at + 4), with: $0) }
        return out
    }

    // MARK: code tables

    /// The four ternary bytes (columns 4g…4g+3, in memory order) of every code
    /// byte of TL1 and of TL2's tail, as one native-endian UInt32 to store at once.
    private static let pairByteValues: [UInt32] = (0..<256).map { b in
        func pair(_ code: Int) -> (Int8, Int8) {
            code > 8 ? (0, 0) : (Int8(code / 3 - 1), Int8(code % 3 - 1))
        }
        let (a, b1) = pair(b >> 4), (c, d) = pair(b & 15)
        let bytes = [a, b1, c, d].map { UInt32(UInt8(bitPattern: $0)) }
        return UInt32(littleEndian: bytes[0] | bytes[1] << 8 | bytes[2] << 16 | bytes[3] << 24)
    }
    /// 1 for a byte with a nibble above 8.
    private static let pairByteInvalid: [UInt8] = (0..<256).map { ($0 >> 4) > 8 || ($0 & 15) > 8 ? 1 : 0 }

    /// TL2 triplet by 5-bit code `sign << 4 | magnitude`: the three ternary bytes
    /// in the low 24 bits (first weight lowest; stored as UInt16 + UInt8, which puts
    /// them in memory order on the little-endian hosts this engine runs on), bit 24
    /// set when the magnitude exceeds 13.
    private static let tripletValues: [UInt32] = (0..<32).map { code in
        let magnitude = code & 15
        guard magnitude <= 13 else { return 1 << 24 }
        let v = code >> 4 == 1 ? -magnitude : magnitude
        // balanced ternary: v = 9·w0 + 3·w1 + w2
        let w0 = (v + 13) / 9 - 1
        let rest = v - 9 * w0
        let w1 = (rest + 4) / 3 - 1
        let w2 = rest - 3 * w1
        return [w0, w1, w2].enumerated().reduce(UInt32(0)) { acc, e in
            acc | UInt32(UInt8(bitPattern: Int8(e.element))) << (8 * UInt32(e.offset))
        }
    }

    /// Position within a 32-byte TL2 chunk of the byte for row r (quarters 0, 2, 1, 3).
    @inline(__always)
    private static func chunkPosition(_ r: Int) -> Int {
        let quarter = r >> 3
        return ((quarter == 1 ? 2 : quarter == 2 ? 1 : quarter) << 3) | (r & 7)
    }

    // MARK: decode

    /// Decode the packed bytes of a TL1 / TL2 tensor (`bytes` starting at the tensor's
    /// data offset; at least `packedByteCount` of them) to row-major (rows, cols)
    /// ternary values in {-1, 0, 1}.
    package static func decode(_ bytes: UnsafeRawBufferPointer, type: Kind, rows: Int, cols: Int,
                              tiling: Tiling) throws -> [Int8] {
        if let reason = unsupportedReason(type: type, rows: rows, cols: cols, tiling: tiling) {
            throw BitNetCppTLError.unsupportedTiling(kind: type, rows: rows, cols: cols, tiling: tiling, reason: reason)
        }
        let needed = packedByteCount(type: type, rows: rows, cols: cols, tiling: tiling)
        guard bytes.count >= needed else {
            throw BitNetCppTLError.shortBuffer(kind: type, rows: rows, cols: cols, needed: needed, actual: bytes.count)
        }
        var bad = false
        let values = [Int8](unsafeUninitializedCapacity: rows * cols) { out, count in
            let dst = UnsafeMutableRawPointer(out.baseAddress!)
            let src = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
            switch type {
            case .tl1: bad = decodeTL1(src, into: dst, rows: rows, cols: cols, tiling: tiling)
            case .tl2: bad = decodeTL2(src, into: dst, rows: rows, cols: cols, tiling: tiling)
            }
            count = rows * cols
        }
        if bad { throw firstInvalidCode(bytes, type: type, rows: rows, cols: cols, tiling: tiling) }
        return values
    }

    /// TL1 (and any pair-code region): returns true when some nibble was above 8.
    private static func decodeTL1(_ src: UnsafePointer<UInt8>, into dst: UnsafeMutableRawPointer,
                                  rows: Int, cols: Int, tiling t: Tiling) -> Bool {
        let by = t.by(.tl1)
        var p = 0
        var bad: UInt8 = 0
        pairByteValues.withUnsafeBufferPointer { table in
            pairByteInvalid.withUnsafeBufferPointer { invalid in
                for tileRow in stride(from: 0, to: rows, by: t.BM) {
                    for blockCol in stride(from: 0, to: cols, by: t.BK) {
                        for subRow in stride(from: tileRow, to: tileRow + t.BM, by: t.bm) {
                            for groupCol in stride(from: blockCol, to: blockCol + t.BK, by: by) {
                                for row16 in stride(from: subRow, to: subRow + t.bm, by: 16) {
                                    for col in stride(from: groupCol, to: groupCol + by, by: 4) {
                                        var o = row16 * cols + col
                                        for _ in 0..<16 {
                                            let b = Int(src[p])
                                            dst.storeBytes(of: table[b], toByteOffset: o, as: UInt32.self)
                                            bad |= invalid[b]
                                            o += cols
                                            p += 1
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return bad != 0
    }

    private static func decodeTL2(_ src: UnsafePointer<UInt8>, into dst: UnsafeMutableRawPointer,
                                  rows: Int, cols: Int, tiling t: Tiling) -> Bool {
        let threeK = cols / t.BK * t.BK
        let chunksPerBlock = t.BK / 6       // 32-byte code chunks per (tile, block, sub-tile)
        let signChunksPerBlock = t.BK / 24  // 32-byte sign chunks per (tile, block, sub-tile)
        let signBase = threeK * rows / 6
        var codeP = 0, signP = signBase
        var bad: UInt32 = 0
        tripletValues.withUnsafeBufferPointer { triplet in
            for tileRow in stride(from: 0, to: rows, by: t.BM) {
                for blockCol in stride(from: 0, to: threeK, by: t.BK) {
                    for subRow in stride(from: tileRow, to: tileRow + t.BM, by: 32) {
                        for r in 0..<32 {
                            let pos = chunkPosition(r)
                            let half = r >> 4                // which 16-row half: the bit pair's low bit
                            let wordAt = signP + 2 * (r & 15)
                            var o = (subRow + r) * cols + blockCol
                            for q in 0..<signChunksPerBlock {
                                let word = Int(src[wordAt + 32 * q]) | Int(src[wordAt + 32 * q + 1]) << 8
                                for l in 0..<4 {
                                    let b = Int(src[codeP + 32 * (4 * q + l) + pos])
                                    // triplets 2l and 2l+1 of this group: bits 15 − (2·triplet + half)
                                    let s0 = (word >> (15 - (4 * l + half))) & 1
                                    let s1 = (word >> (13 - (4 * l + half))) & 1
                                    let v0 = triplet[s0 << 4 | b >> 4]
                                    let v1 = triplet[s1 << 4 | b & 15]
                                    bad |= v0 | v1
                                    dst.storeBytes(of: UInt16(truncatingIfNeeded: v0), toByteOffset: o, as: UInt16.self)
                                    dst.storeBytes(of: UInt8(truncatingIfNeeded: v0 >> 16), toByteOffset: o + 2, as: UInt8.self)
                                    dst.storeBytes(of: UInt16(truncatingIfNeeded: v1), toByteOffset: o + 3, as: UInt16.self)
                                    dst.storeBytes(of: UInt8(truncatingIfNeeded: v1 >> 16), toByteOffset: o + 5, as: UInt8.self)
                                    o += 6
                                }
                            }
                        }
                        codeP += 32 * chunksPerBlock
                        signP += 32 * signChunksPerBlock
                    }
                }
            }
        }
        // the tail: TL1-style pair codes in 32-row chunks
        var p = signBase + threeK * rows / 24
        var badPair: UInt8 = 0
        if threeK < cols {
            pairByteValues.withUnsafeBufferPointer { table in
                pairByteInvalid.withUnsafeBufferPointer { invalid in
                    for tileRow in stride(from: 0, to: rows, by: t.BM) {
                        for blockCol in stride(from: threeK, to: cols, by: 32) {
                            for subRow in stride(from: tileRow, to: tileRow + t.BM, by: 32) {
                                for col in stride(from: blockCol, to: blockCol + 32, by: 4) {
                                    for r in 0..<32 {
                                        let b = Int(src[p + chunkPosition(r)])
                                        dst.storeBytes(of: table[b], toByteOffset: (subRow + r) * cols + col, as: UInt32.self)
                                        badPair |= invalid[b]
                                    }
                                    p += 32
                                }
                            }
                        }
                    }
                }
            }
        }
        return bad >> 24 != 0 || badPair != 0
    }

    /// The error for the first invalid code (called only after a decode found one).
    private static func firstInvalidCode(_ bytes: UnsafeRawBufferPointer, type: Kind, rows: Int, cols: Int,
                                         tiling t: Tiling) -> BitNetCppTLError {
        let pairStart: Int, pairEnd: Int
        if type == .tl2 {
            let threeK = cols / t.BK * t.BK
            let codeBytes = threeK * rows / 6
            for i in 0..<codeBytes where bytes[i] >> 4 > 13 || bytes[i] & 15 > 13 {
                return .invalidCode(kind: type, rows: rows, cols: cols, byteOffset: i, byte: bytes[i],
                                    reason: "a TL2 triplet magnitude above 13")
            }
            pairStart = codeBytes + threeK * rows / 24
            pairEnd = pairStart + (cols - threeK) * rows / 4
        } else {
            pairStart = 0
            pairEnd = rows * cols / 4
        }
        for i in pairStart..<pairEnd where bytes[i] >> 4 > 8 || bytes[i] & 15 > 8 {
            return .invalidCode(kind: type, rows: rows, cols: cols, byteOffset: i, byte: bytes[i],
                                reason: "a pair code (nibble) above 8")
        }
        return .invalidCode(kind: type, rows: rows, cols: cols, byteOffset: -1, byte: 0, reason: "invalid code")
    }

    // MARK: encode

    /// bitnet.cpp's packed bytes (exactly what its converter returns, zero padding
    /// included, scale slot excluded) for row-major (rows, cols) values in {-1, 0, 1}.
    package static func encode(_ values: [Int8], type: Kind, rows: Int, cols: Int, tiling t: Tiling) -> [UInt8] {
        precondition(values.count == rows * cols, "expected \(rows)×\(cols) values, got \(values.count)")
        if let reason = unsupportedReason(type: type, rows: rows, cols: cols, tiling: t) {
            preconditionFailure("\(type) \(rows)×\(cols) \(t): \(reason)")
        }
        var out = [UInt8](repeating: 0, count: packedByteCount(type: type, rows: rows, cols: cols, tiling: t))
        values.withUnsafeBufferPointer { w in
            out.withUnsafeMutableBufferPointer { o in
                // code of the pair at (row, col), (row, col + 1)
                func pair(_ i: Int) -> UInt8 { UInt8(truncatingIfNeeded: 3 * Int(w[i]) + Int(w[i + 1]) + 4) }
                func quad(_ i: Int) -> UInt8 { pair(i) << 4 | pair(i + 2) }
                var p = 0
                switch type {
                case .tl1:
                    let by = t.by(.tl1)
                    for tileRow in stride(from: 0, to: rows, by: t.BM) {
                        for blockCol in stride(from: 0, to: cols, by: t.BK) {
                            for subRow in stride(from: tileRow, to: tileRow + t.BM, by: t.bm) {
                                for groupCol in stride(from: blockCol, to: blockCol + t.BK, by: by) {
                                    for row16 in stride(from: subRow, to: subRow + t.bm, by: 16) {
                                        for col in stride(from: groupCol, to: groupCol + by, by: 4) {
                                            for r in row16..<(row16 + 16) {
                                                o[p] = quad(r * cols + col)
                                                p += 1
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                case .tl2:
                    let threeK = cols / t.BK * t.BK
                    func triplet(_ i: Int) -> Int { 9 * Int(w[i]) + 3 * Int(w[i + 1]) + Int(w[i + 2]) }
                    var s = threeK * rows / 6
                    for tileRow in stride(from: 0, to: rows, by: t.BM) {
                        for blockCol in stride(from: 0, to: threeK, by: t.BK) {
                            for subRow in stride(from: tileRow, to: tileRow + t.BM, by: 32) {
                                for col in stride(from: blockCol, to: blockCol + t.BK, by: 6) {
                                    for r in 0..<32 {
                                        let i = (subRow + r) * cols + col
                                        o[p + chunkPosition(r)] = UInt8(abs(triplet(i))) << 4 | UInt8(abs(triplet(i + 3)))
                                    }
                                    p += 32
                                }
                                for group in stride(from: blockCol, to: blockCol + t.BK, by: 24) {
                                    for r in 0..<32 {
                                        for k in 0..<8 where triplet((subRow + r) * cols + group + 3 * k) < 0 {
                                            let bit = 15 - (2 * k + (r >> 4))
                                            o[s + 2 * (r & 15) + bit / 8] |= UInt8(1 << (bit % 8))
                                        }
                                    }
                                    s += 32
                                }
                            }
                        }
                    }
                    p = s
                    for tileRow in stride(from: 0, to: rows, by: t.BM) {
                        for blockCol in stride(from: threeK, to: cols, by: 32) {
                            for subRow in stride(from: tileRow, to: tileRow + t.BM, by: 32) {
                                for col in stride(from: blockCol, to: blockCol + 32, by: 4) {
                                    for r in 0..<32 { o[p + chunkPosition(r)] = quad((subRow + r) * cols + col) }
                                    p += 32
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}

/// Why a bitnet.cpp TL1 / TL2 tensor could not be decoded.
package enum BitNetCppTLError: Error, Equatable, CustomStringConvertible {
    /// The tiling does not fit the shape (or is not one bitnet.cpp can produce).
    case unsupportedTiling(kind: BitNetCppTLLayout.Kind, rows: Int, cols: Int, tiling: BitNetCppTLLayout.Tiling,
                           reason: String)
    /// Fewer bytes than the packed data needs.
    case shortBuffer(kind: BitNetCppTLLayout.Kind, rows: Int, cols: Int, needed: Int, actual: Int)
    /// A code no ternary weights produce (TL1 / tail nibble above 8, TL2 magnitude above 13).
    case invalidCode(kind: BitNetCppTLLayout.Kind, rows: Int, cols: Int, byteOffset: Int, byte: UInt8, reason: String)

    package var description: String {
        switch self {
        case .unsupportedTiling(let kind, let rows, let cols, let tiling, let reason):
            return "bitnet.cpp \(kind) tensor \(rows)×\(cols) with tiling \(tiling): \(reason)"
        case .shortBuffer(let kind, let rows, let cols, let needed, let actual):
            return "bitnet.cpp \(kind) tensor \(rows)×\(cols) needs \(needed) bytes of packed data, the file has \(actual)"
        case .invalidCode(let kind, let rows, let cols, let offset, let byte, let reason):
            return "bitnet.cpp \(kind) tensor \(rows)×\(cols): byte \(offset) is 0x\(String(byte, radix: 16)), " +
                   "\(reason) (not a \(kind) file of this tiling?)"
        }
    }
}
