import XCTest
@testable import BitNet
@testable import BitNetConvert

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Tiny synthetic models of every architecture: the optimized forward pass
/// against the plain reference, incremental decoding against full recompute,
/// batch sizes and ISAs against each other, and bad files against their errors.
final class ModelTests: XCTestCase {
    static let tmp = NSTemporaryDirectoryPath()

    static func tinyConfig(_ arch: ModelArchitecture) -> ModelConfig {
        switch arch {
        case .bitnetB158:
            return ModelConfig(architecture: .bitnetB158, vocabSize: 97, contextLength: 64, hiddenSize: 64, layerCount: 2,
                               ffnSize: 96, headCount: 4, kvHeadCount: 2, ropeTheta: 500_000)
        case .bitnet:
            return ModelConfig(architecture: .bitnet, vocabSize: 101, contextLength: 64, hiddenSize: 48, layerCount: 2,
                               ffnSize: 80, headCount: 3, kvHeadCount: 3, ropeTheta: 10_000)
        case .llama:
            return ModelConfig(architecture: .llama, vocabSize: 89, contextLength: 64, hiddenSize: 64, layerCount: 3,
                               ffnSize: 160, headCount: 8, kvHeadCount: 2, ropeTheta: 10_000)
        }
    }

    static func writeModel(_ config: ModelConfig, name: String, projections: ModelSynthesizer.ProjectionType = .i2s,
                           seed: UInt64 = 7) throws -> String {
        let path = "\(tmp)/bitnet-test-\(getpid())-\(name).gguf"
        var synth = ModelSynthesizer(config: config, seed: seed)
        synth.projectionType = projections
        try synth.write(to: path)
        return path
    }

    private func tokens(_ n: Int, vocab: Int, seed: UInt64 = 3) -> [Int32] {
        var rng = SeededGenerator(seed: seed)
        return (0..<n).map { _ in Int32(rng.next() % UInt64(vocab)) }
    }

