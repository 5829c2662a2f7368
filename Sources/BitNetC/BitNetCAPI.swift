import BitNet
import BitNetCAPIHeader

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The C API (Sources/BitNetCAPIHeader/include/bitnet.h). The Swift names end in
// `Impl`: the header's declarations are imported under the C names.

/// The engine behind `bitnet_model *`.
final class CModel {
    let model: BitNetModel
    let tokenizer: Tokenizer?
    init(model: BitNetModel, tokenizer: Tokenizer?) {
        self.model = model
        self.tokenizer = tokenizer
    }
}

/// The engine behind `bitnet_context *`: one session; it keeps its model alive.
final class CContext {
    let model: CModel
    let session: Session
    init(model: CModel, session: Session) {
        self.model = model
        self.session = session
    }
}

private func object<T: AnyObject>(_ p: OpaquePointer?, as type: T.Type) -> T? {
    p.map { Unmanaged<T>.fromOpaque(UnsafeRawPointer($0)).takeUnretainedValue() }
}

private func retained(_ object: AnyObject) -> OpaquePointer { OpaquePointer(Unmanaged.passRetained(object).toOpaque()) }

private func report(_ error: Error, _ buffer: UnsafeMutablePointer<CChar>?, _ size: Int) {
    guard let buffer, size > 0 else { return }
    let bytes = Array("\(error)".utf8.prefix(size - 1))
    for (i, b) in bytes.enumerated() { buffer[i] = CChar(bitPattern: b) }
    buffer[bytes.count] = 0
}

/// A field of a caller's params struct, when its `struct_size` covers it (older callers
/// pass smaller structs); otherwise `fallback`.
private func field<S, V>(_ params: UnsafePointer<S>?, _ path: KeyPath<S, V>, size: KeyPath<S, UInt32>, _ fallback: V) -> V {
    guard let params, let offset = MemoryLayout<S>.offset(of: path) else { return fallback }
    return Int(params.pointee[keyPath: size]) >= offset + MemoryLayout<V>.size ? params.pointee[keyPath: path] : fallback
}

struct CAPIError: Error, CustomStringConvertible {
    let description: String
}

@_cdecl("bitnet_version")
public func versionImpl() -> UnsafePointer<CChar> { UnsafePointer(versionString) }
nonisolated(unsafe) private let versionString: UnsafeMutablePointer<CChar> = strdup(LibraryVersion.string)! // written once, never freed

@_cdecl("bitnet_abi_version")
public func abiVersionImpl() -> Int32 { BITNET_ABI_VERSION }

@_cdecl("bitnet_model_load")
public func modelLoadImpl(_ path: UnsafePointer<CChar>?, _ params: UnsafePointer<bitnet_model_params>?,
                          _ errorBuffer: UnsafeMutablePointer<CChar>?, _ errorSize: Int) -> OpaquePointer? {
    guard let path else { report(ModelError.emptyInput, errorBuffer, errorSize); return nil }
    let size = \bitnet_model_params.struct_size
    let threads = field(params, \.threads, size: size, 0), headQ8 = field(params, \.head_q8, size: size, 0)
    let context = field(params, \.context_length, size: size, 0), kvF16 = field(params, \.kv_f16, size: size, 0)
    do {
        let weights = try ModelWeights(path: String(cString: path))
        let model = try BitNetModel(weights: weights, contextLength: context > 0 ? Int(context) : nil,
                                    threads: threads > 0 ? Int(threads) : nil, headPrecision: headQ8 != 0 ? .q8 : .f16,
                                    kvPrecision: kvF16 != 0 ? .f16 : .f32)
        return retained(CModel(model: model, tokenizer: try? Tokenizer(gguf: weights.file)))
    } catch {
        report(error, errorBuffer, errorSize)
        return nil
    }
}

@_cdecl("bitnet_model_free")
public func modelFreeImpl(_ model: OpaquePointer?) {
    guard let model else { return }
    Unmanaged<CModel>.fromOpaque(UnsafeRawPointer(model)).release()
}

@_cdecl("bitnet_vocab_size")
public func vocabSizeImpl(_ model: OpaquePointer?) -> Int32 {
    Int32(clamping: object(model, as: CModel.self)?.model.config.vocabSize ?? -1)
}

@_cdecl("bitnet_tokenize")
public func tokenizeImpl(_ model: OpaquePointer?, _ text: UnsafePointer<CChar>?, _ addBOS: Int32,
                         _ tokens: UnsafeMutablePointer<Int32>?, _ capacity: Int32) -> Int32 {
    guard let m = object(model, as: CModel.self), let tokenizer = m.tokenizer, let text else { return -1 }
    let bytes = Array(UnsafeBufferPointer(start: UnsafeRawPointer(text).assumingMemoryBound(to: UInt8.self),
                                          count: strlen(text)))
    let ids = tokenizer.encode(bytes: bytes, addSpecial: addBOS != 0)
    if let tokens { for (i, id) in ids.prefix(Int(max(0, capacity))).enumerated() { tokens[i] = id } }
    return Int32(clamping: ids.count)
}

