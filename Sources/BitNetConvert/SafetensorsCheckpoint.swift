import BitNet
import BitNetJSON
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// All tensors of a Hugging Face checkpoint folder: `model.safetensors`, or the
/// shards named by `model.safetensors.index.json` (`weight_map`: tensor → file),
/// or, lacking both, every `*.safetensors` file in the folder.
final class SafetensorsCheckpoint: @unchecked Sendable {
    let folder: String
    /// The file to name in "missing tensor" errors: the index or the single file.
    let source: String
    private(set) var tensors: [String: SafetensorsTensor] = [:]
    private var files: [String: SafetensorsFile] = [:]

    static let indexName = "model.safetensors.index.json"

    init(folder: String) throws {
        self.folder = folder
        let indexPath = "\(folder)/\(Self.indexName)"
        let singlePath = "\(folder)/model.safetensors"
        if FileBytes.exists(indexPath) {
            source = indexPath
            let index = try JSONValue.read(path: indexPath, what: Self.indexName)
            guard let map = index["weight_map"]?.object else {
                throw ConvertError.invalidJSON(path: indexPath, reason: "no 'weight_map' object")
            }
            for (name, value) in map {
                guard let shard = value.string, !shard.isEmpty, !shard.hasPrefix("/"),
                      !shard.split(separator: "/").contains("..") else {
                    throw ConvertError.invalidJSON(path: indexPath, reason: "weight_map['\(name)'] is not a file name")
                }
                let file = try open("\(folder)/\(shard)")
                guard let tensor = file.tensors[name] else {
                    throw ConvertError.missingTensor(path: file.path, tensor: name)
                }
                tensors[name] = tensor
            }
        } else if FileBytes.exists(singlePath) {
            source = singlePath
            tensors = try open(singlePath).tensors
        } else {
            let shards = Self.listSafetensors(folder)
            guard !shards.isEmpty else {
                if FileBytes.exists("\(folder)/pytorch_model.bin") || FileBytes.exists("\(folder)/pytorch_model.bin.index.json") {
                    throw ConvertError.notSupported(what: "\(folder): PyTorch .bin checkpoints (save them as safetensors first)")
                }
                throw ConvertError.missingFile(path: singlePath, what: "model.safetensors (or \(Self.indexName))")
            }
            source = folder
            for shard in shards {
                for (name, tensor) in try open("\(folder)/\(shard)").tensors {
                    guard tensors[name] == nil else {
                        throw ConvertError.invalidTensor(path: tensor.path, tensor: name, reason: "appears in more than one shard")
                    }
                    tensors[name] = tensor
                }
            }
        }
    }

    private func open(_ path: String) throws -> SafetensorsFile {
        if let f = files[path] { return f }
        let f = try SafetensorsFile(path: path)
        files[path] = f
        return f
    }

    func bytes(of tensor: SafetensorsTensor) -> UnsafeRawBufferPointer {
        files[tensor.path]?.bytes(of: tensor) ?? UnsafeRawBufferPointer(start: nil, count: 0)
    }

    func release(_ tensor: SafetensorsTensor) {
        files[tensor.path]?.release(tensor)
    }

    /// Releases elements [start, start+count) of `tensor` only.
    func release(_ tensor: SafetensorsTensor, elements start: Int, count: Int) {
        let size = tensor.dtype.byteSize
        files[tensor.path]?.map.release(offset: tensor.offset + start * size, count: count * size)
    }

    /// Total bytes of the shards' data (for progress and memory reports).
    var totalTensorBytes: Int { tensors.values.reduce(0) { $0 + $1.byteCount } }

    private static func listSafetensors(_ folder: String) -> [String] {
        guard let dir = opendir(folder) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasSuffix(".safetensors") { names.append(name) }
        }
        return names.sorted()
    }
}