    private func maxDiff(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    func testEveryArchitectureMatchesTheReferenceForward() throws {
        for arch in ModelArchitecture.allCases {
            for projections in [ModelSynthesizer.ProjectionType.i2s, .f16] {
                let config = Self.tinyConfig(arch)
                let path = try Self.writeModel(config, name: "\(arch.rawValue)-\(projections)")
                defer { unlink(path) }
                let weights = try ModelWeights(path: path)
                XCTAssertEqual(weights.config, config)
                let model = try BitNetModel(weights: weights, contextLength: 32, threads: 2)
                let session = try model.makeSession()
                let input = tokens(12, vocab: config.vocabSize)
                let got = try session.forward(input, allLogits: true)
                let want = ReferenceModel(weights: weights).logits(tokens: input)
                for p in 0..<input.count {
                    let row = Array(got[(p * config.vocabSize)..<((p + 1) * config.vocabSize)])
                    // f32 SIMD sums vs Double loops on a tiny model: a few ulps of the logit scale
                    XCTAssertLessThan(maxDiff(row, want[p]), 2e-3, "\(arch) \(projections) position \(p)")
                    XCTAssertEqual(Sampler.argmax(row), Sampler.argmax(want[p]), "\(arch) argmax at \(p)")
                }
            }
        }
    }

    func testIncrementalDecodingEqualsFullRecomputeAndBatchSizesAgree() throws {
        for arch in ModelArchitecture.allCases {
            let config = Self.tinyConfig(arch)
            let path = try Self.writeModel(config, name: "incr-\(arch.rawValue)")
            defer { unlink(path) }
            let weights = try ModelWeights(path: path)
            let input = tokens(20, vocab: config.vocabSize, seed: 11)
            let full = try BitNetModel(weights: weights, contextLength: 32, threads: 1, batchSize: 128)
                .makeSession().forward(input, allLogits: true)
            for batch in [1, 3, 7] {
                let model = try BitNetModel(weights: weights, contextLength: 32, threads: 2, batchSize: batch)
                let session = try model.makeSession()
                // integer sums are exact; only the F16 head's summation order may differ (n = 1 vs n > 1 tiles)
                XCTAssertLessThan(maxDiff(try session.forward(input, allLogits: true), full), 1e-4, "\(arch) batch \(batch)")
            }
            // token by token through the GEMV path, cache kept between calls
            let step = try BitNetModel(weights: weights, contextLength: 32, threads: 2)
            let stepSession = try step.makeSession()
            for (p, token) in input.enumerated() {
                let logits = try stepSession.forward([token])
                let want = Array(full[(p * config.vocabSize)..<((p + 1) * config.vocabSize)])
                XCTAssertLessThan(maxDiff(logits, want), 1e-4, "\(arch) step \(p)")
                XCTAssertEqual(Sampler.argmax(logits), Sampler.argmax(want))
            }
            XCTAssertEqual(stepSession.count, input.count)
        }
    }

    func testEveryISAGeneratesTheSameTokens() throws {
        let config = Self.tinyConfig(.bitnetB158)
        let path = try Self.writeModel(config, name: "isa")
        defer { unlink(path) }
        let weights = try ModelWeights(path: path)
        var outputs: [ISA: [Int32]] = [:]
        var firstLogits: [ISA: [Float]] = [:]
        for isa in ISA.supported {
            let model = try BitNetModel(weights: weights, contextLength: 48, threads: 2, kernels: try Kernels(isa: isa))
            let session = try model.makeSession()
            firstLogits[isa] = try session.forward([1, 2, 3])
            session.reset()
            var out: [Int32] = []
            try Generator(session: session).generate(prompt: [1, 2, 3], maxTokens: 24) { out.append($0); return true }
            outputs[isa] = out
        }
        let scalar = outputs[.scalar]!
        XCTAssertEqual(scalar.count, 24)
        for (isa, out) in outputs {
            XCTAssertEqual(out, scalar, "\(isa) tokens")
            XCTAssertLessThan(maxDiff(firstLogits[isa]!, firstLogits[.scalar]!), 1e-4, "\(isa) logits")
        }
    }

    func testContextAndTokenErrors() throws {
        let config = Self.tinyConfig(.bitnetB158)
        let path = try Self.writeModel(config, name: "errors")
        defer { unlink(path) }
        let model = try BitNetModel(weights: try ModelWeights(path: path), contextLength: 8, threads: 1)
        let session = try model.makeSession()
        XCTAssertThrowsError(try session.forward(Array(repeating: 1, count: 9))) {
            XCTAssertEqual($0 as? ModelError, .contextOverflow(needed: 9, contextLength: 8))
        }
        XCTAssertThrowsError(try session.forward([97])) { XCTAssertEqual($0 as? ModelError, .tokenOutOfRange(token: 97, vocabSize: 97)) }
        XCTAssertThrowsError(try session.forward([-1]))
        XCTAssertThrowsError(try session.forward([])) { XCTAssertEqual($0 as? ModelError, .emptyInput) }
        XCTAssertEqual(session.count, 0, "a rejected call leaves the cache untouched")
        _ = try session.forward([1, 2, 3, 4, 5, 6])
        let stats = try Generator(session: session).generate(prompt: [7], maxTokens: 50) { _ in true }
        XCTAssertEqual(stats.stopReason, .contextFull)
        XCTAssertEqual(session.count, 8)
        XCTAssertThrowsError(try Generator(session: session).generate(prompt: [1], maxTokens: 1) { _ in true })
    }

    /// Writes a copy of a tiny model with one tensor changed (or dropped).
    func variant(_ name: String, projections: ModelSynthesizer.ProjectionType = .i2s,
                 edit: (inout [(name: String, dims: [Int], type: GGMLType, data: [UInt8])],
                        inout [(String, GGUFValue)]) -> Void) throws -> String {
        let source = try Self.writeModel(Self.tinyConfig(.bitnetB158), name: "src-\(name)", projections: projections)
        defer { unlink(source) }
        let file = try GGUFFile(path: source)
        var meta = file.metadataKeys.map { ($0, file.metadata[$0]!) }
        var tensors = file.tensors.map { t -> (name: String, dims: [Int], type: GGMLType, data: [UInt8]) in
            let d = file.data(for: t)
            let n = t.byteCount ?? d.count
            return (t.name, t.dims, t.type, Array(d[0..<n]))
        }
        edit(&tensors, &meta)
        let path = "\(Self.tmp)/bitnet-test-\(getpid())-bad-\(name).gguf"
        try GGUFWriter.write(to: path, metadata: meta, tensors: tensors)
        return path
    }

    func testMalformedModelsGiveSpecificErrors() throws {
        let q = "blk.1.attn_q.weight"
        let cases: [(String, (inout [(name: String, dims: [Int], type: GGMLType, data: [UInt8])], inout [(String, GGUFValue)]) -> Void, (ModelError) -> Bool)] = [
            ("missing", { t, _ in t.removeAll { $0.name == q } }, {
                if case .missingTensor(_, let name) = $0 { return name == q } else { return false } }),
            ("shape", { t, _ in
                let i = t.firstIndex { $0.name == "blk.0.ffn_norm.weight" }!
                t[i].dims = [32]; t[i].data = Array(t[i].data.prefix(128)) }, {
                if case .tensorShape(_, let name, _, _) = $0 { return name == "blk.0.ffn_norm.weight" } else { return false } }),
            ("type", { t, _ in
                let i = t.firstIndex { $0.name == q }!
                t[i].type = .q8_0; t[i].data = [UInt8](repeating: 0, count: 64 * 64 / 32 * 34) }, {
                if case .unsupportedTensorType(_, let name, let type, _) = $0 { return name == q && type == "Q8_0" } else { return false } }),
            ("arch", { _, m in m = m.map { $0.0 == "general.architecture" ? ($0.0, .string("gpt-17")) : $0 } }, {
                if case .unsupportedArchitecture(_, let a) = $0 { return a == "gpt-17" } else { return false } }),
            ("heads", { _, m in m = m.map { $0.0 == "bitnet-b1.58.attention.head_count_kv" ? ($0.0, .uint32(3)) : $0 } }, {
                if case .invalidHyperparameter(_, let key, _, _) = $0 { return key.hasSuffix("head_count_kv") } else { return false } }),
            ("nan-scale", { t, _ in
                let i = t.firstIndex { $0.name == q }!
                let tail = 64 * 64 / 4
                t[i].data.replaceSubrange(tail..<(tail + 4), with: [0, 0, 0xC0, 0x7F]) }, {
                if case .invalidTensorData(_, let name, _) = $0 { return name == q } else { return false } }),
            ("no-key", { _, m in m.removeAll { $0.0 == "bitnet-b1.58.block_count" } }, {
                if case .missingKey(_, let key) = $0 { return key == "bitnet-b1.58.block_count" } else { return false } }),
        ]
        for (name, edit, matches) in cases {
            let path = try variant(name, edit: edit)
            defer { unlink(path) }
            XCTAssertThrowsError(try ModelWeights(path: path), name) { error in
                guard let e = error as? ModelError else { return XCTFail("\(name): \(error)") }
                XCTAssertTrue(matches(e), "\(name): \(e)")
                XCTAssertTrue(e.description.contains(path), "\(name): error names the file: \(e)")
            }
        }
    }
}

func NSTemporaryDirectoryPath() -> String {
    ProcessInfo.processInfo.environment["TMPDIR"].map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 } ?? "/tmp"
}

