// Shared by every Swift fuzz target (compiled into each one; see Fuzz/README.md).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
@testable import BitNet

/// What a target provides: `run` is called once per input; `seeds` writes the
/// committed seed corpus (`BITNET_FUZZ_WRITE_SEEDS=dir build/fuzz/<target>`).
protocol FuzzTarget {
    static func setUp()
    static func run(_ data: UnsafeRawBufferPointer)
    static func seeds() throws -> [(name: String, bytes: [UInt8])]
}

extension FuzzTarget {
    static func setUp() {}
}

enum Fuzz {
    /// A private scratch folder per process (libFuzzer's -jobs/-fork run several):
    /// on tmpfs when there is one, so writing each input costs microseconds, not a disk write.
    /// Fuzz/run.sh names it (BITNET_FUZZ_SCRATCH) and removes it after the run, since
    /// libFuzzer may end the process without running exit handlers.
    static let scratch: String = {
        let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp")
        let dir = getenv("BITNET_FUZZ_SCRATCH").map { String(cString: $0) } ?? "\(base)/bitnet-fuzz-\(getpid())"
        mkdir(dir, 0o700)
        atexit { Fuzz.removeScratch() }
        return dir
    }()

    static func removeScratch() {
        // only files this process wrote: plain names, one level deep
        if let d = opendir(scratch) {
            while let e = readdir(d) {
                let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name != "." && name != ".." { unlink("\(scratch)/\(name)") }
            }
            closedir(d)
        }
        rmdir(scratch)
    }

    /// Writes `bytes` to scratch/`name` (replacing it) and returns the path.
    @discardableResult
    static func write(_ bytes: UnsafeRawBufferPointer, name: String) -> String {
        writeFile(bytes, path: "\(scratch)/\(name)")
    }

