import BitNet

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The engine behind `bitnet_model *` (Sources/BitNetC/include/bitnet.h).
final class CModel {
    let model: BitNetModel
    let tokenizer: Tokenizer?
    init(model: BitNetModel, tokenizer: Tokenizer?) {
        self.model = model
        self.tokenizer = tokenizer
    }
}

private func handle(_ p: OpaquePointer?) -> CModel? {
    p.map { Unmanaged<CModel>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue() }
}

private func report(_ error: Error, _ buffer: UnsafeMutablePointer<CChar>?, _ size: Int) {
    guard let buffer, size > 0 else { return }
    let bytes = Array("\(error)".utf8.prefix(size - 1))
    for (i, b) in bytes.enumerated() { buffer[i] = CChar(bitPattern: b) }
    buffer[bytes.count] = 0
}

@_cdecl("bitnet_version")
public func bitnet_version() -> UnsafePointer<CChar> {
    UnsafePointer(versionString)
}
nonisolated(unsafe) private let versionString: UnsafeMutablePointer<CChar> = strdup("bitnet.swift 0.1")! // written once, never freed

@_cdecl("bitnet_model_load")
public func bitnet_model_load(_ path: UnsafePointer<CChar>?, _ params: UnsafeRawPointer?,
                              _ errorBuffer: UnsafeMutablePointer<CChar>?, _ errorSize: Int) -> OpaquePointer? {
    guard let path else { report(ModelError.emptyInput, errorBuffer, errorSize); return nil }
    let p = params?.loadUnaligned(as: (Int32, Int32, Int32, Int32).self) ?? (0, 0, 0, 0) // bitnet_params
    do {
        let weights = try ModelWeights(path: String(cString: path))
        let model = try BitNetModel(weights: weights, contextLength: p.1 > 0 ? Int(p.1) : nil,
                                    threads: p.0 > 0 ? Int(p.0) : nil, headPrecision: p.2 != 0 ? .q8 : .f16,
                                    kvPrecision: p.3 != 0 ? .f16 : .f32)
        let box = CModel(model: model, tokenizer: try? Tokenizer(gguf: weights.file))
        return OpaquePointer(Unmanaged.passRetained(box).toOpaque())
    } catch {
        report(error, errorBuffer, errorSize)
        return nil
    }
}

@_cdecl("bitnet_model_free")
public func bitnet_model_free(_ model: OpaquePointer?) {
    guard let model else { return }
    Unmanaged<CModel>.fromOpaque(UnsafeRawPointer(model)).release()
}

@_cdecl("bitnet_vocab_size")
public func bitnet_vocab_size(_ model: OpaquePointer?) -> Int32 { Int32(handle(model)?.model.config.vocabSize ?? -1) }

@_cdecl("bitnet_context_length")
public func bitnet_context_length(_ model: OpaquePointer?) -> Int32 { Int32(handle(model)?.model.cache.capacity ?? -1) }

@_cdecl("bitnet_cache_length")
public func bitnet_cache_length(_ model: OpaquePointer?) -> Int32 { Int32(handle(model)?.model.cache.count ?? -1) }

@_cdecl("bitnet_reset")
public func bitnet_reset(_ model: OpaquePointer?) { handle(model)?.model.cache.reset() }

@_cdecl("bitnet_tokenize")
public func bitnet_tokenize(_ model: OpaquePointer?, _ text: UnsafePointer<CChar>?, _ addBOS: Int32,
                            _ tokens: UnsafeMutablePointer<Int32>?, _ capacity: Int32) -> Int32 {
    guard let m = handle(model), let tokenizer = m.tokenizer, let text else { return -1 }
    let bytes = Array(UnsafeBufferPointer(start: UnsafeRawPointer(text).assumingMemoryBound(to: UInt8.self),
                                          count: strlen(text)))
    let ids = tokenizer.encode(bytes: bytes, addSpecial: addBOS != 0)
    if let tokens { for (i, id) in ids.prefix(Int(max(0, capacity))).enumerated() { tokens[i] = id } }
    return Int32(ids.count)
}

@_cdecl("bitnet_token_to_bytes")
public func bitnet_token_to_bytes(_ model: OpaquePointer?, _ token: Int32, _ buffer: UnsafeMutablePointer<CChar>?,
                                  _ capacity: Int32) -> Int32 {
    guard let m = handle(model), let tokenizer = m.tokenizer, let bytes = try? tokenizer.tokenBytes(token) else { return -1 }
    if let buffer, capacity > 0 {
        let n = min(bytes.count, Int(capacity) - 1)
        for i in 0..<n { buffer[i] = CChar(bitPattern: bytes[i]) }
        buffer[n] = 0
    }
    return Int32(bytes.count)
}

@_cdecl("bitnet_eval")
public func bitnet_eval(_ model: OpaquePointer?, _ tokens: UnsafePointer<Int32>?, _ n: Int32,
                        _ logits: UnsafeMutablePointer<Float>?, _ errorBuffer: UnsafeMutablePointer<CChar>?,
                        _ errorSize: Int) -> Int32 {
    guard let m = handle(model), let tokens, n > 0 else { report(ModelError.emptyInput, errorBuffer, errorSize); return -1 }
    do {
        let out = try m.model.forward(Array(UnsafeBufferPointer(start: tokens, count: Int(n))))
        if let logits { for (i, v) in out.enumerated() { logits[i] = v } }
        return 0
    } catch {
        report(error, errorBuffer, errorSize)
        return -1
    }
}

@_cdecl("bitnet_generate")
public func bitnet_generate(_ model: OpaquePointer?, _ prompt: UnsafePointer<CChar>?, _ maxTokens: Int32,
                            _ temperature: Float, _ seed: UInt64,
                            _ callback: (@convention(c) (UnsafePointer<CChar>?, Int32, UnsafeMutableRawPointer?) -> Int32)?,
                            _ user: UnsafeMutableRawPointer?, _ errorBuffer: UnsafeMutablePointer<CChar>?,
                            _ errorSize: Int) -> Int32 {
    guard let m = handle(model), let prompt else { report(ModelError.emptyInput, errorBuffer, errorSize); return -1 }
    guard let tokenizer = m.tokenizer else {
        report(ModelError.missingKey(path: m.model.weights.file.path, key: "tokenizer.ggml.tokens"), errorBuffer, errorSize)
        return -1
    }
    var sampling = SamplingParameters()
    sampling.temperature = max(0, temperature)
    sampling.seed = seed
    let generator = Generator(model: m.model, stopTokens: tokenizer.endOfGenerationIDs)
    var decoder = tokenizer.makeStreamingDecoder()
    do {
        let stats = try generator.generate(prompt: tokenizer.encode(String(cString: prompt)), maxTokens: Int(maxTokens),
                                           sampling: sampling) { token in
            let text = tokenizer.endOfGenerationIDs.contains(token) ? "" : try decoder.append(token)
            guard let callback else { return true }
            return text.withCString { callback($0, token, user) } == 0
        }
        return Int32(stats.generatedTokens)
    } catch {
        report(error, errorBuffer, errorSize)
        return -1
    }
}
