#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes GGUF v3 files, streaming tensor data so that a file far larger than
/// memory (a 100B-parameter model) can be produced: the caller declares every
/// tensor's shape and byte count up front, then supplies the bytes one tensor
/// at a time through a buffered `Sink`.
///
///     var w = GGUFWriter(alignment: 32)
///     w.set("general.architecture", .string("bitnet-b1.58"))
///     try w.addTensor(name: "output_norm.weight", dims: [2560], type: .f32)
///     try w.write(to: "model.gguf") { tensor, sink in
///         try norm.withUnsafeBytes { try sink.write($0) }
///     }
///
/// The file is written to `path + ".tmp"` and renamed into place only after
/// every byte was written, so a failed or interrupted conversion never leaves a
/// plausible-looking but broken file under the final name. Each tensor is
/// followed by zero padding up to the alignment (the last one too, as ggml's
/// writer does: ggml's reader expects padded sizes).
///
/// Files we write must load in llama.cpp/bitnet.cpp too, so names longer than
/// ggml's 63 bytes are rejected. Multi-byte values are written little-endian.
package struct GGUFWriter: Sendable {
    package let alignment: Int
    /// Metadata keys in the order they will be written.
    package private(set) var metadataKeys: [String] = []
    private var values: [String: GGUFValue] = [:]
    /// Declared tensors, with the offsets and extents they will have.
    package private(set) var tensors: [GGUFTensorInfo] = []
    private var byteCounts: [Int] = []
    private var indexByName: [String: Int] = [:]
    private var dataSize = 0

    /// ggml's GGML_MAX_NAME is 64 including the terminating NUL.
    package static let maxTensorNameBytes = 63

    /// `alignment` must be a power of two between 1 and 2^31 (it is stored as
    /// a u32); values other than 32 are recorded in `general.alignment`.
    package init(alignment: Int = 32) {
        precondition(alignment > 0 && alignment <= 1 << 31 && alignment & (alignment - 1) == 0,
                     "GGUFWriter: alignment \(alignment) is not a power of two in 1...2^31")
        self.alignment = alignment
    }

    // MARK: - Metadata

    package subscript(key: String) -> GGUFValue? { values[key] }

    /// Sets a key; a new key goes last, an existing key keeps its position.
    package mutating func set(_ key: String, _ value: GGUFValue) {
        if values.updateValue(value, forKey: key) == nil { metadataKeys.append(key) }
    }

    package mutating func removeValue(forKey key: String) {
        guard values.removeValue(forKey: key) != nil else { return }
        metadataKeys.removeAll { $0 == key }
    }

    // MARK: - Tensors

    /// Declares the next tensor. `byteCount` defaults to the size computed from
    /// the type (required for types whose size is unknown, e.g. TL1/TL2); when
    /// given for a known type it must be at least the computed size.
    package mutating func addTensor(name: String, dims: [Int], type: GGMLType, byteCount: Int? = nil) throws {
        let field = "tensor '\(name)'"
        guard !name.isEmpty, name.utf8.count <= Self.maxTensorNameBytes else {
            throw GGUFError.invalidArgument(path: "", field: field,
                                            reason: "name must be 1 to \(Self.maxTensorNameBytes) bytes of UTF-8")
        }
        guard indexByName[name] == nil else {
            throw GGUFError.duplicateTensorName(path: "", tensor: name)
        }
        guard (1...4).contains(dims.count) else {
            throw GGUFError.invalidArgument(path: "", field: field, reason: "needs 1 to 4 dims, got \(dims)")
        }
        var size: Int
        do {
            _ = try GGMLType.elementCount(dims)
            if type.hasKnownSize {
                size = try type.byteCount(dims: dims)
                if let byteCount {
                    guard byteCount >= size else {
                        throw GGUFError.invalidArgument(
                            path: "", field: field,
                            reason: "byteCount \(byteCount) is less than the \(size) bytes \(type.name) \(dims) needs")
                    }
                    size = byteCount
                }
            } else {
                guard let byteCount else { throw GGUFError.unknownTypeSize(path: "", tensor: "", type: type) }
                size = byteCount
            }
        } catch let error as GGUFError {
            throw error.withContext(path: "", tensor: name)
        }
        guard size > 0 else {
            throw GGUFError.invalidArgument(path: "", field: field, reason: "byteCount must be positive")
        }
        let offset = try Self.padded(dataSize, alignment, name)
        let extent = try Self.padded(size, alignment, name)
        guard offset <= Int.max - extent else { throw GGUFError.sizeOverflow(path: "", tensor: name, dims: dims) }
        indexByName[name] = tensors.count
        tensors.append(GGUFTensorInfo(name: name, dims: dims, type: type, offset: offset, extent: extent))
        byteCounts.append(size)
        dataSize = offset + extent
    }

    /// The exact byte count the callback must write for `tensor`.
    package func byteCount(of tensor: GGUFTensorInfo) -> Int? {
        indexByName[tensor.name].map { byteCounts[$0] }
    }

    // MARK: - Writing

    /// Writes the file. `data` is called once per tensor, in declaration order,
    /// and must write exactly that tensor's byte count. `progress` receives
    /// (bytes written, total file bytes) after the header and each tensor.
    package func write(
        to path: String,
        progress: ((Int, Int) -> Void)? = nil,
        data: (GGUFTensorInfo, inout Sink) throws -> Void
    ) throws {
        let header = try encodeHeader(path: path)
        let dataStart = try Self.padded(header.count, alignment, "")
        let total = dataStart + dataSize

        let temp = path + ".tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw GGUFError.io(path: temp, operation: "open", errno: errno) }
        var sink = Sink(fd: fd, path: temp)
        do {
            try header.withUnsafeBytes { try sink.write($0) }
            try sink.writeZeros(dataStart - header.count)
            progress?(dataStart, total)
            for (i, tensor) in tensors.enumerated() {
                sink.begin(tensor: tensor.name, byteCount: byteCounts[i])
                try data(tensor, &sink)
                try sink.end()
                try sink.writeZeros(tensor.extent - byteCounts[i])
                progress?(dataStart + tensor.offset + tensor.extent, total)
            }
            try sink.flush()
            guard close(fd) == 0 else { throw GGUFError.io(path: temp, operation: "close", errno: errno) }
        } catch {
            close(fd)
            unlink(temp)
            throw error
        }
        guard rename(temp, path) == 0 else {
            let code = errno
            unlink(temp)
            throw GGUFError.io(path: path, operation: "rename", errno: code)
        }
    }

    /// Writes a small file in one call, for tests and fixtures; every tensor's
    /// bytes are in memory. Each tensor's byte count is its data's length.
    package static func write(
        to path: String,
        alignment: Int = 32,
        metadata: [(String, GGUFValue)],
        tensors: [(name: String, dims: [Int], type: GGMLType, data: [UInt8])]
    ) throws {
        var writer = GGUFWriter(alignment: alignment)
        for (key, value) in metadata { writer.set(key, value) }
        for t in tensors { try writer.addTensor(name: t.name, dims: t.dims, type: t.type, byteCount: t.data.count) }
        var index = 0
        try writer.write(to: path) { _, sink in
            try sink.write(tensors[index].data)
            index += 1
        }
    }

    // MARK: - Encoding

    /// Header, metadata and tensor table: everything before the data section.
    private func encodeHeader(path: String) throws -> [UInt8] {
        var keys = metadataKeys
        var values = self.values
        if let existing = values["general.alignment"] {
            guard existing == .uint32(UInt32(alignment)) else {
                throw GGUFError.invalidArgument(
                    path: path, field: "general.alignment",
                    reason: "metadata says \(existing.typeName) \(existing) but the writer aligns to \(alignment)")
            }
        } else if alignment != GGUFFile.defaultAlignment {
            keys.append("general.alignment")
            values["general.alignment"] = .uint32(UInt32(alignment))
        }

        var e = Encoder()
        e.u32(GGUFFile.magic)
        e.u32(3)
        e.u64(UInt64(tensors.count))
        e.u64(UInt64(keys.count))
        for key in keys {
            guard let value = values[key] else { continue }
            e.string(key)
            e.u32(value.type.rawValue)
            e.value(value)
        }
        for t in tensors {
            e.string(t.name)
            e.u32(UInt32(t.dims.count))
            for d in t.dims { e.u64(UInt64(d)) }
            e.u32(t.type.rawValue)
            e.u64(UInt64(t.offset))
        }
        return e.bytes
    }

    private static func padded(_ n: Int, _ alignment: Int, _ tensor: String) throws -> Int {
        let (sum, overflow) = n.addingReportingOverflow(alignment - 1)
        if overflow { throw GGUFError.sizeOverflow(path: "", tensor: tensor, dims: []) }
        return sum & ~(alignment - 1)
    }

    private struct Encoder {
        var bytes: [UInt8] = []

        mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
        mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }

        mutating func string(_ s: String) {
            u64(UInt64(s.utf8.count))
            bytes.append(contentsOf: s.utf8)
        }

        mutating func value(_ v: GGUFValue) {
            switch v {
            case .uint8(let x): bytes.append(x)
            case .int8(let x): bytes.append(UInt8(bitPattern: x))
            case .uint16(let x): raw(x.littleEndian)
            case .int16(let x): raw(x.littleEndian)
            case .uint32(let x): raw(x.littleEndian)
            case .int32(let x): raw(x.littleEndian)
            case .uint64(let x): raw(x.littleEndian)
            case .int64(let x): raw(x.littleEndian)
            case .float32(let x): raw(x.bitPattern.littleEndian)
            case .float64(let x): raw(x.bitPattern.littleEndian)
            case .bool(let x): bytes.append(x ? 1 : 0)
            case .string(let s): string(s)
            case .array(let a): array(a)
            }
        }

        mutating func array(_ a: GGUFArray) {
            u32(a.elementType.rawValue)
            u64(UInt64(a.count))
            switch a {
            case .uint8(let xs): bytes.append(contentsOf: xs)
            case .int8(let xs): bulk(xs) { $0 }
            case .uint16(let xs): bulk(xs) { $0.littleEndian }
            case .int16(let xs): bulk(xs) { $0.littleEndian }
            case .uint32(let xs): bulk(xs) { $0.littleEndian }
            case .int32(let xs): bulk(xs) { $0.littleEndian }
            case .uint64(let xs): bulk(xs) { $0.littleEndian }
            case .int64(let xs): bulk(xs) { $0.littleEndian }
            case .float32(let xs): bulk(xs) { Float(bitPattern: $0.bitPattern.littleEndian) }
            case .float64(let xs): bulk(xs) { Double(bitPattern: $0.bitPattern.littleEndian) }
            case .bool(let xs): bytes.append(contentsOf: xs.map { $0 ? 1 : 0 })
            case .string(let xs): for s in xs { string(s) }
            case .array(let xs): for x in xs { array(x) }
            }
        }

        private mutating func raw<T: BitwiseCopyable>(_ v: T) {
            withUnsafeBytes(of: v) { bytes.append(contentsOf: $0) }
        }

        /// `toLittleEndian` only runs on big-endian hosts.
        private mutating func bulk<T: BitwiseCopyable>(_ xs: [T], _ toLittleEndian: (T) -> T) {
            #if _endian(big)
            xs.map(toLittleEndian).withUnsafeBytes { bytes.append(contentsOf: $0) }
            #else
            xs.withUnsafeBytes { bytes.append(contentsOf: $0) }
            #endif
        }
    }
}

