#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A GGUF (v2/v3) file, memory-mapped read-only and fully validated on open.
///
/// Everything the header, metadata and tensor table claim is checked against
/// the file size before it is trusted: counts before allocating, string and
/// array lengths before reading, tensor offsets and sizes before handing out
/// views. A bad file therefore always ends in a thrown `GGUFError`, never a
/// crash or a giant allocation. (A file truncated by another process *while*
/// mapped can still raise SIGBUS; mmap offers no defence against that.)
///
/// Tensor extents come from the offsets, not from type traits (docs/FORMATS.md §1.4):
/// bitnet.cpp writes hidden `*_scale` bytes between tensors, and its I2_S/TL1/
/// TL2 sizes do not follow ggml's traits. Tensors of types whose size is
/// unknown (TL1, TL2, ids newer than this code) are accepted so that files can
/// still be listed; for them only a nonzero extent is checked, and code that
/// computes with such a tensor must reject the type itself. For known types the
/// computed size must fit in the extent.
public final class GGUFFile: @unchecked Sendable {
    // Sendable: all state is immutable after init and the mapping is read-only.

    public let path: String
    /// 2 or 3 (identical layouts for little-endian files).
    public let version: UInt32
    /// Data section alignment: `general.alignment`, or 32.
    public let alignment: Int
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order (dictionaries forget it; dumps want it).
    public let metadataKeys: [String]
    /// Tensor table in file order.
    public let tensors: [GGUFTensorInfo]
    /// Absolute file offset where the data section starts.
    public let dataOffset: Int
    public let fileSize: Int

    private let base: UnsafeRawPointer
    private let tensorIndex: [String: Int]

    /// Bytes of the data section (0 when the file has no tensors and no padding).
    public var dataSize: Int { max(0, fileSize - dataOffset) }

    /// The whole mapped file, e.g. for hidden bytes between tensors. Same
    /// lifetime rule as `data(for:)`.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: fileSize) }

