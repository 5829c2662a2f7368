import BitNet
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything that can stop a Hugging Face → GGUF conversion. Each case names
/// the file at fault and, where one is involved, the tensor or JSON key, so the
/// message alone says where to look.
public enum ConvertError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A required file (config.json, a shard, a tokenizer) does not exist.
    case missingFile(path: String, what: String)
    /// A system call on `path` failed.
    case io(path: String, operation: String, errno: Int32)
    /// `path` is a directory, FIFO, socket or device where a file was expected.
    case notARegularFile(path: String, what: String)
    /// A whole-file read (JSON, tokenizer) larger than `limit` bytes, refused before reading.
    case fileTooLarge(path: String, what: String, size: Int, limit: Int)
    /// The file is not valid JSON, or not the JSON shape expected.
    case invalidJSON(path: String, reason: String)
    /// A config value is missing, of the wrong type, or out of range.
    case invalidConfig(path: String, key: String, reason: String)
    /// `architectures` / `model_type` names a model this converter cannot write.
    case unsupportedArchitecture(path: String, architecture: String)
    /// The safetensors container itself is broken (header length, header JSON).
    case invalidSafetensors(path: String, reason: String)
    /// A tensor entry has a dtype string we do not know.
    case unknownDType(path: String, tensor: String, dtype: String)
    /// A tensor's dtype is known but cannot be used where it appears.
    case unsupportedDType(path: String, tensor: String, dtype: String, reason: String)
    /// A tensor entry's offsets or size are inconsistent with its shape or the file.
    case invalidTensor(path: String, tensor: String, reason: String)
    /// A tensor the model needs is in no shard (`path` is the folder or the index).
    case missingTensor(path: String, tensor: String)
    /// A tensor's shape disagrees with config.json.
    case tensorShape(path: String, tensor: String, expected: [Int], actual: [Int])
    /// A checkpoint tensor that no GGUF tensor would use (dropping it silently
    /// could give a wrong model, e.g. an extra per-projection norm).
    case unexpectedTensor(path: String, tensor: String)
    /// The tensor's values cannot be converted (non-finite scale, bad packing).
    case invalidTensorData(path: String, tensor: String, reason: String)
    /// tokenizer.json / tokenizer.model / tokenizer_config.json content problem.
    case invalidTokenizer(path: String, reason: String)
    /// A requested option that this converter does not implement yet.
    case notSupported(what: String)
    /// The written file, re-read, does not match the plan.
    case verificationFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .missingFile(let path, let what):
            return "\(path): \(what) not found"
        case .io(let path, let operation, let code):
            let message = strerror(code).map { String(cString: $0) } ?? "unknown error"
            return "\(path): \(operation) failed: \(message) (errno \(code))"
        case .notARegularFile(let path, let what):
            return "\(path): \(what) is not a regular file (a directory, FIFO or device)"
        case .fileTooLarge(let path, let what, let size, let limit):
            return "\(path): \(what) is \(size) bytes, more than the \(limit >> 20) MiB this converter reads whole"
        case .invalidJSON(let path, let reason):
            return "\(path): invalid JSON: \(reason)"
        case .invalidConfig(let path, let key, let reason):
            return "\(path): '\(key)': \(reason)"
        case .unsupportedArchitecture(let path, let architecture):
            return "\(path): architecture '\(architecture)' is not supported " +
                "(supported: BitNetForCausalLM (2B4T), BitnetForCausalLM (1bitLLM), LlamaForCausalLM with ternary weights)"
        case .invalidSafetensors(let path, let reason):
            return "\(path): not a valid safetensors file: \(reason)"
        case .unknownDType(let path, let tensor, let dtype):
            return "\(path): tensor '\(tensor)': unknown dtype '\(dtype)' (known: BF16, F16, F32, F64, U8, I8, I16, I32, I64, BOOL)"
        case .unsupportedDType(let path, let tensor, let dtype, let reason):
            return "\(path): tensor '\(tensor)': dtype \(dtype) \(reason)"
        case .invalidTensor(let path, let tensor, let reason):
            return "\(path): tensor '\(tensor)': \(reason)"
        case .missingTensor(let path, let tensor):
            return "\(path): tensor '\(tensor)' is missing from the checkpoint"
        case .tensorShape(let path, let tensor, let expected, let actual):
            return "\(path): tensor '\(tensor)' has shape \(actual) but config.json implies \(expected)"
        case .unexpectedTensor(let path, let tensor):
            return "\(path): tensor '\(tensor)' is not part of the model this converter writes (it would be dropped)"
        case .invalidTensorData(let path, let tensor, let reason):
            return "\(path): tensor '\(tensor)': \(reason)"
        case .invalidTokenizer(let path, let reason):
            return "\(path): \(reason)"
        case .notSupported(let what):
            return "not supported yet: \(what)"
        case .verificationFailed(let path, let reason):
            return "\(path): the written file failed its check: \(reason)"
        }
    }
}