extension GGUFWriter {
    /// Buffered output for one file. During a tensor's callback it accepts at
    /// most that tensor's byte count and throws as soon as more is written.
    /// Noncopyable: a copy would share the buffer but not the fill level.
    package struct Sink: ~Copyable {
        private let fd: Int32
        private let path: String
        private let buffer: UnsafeMutableRawBufferPointer
        private var used = 0
        private var tensor = ""
        private var limit = Int.max
        /// Bytes written so far for the current tensor.
        package private(set) var written = 0

        static let capacity = 1 << 20

        fileprivate init(fd: Int32, path: String) {
            self.fd = fd
            self.path = path
            self.buffer = .allocate(byteCount: Self.capacity, alignment: 64)
        }

        deinit { buffer.deallocate() }

        /// Bytes the current tensor still expects.
        package var remaining: Int { limit - written }

        package mutating func write(_ bytes: UnsafeRawBufferPointer) throws {
            guard bytes.count <= limit - written else {
                throw GGUFError.tensorSizeMismatch(path: path, tensor: tensor, expected: limit,
                                                   written: written + bytes.count)
            }
            written += bytes.count
            if bytes.count >= Self.capacity {
                try flush()
                try writeAll(bytes)
                return
            }
            if bytes.count > Self.capacity - used { try flush() }
            guard let src = bytes.baseAddress, let dst = buffer.baseAddress else { return }
            (dst + used).copyMemory(from: src, byteCount: bytes.count)
            used += bytes.count
        }

        package mutating func write(_ bytes: [UInt8]) throws {
            try bytes.withUnsafeBytes { try write($0) }
        }

        /// Raw host-order bytes of `values` (little-endian on every host we support).
        package mutating func write<T: BitwiseCopyable>(contentsOf values: [T]) throws {
            try values.withUnsafeBytes { try write($0) }
        }

        package mutating func writeZeros(_ count: Int) throws {
            var left = count
            while left > 0 {
                if used == Self.capacity { try flush() }
                let n = min(left, Self.capacity - used)
                guard n <= limit - written else {
                    throw GGUFError.tensorSizeMismatch(path: path, tensor: tensor, expected: limit,
                                                       written: written + left)
                }
                UnsafeMutableRawBufferPointer(rebasing: buffer[used..<(used + n)]).initializeMemory(as: UInt8.self, repeating: 0)
                used += n
                written += n
                left -= n
            }
        }

        fileprivate mutating func begin(tensor: String, byteCount: Int) {
            self.tensor = tensor
            self.limit = byteCount
            self.written = 0
        }

        fileprivate mutating func end() throws {
            guard written == limit else {
                throw GGUFError.tensorSizeMismatch(path: path, tensor: tensor, expected: limit, written: written)
            }
            tensor = ""
            limit = Int.max
            written = 0
        }

        fileprivate mutating func flush() throws {
            let pending = UnsafeRawBufferPointer(rebasing: buffer[0..<used])
            used = 0
            try writeAll(pending)
        }

        private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
            guard var p = bytes.baseAddress else { return }
            var left = bytes.count
            while left > 0 {
                let n = posixWrite(fd, p, left)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw GGUFError.io(path: path, operation: "write", errno: errno)
                }
                p += n
                left -= n
            }
        }
    }
}

/// The C `write`, reachable under a name that `Sink.write` does not shadow.
private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    write(fd, p, n)
}
