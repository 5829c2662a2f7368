// Fuzz target `safetensors`: convert's safetensors reader — the 8-byte header
// length, the JSON header (dtype, shape, data_offsets, overlaps) — and then every
// accepted tensor's bytes, read end to end (ASan would flag a view past the map).
@testable import BitNet
@testable import BitNetConvert

enum Target: FuzzTarget {
    static func run(_ data: UnsafeRawBufferPointer) {
        let path = Fuzz.write(data, name: "model.safetensors")
        guard let file = try? SafetensorsFile(path: path) else { return }
        var sum = 0
        for tensor in file.tensors.values.sorted(by: { $0.name < $1.name }) {
            precondition(tensor.byteCount == tensor.elementCount * tensor.dtype.byteSize,
                         "accepted tensor \(tensor.name): \(tensor.byteCount) bytes for \(tensor.shape) \(tensor.dtype)")
            let bytes = file.bytes(of: tensor)
            precondition(bytes.count == tensor.byteCount)
            for b in bytes { sum &+= Int(b) }
        }
        withExtendedLifetime(sum) {}
    }

    /// A safetensors file: header JSON padded with spaces to a multiple of 8, then data.
    static func file(_ entries: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])],
                     metadata: String? = #"{"format":"pt"}"#) -> [UInt8] {
        var parts: [String] = []
        if let metadata { parts.append(#""__metadata__":"# + metadata) }
        var offset = 0
        var data: [UInt8] = []
        for e in entries {
            parts.append("\"\(e.name)\":{\"dtype\":\"\(e.dtype)\",\"shape\":\(e.shape),\"data_offsets\":[\(offset),\(offset + e.bytes.count)]}")
            offset += e.bytes.count
            data += e.bytes
        }
        var header = Array(("{" + parts.joined(separator: ",") + "}").utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        return withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) } + header + data
    }

    static func seeds() throws -> [(name: String, bytes: [UInt8])] {
        let small: [(name: String, dtype: String, shape: [Int], bytes: [UInt8])] = [
            ("model.embed_tokens.weight", "BF16", [4, 2], [UInt8](repeating: 0x3f, count: 16)),
            ("model.norm.weight", "F32", [2], [0, 0, 0x80, 0x3f, 0, 0, 0x80, 0x3f]),
            ("model.layers.0.self_attn.q_proj.weight", "U8", [1, 4], [0x12, 0x21, 0x00, 0xaa]),
            ("model.layers.0.self_attn.q_proj.weight_scale", "F16", [1], [0x00, 0x3c]),
        ]
        let every = SafetensorsDType.allCases.enumerated().map { i, d in
            (name: "t\(i)", dtype: d.rawValue, shape: [2, 1], bytes: [UInt8](repeating: UInt8(i), count: 2 * d.byteSize))
        }
        return [
            ("small.safetensors", file(small)),
            ("every-dtype.safetensors", file(every, metadata: nil)),
            ("empty-tensors.safetensors", file([("a", "F32", [0], []), ("b", "I64", [], [1, 0, 0, 0, 0, 0, 0, 0])])),
            ("no-tensors.safetensors", file([])),
        ]
    }
}
