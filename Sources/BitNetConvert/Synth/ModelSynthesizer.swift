import BitNet
import CKernels
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a model with random ternary weights, laid out exactly like
/// bitnet.cpp's official `ggml-model-i2_s.gguf` (arch, tensor names, I2_S
/// with the f32 scale tail, F16 embedding, metadata keys). Streams tensor by
/// tensor in pieces of about 1 MB, made on `threads` threads (the bytes depend
/// only on the seed: `SynthRandom`), so a 100B-shaped file needs a few tens of MB
/// of memory.
public struct ModelSynthesizer {
    /// Shared with the converter (`GGUFModelLayout`), so both write the same table.
    public typealias ProjectionType = GGUFModelLayout.ProjectionType

    public var config: ModelConfig
    public var seed: UInt64
    public var projectionType: ProjectionType = .i2s
    /// Storage of the token embedding and of the output head (llama files have one; the
    /// bitnet graphs tie it to the embedding): F16 (the official files' choice) or one of
    /// the block types the engine computes natively (`headTypes`).
    public var headType: GGMLType = .f16
    /// `tokenizer.*` keys to copy (from a vocabulary GGUF); none by default.
    public var tokenizerMetadata: [(String, GGUFValue)] = []
    /// Scale of the random F16 embedding values (uniform in ±scale).
    public var embeddingScale: Float = 1
    /// Threads that generate the random data; the file is the same for any count.
    public var threads = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))

    /// `--head-type` choices: F16 and the block types with native head kernels.
    public static let headTypes: [GGMLType] = [.f16, .q8_0, .q6_K, .q4_K, .q4_0]

    public init(config: ModelConfig, seed: UInt64 = 1) {
        self.config = config
        self.seed = seed
    }

    /// Keys and tensor table, exactly as `HFConverter` declares them for a checkpoint of this shape.
    public var layout: GGUFModelLayout {
        var layout = GGUFModelLayout(config: config, name: "bitnet.swift synthetic \(config.architectureName)",
                                     projectionType: projectionType)
        layout.embeddingType = headType
        return layout
    }

    /// Why `headType` cannot store this model's embedding (nil when it can): block
    /// types need whole blocks per row, so the hidden size must be a multiple of the block.
    public var unsupportedHeadType: String? {
        guard Self.headTypes.contains(headType) else {
            return "\(headType.name.lowercased()) is not a head type synth writes (known: \(Self.headTypeNames))"
        }
        guard let block = headType.blockSize, block > 1, config.hiddenSize % block != 0 else { return nil }
        return "\(headType.name.lowercased()) stores each embedding row as \(block)-value blocks, " +
               "but the hidden size \(config.hiddenSize) is not a multiple of \(block)"
    }

    /// "f16, q8_0, q6_k, q4_k, q4_0".
    public static var headTypeNames: String { headTypes.map { $0.name.lowercased() }.joined(separator: ", ") }

    /// The GGUF writer with every key and tensor declared (no data yet).
    package func declare() throws -> GGUFWriter {
        try layout.declare(extraMetadata: tokenizerMetadata)
    }

    /// The size of the file `write` makes: header, metadata, tensor table, aligned data.
    public func fileSize() throws -> Int {
        let writer = try declare()
        var header = 4 + 4 + 8 + 8
        for (key, value) in layout.metadata + tokenizerMetadata {
            header += 8 + key.utf8.count + 4 + Self.encodedSize(value)
        }
        for t in writer.tensors { header += 8 + t.name.utf8.count + 4 + 8 * t.dims.count + 4 + 8 }
        let align = writer.alignment
        let data = writer.tensors.last.map { $0.offset + $0.extent } ?? 0
        return (header + align - 1) / align * align + data
    }

    /// Bytes of a metadata value in a GGUF header (after its type tag).
    private static func encodedSize(_ value: GGUFValue) -> Int {
        switch value {
        case .string(let s): return 8 + s.utf8.count
        case .array(let a): return encodedSize(a)
        default: return value.type.fixedSize ?? 0
        }
    }

    private static func encodedSize(_ array: GGUFArray) -> Int {
        switch array {
        case .string(let strings): return 12 + strings.reduce(0) { $0 + 8 + $1.utf8.count }
        case .array(let arrays): return 12 + arrays.reduce(0) { $0 + encodedSize($1) }
        default: return 12 + array.count * (array.elementType.fixedSize ?? 0)
        }
    }

    /// Free bytes for an unprivileged writer on the file system of `path`'s folder (nil if unknown).
    public static func freeBytes(forFile path: String) -> Int? {
        let folder = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        var s = statvfs()
        guard statvfs(folder.isEmpty ? "/" : folder, &s) == 0 else { return nil }
        return Int(s.f_bavail) &* Int(s.f_frsize)
    }

    /// Writes the file (to a temporary name, renamed when complete).
    /// `progress(bytesWritten, totalBytes)`, several times a second on large tensors.
    public func write(to path: String, progress: ((Int, Int) -> Void)? = nil) throws {
        if let problem = unsupportedHeadType { throw ConvertError.notSupported(what: "head type: \(problem)") }
        let writer = try declare()
        var dataStart = -1, total = 0, index = 0, position = 0
        try writer.write(to: path, progress: { done, all in
            if dataStart < 0 { dataStart = done }
            total = all
            progress?(done, all)
        }) { tensor, sink in
            let report: (Int) -> Void = { written in progress?(dataStart + tensor.offset + written, total) }
            try writeTensor(tensor, index: index, position: position, into: &sink, report: report)
            index += 1
            // draws of the file's stream: one per I2_S byte, else one per value (TL, TQ and
            // block heads draw from their own pieces', but keep the count, so a seed gives
            // the same norms and embedding whatever the projection type, and the same
            // projections whatever the head type)
            position += tensor.type == .i2_s ? TernaryMatrix.canonicalByteCount(rows: tensor.rows, cols: tensor.cols)
                                             : tensor.elementCount
        }
    }

    // MARK: - Tensor data

    /// Bytes per piece: large enough that threads are not spent on handing out work,
    /// small enough that a batch of pieces for every thread stays a few tens of MB. Part of
    /// the file's definition (pieces are seeded one by one); tests make it small to get
    /// many pieces out of a tiny model.
    package var pieceBytes = 1 << 20

    /// Writes tensor `index`, whose draws of the file's stream start at `position`.
    private func writeTensor(_ tensor: GGUFTensorInfo, index: Int, position: Int, into sink: inout GGUFWriter.Sink,
                             report: (Int) -> Void) throws {
        let type = tensor.type
        let m = tensor.rows, k = tensor.cols
        // projections: ≈ 1/sqrt(K) keeps random activations in a sane range
        let scale = 1 / Float(k).squareRoot()
        if type == .i2_s {
            let packed = TernaryMatrix.canonicalByteCount(rows: m, cols: k)
            try emitBytes(index, count: packed, unit: 1, stream: position, into: &sink, report: report) { rng, out, n in
                rng.fillI2S(out, count: n)
            }
            try sink.write(Self.scaleTail(scale))
        } else if let tl = type.lookupTableType {
            try writeLookupTable(tl, index: index, rows: m, cols: k, scale: scale, into: &sink, report: report)
        } else if type == .tq2_0 || type == .tq1_0 {
            // 256-value blocks, K a multiple of 256: whole rows encode to whole blocks
            let rowsPerPiece = ternaryRowsPerPiece(cols: k)
            let pieces = (m + rowsPerPiece - 1) / rowsPerPiece
            let capacity = TernaryBlockCodec.byteCount(type: type, elements: rowsPerPiece * k)
            try emit(index, pieces: pieces, capacity: capacity, into: &sink, report: report) { piece, rng, out in
                let rows = min(rowsPerPiece, m - piece * rowsPerPiece)
                var values = [Int8](repeating: 0, count: rows * k)
                values.withUnsafeMutableBufferPointer { rng.fillTernary($0.baseAddress!, count: rows * k) }
                var bytes: [UInt8] = []
                values.withUnsafeBufferPointer { v in
                    if type == .tq2_0 {
                        TernaryBlockCodec.encodeTQ2(v, d: scale, into: &bytes)
                    } else {
                        TernaryBlockCodec.encodeTQ1(v, d: scale, into: &bytes)
                    }
                }
                bytes.withUnsafeBytes { out.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                return bytes.count
            }
        } else if let kind = BitNetCppTLLayout.Kind(type) {
            // bitnet.cpp's layouts permute the whole matrix (and exist only for three models' shapes)
            guard let tiling = BitNetCppTLLayout.tiling(type: kind, rows: m, cols: k) else {
                throw ConvertError.notSupported(what: "\(kind) for \(m)×\(k) (bitnet.cpp publishes no tiling)")
            }
            let values = ternaryMatrix(index, rows: m, cols: k)
            try sink.write(BitNetCppTLLayout.tensorBytes(values, type: kind, rows: m, cols: k, tiling: tiling,
                                                         scale: scale))
        } else if type == .f16 {
            let isHead = tensor.name == TensorName.tokenEmbedding || tensor.name == TensorName.output
            let s = isHead ? embeddingScale : scale
            try emitBytes(index, count: tensor.elementCount, unit: 2, stream: position, into: &sink,
                          report: report) { rng, out, n in
                rng.fillHalves(out, count: n, scale: s)
            }
        } else if let (blockSize, typeSize) = type.blockLayout, blockSize > 1 {
            try writeBlocks(type, index: index, blocks: tensor.elementCount / blockSize, typeSize: typeSize,
                            into: &sink, report: report)
        } else {
            // norm weights around 1, so layers neither vanish nor explode
            var rng = SynthRandom(seed: seed, position: position)
            let values = (0..<tensor.elementCount).map { _ in 1 + 0.1 * rng.nextSigned() }
            try sink.write(contentsOf: values)
        }
    }

    /// The 32-byte tail of I2_S and of this engine's TL types: the f32 scale, then zeros.
    private static func scaleTail(_ scale: Float) -> [UInt8] {
        var tail = [UInt8](repeating: 0, count: 32)
        withUnsafeBytes(of: scale.bitPattern.littleEndian) { tail.replaceSubrange(0..<4, with: $0) }
        return tail
    }

    /// Rows per piece of a ternary matrix (TL, TQ, bitnet.cpp's TL): whole 32-row tiles of
    /// about 4M weights. Every ternary type draws the same values piece by piece, so one
    /// seed gives the same weights in each of them (I2_S, drawn as bytes, differs).
    private func ternaryRowsPerPiece(cols k: Int) -> Int { 32 * max(1, 4 * pieceBytes / (32 * k)) }

    /// Our TL1/TL2 layouts are runs of 32-row tiles, so a piece of whole tiles packs on its
    /// own (`SynthLookupTable`) to the bytes the whole matrix has there. TL2's per-row
    /// negative-slot counts follow the last tile: each piece's are gathered and written
    /// after the tiles, then the scale tail.
    private func writeLookupTable(_ type: Int32, index: Int, rows m: Int, cols k: Int, scale: Float,
                                  into sink: inout GGUFWriter.Sink, report: (Int) -> Void) throws {
        let rowsPerPiece = ternaryRowsPerPiece(cols: k)
        let pieces = (m + rowsPerPiece - 1) / rowsPerPiece
        let mPad = (m + 31) / 32 * 32
        let counts = UnsafeMutablePointer<Int32>.allocate(capacity: mPad)
        counts.initialize(repeating: 0, count: mPad)
        defer { counts.deallocate() }
        let shared = SendablePointer(counts)
        let capacity = SynthLookupTable.tileBytes(type: type, rows: rowsPerPiece, cols: k)
        try emit(index, pieces: pieces, capacity: capacity, into: &sink, report: report) { piece, rng, out in
            let row0 = piece * rowsPerPiece, rows = min(rowsPerPiece, m - row0)
            let values = UnsafeMutablePointer<Int8>.allocate(capacity: rows * k)
            defer { values.deallocate() }
            rng.fillTernary(values, count: rows * k)
            SynthLookupTable.pack(type: type, values: values, rows: rows, cols: k, into: out,
                                  negCounts: shared.pointer + row0)
            return SynthLookupTable.tileBytes(type: type, rows: rows, cols: k)
        }
        if type == 2 { try sink.write(UnsafeRawBufferPointer(start: counts, count: 4 * mPad)) }
        try sink.write(Self.scaleTail(scale))
    }

    /// Random blocks written directly (no float is quantized): random bytes everywhere,
    /// then each f16 scale made positive with an exponent that keeps decoded values near
    /// the F16 embedding's uniform ±1 (RMS 0.58; the blocks' 0.40–0.51, never beyond ±2).
    /// The scales' mantissas stay random, so they differ from block to block within 2×.
    private func writeBlocks(_ type: GGMLType, index: Int, blocks: Int, typeSize: Int,
                             into sink: inout GGUFWriter.Sink, report: (Int) -> Void) throws {
        let fields = Self.blockScaleFields(type)
        try emitBytes(index, count: blocks, unit: typeSize, into: &sink, report: report) { rng, out, n in
            rng.fillBytes(out, count: n * typeSize)
            for b in 0..<n {
                for (offset, exponent) in fields {
                    let at = b * typeSize + offset
                    let bits = out.loadUnaligned(fromByteOffset: at, as: UInt16.self)
                    out.storeBytes(of: (exponent | bits & 0x03FF).littleEndian, toByteOffset: at, as: UInt16.self)
                }
            }
        }
    }

    /// Each block type's f16 scale fields (byte offset in the block) and the exponent bits
    /// that put the scale in [2^e, 2^(e+1)), with random codes (ggml-common.h layouts):
    /// Q8_0 d·q: d ∈ [2^-8, 2^-7), |q| ≤ 128 → |x| ≤ 1, RMS 0.44.
    /// Q4_0 d·(q−8): d ∈ [2^-4, 2^-3) → |x| ≤ 1, RMS 0.44.
    /// Q4_K d·sc·q − dmin·m: d ∈ [2^-10, 2^-9), sc·q ≤ 63·15 → < 1.85; dmin ∈ [2^-7, 2^-6),
    /// m ≤ 63 → < 1; RMS 0.40. Q6_K d·sc·(q−32): d ∈ [2^-12, 2^-11), |sc·(q−32)| ≤ 128·32
    /// → |x| < 2, RMS 0.51.
    static func blockScaleFields(_ type: GGMLType) -> [(offset: Int, exponent: UInt16)] {
        switch type {
        case .q8_0: return [(0, 7 << 10)]
        case .q4_0: return [(0, 11 << 10)]
        case .q4_K: return [(0, 5 << 10), (2, 8 << 10)]
        case .q6_K: return [(208, 3 << 10)]
        default: preconditionFailure("synth writes no \(type) blocks")
        }
    }

    /// A whole ternary matrix (rows × cols, row-major), the values of `emit`'s pieces.
    private func ternaryMatrix(_ index: Int, rows m: Int, cols k: Int) -> [Int8] {
        let rowsPerPiece = ternaryRowsPerPiece(cols: k)
        let pieces = (m + rowsPerPiece - 1) / rowsPerPiece
        let seed = self.seed
        return [Int8](unsafeUninitializedCapacity: m * k) { buffer, initialized in
            let base = SendablePointer(buffer.baseAddress!)
            Self.run(pieces, threads: threads) { piece in
                var rng = SynthRandom(seed: seed, tensor: index, piece: piece)
                let row0 = piece * rowsPerPiece, rows = min(rowsPerPiece, m - row0)
                rng.fillTernary(base.pointer + row0 * k, count: rows * k)
            }
            initialized = m * k
        }
    }

    // MARK: - Pieces

    /// `count` units of `unit` bytes each, in pieces of about `pieceBytes`; `fill(rng, out, n)`
    /// writes n units. With `stream`, the units are draws of the file's stream from that
    /// position (one draw per unit), else each piece has its own generator.
    private func emitBytes(_ index: Int, count: Int, unit: Int, stream: Int? = nil, into sink: inout GGUFWriter.Sink,
                           report: (Int) -> Void,
                           fill: @escaping @Sendable (inout SynthRandom, UnsafeMutableRawPointer, Int) -> Void) throws {
        let perPiece = max(1, pieceBytes / unit)
        let pieces = (count + perPiece - 1) / perPiece
        try emit(index, pieces: pieces, capacity: perPiece * unit, stream: stream.map { ($0, perPiece) }, into: &sink,
                 report: report) { piece, rng, out in
            let n = min(perPiece, count - piece * perPiece)
            fill(&rng, out, n)
            return n * unit
        }
    }

    /// Makes pieces 0..<pieces of tensor `index` (`make(piece, rng, out)` writes at most
    /// `capacity` bytes and returns how many), a batch at a time on `threads` threads, and
    /// writes them in order. Piece p's generator is the file's stream at `stream.start +
    /// p · stream.perPiece`, or without `stream` one of its own: the bytes do not depend on
    /// the thread count.
    private func emit(_ index: Int, pieces: Int, capacity: Int, stream: (start: Int, perPiece: Int)? = nil,
                      into sink: inout GGUFWriter.Sink, report: (Int) -> Void,
                      make: @escaping @Sendable (Int, inout SynthRandom, UnsafeMutableRawPointer) -> Int) throws {
        let batch = min(pieces, 2 * threads)
        guard batch > 0 else { return }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: batch * capacity, alignment: 64)
        defer { buffer.deallocate() }
        var lengths = [Int](repeating: 0, count: batch)
        let seed = self.seed
        var first = 0
        while first < pieces {
            let n = min(batch, pieces - first)
            let out = SendableRawPointer(buffer), start = first
            lengths.withUnsafeMutableBufferPointer { l in
                let lens = SendablePointer(l.baseAddress!)
                Self.run(n, threads: threads) { j in
                    let piece = start + j
                    var rng = stream.map { SynthRandom(seed: seed, position: $0.start + piece * $0.perPiece) }
                        ?? SynthRandom(seed: seed, tensor: index, piece: piece)
                    lens.pointer[j] = make(piece, &rng, out.pointer + j * capacity)
                }
            }
            for j in 0..<n { try sink.write(UnsafeRawBufferPointer(start: buffer + j * capacity, count: lengths[j])) }
            report(sink.written)
            first += n
        }
    }

    /// body(0..<count), on up to `threads` threads.
    private static func run(_ count: Int, threads: Int, _ body: @Sendable (Int) -> Void) {
        if threads <= 1 || count <= 1 {
            for i in 0..<count { body(i) }
        } else {
            DispatchQueue.concurrentPerform(iterations: count, execute: body)
        }
    }
}

/// Pointers handed to the worker threads; each writes only its own piece's range.
private struct SendablePointer<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>
    init(_ p: UnsafeMutablePointer<T>) { pointer = p }
}

private struct SendableRawPointer: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    init(_ p: UnsafeMutableRawPointer) { pointer = p }
}