@_cdecl("bitnet_token_to_bytes")
public func tokenToBytesImpl(_ model: OpaquePointer?, _ token: Int32, _ buffer: UnsafeMutablePointer<CChar>?,
                             _ capacity: Int32) -> Int32 {
    guard let m = object(model, as: CModel.self), let tokenizer = m.tokenizer,
          let bytes = try? tokenizer.tokenBytes(token) else { return -1 }
    if let buffer, capacity > 0 {
        let n = min(bytes.count, Int(capacity) - 1)
        for i in 0..<n { buffer[i] = CChar(bitPattern: bytes[i]) }
        buffer[n] = 0
    }
    return Int32(clamping: bytes.count)
}

@_cdecl("bitnet_context_new")
public func contextNewImpl(_ model: OpaquePointer?, _ params: UnsafePointer<bitnet_context_params>?,
                           _ errorBuffer: UnsafeMutablePointer<CChar>?, _ errorSize: Int) -> OpaquePointer? {
    guard let m = object(model, as: CModel.self) else {
        report(CAPIError(description: "bitnet_context_new: the model is NULL"), errorBuffer, errorSize)
        return nil
    }
    let size = \bitnet_context_params.struct_size
    let length = field(params, \.context_length, size: size, 0), kvF16 = field(params, \.kv_f16, size: size, -1)
    do {
        let session = try m.model.makeSession(contextLength: length > 0 ? Int(length) : nil,
                                              kvPrecision: kvF16 < 0 ? nil : kvF16 == 0 ? .f32 : .f16)
        return retained(CContext(model: m, session: session))
    } catch {
        report(error, errorBuffer, errorSize)
        return nil
    }
}

@_cdecl("bitnet_context_free")
public func contextFreeImpl(_ context: OpaquePointer?) {
    guard let context else { return }
    Unmanaged<CContext>.fromOpaque(UnsafeRawPointer(context)).release()
}

@_cdecl("bitnet_context_length")
public func contextLengthImpl(_ context: OpaquePointer?) -> Int32 {
    Int32(clamping: object(context, as: CContext.self)?.session.contextLength ?? -1)
}

@_cdecl("bitnet_cache_length")
public func cacheLengthImpl(_ context: OpaquePointer?) -> Int32 {
    Int32(clamping: object(context, as: CContext.self)?.session.count ?? -1)
}

@_cdecl("bitnet_reset")
public func resetImpl(_ context: OpaquePointer?) { object(context, as: CContext.self)?.session.reset() }

@_cdecl("bitnet_eval")
public func evalImpl(_ context: OpaquePointer?, _ tokens: UnsafePointer<Int32>?, _ n: Int32,
                     _ logits: UnsafeMutablePointer<Float>?, _ errorBuffer: UnsafeMutablePointer<CChar>?,
                     _ errorSize: Int) -> Int32 {
    guard let c = object(context, as: CContext.self), let tokens, n > 0 else {
        report(ModelError.emptyInput, errorBuffer, errorSize)
        return -1
    }
    do {
        let out = try c.session.forward(Array(UnsafeBufferPointer(start: tokens, count: Int(n))))
        if let logits { for (i, v) in out.enumerated() { logits[i] = v } }
        return 0
    } catch {
        report(error, errorBuffer, errorSize)
        return -1
    }
}

@_cdecl("bitnet_generate")
public func generateImpl(_ context: OpaquePointer?, _ prompt: UnsafePointer<CChar>?, _ maxTokens: Int32,
                         _ temperature: Float, _ seed: UInt64,
                         _ callback: (@convention(c) (UnsafePointer<CChar>?, Int32, UnsafeMutableRawPointer?) -> Int32)?,
                         _ user: UnsafeMutableRawPointer?, _ errorBuffer: UnsafeMutablePointer<CChar>?,
                         _ errorSize: Int) -> Int32 {
    guard let c = object(context, as: CContext.self), let prompt else {
        report(ModelError.emptyInput, errorBuffer, errorSize)
        return -1
    }
    guard let tokenizer = c.model.tokenizer else {
        report(ModelError.missingKey(path: c.model.model.weights.file.path, key: "tokenizer.ggml.tokens"), errorBuffer, errorSize)
        return -1
    }
    var sampling = SamplingParameters()
    sampling.temperature = temperature.isFinite ? max(0, temperature) : 0
    sampling.seed = seed
    let generator = Generator(session: c.session, stopTokens: tokenizer.endOfGenerationIDs)
    var decoder = tokenizer.makeStreamingDecoder()
    do {
        let stats = try generator.generate(prompt: tokenizer.encode(String(cString: prompt)), maxTokens: Int(maxTokens),
                                           sampling: sampling) { token in
            let text = tokenizer.endOfGenerationIDs.contains(token) ? "" : try decoder.append(token)
            guard let callback else { return true }
            return text.withCString { callback($0, token, user) } == 0
        }
        return Int32(clamping: stats.generatedTokens)
    } catch {
        report(error, errorBuffer, errorSize)
        return -1
    }
}
