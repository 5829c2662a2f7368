import BitNet
import BitNetJSON
/// One `.safetensors` file, memory-mapped: an 8-byte little-endian header
/// length N, N bytes of JSON (`{"name": {"dtype", "shape", "data_offsets"}}`
/// plus an optional `__metadata__`), then the data section. Every entry is
/// checked against the file before use: the header must fit in the file, each
/// tensor's byte range must lie in the data section and equal dtype × shape.
final class SafetensorsFile: @unchecked Sendable {
    let path: String
    let tensors: [String: SafetensorsTensor]
    let map: MappedFile

    /// Headers larger than this are rejected before reading (safetensors itself caps them at 100 MB).
    static let maxHeaderBytes = 100 << 20

    init(path: String) throws {
        map = try MappedFile(path: path, what: "safetensors shard")
        self.path = path
        guard map.size >= 8 else {
            throw ConvertError.invalidSafetensors(path: path, reason: "file is \(map.size) bytes, shorter than the 8-byte header length")
        }
        let lengthBytes = map.bytes(offset: 0, count: 8)
        let n = UInt64(littleEndian: lengthBytes.loadUnaligned(as: UInt64.self))
        guard n <= UInt64(map.size - 8) else {
            throw ConvertError.invalidSafetensors(
                path: path, reason: "header length \(n) runs past the end of the file (\(map.size) bytes)")
        }
        guard n <= UInt64(Self.maxHeaderBytes) else {
            throw ConvertError.invalidSafetensors(path: path, reason: "header length \(n) exceeds \(Self.maxHeaderBytes) bytes")
        }
        let headerLength = Int(n)
        let dataStart = 8 + headerLength
        let dataSize = map.size - dataStart
        let header: JSONValue
        do {
            header = try JSONValue.parse(map.bytes(offset: 8, count: headerLength), path: path)
        } catch let error as JSONSyntaxError {
            throw ConvertError.invalidSafetensors(path: path, reason: "header JSON: \(error.reason)")
        }
        guard let entries = header.object else {
            throw ConvertError.invalidSafetensors(path: path, reason: "header is not a JSON object")
        }
        var tensors: [String: SafetensorsTensor] = [:]
        for (name, entry) in entries where name != "__metadata__" {
            func bad(_ reason: String) -> ConvertError { .invalidTensor(path: path, tensor: name, reason: reason) }
            guard let dtypeName = entry["dtype"]?.string else { throw bad("header entry has no string 'dtype'") }
            guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
                throw ConvertError.unknownDType(path: path, tensor: name, dtype: dtypeName)
            }
            guard let shapeValues = entry["shape"]?.array else { throw bad("header entry has no 'shape' array") }
            var shape: [Int] = []
            var elements = 1
            for v in shapeValues {
                guard let d = v.int, d >= 0 else { throw bad("shape \(shapeValues) holds a non-integer or negative dimension") }
                let (product, overflow) = elements.multipliedReportingOverflow(by: d)
                guard !overflow else { throw bad("shape \(shapeValues) overflows") }
                elements = product
                shape.append(d)
            }
            guard let offsets = entry["data_offsets"]?.array, offsets.count == 2,
                  let begin = offsets[0].int, let end = offsets[1].int else {
                throw bad("header entry has no [begin, end] 'data_offsets'")
            }
            guard begin >= 0, begin <= end, end <= dataSize else {
                throw bad("data_offsets [\(begin), \(end)] lie outside the data section (\(dataSize) bytes)")
            }
            let (bytes, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
            guard !overflow, bytes == end - begin else {
                throw bad("data_offsets [\(begin), \(end)] hold \(end - begin) bytes but \(dtype.rawValue) \(shape) needs \(bytes)")
            }
            tensors[name] = SafetensorsTensor(name: name, dtype: dtype, shape: shape, offset: dataStart + begin,
                                              byteCount: bytes, path: path)
        }
        // Sizes alone cannot catch two entries sharing bytes (each range is the
        // right length); converted, both tensors would read the same data.
        let ordered = tensors.values.filter { $0.byteCount > 0 }.sorted { ($0.offset, $0.name) < ($1.offset, $1.name) }
        for (a, b) in zip(ordered, ordered.dropFirst()) where b.offset < a.offset + a.byteCount {
            throw ConvertError.invalidTensor(
                path: path, tensor: b.name,
                reason: "data_offsets [\(b.offset - dataStart), \(b.offset - dataStart + b.byteCount)] overlap tensor '\(a.name)' " +
                    "at [\(a.offset - dataStart), \(a.offset - dataStart + a.byteCount)]")
        }
        self.tensors = tensors
    }

    func bytes(of tensor: SafetensorsTensor) -> UnsafeRawBufferPointer {
        map.bytes(offset: tensor.offset, count: tensor.byteCount)
    }

    func release(_ tensor: SafetensorsTensor) {
        map.release(offset: tensor.offset, count: tensor.byteCount)
    }
}
