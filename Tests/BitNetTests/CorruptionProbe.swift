import Foundation
@testable import BitNet

/// Everything a run derives from a model file, for comparing a corrupted file
/// with its original: the parsed file, the weights, the tokenizer (when the file
/// has one) and the reference model's logits for a fixed prompt.
struct CorruptionProbe {
    /// BOS, "H", "i": ids every variant that loads must still hold (the vocabulary
    /// can only shrink by the loader refusing the file).
    static let prompt: [Int32] = [257, 72, 105]

    let file: GGUFFile
    let weights: ModelWeights
    let tokens: [Int32]?
    let logits: [[Float]]

    init(path: String) throws {
        file = try GGUFFile(path: path)
        weights = try ModelWeights(file: file)
        let tokenizer = file["tokenizer.ggml.model"] == nil ? nil : try Tokenizer(gguf: file)
        tokens = tokenizer?.encode("Hi there, hostile world", addSpecial: true)
        // A vocabulary below the prompt's ids would already have been refused
        // (BOS 257 must name a token), so the reference model is never asked to
        // look up an id it does not have.
        logits = ReferenceModel(weights: weights).logits(tokens: Self.prompt)
    }

    var tokenizerMetadata: [String: GGUFValue] { file.metadata.filter { $0.key.hasPrefix("tokenizer.") } }

    /// Same hyperparameters, tensor table and tensor bytes: nothing the model
    /// computes with differs, whatever else in the file does.
    func computesLike(_ other: CorruptionProbe) -> Bool {
        guard weights.config == other.weights.config, file.tensors == other.file.tensors else { return false }
        return withExtendedLifetime((file, other.file)) {
            file.tensors.allSatisfy { file.data(for: $0).elementsEqual(other.file.data(for: $0)) }
        }
    }
}