extension ModelTests {
    /// TL1/TL2 change speed, not answers: decoding with each kernel gives bit-identical logits.
    func testEveryDecodeKernelGivesIdenticalLogits() throws {
        let config = ModelConfig(architecture: .bitnetB158, vocabSize: 64, contextLength: 32, hiddenSize: 96,
                                 layerCount: 2, ffnSize: 160, headCount: 3, kvHeadCount: 1)
        let path = try Self.writeModel(config, name: "tl-kernels")
        defer { unlink(path) }
        let weights = try ModelWeights(path: path)
        let input: [Int32] = [5, 9, 2, 33, 17, 8]
        var reference: [[Float]] = []
        // one model per kernel on the same weights, all alive at once: a model's kernel choice
        // is its own (loading another never changes it), and sessions interleave across them
        let models = try MatrixKernel.allCases.map {
            try BitNetModel(weights: weights, contextLength: 16, threads: 2, kernel: .fixed($0))
        }
        let sessions = try models.map { try $0.makeSession() }
        var steps = [[[Float]]](repeating: [], count: models.count)
        for token in input {
            for i in models.indices { steps[i].append(try sessions[i].forward([token])) }
        }
        for (i, kernel) in MatrixKernel.allCases.enumerated() {
            if kernel == .i2s { reference = steps[i] } else { XCTAssertEqual(steps[i], reference, "\(kernel)") }
            XCTAssertEqual(Set(models[i].decodeKernels), [kernel])
        }
        // auto: one measured choice per distinct shape, remembered in the cache file
        let dir = "\(Self.tmp)/bitnet-tune-\(getpid())"
        setenv("BITNET_CACHE_DIR", dir, 1)
        defer { unsetenv("BITNET_CACHE_DIR"); unlink(dir + "/tune-v3.txt"); rmdir(dir) }
        let auto = try BitNetModel(weights: weights, contextLength: 16, threads: 1, kernel: .auto)
        let autoSession = try auto.makeSession()
        XCTAssertEqual(Set(auto.kernelChoices.map(\.shape)), ["96x96", "32x96", "160x96", "96x160"])
        XCTAssertTrue(auto.kernelChoices.allSatisfy { $0.timings.count == 3 })
        XCTAssertEqual(try autoSession.forward([5]), reference[0])
        let cached = try BitNetModel(weights: weights, contextLength: 16, threads: 1, kernel: .auto)
        let cachedSession = try cached.makeSession()
        XCTAssertTrue(cached.kernelChoices.allSatisfy { $0.timings.isEmpty }, "second load reads the cache")
        XCTAssertEqual(cached.kernelChoices.map(\.kernel), auto.kernelChoices.map(\.kernel))
    }
}