    public init(path: String) throws {
        let (base, size) = try Self.map(path: path)
        let parsed: Parsed
        do {
            var parser = Parser(base: base, size: size, path: path)
            parsed = try parser.parse()
        } catch {
            munmap(UnsafeMutableRawPointer(mutating: base), size)
            throw error
        }
        self.path = path
        self.base = base
        self.fileSize = size
        self.version = parsed.version
        self.alignment = parsed.alignment
        self.metadata = parsed.metadata
        self.metadataKeys = parsed.metadataKeys
        self.tensors = parsed.tensors
        self.dataOffset = parsed.dataOffset
        var index = [String: Int](minimumCapacity: parsed.tensors.count)
        for (i, t) in parsed.tensors.enumerated() { index[t.name] = i }
        self.tensorIndex = index
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), fileSize)
    }

    // MARK: - Tensors

    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// Zero-copy view of a tensor's bytes: `extent` bytes from its offset.
    ///
    /// The view points into this object's mapping and dies with it. Swift may
    /// release an object right after its last use rather than at the end of
    /// the scope, so keep the file referenced (store it next to the views, or
    /// use `withExtendedLifetime(file)`) for as long as the view is read.
    public func data(for tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        // Infos from this file always pass; anything else is a caller bug.
        precondition(tensor.offset >= 0 && tensor.extent >= 0 && tensor.offset <= dataSize
                     && tensor.extent <= dataSize - tensor.offset,
                     "GGUFFile.data(for:): tensor '\(tensor.name)' is not from \(path)")
        return UnsafeRawBufferPointer(start: base + dataOffset + tensor.offset, count: tensor.extent)
    }

    public func data(named name: String) throws -> UnsafeRawBufferPointer {
        guard let info = tensor(named: name) else { throw GGUFError.tensorNotFound(path: path, tensor: name) }
        return data(for: info)
    }

    // MARK: - Metadata

    public subscript(key: String) -> GGUFValue? { metadata[key] }

    public func string(_ key: String) throws -> String { try required(key, optionalString(key)) }
    public func integer(_ key: String) throws -> Int { try required(key, optionalInteger(key)) }
    public func float(_ key: String) throws -> Float { try required(key, optionalFloat(key)) }
    public func bool(_ key: String) throws -> Bool { try required(key, optionalBool(key)) }
    public func stringArray(_ key: String) throws -> [String] { try required(key, optionalStringArray(key)) }
    public func int32Array(_ key: String) throws -> [Int32] { try required(key, optionalInt32Array(key)) }
    public func float32Array(_ key: String) throws -> [Float] { try required(key, optionalFloat32Array(key)) }

    public func optionalString(_ key: String) throws -> String? {
        guard let v = metadata[key] else { return nil }
        guard case .string(let s) = v else { throw mismatch(key, "string", v) }
        return s
    }

    /// Any integer type (u8…i64); u32 and u64 counts are both common.
    public func optionalInteger(_ key: String) throws -> Int? {
        guard let v = metadata[key] else { return nil }
        guard v.isInteger else { throw mismatch(key, "an integer", v) }
        guard let i = v.intValue else {
            throw GGUFError.valueOutOfRange(path: path, key: key, value: v.description, target: "Int")
        }
        return i
    }

    /// f32, f64 or any integer, converted to Float.
    public func optionalFloat(_ key: String) throws -> Float? {
        guard let v = metadata[key] else { return nil }
        switch v {
        case .float32(let f): return f
        case .float64(let d):
            let f = Float(d)
            if d.isFinite && !f.isFinite {
                throw GGUFError.valueOutOfRange(path: path, key: key, value: "\(d)", target: "Float")
            }
            return f
        default:
            guard v.isInteger else { throw mismatch(key, "a number", v) }
            switch v {
            case .uint64(let u): return Float(u)
            case .int64(let i): return Float(i)
            default: return Float(v.intValue ?? 0)
            }
        }
    }

    public func optionalBool(_ key: String) throws -> Bool? {
        guard let v = metadata[key] else { return nil }
        guard case .bool(let b) = v else { throw mismatch(key, "bool", v) }
        return b
    }

    public func optionalStringArray(_ key: String) throws -> [String]? {
        guard let v = metadata[key] else { return nil }
        guard case .array(.string(let a)) = v else { throw mismatch(key, "array[string]", v) }
        return a
    }

    /// Any integer array, each element range-checked into Int32.
    public func optionalInt32Array(_ key: String) throws -> [Int32]? {
        guard let v = metadata[key] else { return nil }
        guard case .array(let array) = v else { throw mismatch(key, "an integer array", v) }
        switch array {
        case .int32(let a): return a
        case .uint8(let a): return a.map { Int32($0) }
        case .int8(let a): return a.map { Int32($0) }
        case .uint16(let a): return a.map { Int32($0) }
        case .int16(let a): return a.map { Int32($0) }
        case .uint32(let a): return try narrow(key, a)
        case .uint64(let a): return try narrow(key, a)
        case .int64(let a): return try narrow(key, a)
        default: throw mismatch(key, "an integer array", v)
        }
    }

    /// f32 arrays as is; f64 and integer arrays converted.
    public func optionalFloat32Array(_ key: String) throws -> [Float]? {
        guard let v = metadata[key] else { return nil }
        guard case .array(let array) = v else { throw mismatch(key, "a number array", v) }
        switch array {
        case .float32(let a): return a
        case .float64(let a): return a.map { Float($0) }
        case .uint64(let a): return a.map { Float($0) }
        case .int64(let a): return a.map { Float($0) }
        default:
            guard let ints = array.intValues else { throw mismatch(key, "a number array", v) }
            return ints.map { Float($0) }
        }
    }

    private func required<T>(_ key: String, _ value: T?) throws -> T {
        guard let value else { throw GGUFError.keyNotFound(path: path, key: key) }
        return value
    }

    private func mismatch(_ key: String, _ expected: String, _ found: GGUFValue) -> GGUFError {
        .typeMismatch(path: path, key: key, expected: expected, found: found.typeName)
    }

    private func narrow<T: BinaryInteger>(_ key: String, _ values: [T]) throws -> [Int32] {
        var out = [Int32]()
        out.reserveCapacity(values.count)
        for (i, v) in values.enumerated() {
            guard let n = Int32(exactly: v) else {
                throw GGUFError.valueOutOfRange(path: path, key: key, value: "[\(i)] = \(v)", target: "Int32")
            }
            out.append(n)
        }
        return out
    }

    // MARK: - Mapping

    private static func map(path: String) throws -> (UnsafeRawPointer, Int) {
        // O_NONBLOCK: opening a FIFO for reading otherwise waits for a writer
        // forever, before the regular-file check below could refuse it. It
        // changes nothing for the regular files that pass that check.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw GGUFError.io(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw GGUFError.io(path: path, operation: "fstat", errno: errno) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw GGUFError.notARegularFile(path: path) }
        guard st.st_size > 0 else { throw GGUFError.emptyFile(path: path) }
        guard let size = Int(exactly: st.st_size) else {
            throw GGUFError.io(path: path, operation: "mmap", errno: EFBIG)
        }
        let mapped: UnsafeMutableRawPointer? = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let mapped, mapped != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw GGUFError.io(path: path, operation: "mmap", errno: errno)
        }
        return (UnsafeRawPointer(mapped), size)
    }
}