    @discardableResult
    static func writeFile(_ bytes: UnsafeRawBufferPointer, path: String) -> String {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        precondition(fd >= 0, "fuzz harness: cannot write \(path)")
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            precondition(n > 0, "fuzz harness: short write to \(path)")
            done += n
        }
        close(fd)
        return path
    }

    @discardableResult
    static func write(_ bytes: [UInt8], name: String) -> String {
        bytes.withUnsafeBytes { write($0, name: name) }
    }

    static func remove(_ name: String) { unlink("\(scratch)/\(name)") }

    /// The repository root (this file is Fuzz/swift/FuzzSupport.swift), for fixtures.
    /// swiftc records #filePath as given on its command line (relative under make),
    /// so a relative one is taken from the working directory, the repository root.
    static let repoRoot: String = {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        let root = parts.joined(separator: "/")
        if root.hasPrefix("/") { return root }
        var cwd = [CChar](repeating: 0, count: 4096)
        let here = getcwd(&cwd, cwd.count).map { String(cString: $0) } ?? "."
        return root.isEmpty ? here : "\(here)/\(root)"
    }()

    static func fixtureTokenizer(_ name: String) -> Tokenizer {
        let path = "\(repoRoot)/Tests/BitNetTests/Fixtures/tokenizers/\(name)"
        do { return try Tokenizer(path: path) } catch { fatalError("fuzz harness: fixture \(path): \(error)") }
    }

    /// The 259-token byte-level BPE vocabulary of Tests/BitNetTests/TinyModelFile.swift
    /// (256 byte tokens, one merge "Ġ t", BOS 257, EOS 258), plus optional extra
    /// control tokens (e.g. chat markers) after them.
    static func tinyByteLevelMetadata(extraControl: [String] = [], chatTemplate: String? = nil) -> [(String, GGUFValue)] {
        var tokens = (0..<256).map { String(UnicodeScalar(ByteLevel.byteToScalar[$0])!) }
        tokens += ["Ġt", "<s>", "</s>"] + extraControl
        var types = [Int32](repeating: 1, count: tokens.count)
        for i in 257..<tokens.count { types[i] = 3 }
        var m: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string("llama-bpe")),
            ("tokenizer.ggml.tokens", .array(.string(tokens))),
            ("tokenizer.ggml.token_type", .array(.int32(types))),
            ("tokenizer.ggml.merges", .array(.string(["Ġ t"]))),
            ("tokenizer.ggml.bos_token_id", .uint32(257)),
            ("tokenizer.ggml.eos_token_id", .uint32(258)),
        ]
        if let chatTemplate { m.append(("tokenizer.chat_template", .string(chatTemplate))) }
        return m
    }

    /// A tiny SentencePiece vocabulary: <unk>, <s>, </s>, the 256 <0xNN> byte
    /// tokens, ▁ and a few pieces with scores (llama.cpp's `llama` model).
    static func tinySentencePieceMetadata() -> [(String, GGUFValue)] {
        var tokens = ["<unk>", "<s>", "</s>"]
        var types: [Int32] = [2, 3, 3]
        for b in 0..<256 {
            tokens.append("<0x" + String(b, radix: 16, uppercase: true).leftPadded(to: 2) + ">")
            types.append(6)
        }
        let pieces = ["▁", "▁t", "he", "▁the", "▁a", "in", "é", "▁ü", "中", "文"]
        tokens += pieces
        types += [Int32](repeating: 1, count: pieces.count)
        var scores = [Float](repeating: 0, count: tokens.count)
        for (i, _) in pieces.enumerated() { scores[259 + i] = -Float(i) }
        return [
            ("tokenizer.ggml.model", .string("llama")),
            ("tokenizer.ggml.tokens", .array(.string(tokens))),
            ("tokenizer.ggml.scores", .array(.float32(scores))),
            ("tokenizer.ggml.token_type", .array(.int32(types))),
            ("tokenizer.ggml.bos_token_id", .uint32(1)),
            ("tokenizer.ggml.eos_token_id", .uint32(2)),
            ("tokenizer.ggml.unknown_token_id", .uint32(0)),
            ("tokenizer.ggml.add_bos_token", .bool(true)),
        ]
    }

    /// The chat templates' marker texts (Llama-3 headers, Falcon3 roles and eos): as
    /// control tokens of a tiny vocabulary they let every `ChatTemplate` bind to it.
    static let chatMarkers = ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
                              "<|system|>", "<|user|>", "<|assistant|>", "<|endoftext|>"]

    /// `tinyByteLevelMetadata` as a Tokenizer, without a GGUF file in between.
    static func tinyByteLevelTokenizer(markers: [String] = []) -> Tokenizer {
        do { return try Tokenizer(vocabulary: TokenizerVocabulary(metadata: tinyByteLevelMetadata(extraControl: markers))) }
        catch { fatalError("fuzz harness: tiny byte-level vocabulary: \(error)") }
    }

    /// `tinySentencePieceMetadata` as a Tokenizer.
    static func tinySentencePieceTokenizer() -> Tokenizer {
        do { return try Tokenizer(vocabulary: TokenizerVocabulary(metadata: tinySentencePieceMetadata())) }
        catch { fatalError("fuzz harness: tiny SentencePiece vocabulary: \(error)") }
    }

    /// A file's bytes, written through GGUFWriter to scratch and read back.
    static func ggufBytes(metadata: [(String, GGUFValue)],
                          tensors: [(name: String, dims: [Int], type: GGMLType, data: [UInt8])] = [],
                          alignment: Int = 32) throws -> [UInt8] {
        let path = "\(scratch)/seed.gguf"
        try GGUFWriter.write(to: path, alignment: alignment, metadata: metadata, tensors: tensors)
        defer { unlink(path) }
        return try readFile(path)
    }

    static func readFile(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw SeedError("cannot open \(path)") }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return out
    }

    /// A fixed text through the file's tokenizer: encode, decode, streaming decode.
    static func exercise(_ tokenizer: Tokenizer) {
        let text = "Hello, wörld! 中文 🙂 <|eot_id|> <s>\n\t  x"
        for parseSpecial in [false, true] {
            let ids = tokenizer.encode(text, addSpecial: true, parseSpecial: parseSpecial)
            guard let whole = try? tokenizer.decode(ids, renderSpecial: true) else {
                fatalError("encode produced an id the same tokenizer cannot decode: \(ids)")
            }
            var stream = tokenizer.makeStreamingDecoder(renderSpecial: true)
            var streamed = ""
            for id in ids { streamed += (try? stream.append(id)) ?? "" }
            streamed += stream.finish()
            precondition(streamed == whole, "streaming decode \(streamed.debugDescription) != decode \(whole.debugDescription)")
        }
        for id in [-1, 0, 1, tokenizer.vocabularySize - 1, tokenizer.vocabularySize, Int(Int32.max)] {
            _ = try? tokenizer.tokenBytes(Int32(clamping: id))
            _ = try? tokenizer.tokenText(Int32(clamping: id))
        }
    }

    struct SeedError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }
}

