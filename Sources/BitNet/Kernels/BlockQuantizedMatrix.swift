import CKernels
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An output head / token embedding kept in its file's llama.cpp block type
/// (Q8_0, Q4_0, Q4_K, Q6_K) and computed from those blocks by the bn_qblock
/// kernels with int8 activations, instead of being expanded to F16 at load:
/// a Q6_K head is 6.56 bits per weight read per token, not 16.
///
/// The blocks are used in place from the memory-mapped file (no copy): they are
/// already in the kernels' layout (the kernels take any alignment), so a copy
/// would only add anonymous memory the size of the head. The file's pages are
/// prefaulted at load like the F16 head's.
package final class BlockQuantizedMatrix: @unchecked Sendable {
    package let rows: Int
    package let cols: Int
    package let type: GGMLType
    let rowBytes: Int
    let pointer: UnsafeRawPointer // (rows, rowBytes) blocks, the file's bytes
    /// Keeps the mapping `pointer` points into alive.
    let owner: AnyObject

    /// The block types with a native kernel.
    package static let nativeTypes: [GGMLType] = [.q8_0, .q4_0, .q4_K, .q6_K]
    package static func isNative(_ type: GGMLType) -> Bool { nativeTypes.contains(type) }

    /// Bytes the kernels read per token (the whole head).
    package var byteCount: Int { rows * rowBytes }

    /// Checks the byte count and that every block scale is finite (a non-finite
    /// scale would turn whole logit rows into NaN); errors name the tensor.
    init(tensor name: String, path: String, type: GGMLType, data: UnsafeRawBufferPointer, rows: Int, cols: Int,
         owner: AnyObject) throws {
        let blockSize = Int(bn_qblock_size(Int32(type.rawValue))), blockBytes = Int(bn_qblock_bytes(Int32(type.rawValue)))
        guard blockSize > 0 else {
            throw ModelError.unsupportedTensorType(path: path, tensor: name, type: type.description,
                                                   reason: "no native block kernel (have \(Self.nativeTypes.map(\.name)))")
        }
        guard rows > 0, cols > 0, cols % blockSize == 0, cols <= 1 << 20 else {
            throw ModelError.invalidTensorData(path: path, tensor: name,
                                               reason: "\(cols) columns is not a positive multiple of \(type)'s \(blockSize)-value block")
        }
        let rowBytes = cols / blockSize * blockBytes
        let (need, overflow) = rows.multipliedReportingOverflow(by: rowBytes)
        guard !overflow, data.count >= need, let base = data.baseAddress else {
            throw ModelError.invalidTensorData(path: path, tensor: name,
                                               reason: "holds \(data.count) bytes, \(rows)×\(rowBytes) needed for \(type) [\(cols), \(rows)]")
        }
        // offsets of the f16 scales in a block: d (and Q4_K's dmin)
        let scaleOffsets: [Int] = switch type {
        case .q6_K: [208]
        case .q4_K: [0, 2]
        default: [0]
        }
        let blocks = need / blockBytes
        for b in 0..<blocks {
            for o in scaleOffsets {
                let h = data.loadUnaligned(fromByteOffset: b * blockBytes + o, as: UInt16.self)
                if h & 0x7C00 == 0x7C00 {
                    throw ModelError.invalidTensorData(
                        path: path, tensor: name,
                        reason: "row \(b * blockBytes / rowBytes), \(type) block \(b % (rowBytes / blockBytes)) has a non-finite scale")
                }
            }
        }
        self.rows = rows
        self.cols = cols
        self.type = type
        self.rowBytes = rowBytes
        self.pointer = base
        self.owner = owner
    }

    /// A block matrix this object owns (`bytes`: rows × rowBytes, already checked).
    private init(type: GGMLType, rows: Int, cols: Int, rowBytes: Int, buffer: AlignedBuffer) {
        self.rows = rows
        self.cols = cols
        self.type = type
        self.rowBytes = rowBytes
        pointer = UnsafeRawPointer(buffer.pointer)
        owner = buffer
    }

    /// The model's output head (F16, or another block type dequantized row by row)
    /// requantized to `type` with ggml's reference rules (KBlockQuantizer), for
    /// `--head q6_k` and the like on a file that stores something else. Chunks of rows
    /// are quantized on `threads` threads; memory: the new head plus one chunk per thread.
    package static func requantizedHead(of weights: ModelWeights, to type: GGMLType, threads: Int) throws
        -> BlockQuantizedMatrix {
        let rows = weights.config.vocabSize, cols = weights.config.hiddenSize, path = weights.file.path
        let blockSize = Int(bn_qblock_size(Int32(type.rawValue))), blockBytes = Int(bn_qblock_bytes(Int32(type.rawValue)))
        guard blockSize > 0 else {
            throw ModelError.unsupportedTensorType(path: path, tensor: TensorName.output, type: type.description,
                                                   reason: "no native block kernel (have \(Self.nativeTypes.map(\.name)))")
        }
        guard cols % blockSize == 0 else {
            throw ModelError.invalidHyperparameter(
                path: path, key: "--head", value: type.name.lowercased(),
                reason: "\(type) needs a hidden size that is a multiple of \(blockSize); this model's is \(cols)")
        }
        let rowBytes = cols / blockSize * blockBytes
        let buffer = AlignedBuffer(byteCount: rows * rowBytes, hugePages: true) // (rows, rowBytes) blocks
        let source = weights.outputBlocks, half = source == nil ? weights.output : nil
        let chunk = 256, chunks = (rows + chunk - 1) / chunk
        let failed = QuantizeFailure()
        DispatchQueue.concurrentPerform(iterations: max(1, min(threads, chunks))) { worker in
            var values = [Float](repeating: 0, count: chunk * cols) // (chunk, cols)
            for c in stride(from: worker, to: chunks, by: max(1, min(threads, chunks))) {
                let first = c * chunk, count = min(chunk, rows - first)
                values.withUnsafeMutableBufferPointer { v in
                    for r in 0..<count {
                        let dst = v.baseAddress! + r * cols
                        if let source {
                            source.dequantizeRow(first + r, into: dst)
                        } else if let half {
                            let src = half.row(first + r)
                            for j in 0..<cols { dst[j] = Float(Float16(bitPattern: src[j])) }
                        }
                    }
                }
                guard let bytes = KBlockQuantizer.encode(Array(values[0..<(count * cols)]), type: type),
                      bytes.count == count * rowBytes else { failed.record(); return }
                // workers write disjoint row ranges
                bytes.withUnsafeBytes { (buffer.pointer + first * rowBytes).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            }
        }
        if failed.happened {
            throw ModelError.unsupportedTensorType(path: path, tensor: TensorName.output, type: type.description,
                                                   reason: "no quantizer for this block type")
        }
        if let half { dropFilePages(half, of: weights.file) }
        return BlockQuantizedMatrix(type: type, rows: rows, cols: cols, rowBytes: rowBytes, buffer: buffer)
    }

    /// The F16 head was read once to requantize it: its pages leave this process's resident set
    /// (a 100B shape's 2.1 GB head would otherwise sit beside its 0.6 GB Q4_K copy). Only pages
    /// of the file's mapping — DONTNEED on an anonymous F16 expansion would zero it — and a
    /// tied embedding faults the few rows it looks up back in from the page cache.
    private static func dropFilePages(_ half: HalfMatrix, of file: GGUFFile) {
        let map = file.bytes
        let start = UnsafeRawPointer(half.pointer), length = half.rows * half.cols * 2
        guard let base = map.baseAddress, start >= base, start + length <= base + map.count else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let first = (Int(bitPattern: start) + page - 1) / page * page
        let end = (Int(bitPattern: start) + length) / page * page
        if end > first { _ = madvise(UnsafeMutableRawPointer(bitPattern: first), end - first, Int32(MADV_DONTNEED)) }
    }

    var descriptor: bn_qblock_matrix {
        bn_qblock_matrix(data: pointer.assumingMemoryBound(to: UInt8.self), type: Int32(type.rawValue),
                         m: Int32(rows), k: Int32(cols), row_bytes: Int32(rowBytes))
    }

    /// Row `r` as f32 (an embedding lookup dequantizes only the looked-up row).
    package func dequantizeRow(_ r: Int, into dst: UnsafeMutablePointer<Float>) {
        var d = descriptor
        bn_qblock_dequantize_row(&d, Int32(r), dst)
    }

    /// The whole matrix as F16 bits (references, `--head q8` requantization, tests).
    /// Values beyond F16's range become ±inf.
    func expandedToHalf() -> HalfMatrix {
        let buffer = AlignedBuffer(byteCount: rows * cols * 2)
        let out = buffer.typed(UInt16.self)
        var row = [Float](repeating: 0, count: cols)
        for r in 0..<rows {
            row.withUnsafeMutableBufferPointer { dequantizeRow(r, into: $0.baseAddress!) }
            for c in 0..<cols { out[r * cols + c] = BlockDequantizer.halfBits(row[c]) }
        }
        return HalfMatrix(rows: rows, cols: cols, pointer: UnsafePointer(out.baseAddress!), owner: buffer)
    }

    /// Activations in this type's block grouping (bn_qblock_quantize) for `n` rows of `cols` floats.
    final class Activations {
        let values: [Int8] // (n, cols)
        let scales: [Float] // (n, cols / act_block)
        let sums: [Int32] // (n, cols / 16)
        let n: Int

        init(_ matrix: BlockQuantizedMatrix, x: UnsafePointer<Float>, n: Int) {
            let k = matrix.cols, t = Int32(matrix.type.rawValue), group = Int(bn_qblock_act_block(t))
            var values = [Int8](repeating: 0, count: n * k)
            var scales = [Float](repeating: 0, count: n * (k / group))
            var sums = [Int32](repeating: 0, count: n * (k / 16))
            bn_qblock_quantize(t, x, Int32(n), Int32(k), Int32(k), &values, &scales, &sums)
            self.values = values
            self.scales = scales
            self.sums = sums
            self.n = n
        }
    }

    /// y: (n, rows) logits of the n activation rows of `x` (n, cols), rows split over the pool.
    func multiply(_ x: UnsafePointer<Float>, n: Int, table: UnsafePointer<bn_kernels>, pool: WorkerPool,
                  into y: UnsafeMutablePointer<Float>) {
        let acts = Activations(self, x: x, n: n)
        var d = descriptor
        acts.values.withUnsafeBufferPointer { v in
            acts.scales.withUnsafeBufferPointer { s in
                acts.sums.withUnsafeBufferPointer { b in
                    withUnsafePointer(to: &d) { matrix in
                        var job = BlockHeadJob(table: table, matrix: matrix, x: v.baseAddress!, xScale: s.baseAddress!,
                                               xSum: b.baseAddress!, n: Int32(n), y: y)
                        withUnsafeMutablePointer(to: &job) { pool.run(BlockHeadJob.task, context: $0) }
                    }
                }
            }
        }
    }
}

/// The block head's rows claimed in chunks by the pool's threads, as HeadJob does.
struct BlockHeadJob {
    var table: UnsafePointer<bn_kernels>
    var matrix: UnsafePointer<bn_qblock_matrix>
    var x: UnsafePointer<Int8> // (n, k)
    var xScale: UnsafePointer<Float> // (n, k / act_block)
    var xSum: UnsafePointer<Int32> // (n, k / 16)
    var n: Int32
    var y: UnsafeMutablePointer<Float> // (n, rows)
    var next: Int32 = 0 // chunks claimed so far

    static let task: @convention(c) (UnsafeMutableRawPointer?, Int32, Int32) -> Void = { ctx, _, nth in
        let job = ctx!.assumingMemoryBound(to: BlockHeadJob.self)
        let table = job.pointee.table, matrix = job.pointee.matrix, x = job.pointee.x
        let xScale = job.pointee.xScale, xSum = job.pointee.xSum, n = job.pointee.n, y = job.pointee.y
        let rows = matrix.pointee.m
        let counter = (ctx! + MemoryLayout<BlockHeadJob>.offset(of: \BlockHeadJob.next)!).assumingMemoryBound(to: Int32.self)
        HeadJob.forEachChunk(counter, rows: Int(rows), threads: Int(nth)) { begin, end in
            table.pointee.qblock_gemm(matrix, x, xScale, xSum, n, y, rows, begin, end)
        }
    }
}

/// Set by any worker of a parallel requantization whose quantizer gave no bytes.
private final class QuantizeFailure: @unchecked Sendable { // `value` only under `lock`
    private let lock = Lock()
    private var value = false
    func record() { lock.withLock { value = true } }
    var happened: Bool { lock.withLock { value } }
}