// MARK: - Parsing

extension GGUFFile {
    /// Deeper nesting is legal GGUF but no model uses even one level; the limit
    /// keeps a hostile file from exhausting the stack through recursion.
    static let maxArrayDepth = 8
    static let defaultAlignment = 32
    static let magic: UInt32 = 0x4655_4747  // "GGUF" read as a little-endian u32
    /// Smallest possible encodings, for bounding counts before allocating:
    /// a KV is an empty key (8) + type (4) + a 1-byte value; a tensor info is
    /// an empty name (8) + n_dims (4) + no dims + type (4) + offset (8).
    static let minKVSize = 13
    static let minTensorInfoSize = 24

    fileprivate struct Parsed {
        var version: UInt32 = 0
        var alignment = GGUFFile.defaultAlignment
        var metadata: [String: GGUFValue] = [:]
        var metadataKeys: [String] = []
        var tensors: [GGUFTensorInfo] = []
        var dataOffset = 0
    }

    /// A bounds-checked cursor over the mapped bytes. Field names for errors are
    /// passed as closures so the hot loops (280k-string arrays) build no strings.
    fileprivate struct Parser {
        let base: UnsafeRawPointer
        let size: Int
        let path: String
        var pos = 0

        init(base: UnsafeRawPointer, size: Int, path: String) {
            self.base = base
            self.size = size
            self.path = path
        }

        var remaining: Int { size - pos }

        mutating func parse() throws -> Parsed {
            var out = Parsed()
            let magic = try u32 { "header.magic" }
            guard magic == GGUFFile.magic else { throw GGUFError.badMagic(path: path, found: magic) }
            out.version = try u32 { "header.version" }
            guard out.version == 2 || out.version == 3 else {
                throw GGUFError.unsupportedVersion(path: path, version: out.version)
            }
            let tensorCount = try u64 { "header.tensor_count" }
            let kvCount = try u64 { "header.kv_count" }

            let kvLimit = UInt64(remaining / GGUFFile.minKVSize)
            guard kvCount <= kvLimit else {
                throw GGUFError.countTooLarge(path: path, field: "header.kv_count", count: kvCount, limit: kvLimit)
            }
            let tensorLimit = UInt64((remaining - Int(kvCount) * GGUFFile.minKVSize) / GGUFFile.minTensorInfoSize)
            guard tensorCount <= tensorLimit else {
                throw GGUFError.countTooLarge(path: path, field: "header.tensor_count", count: tensorCount, limit: tensorLimit)
            }

            try parseMetadata(count: Int(kvCount), into: &out)
            out.alignment = try alignment(out.metadata)
            try parseTensorInfos(count: Int(tensorCount), into: &out)
            return out
        }

        // MARK: Metadata

        private mutating func parseMetadata(count: Int, into out: inout Parsed) throws {
            out.metadata.reserveCapacity(min(count, 4096))
            out.metadataKeys.reserveCapacity(min(count, 4096))
            for i in 0..<count {
                let key = try string { "kv[\(i)].key" }
                guard out.metadata[key] == nil else {
                    throw GGUFError.duplicateKey(path: path, field: "kv[\(i)].key", key: key)
                }
                let field = { "kv[\(i)] '\(key)'" }
                let type = try valueType(field)
                out.metadata[key] = try value(type, field, depth: 0)
                out.metadataKeys.append(key)
            }
        }

        private func alignment(_ metadata: [String: GGUFValue]) throws -> Int {
            guard let v = metadata["general.alignment"] else { return GGUFFile.defaultAlignment }
            guard case .uint32(let a) = v, a != 0, a & (a - 1) == 0 else {
                throw GGUFError.invalidAlignment(path: path, value: "\(v.typeName) \(v)")
            }
            return Int(a)
        }

        private mutating func valueType(_ field: () -> String) throws -> GGUFValueType {
            let raw = try u32 { "\(field()).type" }
            guard let type = GGUFValueType(rawValue: raw) else {
                throw GGUFError.unknownValueType(path: path, field: "\(field()).type", typeID: raw)
            }
            return type
        }

        private mutating func value(_ type: GGUFValueType, _ field: () -> String, depth: Int) throws -> GGUFValue {
            switch type {
            case .uint8: return .uint8(try fixed(field))
            case .int8: return .int8(try fixed(field))
            case .uint16: return .uint16(UInt16(littleEndian: try fixed(field)))
            case .int16: return .int16(Int16(littleEndian: try fixed(field)))
            case .uint32: return .uint32(UInt32(littleEndian: try fixed(field)))
            case .int32: return .int32(Int32(littleEndian: try fixed(field)))
            case .uint64: return .uint64(UInt64(littleEndian: try fixed(field)))
            case .int64: return .int64(Int64(littleEndian: try fixed(field)))
            case .float32: return .float32(Float(bitPattern: UInt32(littleEndian: try fixed(field))))
            case .float64: return .float64(Double(bitPattern: UInt64(littleEndian: try fixed(field))))
            case .bool: return .bool((try fixed(field) as UInt8) != 0)
            case .string: return .string(try string(field))
            case .array: return .array(try array(field, depth: depth + 1))
            }
        }

        private mutating func array(_ field: () -> String, depth: Int) throws -> GGUFArray {
            guard depth <= GGUFFile.maxArrayDepth else {
                throw GGUFError.arrayNestingTooDeep(path: path, field: field(), limit: GGUFFile.maxArrayDepth)
            }
            let raw = try u32 { "\(field()).element_type" }
            guard let type = GGUFValueType(rawValue: raw) else {
                throw GGUFError.unknownValueType(path: path, field: "\(field()).element_type", typeID: raw)
            }
            let count64 = try u64 { "\(field()).count" }
            let limit = UInt64(remaining / type.minimumEncodedSize)
            guard count64 <= limit else {
                throw GGUFError.countTooLarge(path: path, field: "\(field()).count", count: count64, limit: limit)
            }
            let count = Int(count64)
            switch type {
            case .uint8: return .uint8(bulk(count) { $0 })
            case .int8: return .int8(bulk(count) { $0 })
            case .uint16: return .uint16(bulk(count) { UInt16(littleEndian: $0) })
            case .int16: return .int16(bulk(count) { Int16(littleEndian: $0) })
            case .uint32: return .uint32(bulk(count) { UInt32(littleEndian: $0) })
            case .int32: return .int32(bulk(count) { Int32(littleEndian: $0) })
            case .uint64: return .uint64(bulk(count) { UInt64(littleEndian: $0) })
            case .int64: return .int64(bulk(count) { Int64(littleEndian: $0) })
            case .float32: return .float32(bulk(count) { Float(bitPattern: UInt32(littleEndian: $0.bitPattern)) })
            case .float64: return .float64(bulk(count) { Double(bitPattern: UInt64(littleEndian: $0.bitPattern)) })
            case .bool: return .bool(bulk(count, as: UInt8.self) { $0 }.map { $0 != 0 })
            case .string:
                var strings = [String]()
                strings.reserveCapacity(count)
                for i in 0..<count {
                    strings.append(try string { "\(field())[\(i)]" })
                }
                return .string(strings)
            case .array:
                var arrays = [GGUFArray]()
                arrays.reserveCapacity(min(count, 4096))
                for i in 0..<count {
                    let inner = { "\(field())[\(i)]" }
                    arrays.append(try array(inner, depth: depth + 1))
                }
                return .array(arrays)
            }
        }

        /// `count` fixed-size elements, already bounds-checked by the caller.
        /// `fromLittleEndian` only runs on big-endian hosts.
        private mutating func bulk<T: BitwiseCopyable>(
            _ count: Int, as _: T.Type = T.self, _ fromLittleEndian: (T) -> T
        ) -> [T] {
            let byteCount = count * MemoryLayout<T>.size
            let source = UnsafeRawBufferPointer(start: base + pos, count: byteCount)
            let result = [T](unsafeUninitializedCapacity: count) { buffer, initialized in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: source)
                #if _endian(big)
                for i in 0..<count { buffer[i] = fromLittleEndian(buffer[i]) }
                #endif
                initialized = count
            }
            pos += byteCount
            return result
        }