extension ModelTests {
    /// Some bitnet.cpp converter versions wrote an F32 embedding: converted to F16 at
    /// load, the model is the same (the synthetic F16 values are exact in F32).
    func testF32EmbeddingLoadsAsF16() throws {
        let source = try Self.writeModel(Self.tinyConfig(.bitnetB158), name: "f16-embd")
        defer { unlink(source) }
        let wide = try variant("f32-embd") { t, _ in
            let i = t.firstIndex { $0.name == TensorName.tokenEmbedding }!
            var out: [UInt8] = []
            for j in stride(from: 0, to: t[i].data.count, by: 2) {
                let h = Float16(bitPattern: UInt16(t[i].data[j]) | UInt16(t[i].data[j + 1]) << 8)
                withUnsafeBytes(of: Float(h).bitPattern.littleEndian) { out += $0 }
            }
            t[i].type = .f32
            t[i].data = out
        }
        defer { unlink(wide) }
        let a = try BitNetModel(weights: try ModelWeights(path: source), contextLength: 8, threads: 1, kernel: .fixed(.i2s))
        let aSession = try a.makeSession()
        let b = try BitNetModel(weights: try ModelWeights(path: wide), contextLength: 8, threads: 1, kernel: .fixed(.i2s))
        let bSession = try b.makeSession()
        XCTAssertEqual(try aSession.forward([3, 1, 4]), try bSession.forward([3, 1, 4]))
    }

    /// bitnet.cpp TL files of shapes without a published tiling are refused with the
    /// reason and a pointer to the I2_S file; bad table indices in our own TL files
    /// are reported with the tensor, never read as zeros.
    func testLookupTableFileErrors() throws {
        let q = "blk.0.attn_q.weight"
        let unknownShape = try variant("bitnetcpp-tl2") { t, _ in
            let i = t.firstIndex { $0.name == q }!
            t[i].type = .tl2
        }
        defer { unlink(unknownShape) }
        XCTAssertThrowsError(try ModelWeights(path: unknownShape)) { error in
            guard case .unsupportedTensorType(_, let name, let type, let reason)? = error as? ModelError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(name, q)
            XCTAssertEqual(type, "TL2")
            XCTAssertTrue(reason.contains("64×64") && reason.contains("ggml-model-i2_s.gguf"), reason)
        }
        let badIndex = try variant("bad-tl1", projections: .tl1) { t, _ in
            let i = t.firstIndex { $0.name == q }!
            t[i].data[5] = 0xFF // nibbles 15: no TL1 packer writes an index above 8
        }
        defer { unlink(badIndex) }
        XCTAssertThrowsError(try ModelWeights(path: badIndex)) { error in
            guard case .invalidTensorData(_, let name, let reason)? = error as? ModelError else { return XCTFail("\(error)") }
            XCTAssertEqual(name, q)
            XCTAssertTrue(reason.contains("2 TL table indices"), reason)
        }
    }
}

