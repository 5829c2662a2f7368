#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything that can be wrong with a GGUF file, or with a request to read or
/// write one. Every case carries the file path and names the field and the
/// offending value, so a message alone is enough to find the problem with a
/// hex dump. Fields use the layout's own names: `header.kv_count`,
/// `kv[3].key`, `kv[3] 'tokenizer.ggml.tokens'[17]`, `tensor[5].name`.
public enum GGUFError: Error, CustomStringConvertible, Sendable, Equatable {
    // MARK: - I/O
    /// A system call failed; `operation` is its name (open, fstat, mmap, write, rename).
    case io(path: String, operation: String, errno: Int32)
    case notARegularFile(path: String)
    case emptyFile(path: String)

    // MARK: - Container structure
    /// `field` needed `needed` bytes at absolute `offset`, past the end of the file.
    case truncated(path: String, field: String, offset: Int, needed: UInt64, fileSize: Int)
    case badMagic(path: String, found: UInt32)
    /// Only versions 2 and 3 share the layout we read (v1 had 32-bit counts).
    case unsupportedVersion(path: String, version: UInt32)
    /// A count cannot be right: even at the minimum encoded size per item, the
    /// remaining bytes hold at most `limit` items. Checked before allocating.
    case countTooLarge(path: String, field: String, count: UInt64, limit: UInt64)
    case invalidUTF8(path: String, field: String)
    case unknownValueType(path: String, field: String, typeID: UInt32)
    case arrayNestingTooDeep(path: String, field: String, limit: Int)
    case duplicateKey(path: String, field: String, key: String)
    /// `general.alignment` must be a u32 holding a nonzero power of two.
    case invalidAlignment(path: String, value: String)

    // MARK: - Tensor table
    case tooManyDimensions(path: String, tensor: String, nDims: UInt32)
    /// A dimension is 0 (or above Int.max); `value` is the raw number as text.
    case invalidDimension(path: String, tensor: String, index: Int, value: String)
    /// The element count or byte size of a tensor does not fit in Int.
    case sizeOverflow(path: String, tensor: String, dims: [Int])
    case duplicateTensorName(path: String, tensor: String)
    case misalignedOffset(path: String, tensor: String, offset: UInt64, alignment: Int)
    /// `offset + size` (relative to the data section) runs past its end.
    case tensorOutOfBounds(path: String, tensor: String, offset: UInt64, size: Int, dataSize: Int, fileSize: Int)
    /// The tensor needs `size` bytes but the next tensor (by offset) starts sooner.
    case tensorOverlap(path: String, tensor: String, offset: Int, size: Int, next: String, nextOffset: Int)
    case unknownTypeSize(path: String, tensor: String, type: GGMLType)
    /// Block types need ne0 to be a whole number of blocks.
    case rowNotBlockMultiple(path: String, tensor: String, type: GGMLType, ne0: Int, blockSize: Int)

    // MARK: - Lookups
    case keyNotFound(path: String, key: String)
    case typeMismatch(path: String, key: String, expected: String, found: String)
    /// The value exists but does not fit the requested Swift type (`target`).
    case valueOutOfRange(path: String, key: String, value: String, target: String)
    case tensorNotFound(path: String, tensor: String)

    // MARK: - Writing
    /// The writer was given something it cannot encode (bad name, dims, key...).
    case invalidArgument(path: String, field: String, reason: String)
    /// A tensor's data callback wrote a different number of bytes than declared.
    case tensorSizeMismatch(path: String, tensor: String, expected: Int, written: Int)

    public var path: String {
        switch self {
        case .io(let p, _, _), .notARegularFile(let p), .emptyFile(let p),
             .truncated(let p, _, _, _, _), .badMagic(let p, _), .unsupportedVersion(let p, _),
             .countTooLarge(let p, _, _, _), .invalidUTF8(let p, _), .unknownValueType(let p, _, _),
             .arrayNestingTooDeep(let p, _, _), .duplicateKey(let p, _, _), .invalidAlignment(let p, _),
             .tooManyDimensions(let p, _, _), .invalidDimension(let p, _, _, _), .sizeOverflow(let p, _, _),
             .duplicateTensorName(let p, _), .misalignedOffset(let p, _, _, _),
             .tensorOutOfBounds(let p, _, _, _, _, _), .tensorOverlap(let p, _, _, _, _, _),
             .unknownTypeSize(let p, _, _), .rowNotBlockMultiple(let p, _, _, _, _),
             .keyNotFound(let p, _), .typeMismatch(let p, _, _, _), .valueOutOfRange(let p, _, _, _),
             .tensorNotFound(let p, _), .invalidArgument(let p, _, _), .tensorSizeMismatch(let p, _, _, _):
            return p
        }
    }

    /// Fills in the path and tensor name of errors thrown by code that does not
    /// know them (`GGMLType.byteCount(dims:)`); other errors are returned as is.
    public func withContext(path: String, tensor: String) -> GGUFError {
        switch self {
        case .sizeOverflow("", "", let dims):
            return .sizeOverflow(path: path, tensor: tensor, dims: dims)
        case .invalidDimension("", "", let index, let value):
            return .invalidDimension(path: path, tensor: tensor, index: index, value: value)
        case .unknownTypeSize("", "", let type):
            return .unknownTypeSize(path: path, tensor: tensor, type: type)
        case .rowNotBlockMultiple("", "", let type, let ne0, let blockSize):
            return .rowNotBlockMultiple(path: path, tensor: tensor, type: type, ne0: ne0, blockSize: blockSize)
        default:
            return self
        }
    }

