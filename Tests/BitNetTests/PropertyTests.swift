import Foundation
import XCTest
@testable import BitNet
@testable import BitNetConvert

/// Properties checked on many generated cases instead of a few examples. Each
/// property draws its cases from its own seeded generator (SplitMix64, the
/// library's `SeededGenerator`), so a run is reproducible: a failure names the
/// property's base seed and the case's index and seed, and
/// `BITNET_PROPERTY_SEED=<seed>` replays that case first (same base for all
/// properties), `BITNET_PROPERTY_CASES=<n>` scales how many run.
final class PropertyTests: XCTestCase {
    // MARK: - Case runner

    /// Runs `body` on `cases` generators seeded from `base` (or the replay seed).
    /// Stops at the first failing case so the report names one reproducible seed.
    private func forAll(_ name: String, base: UInt64, cases: Int,
                        file: StaticString = #filePath, line: UInt = #line,
                        _ body: (inout SeededGenerator, _ failures: inout [String]) throws -> Void) rethrows {
        let env = ProcessInfo.processInfo.environment
        let scale = env["BITNET_PROPERTY_CASES"].flatMap(Int.init).map { max(1, $0) }
        var seeds: [UInt64] = []
        if let replay = env["BITNET_PROPERTY_SEED"].flatMap(UInt64.init) { seeds.append(replay) }
        var seeder = SeededGenerator(seed: base)
        for _ in 0..<(scale ?? cases) { seeds.append(seeder.next()) }
        for (index, seed) in seeds.enumerated() {
            var rng = SeededGenerator(seed: seed)
            var failures: [String] = []
            try body(&rng, &failures)
            if !failures.isEmpty {
                XCTFail("\(name): case \(index) failed (replay: BITNET_PROPERTY_SEED=\(seed)): "
                        + failures.prefix(3).joined(separator: "; "), file: file, line: line)
                return
            }
        }
    }

    // MARK: - Generators

    private static func int(_ rng: inout SeededGenerator, _ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(rng.next() % UInt64(range.count))
    }

    /// Unicode scalars from the classes that trouble tokenizers: ASCII (letters, digits,
    /// punctuation, whitespace, control characters, NUL), Latin-1, combining marks,
    /// CJK, Hangul, RTL scripts, emoji with skin tones, ZWJ and flags, variation
    /// selectors, private use, BOM, noncharacters, and U+FFFD itself. Swift Strings
    /// hold scalars only, so lone surrogates cannot occur; invalid UTF-8 is covered
    /// separately by the byte-level properties below.
    private static func scalar(_ rng: inout SeededGenerator) -> Unicode.Scalar {
        let ranges: [ClosedRange<UInt32>] = [
            0x20...0x7E, 0x20...0x7E, 0x20...0x7E, 0x30...0x39, 0x00...0x1F, 0x7F...0x7F,
            0xA0...0xFF, 0x100...0x24F, 0x300...0x36F, 0x370...0x3FF, 0x400...0x4FF,
            0x590...0x5FF, 0x600...0x6FF, 0x900...0x97F, 0x0E00...0x0E7F, 0x1100...0x11FF,
            0x2000...0x206F, 0x2190...0x21FF, 0x2581...0x2581, 0x3000...0x303F, 0x3040...0x30FF,
            0x4E00...0x9FFF, 0xAC00...0xD7A3, 0xE000...0xF8FF, 0xFE00...0xFE0F, 0xFEFF...0xFEFF,
            0xFFF0...0xFFFF, 0x1F300...0x1F64F, 0x1F3FB...0x1F3FF, 0x1F1E6...0x1F1FF, 0x200D...0x200D,
            0x1F900...0x1F9FF, 0x20000...0x2A6DF, 0xE0000...0xE007F, 0x10FFFE...0x10FFFF,
        ]
        let r = ranges[int(&rng, 0...(ranges.count - 1))]
        while true {
            let v = r.lowerBound + UInt32(rng.next() % UInt64(r.upperBound - r.lowerBound + 1))
            if let s = Unicode.Scalar(v) { return s }
        }
    }