extension ModelTests {
    /// A TL2 file decodes to the same model as a TL1 file of the same weights, and
    /// every decode kernel agrees on it — including TL2, which adopts the file's
    /// bytes (with its negative-slot counts recomputed) instead of repacking.
    func testLookupTableFilesDecodeAndAdoptExactly() throws {
        let config = Self.tinyConfig(.bitnetB158)
        let tl1 = try Self.writeModel(config, name: "adopt-tl1", projections: .tl1)
        let tl2 = try Self.writeModel(config, name: "adopt-tl2", projections: .tl2)
        defer { unlink(tl1); unlink(tl2) }
        let input: [Int32] = [4, 8, 15, 16, 23]
        func run(_ path: String, _ kernel: MatrixKernel) throws -> [[Float]] {
            let model = try BitNetModel(weights: try ModelWeights(path: path), contextLength: 8, threads: 2,
                                        kernel: .fixed(kernel))
            let session = try model.makeSession()
            return try input.map { try session.forward([$0]) }
        }
        let reference = try run(tl1, .i2s)
        for kernel in MatrixKernel.allCases {
            XCTAssertEqual(try run(tl2, kernel), reference, "TL2 file, \(kernel) decoding")
        }
        XCTAssertEqual(try run(tl1, .tl1), reference, "TL1 file, adopted")
    }
}

extension ModelTests {
    /// The f16 KV cache: the same logits up to the cache's rounding, and still
    /// incremental decoding == one batch (both read the same f16 cache).
    func testHalfPrecisionKVCache() throws {
        let config = Self.tinyConfig(.llama) // GQA: 8 query heads on 2 kv heads
        let path = try Self.writeModel(config, name: "kv-f16")
        defer { unlink(path) }
        let weights = try ModelWeights(path: path)
        let input = tokens(12, vocab: config.vocabSize)
        let full32 = try BitNetModel(weights: weights, contextLength: 16, threads: 2).makeSession().forward(input, allLogits: true)
        let half = try BitNetModel(weights: weights, contextLength: 16, threads: 2, kvPrecision: .f16)
        let halfSession = try half.makeSession()
        XCTAssertEqual(halfSession.cacheByteCount,
                       KVCache.byteCount(capacity: 16, layerCount: config.layerCount, kvDim: config.kvDim) / 2)
        let full16 = try halfSession.forward(input, allLogits: true)
        let scale = full32.map(abs).max() ?? 1
        XCTAssertLessThan(maxDiff(full16, full32), 2e-2 * scale, "f16 cache rounding only")
        XCTAssertNotEqual(full16, full32, "the cache really is f16")
        halfSession.reset()
        var steps: [Float] = []
        for t in input { steps += try halfSession.forward([t]) }
        XCTAssertLessThan(maxDiff(steps, full16), 1e-4 * scale, "incremental == full recompute with an f16 cache")
    }
}

extension ModelTests {
    /// A model that cannot fit is refused before loading, with both sizes; the estimate is
    /// exactly the repacked weights a load allocates.
    func testAModelThatCannotFitIsRefusedBeforeLoading() throws {
        let config = Self.tinyConfig(.bitnetB158)
        let path = try Self.writeModel(config, name: "fits")
        defer { unlink(path) }
        let weights = try ModelWeights(path: path)
        let estimate = ModelWeights.anonymousBytes(config: weights.config, file: weights.file)
        let repacked = weights.layers.reduce(0) { $0 + $1.projections.reduce(0) { $0 + $1.storedBytes.count } }
        XCTAssertEqual(estimate, Double(repacked))
        XCTAssertNoThrow(try ModelWeights.checkFits(path: path, needed: estimate, available: repacked))
        XCTAssertNoThrow(try ModelWeights.checkFits(path: path, needed: estimate, available: nil))
        XCTAssertThrowsError(try ModelWeights.checkFits(path: path, needed: 25 * Double(1 << 30), available: 20 << 30)) {
            XCTAssertEqual($0 as? ModelError, .insufficientMemory(path: path, needed: 25 << 30, available: 20 << 30))
            XCTAssertTrue("\($0)".contains("about 25 GiB") && "\($0)".contains("20 GiB is available"), "\($0)")
        }
        XCTAssertNotNil(SystemMemory.availableBytes(), "Linux reports MemAvailable")
    }
}