    public var description: String {
        let prefix = path.isEmpty ? "" : "\(path): "
        func t(_ name: String) -> String { name.isEmpty ? "" : "tensor '\(name)': " }
        switch self {
        case .io(_, let operation, let code):
            return "\(prefix)\(operation) failed: \(Self.systemMessage(code)) (errno \(code))"
        case .notARegularFile:
            return "\(prefix)not a regular file (a directory, FIFO or device cannot hold a GGUF model)"
        case .emptyFile:
            return "\(prefix)file is empty (0 bytes), not a GGUF file"
        case .truncated(_, let field, let offset, let needed, let fileSize):
            return "\(prefix)\(field): needs \(needed) bytes at offset \(offset) but the file ends at \(fileSize)"
        case .badMagic(_, let found):
            let bytes = withUnsafeBytes(of: found.littleEndian) { Array($0) }
            let shown = bytes.map { (32...126).contains($0) ? String(UnicodeScalar($0)) : "." }.joined()
            return "\(prefix)not a GGUF file: magic is \"\(shown)\" (0x\(String(found, radix: 16))), expected \"GGUF\""
        case .unsupportedVersion(_, let version):
            let hint: String
            if version == 1 {
                hint = "; version 1 (32-bit counts) is obsolete, reconvert the model"
            } else if version.byteSwapped == 2 || version.byteSwapped == 3 {
                hint = "; this looks like a big-endian GGUF, which is not supported"
            } else {
                hint = ""
            }
            return "\(prefix)header.version: GGUF version \(version) is not supported (2 and 3 are)\(hint)"
        case .countTooLarge(_, let field, let count, let limit):
            return "\(prefix)\(field): count \(count) cannot fit in the rest of the file (at most \(limit))"
        case .invalidUTF8(_, let field):
            return "\(prefix)\(field): string is not valid UTF-8"
        case .unknownValueType(_, let field, let typeID):
            return "\(prefix)\(field): unknown value type id \(typeID) (valid: 0–12)"
        case .arrayNestingTooDeep(_, let field, let limit):
            return "\(prefix)\(field): arrays nested more than \(limit) deep"
        case .duplicateKey(_, let field, let key):
            return "\(prefix)\(field): duplicate key '\(key)'"
        case .invalidAlignment(_, let value):
            return "\(prefix)general.alignment: \(value) is not a valid alignment (need a u32 power of two ≥ 1)"
        case .tooManyDimensions(_, let tensor, let nDims):
            return "\(prefix)\(t(tensor))n_dims \(nDims) exceeds the maximum of 4"
        case .invalidDimension(_, let tensor, let index, let value):
            return "\(prefix)\(t(tensor))dimension \(index) is \(value); dimensions must be between 1 and \(Int.max)"
        case .sizeOverflow(_, let tensor, let dims):
            return "\(prefix)\(t(tensor))size of shape \(dims) overflows a 64-bit integer"
        case .duplicateTensorName(_, let tensor):
            return "\(prefix)tensor '\(tensor)' appears more than once in the tensor table"
        case .misalignedOffset(_, let tensor, let offset, let alignment):
            return "\(prefix)\(t(tensor))offset \(offset) is not a multiple of the alignment \(alignment)"
        case .tensorOutOfBounds(_, let tensor, let offset, let size, let dataSize, let fileSize):
            return "\(prefix)\(t(tensor))offset \(offset) + \(size) bytes runs past the end of the data section "
                + "(\(dataSize) bytes; file size \(fileSize))"
        case .tensorOverlap(_, let tensor, let offset, let size, let next, let nextOffset):
            return "\(prefix)\(t(tensor))offset \(offset) + \(size) bytes overlaps tensor '\(next)' at offset \(nextOffset)"
        case .unknownTypeSize(_, let tensor, let type):
            return "\(prefix)\(t(tensor))the byte size of type \(type.name) (id \(type.rawValue)) is not known"
        case .rowNotBlockMultiple(_, let tensor, let type, let ne0, let blockSize):
            return "\(prefix)\(t(tensor))ne0 = \(ne0) is not a multiple of the \(type.name) block size \(blockSize)"
        case .keyNotFound(_, let key):
            return "\(prefix)metadata key '\(key)' is missing"
        case .typeMismatch(_, let key, let expected, let found):
            return "\(prefix)metadata key '\(key)': expected \(expected), found \(found)"
        case .valueOutOfRange(_, let key, let value, let target):
            return "\(prefix)metadata key '\(key)': value \(value) does not fit in \(target)"
        case .tensorNotFound(_, let tensor):
            return "\(prefix)no tensor named '\(tensor)'"
        case .invalidArgument(_, let field, let reason):
            return "\(prefix)\(field): \(reason)"
        case .tensorSizeMismatch(_, let tensor, let expected, let written):
            return "\(prefix)\(t(tensor))data callback wrote \(written) bytes, expected exactly \(expected)"
        }
    }

    private static func systemMessage(_ code: Int32) -> String {
        guard let message = strerror(code) else { return "unknown error" }
        return String(cString: message)
    }
}