        // MARK: Tensor table

        private mutating func parseTensorInfos(count: Int, into out: inout Parsed) throws {
            struct Raw { var name: String; var dims: [Int]; var type: GGMLType; var offset: UInt64 }
            var raws = [Raw]()
            raws.reserveCapacity(count)
            var seen = Set<String>(minimumCapacity: count)
            for i in 0..<count {
                let name = try string { "tensor[\(i)].name" }
                let nDims = try u32 { "tensor '\(name)'.n_dims" }
                guard nDims <= 4 else { throw GGUFError.tooManyDimensions(path: path, tensor: name, nDims: nDims) }
                var dims = [Int]()
                dims.reserveCapacity(Int(nDims))
                for d in 0..<Int(nDims) {
                    let raw = try u64 { "tensor '\(name)'.dims[\(d)]" }
                    guard raw > 0, let dim = Int(exactly: raw) else {
                        throw GGUFError.invalidDimension(path: path, tensor: name, index: d, value: String(raw))
                    }
                    dims.append(dim)
                }
                do {
                    _ = try GGMLType.elementCount(dims)
                } catch let error as GGUFError {
                    throw error.withContext(path: path, tensor: name)
                }
                let type = GGMLType(rawValue: try u32 { "tensor '\(name)'.type" })
                let offset = try u64 { "tensor '\(name)'.offset" }
                guard seen.insert(name).inserted else {
                    throw GGUFError.duplicateTensorName(path: path, tensor: name)
                }
                raws.append(Raw(name: name, dims: dims, type: type, offset: offset))
            }

            // The data section starts at the next multiple of the alignment.
            // With no tensors the padding may be missing (vocab-only files).
            let alignment = out.alignment
            let dataOffset = (pos + alignment - 1) / alignment * alignment
            out.dataOffset = dataOffset
            if raws.isEmpty { return }
            guard dataOffset <= size else {
                throw GGUFError.truncated(path: path, field: "data section (alignment padding)", offset: pos,
                                          needed: UInt64(dataOffset - pos), fileSize: size)
            }
            let dataSize = size - dataOffset

            for r in raws {
                guard r.offset % UInt64(alignment) == 0 else {
                    throw GGUFError.misalignedOffset(path: path, tensor: r.name, offset: r.offset, alignment: alignment)
                }
                guard r.offset <= UInt64(dataSize) else {
                    let size = (try? r.type.byteCount(dims: r.dims)) ?? 0
                    throw GGUFError.tensorOutOfBounds(path: path, tensor: r.name, offset: r.offset, size: size,
                                                      dataSize: dataSize, fileSize: self.size)
                }
            }

            // Extent = distance to the next tensor by offset, or to the end.
            let order = raws.indices.sorted { (raws[$0].offset, $0) < (raws[$1].offset, $1) }
            var extents = [Int](repeating: 0, count: raws.count)
            for (rank, i) in order.enumerated() {
                let start = Int(raws[i].offset)
                let next = rank + 1 < order.count ? order[rank + 1] : nil
                let end = next.map { Int(raws[$0].offset) } ?? dataSize
                var needed = 1
                if raws[i].type.hasKnownSize {
                    do {
                        needed = max(1, try raws[i].type.byteCount(dims: raws[i].dims))
                    } catch let error as GGUFError {
                        throw error.withContext(path: path, tensor: raws[i].name)
                    }
                }
                if needed > end - start {
                    if let next {
                        throw GGUFError.tensorOverlap(path: path, tensor: raws[i].name, offset: start, size: needed,
                                                      next: raws[next].name, nextOffset: Int(raws[next].offset))
                    }
                    throw GGUFError.tensorOutOfBounds(path: path, tensor: raws[i].name, offset: raws[i].offset,
                                                      size: needed, dataSize: dataSize, fileSize: size)
                }
                extents[i] = end - start
            }

            out.tensors = raws.indices.map { i in
                GGUFTensorInfo(name: raws[i].name, dims: raws[i].dims, type: raws[i].type,
                               offset: Int(raws[i].offset), extent: extents[i])
            }
        }

