/// A model file that cannot be run, or a request the model cannot serve.
/// Each case names the file and the tensor or key at fault.
public enum ModelError: Error, Equatable, CustomStringConvertible {
    case unsupportedArchitecture(path: String, architecture: String)
    case missingKey(path: String, key: String)
    case invalidHyperparameter(path: String, key: String, value: String, reason: String)
    case missingTensor(path: String, tensor: String)
    case tensorShape(path: String, tensor: String, expected: [Int], actual: [Int])
    case unsupportedTensorType(path: String, tensor: String, type: String, reason: String)
    case invalidTensorData(path: String, tensor: String, reason: String)
    case contextOverflow(needed: Int, contextLength: Int)
    case tokenOutOfRange(token: Int32, vocabSize: Int)
    case emptyInput
    /// Loading would need more memory than the machine has available (bytes).
    case insufficientMemory(path: String, needed: Int, available: Int)

    public var description: String {
        switch self {
        case .unsupportedArchitecture(let path, let arch):
            return "\(path): architecture '\(arch)' is not supported (supported: bitnet-b1.58, bitnet-25, bitnet-1.58, bitnet, llama)"
        case .missingKey(let path, let key):
            return "\(path): required metadata key '\(key)' is missing"
        case .invalidHyperparameter(let path, let key, let value, let reason):
            return "\(path): '\(key)' = \(value): \(reason)"
        case .missingTensor(let path, let tensor):
            return "\(path): tensor '\(tensor)' is missing"
        case .tensorShape(let path, let tensor, let expected, let actual):
            return "\(path): tensor '\(tensor)' has shape \(actual), expected \(expected)"
        case .unsupportedTensorType(let path, let tensor, let type, let reason):
            return "\(path): tensor '\(tensor)' has type \(type): \(reason)"
        case .invalidTensorData(let path, let tensor, let reason):
            return "\(path): tensor '\(tensor)': \(reason)"
        case .contextOverflow(let needed, let contextLength):
            return "the sequence needs \(needed) positions but the context holds \(contextLength) (raise --ctx, or shorten the prompt)"
        case .tokenOutOfRange(let token, let vocabSize):
            return "token id \(token) is outside the vocabulary (0..<\(vocabSize))"
        case .emptyInput:
            return "no input tokens"
        case .insufficientMemory(let path, let needed, let available):
            return "\(path): loading needs about \(Self.gib(needed)) of memory for the repacked weights but "
                + "\(Self.gib(available)) is available (MemAvailable): refused before loading rather than killed half-way"
        }
    }

    static func gib(_ bytes: Int) -> String {
        let g = Double(bytes) / Double(1 << 30)
        return g >= 10 ? "\(Int(g.rounded())) GiB" : "\((g * 10).rounded() / 10) GiB"
    }
}