extension TokenizerVocabulary {
    /// A vocabulary from `tokenizer.ggml.*` entries in memory (no GGUF file): the tiny ones above.
    init(metadata: [(String, GGUFValue)]) throws {
        let m = Dictionary(metadata, uniquingKeysWith: { a, _ in a })
        guard case .string(let model)? = m["tokenizer.ggml.model"], let kind = Model(rawValue: model),
              case .array(.string(let tokens))? = m["tokenizer.ggml.tokens"] else { throw Fuzz.SeedError("bad tiny vocabulary") }
        var pre: String? = nil, merges: [String] = [], scores: [Float] = [], types: [Int32] = [], addBOS: Bool? = nil
        if case .string(let p)? = m["tokenizer.ggml.pre"] { pre = p }
        if case .array(.string(let s))? = m["tokenizer.ggml.merges"] { merges = s }
        if case .array(.float32(let s))? = m["tokenizer.ggml.scores"] { scores = s }
        if case .array(.int32(let t))? = m["tokenizer.ggml.token_type"] { types = t }
        if case .bool(let b)? = m["tokenizer.ggml.add_bos_token"] { addBOS = b }
        func id(_ key: String) -> Int32? { m["tokenizer.ggml.\(key)_token_id"]?.intValue.flatMap { Int32(exactly: $0) } }
        self.init(model: kind, pre: pre, tokens: tokens, merges: merges, scores: scores, tokenTypes: types,
                  bosID: id("bos"), eosID: id("eos"), unknownID: id("unknown"), addBOS: addBOS)
    }
}

/// Reads typed values off the front of a fuzz input (structured targets).
struct ByteReader {
    var bytes: UnsafeRawBufferPointer
    var offset = 0
    init(_ b: UnsafeRawBufferPointer) { bytes = b }
    var remaining: Int { bytes.count - offset }
    mutating func u8() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }
    mutating func u16() -> UInt16 { UInt16(u8()) | UInt16(u8()) << 8 }
    mutating func u32() -> UInt32 { UInt32(u16()) | UInt32(u16()) << 16 }
    mutating func rest() -> UnsafeRawBufferPointer {
        defer { offset = bytes.count }
        return UnsafeRawBufferPointer(rebasing: bytes[min(offset, bytes.count)...])
    }
}

extension String {
    func leftPadded(to n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}

// MARK: - libFuzzer entry points

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    // Seed mode: write this target's committed corpus and exit (Fuzz/README.md).
    if let dir = getenv("BITNET_FUZZ_WRITE_SEEDS").map({ String(cString: $0) }) {
        do {
            mkdir(dir, 0o755)
            let seeds = try Target.seeds()
            for s in seeds { s.bytes.withUnsafeBytes { _ = Fuzz.writeFile($0, path: "\(dir)/\(s.name)") } }
            print("wrote \(seeds.count) seeds to \(dir)")
            exit(0)
        } catch {
            print("seed generation failed: \(error)")
            exit(1)
        }
    }
    Target.setUp()
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    Target.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