        // MARK: Primitives

        private mutating func fixed<T: FixedWidthInteger>(_ field: () -> String) throws -> T {
            let n = MemoryLayout<T>.size
            guard n <= remaining else {
                throw GGUFError.truncated(path: path, field: field(), offset: pos, needed: UInt64(n), fileSize: size)
            }
            let v = base.loadUnaligned(fromByteOffset: pos, as: T.self)
            pos += n
            return v
        }

        private mutating func u32(_ field: () -> String) throws -> UInt32 {
            UInt32(littleEndian: try fixed(field))
        }

        private mutating func u64(_ field: () -> String) throws -> UInt64 {
            UInt64(littleEndian: try fixed(field))
        }

        private mutating func string(_ field: () -> String) throws -> String {
            let length = try u64(field)
            guard length <= UInt64(remaining) else {
                throw GGUFError.truncated(path: path, field: field(), offset: pos, needed: length, fileSize: size)
            }
            let bytes = UnsafeBufferPointer(start: (base + pos).assumingMemoryBound(to: UInt8.self), count: Int(length))
            guard UTF8Validation.isValid(bytes) else {
                throw GGUFError.invalidUTF8(path: path, field: field())
            }
            pos += Int(length)
            return String(decoding: bytes, as: UTF8.self)
        }
    }
}

/// Strict UTF-8 validation (no overlongs, surrogates or code points past
/// U+10FFFF). Hand-written because `String(decoding:)` silently repairs and
/// `String(validating:)` needs macOS 15; the ASCII fast path covers nearly all
/// tokenizer strings.
enum UTF8Validation {
    static func isValid(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let n = bytes.count
        guard let p = bytes.baseAddress else { return true }
        var i = 0
        while i < n {
            // Skip ASCII 8 bytes at a time.
            while i + 8 <= n, UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                i += 8
            }
            if i >= n { break }
            let b0 = p[i]
            if b0 < 0x80 { i += 1; continue }
            let length: Int
            var lower: UInt8 = 0x80, upper: UInt8 = 0xBF
            switch b0 {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; lower = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; upper = 0x9F
            case 0xF0: length = 4; lower = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; upper = 0x8F
            default: return false
            }
            guard i + length <= n else { return false }
            let b1 = p[i + 1]
            guard b1 >= lower && b1 <= upper else { return false }
            for k in 2..<max(2, length) where p[i + k] & 0xC0 != 0x80 { return false }
            i += length
        }
        return true
    }
}