    /// A string of 0…40 scalars; runs of spaces and newlines are more likely than
    /// uniform draws would make them, since pre-tokenizers treat them specially.
    private static func string(_ rng: inout SeededGenerator, excluding excluded: Set<Unicode.Scalar> = []) -> String {
        var s = String.UnicodeScalarView()
        let n = int(&rng, 0...40)
        while s.count < n {
            let c: Unicode.Scalar
            switch rng.next() % 8 {
            case 0: c = [" ", " ", "\n", "\t", "\r"][int(&rng, 0...4)]
            default: c = scalar(&rng)
            }
            if !excluded.contains(c) { s.append(c) }
        }
        return String(s)
    }

    // MARK: - Tokenizer round trip

    private static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tokenizers")

    // Loaded once for the whole class (the Llama-3 vocabulary takes ~1 s in a debug build).
    private static let loaded: [String: Result<Tokenizer, Error>] = Dictionary(uniqueKeysWithValues:
        ["llama-bpe", "gpt-2", "llama-spm"].map { name in
            (name, Result { try Tokenizer(path: fixtures.appendingPathComponent("ggml-vocab-\(name).gguf").path) })
        })

    private static func fixture(_ name: String) throws -> Tokenizer { try loaded[name]!.get() }

    /// decode(encode(s)) == s, compared as UTF-8 bytes (Swift's `==` on String is
    /// canonical equivalence: "e\u{301}" == "é", which would hide a tokenizer that
    /// normalizes). Holds exactly for:
    /// - the byte-level BPE fixtures (Llama-3 `llama-bpe`, `gpt-2`) and the tiny
    ///   259-token vocabulary: every byte has a token, the pre-tokenizer only splits,
    ///   nothing is normalized; any Unicode string, any byte string;
    /// - the SentencePiece fixture (`llama-spm`) with byte fallback, for every string
    ///   without U+2581 '▁': SentencePiece writes spaces as ▁ and decodes every ▁ back to
    ///   a space, so a ▁ in the input comes back as ' ' (checked below as exactly that
    ///   substitution); the dummy-prefix space it adds is removed again by decode.
    /// Special-token text ("<|eot_id|>", "<s>") is plain text here (parseSpecial off),
    /// so it round-trips too.
    func testTokenizerRoundTripOnArbitraryUnicode() throws {
        let byteLevel = [("llama-bpe", try Self.fixture("llama-bpe")), ("gpt-2", try Self.fixture("gpt-2")),
                         ("tiny", try Tokenizer(vocabulary: Self.tinyVocabulary()))]
        let spm = try Self.fixture("llama-spm")
        let specials = ["<|eot_id|>", "<|begin_of_text|>", "<s>", "</s>", "<unk>", "<|endoftext|>"]
        try forAll("tokenizer round trip", base: 0x70C3, cases: 500) { rng, failures in
            var s = Self.string(&rng)
            if rng.next() % 4 == 0 { s += specials[Self.int(&rng, 0...(specials.count - 1))] + Self.string(&rng) }
            for (name, t) in byteLevel {
                let ids = t.encode(s, addSpecial: false)
                let back = try t.decodeBytes(ids)
                if back != Array(s.utf8) { failures.append("\(name): \(s.debugDescription) -> \(ids) -> \(String(decoding: back, as: UTF8.self).debugDescription)") }
                // and with BOS added: decode leaves control tokens out
                if try t.decodeBytes(t.encode(s, addSpecial: true)) != Array(s.utf8) { failures.append("\(name) with BOS: \(s.debugDescription)") }
            }
            let ids = spm.encode(s, addSpecial: false)
            // per scalar, not per Character: "▁" followed by a combining mark is one Character
            let expected = Array(String(String.UnicodeScalarView(s.unicodeScalars.map { $0 == "\u{2581}" ? " " : $0 })).utf8)
            let back = try spm.decodeBytes(ids)
            if back != expected {
                let at = zip(back, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(back.count, expected.count)
                failures.append("llama-spm: \(s.debugDescription) -> \(ids) -> \(String(decoding: back, as: UTF8.self).debugDescription)"
                                + ", first difference at byte \(at): got \(back[at...].prefix(8)), want \(expected[at...].prefix(8))")
            }
        }
    }

    /// Byte-level BPE round-trips any bytes, not only valid UTF-8 (encode(bytes:)).
    func testByteLevelRoundTripOnArbitraryBytes() throws {
        let tokenizers = [("llama-bpe", try Self.fixture("llama-bpe")), ("gpt-2", try Self.fixture("gpt-2"))]
        try forAll("byte-level round trip", base: 0xB17E, cases: 500) { rng, failures in
            var bytes = (0..<Self.int(&rng, 0...48)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            // bias towards UTF-8 lead and continuation bytes so partial sequences are common
            for i in bytes.indices where rng.next() % 3 == 0 { bytes[i] = [0xC3, 0xE2, 0xF0, 0x80, 0xBF, 0x20][Self.int(&rng, 0...5)] }
            for (name, t) in tokenizers {
                let ids = t.encode(bytes: bytes, addSpecial: false)
                if try t.decodeBytes(ids) != bytes { failures.append("\(name): \(bytes) -> \(ids)") }
            }
        }
    }

    /// Streaming decode token by token gives exactly the text of a whole decode,
    /// for random id sequences (which often split and break UTF-8 sequences).
    func testStreamingDecodeEqualsWholeDecode() throws {
        let tokenizers = [("llama-bpe", try Self.fixture("llama-bpe")), ("llama-spm", try Self.fixture("llama-spm")),
                          ("tiny", try Tokenizer(vocabulary: Self.tinyVocabulary()))]
        try forAll("streaming decode", base: 0x57E4, cases: 500) { rng, failures in
            for (name, t) in tokenizers {
                // mostly byte and low ids (partial characters), some anywhere in the vocabulary
                let ids = (0..<Self.int(&rng, 0...24)).map { _ in
                    Int32(rng.next() % 2 == 0 ? Self.int(&rng, 0...min(300, t.vocabularySize - 1)) : Self.int(&rng, 0...(t.vocabularySize - 1)))
                }
                let render = rng.next() % 2 == 0
                let whole = try t.decode(ids, renderSpecial: render)
                var stream = t.makeStreamingDecoder(renderSpecial: render)
                var text = ""
                for id in ids { text += try stream.append(id) }
                text += stream.finish()
                if Array(text.utf8) != Array(whole.utf8) { failures.append("\(name): \(ids): \(text.debugDescription) != \(whole.debugDescription)") }
            }
        }
    }

    private static func tinyVocabulary() -> TokenizerVocabulary {
        let tokens = (0..<256).map { String(UnicodeScalar(ByteLevel.byteToScalar[$0])!) } + ["Ġt", "<s>", "</s>"]
        return TokenizerVocabulary(model: .gpt2, pre: "llama-bpe", tokens: tokens, merges: ["Ġ t"],
                                   tokenTypes: [Int32](repeating: 1, count: 257) + [3, 3], bosID: 257, eosID: 258)
    }

    // MARK: - GGUF write → read identity

    private static func randomValue(_ rng: inout SeededGenerator, depth: Int = 0) -> GGUFValue {
        func r<T: FixedWidthInteger>(_: T.Type) -> T { T(truncatingIfNeeded: rng.next()) }
        switch rng.next() % 13 {
        case 0: return .uint8(r(UInt8.self))
        case 1: return .int8(r(Int8.self))
        case 2: return .uint16(r(UInt16.self))
        case 3: return .int16(r(Int16.self))
        case 4: return .uint32(r(UInt32.self))
        case 5: return .int32(r(Int32.self))
        case 6: return .float32(Float(bitPattern: r(UInt32.self)))  // NaNs, infinities, subnormals included
        case 7: return .bool(rng.next() % 2 == 0)
        case 8: return .string(string(&rng))
        case 9: return .uint64(rng.next())
        case 10: return .int64(r(Int64.self))
        case 11: return .float64(Double(bitPattern: rng.next()))
        default: return .array(randomArray(&rng, depth: depth))
        }
    }

    private static func randomArray(_ rng: inout SeededGenerator, depth: Int) -> GGUFArray {
        let n = int(&rng, 0...6)
        func list<T>(_ make: (inout SeededGenerator) -> T) -> [T] { (0..<n).map { _ in make(&rng) } }
        switch rng.next() % (depth < 2 ? 13 : 12) {
        case 0: return .uint8(list { UInt8(truncatingIfNeeded: $0.next()) })
        case 1: return .int8(list { Int8(truncatingIfNeeded: $0.next()) })
        case 2: return .uint16(list { UInt16(truncatingIfNeeded: $0.next()) })
        case 3: return .int16(list { Int16(truncatingIfNeeded: $0.next()) })
        case 4: return .uint32(list { UInt32(truncatingIfNeeded: $0.next()) })
        case 5: return .int32(list { Int32(truncatingIfNeeded: $0.next()) })
        case 6: return .float32(list { Float(bitPattern: UInt32(truncatingIfNeeded: $0.next())) })
        case 7: return .bool(list { $0.next() % 2 == 0 })
        case 8: return .string(list { string(&$0) })
        case 9: return .uint64(list { $0.next() })
        case 10: return .int64(list { Int64(truncatingIfNeeded: $0.next()) })
        case 11: return .float64(list { Double(bitPattern: $0.next()) })
        default: return .array(list { randomArray(&$0, depth: depth + 1) })
        }
    }

    /// Equality with floats compared by bit pattern (NaN payloads must survive too;
    /// `GGUFValue.==` follows IEEE, where NaN != NaN).
    private static func same(_ a: GGUFValue, _ b: GGUFValue) -> Bool {
        switch (a, b) {
        case (.float32(let x), .float32(let y)): return x.bitPattern == y.bitPattern
        case (.float64(let x), .float64(let y)): return x.bitPattern == y.bitPattern
        case (.array(let x), .array(let y)): return same(x, y)
        default: return a == b
        }
    }

    private static func same(_ a: GGUFArray, _ b: GGUFArray) -> Bool {
        switch (a, b) {
        case (.float32(let x), .float32(let y)): return x.map(\.bitPattern) == y.map(\.bitPattern)
        case (.float64(let x), .float64(let y)): return x.map(\.bitPattern) == y.map(\.bitPattern)
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
        default: return a == b
        }
    }

    /// Random metadata (every value type, nested arrays, arbitrary Unicode keys and
    /// strings, any float bit pattern) and random tensors (types of fixed and block
    /// sizes, I2_S with its scale tail, odd shapes, random bytes) written with
    /// GGUFWriter at a random alignment read back identical: keys in order, values
    /// bit for bit, tensor names, dims, types and bytes, alignment.
    func testGGUFWriteReadIdentity() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("property-gguf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("t.gguf").path
        let types: [GGMLType] = [.f32, .f16, .q4_0, .q8_0, .i2_s, GGMLType(rawValue: 24), GGMLType(rawValue: 30)]
        try forAll("GGUF write/read", base: 0x66F, cases: 300) { rng, failures in
            var metadata: [(String, GGUFValue)] = []
            var keys = Set<String>()
            for i in 0..<Self.int(&rng, 0...12) {
                // unique, non-empty; "general.alignment" is the writer's to set
                let key = "k\(i)." + Self.string(&rng)
                if keys.insert(key).inserted { metadata.append((key, Self.randomValue(&rng))) }
            }
            var tensors: [(name: String, dims: [Int], type: GGMLType, data: [UInt8])] = []
            for i in 0..<Self.int(&rng, 0...5) {
                let type = types[Self.int(&rng, 0...(types.count - 1))]
                let block = type.blockSize ?? (type == .i2_s ? 4 : 1)
                var dims = [block * Self.int(&rng, 1...6)]
                for _ in 0..<Self.int(&rng, 0...2) { dims.append(Self.int(&rng, 1...5)) }
                let count = try type.byteCount(dims: dims)
                let data = (0..<count).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                tensors.append(("blk.\(i).t\(Self.int(&rng, 0...999))", dims, type, data))
            }
            let alignment = [1, 8, 32, 64, 4096][Self.int(&rng, 0...4)]
            try GGUFWriter.write(to: path, alignment: alignment, metadata: metadata, tensors: tensors)
            let file = try GGUFFile(path: path)
            let readKeys = file.metadataKeys.filter { $0 != "general.alignment" }
            if readKeys != metadata.map(\.0) { failures.append("keys \(readKeys) != \(metadata.map(\.0))") }
            for (key, value) in metadata where !(file[key].map { Self.same($0, value) } ?? false) {
                failures.append("\(key.debugDescription): wrote \(value), read \(String(describing: file[key]))")
            }
            if file.alignment != alignment { failures.append("alignment \(file.alignment) != \(alignment)") }
            if file.tensors.map(\.name) != tensors.map(\.name) { failures.append("tensor names differ") }
            for t in tensors {
                guard let info = file.tensor(named: t.name) else { continue }
                if info.dims != t.dims || info.type != t.type { failures.append("\(t.name): \(info.dims) \(info.type) != \(t.dims) \(t.type)") }
                if info.offset % alignment != 0 { failures.append("\(t.name) at offset \(info.offset), not aligned to \(alignment)") }
                let bytes = withExtendedLifetime(file) { Array(file.data(for: info).prefix(t.data.count)) }
                if bytes != t.data { failures.append("\(t.name): data differs") }
            }
        }
    }

    // MARK: - Sampler invariants

    /// Logits with ties, plateaus, -inf, huge and tiny spreads.
    private static func logits(_ rng: inout SeededGenerator) -> [Float] {
        let n = int(&rng, 1...64)
        let spread = [0.01, 1, 5, 40][int(&rng, 0...3)] as Float
        var l = (0..<n).map { _ in rng.nextSigned() * spread }
        for i in l.indices where rng.next() % 8 == 0 { l[i] = l[int(&rng, 0...(n - 1))] }  // ties
        if n > 1 && rng.next() % 5 == 0 { l[int(&rng, 0...(n - 1))] = -.infinity }
        if l.allSatisfy({ $0 == -.infinity }) { l[0] = 0 }
        return l
    }

    /// Never an excluded id: the sampled id is finite and ranks (by logit, then id,
    /// as the sampler orders them) inside every active filter — top-k: rank < k;
    /// min-p: its probability ≥ min_p × the best one's; top-p: the probability mass of
    /// the tokens ranked above it (within the top-k set) is < top_p, i.e. it belongs
    /// to the smallest set reaching top_p. Temperature 0 (and top-k 1) = argmax.
    func testSamplerNeverReturnsAnExcludedID() {
        forAll("sampler filters", base: 0x5A3B, cases: 1000) { rng, failures in
            let l = Self.logits(&rng)
            var p = SamplingParameters()
            p.temperature = [0, 0.3, 1, 2.5][Self.int(&rng, 0...3)]
            p.topK = [0, 1, 2, 5, 100][Self.int(&rng, 0...4)]
            p.topP = [1, 0.9, 0.5, 0.05, 0][Self.int(&rng, 0...4)]
            p.minP = [0, 0.05, 0.5, 1][Self.int(&rng, 0...3)]
            p.seed = rng.next()
            var sampler = Sampler(p)
            let argmax = Sampler.argmax(l)
            if l.firstIndex(of: l.max()!) != Int(argmax) { failures.append("argmax \(argmax) is not the first maximum of \(l)") }
            let ranked = l.indices.filter { l[$0].isFinite }.sorted { l[$0] > l[$1] || (l[$0] == l[$1] && $0 < $1) }
            for _ in 0..<8 {
                let id = Int(sampler.sample(l))
                if p.temperature == 0 || p.topK == 1 {
                    if id != Int(argmax) { failures.append("T=\(p.temperature) k=\(p.topK): \(id), argmax \(argmax)") }
                    continue
                }
                guard let rank = ranked.firstIndex(of: id) else { failures.append("sampled \(id) with logit \(l[id])"); continue }
                if p.topK > 0 && rank >= p.topK { failures.append("rank \(rank) outside top-k \(p.topK)") }
                let best = l[ranked[0]]
                func prob(_ i: Int) -> Double { exp(Double(l[i] - best) / Double(p.temperature)) }
                if p.minP > 0 && prob(id) < Double(p.minP) * (1 - 1e-6) {
                    failures.append("p(\(id)) = \(prob(id)) below min-p \(p.minP)")
                }
                if p.topP < 1 {
                    let pool = p.topK > 0 ? Array(ranked.prefix(p.topK)) : ranked
                    let total = pool.map(prob).reduce(0, +)
                    let above = pool.prefix(rank).map(prob).reduce(0, +) / total
                    if rank > 0 && above >= Double(p.topP) + 1e-6 { failures.append("mass above \(id) is \(above) ≥ top-p \(p.topP)") }
                }
            }
        }
    }

    /// Same parameters and seed, same logits → the same token sequence; the sampler
    /// carries its state across calls, so a fresh one replays it from the start.
    func testSeededSamplingReproduces() {
        forAll("sampler reproducibility", base: 0x5EED, cases: 100) { rng, failures in
            var p = SamplingParameters()
            p.temperature = 0.5 + Float(rng.next() % 100) / 50
            p.topK = Self.int(&rng, 0...20)
            p.topP = 0.5 + Float(rng.next() % 50) / 100
            p.minP = Float(rng.next() % 10) / 100
            p.repetitionPenalty = 1 + Float(rng.next() % 5) / 10
            p.seed = rng.next()
            let steps = (0..<12).map { _ in Self.logits(&rng) }
            func run() -> [Int32] {
                var s = Sampler(p)
                var history: [Int32] = []
                for l in steps { history.append(s.sample(l, history: history)) }
                return history
            }
            let a = run(), b = run()
            if a != b { failures.append("\(a) != \(b)") }
        }
    }

    // MARK: - KV cache truncation

    /// A session that ran a sequence, was truncated to a prefix and continued with
    /// other tokens gives the logits of a fresh session fed the prefix and the same
    /// continuation, bit for bit: truncation must leave no trace of the dropped
    /// positions. Random sequences, cut points (0, inside, at and past the end) and
    /// continuation lengths, on a two-layer model with both KV cache precisions.
    func testTruncationEqualsRecomputation() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("property-kv-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("m.gguf").path
        let config = ModelConfig(architecture: .bitnetB158, vocabSize: 259, contextLength: 48, hiddenSize: 64,
                                 layerCount: 2, ffnSize: 128, headCount: 2, kvHeadCount: 1)
        var synth = ModelSynthesizer(config: config, seed: 11)
        synth.tokenizerMetadata = TinyModelFile.tokenizerMetadata
        try synth.write(to: path)
        let weights = try ModelWeights(path: path)
        for precision in [KVCache.Precision.f32, .f16] {
            let model = try BitNetModel(weights: weights, contextLength: 48, threads: 2, batchSize: 8, kvPrecision: precision)
            try forAll("truncate (\(precision))", base: 0x7C0 &+ UInt64(precision == .f32 ? 0 : 1), cases: 25) { rng, failures in
                let n = Self.int(&rng, 1...20)
                let sequence = (0..<n).map { _ in Int32(rng.next() % 259) }
                let cut = [0, Self.int(&rng, 0...n), n, n + 3][Self.int(&rng, 0...3)]
                let continuation = (0..<Self.int(&rng, 1...10)).map { _ in Int32(rng.next() % 259) }
                let kept = Array(sequence.prefix(cut))

                let reused = try model.makeSession()
                _ = try reused.forward(sequence)
                reused.truncate(to: cut)
                if reused.count != kept.count { failures.append("count \(reused.count) after truncate(to: \(cut)) of \(n)") }
                let got = try reused.forward(continuation, allLogits: true)

                let fresh = try model.makeSession()
                if !kept.isEmpty { _ = try fresh.forward(kept) }
                let want = try fresh.forward(continuation, allLogits: true)
                if got != want { failures.append("n \(n) cut \(cut) +\(continuation.count): logits differ") }
                if reused.count != kept.count + continuation.count { failures.append("count \(reused.count) after continuing") }
            }
        }
    }
}
