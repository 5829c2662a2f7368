import XCTest
@testable import BitNet

/// Many conversations on one model: sessions and batched steps give each
/// sequence exactly what it gets alone.
final class SessionTests: XCTestCase {
    private static func model(threads: Int = 2, head: BitNetModel.HeadPrecision = .f16, batchSize: Int = 128,
                              isa: ISA? = nil) throws -> BitNetModel {
        let weights = try ModelWeights(path: GoldenModelTests.modelPath)
        return try BitNetModel(weights: weights, contextLength: 64, threads: threads,
                               kernels: try isa.map { try Kernels(isa: $0) } ?? .best, batchSize: batchSize,
                               headPrecision: head)
    }

    private func sequence(_ n: Int, seed: UInt64, vocab: Int) -> [Int32] {
        var rng = SeededGenerator(seed: seed)
        return (0..<n).map { _ in Int32(rng.next() % UInt64(vocab)) }
    }

    /// A batched step of sequences at different positions (a prompt chunk, decoding rows,
    /// a prompt with every row's logits) equals each run alone, bit for bit, for both heads.
    func testBatchedStepEqualsEachSequenceAlone() throws {
        for head in BitNetModel.HeadPrecision.allCases {
            let model = try Self.model(head: head)
            let vocab = model.config.vocabSize
            let prefixes = [sequence(5, seed: 1, vocab: vocab), [], sequence(17, seed: 3, vocab: vocab), sequence(1, seed: 4, vocab: vocab)]
            let news = [sequence(1, seed: 11, vocab: vocab), sequence(9, seed: 12, vocab: vocab),
                        sequence(1, seed: 13, vocab: vocab), sequence(4, seed: 14, vocab: vocab)]
            let wants: [SequenceInput.LogitRows] = [.last, .all, .last, .none]
            // alone
            var alone: [[Float]] = []
            for i in prefixes.indices {
                let s = try model.makeSession()
                if !prefixes[i].isEmpty { _ = try s.forward(prefixes[i]) }
                alone.append(try model.step([SequenceInput(session: s, tokens: news[i], logits: wants[i])])[0])
            }
            // together
            let sessions = try prefixes.map { p -> Session in
                let s = try model.makeSession()
                if !p.isEmpty { _ = try s.forward(p) }
                return s
            }
            let together = try model.step(prefixes.indices.map {
                SequenceInput(session: sessions[$0], tokens: news[$0], logits: wants[$0])
            })
            for i in prefixes.indices {
                XCTAssertEqual(together[i].count, alone[i].count, "\(head) sequence \(i)")
                XCTAssertTrue(together[i] == alone[i], "\(head) sequence \(i): batched logits differ from alone")
                XCTAssertEqual(sessions[i].count, prefixes[i].count + news[i].count)
            }
            XCTAssertEqual(together[3], [], "no logits asked, none computed")
        }
    }

    /// A step with more rows than the model's batch size runs in several passes: same logits.
    func testStepsLongerThanTheBatchSizeRunInPasses() throws {
        let small = try Self.model(batchSize: 5), big = try Self.model(batchSize: 128)
        let vocab = small.config.vocabSize
        let a = sequence(7, seed: 21, vocab: vocab), b = sequence(6, seed: 22, vocab: vocab)
        let (sa, sb) = (try small.makeSession(), try small.makeSession())
        let got = try small.step([SequenceInput(session: sa, tokens: a, logits: .all), SequenceInput(session: sb, tokens: b)])
        let wantA = try big.makeSession().forward(a, allLogits: true), wantB = try big.makeSession().forward(b)
        XCTAssertTrue(got[0] == wantA && got[1] == wantB)
    }

    /// Two conversations interleaved token by token on one model equal each run alone.
    func testInterleavedConversationsEqualTheirRunsAlone() throws {
        let model = try Self.model()
        let vocab = model.config.vocabSize
        let (x, y) = (sequence(12, seed: 31, vocab: vocab), sequence(12, seed: 32, vocab: vocab))
        let (sx, sy) = (try model.makeSession(), try model.makeSession())
        var gotX: [[Float]] = [], gotY: [[Float]] = []
        for i in 0..<12 {
            gotX.append(try sx.forward([x[i]]))
            gotY.append(try sy.forward([y[i]]))
        }
        let ax = try model.makeSession(), ay = try model.makeSession()
        for i in 0..<12 {
            XCTAssertTrue(try ax.forward([x[i]]) == gotX[i], "x position \(i)")
            XCTAssertTrue(try ay.forward([y[i]]) == gotY[i], "y position \(i)")
        }
    }

    /// Incremental decoding equals a full recompute, and truncating the cache then refeeding
    /// equals never having gone further.
    func testTruncationEqualsRecomputation() throws {
        let model = try Self.model()
        let s = sequence(20, seed: 41, vocab: model.config.vocabSize)
        let session = try model.makeSession()
        let full = try session.forward(s, allLogits: true)
        session.truncate(to: 8)
        XCTAssertEqual(session.count, 8)
        let again = try session.forward(Array(s[8...]), allLogits: true)
        XCTAssertTrue(Array(full[(8 * model.config.vocabSize)...]) == again)
    }

    /// Refused steps change no cache: a foreign session, a duplicate, an id out of range, a
    /// context overflow — each named — and the sessions keep working.
    func testBadStepsAreRefusedBeforeAnyCacheChanges() throws {
        let model = try Self.model(), other = try Self.model(threads: 1)
        let a = try model.makeSession(contextLength: 8), b = try model.makeSession()
        _ = try a.forward([1, 2])
        XCTAssertThrowsError(try model.step([SequenceInput(session: b, tokens: [3]),
                                             SequenceInput(session: try other.makeSession(), tokens: [1])])) {
            XCTAssertEqual($0 as? SessionError, .foreignSession)
        }
        XCTAssertThrowsError(try model.step([SequenceInput(session: b, tokens: [3]), SequenceInput(session: b, tokens: [4])])) {
            XCTAssertEqual($0 as? SessionError, .duplicateSession)
        }
        XCTAssertThrowsError(try model.step([SequenceInput(session: b, tokens: [3]), SequenceInput(session: a, tokens: [Int32(model.config.vocabSize)])])) {
            XCTAssertEqual($0 as? ModelError, .tokenOutOfRange(token: Int32(model.config.vocabSize), vocabSize: model.config.vocabSize))
        }
        XCTAssertThrowsError(try model.step([SequenceInput(session: b, tokens: [3]), SequenceInput(session: a, tokens: Array(repeating: 5, count: 7))])) {
            XCTAssertEqual($0 as? ModelError, .contextOverflow(needed: 9, contextLength: 8))
        }
        XCTAssertEqual(a.count, 2)
        XCTAssertEqual(b.count, 0)
        XCTAssertEqual(try a.forward([3]).count, model.config.vocabSize)
    }

    /// One generation loop per session: a second one at the same time is refused, not raced.
    func testASecondGenerationOnABusySessionIsRefused() throws {
        let model = try Self.model()
        let session = try model.makeSession()
        let generator = Generator(session: session)
        var inner: Error?
        try generator.generate(prompt: [1, 2, 3], maxTokens: 2) { _ in
            XCTAssertThrowsError(try Generator(session: session).generate(prompt: [4], maxTokens: 1) { _ in true }) { inner = $0 }
            return true
        }
        XCTAssertEqual(inner as? SessionError, .busy)
        // released afterwards
        XCTAssertNoThrow(try generator.generate(prompt: [4], maxTokens: 1) { _ in true })
    }

    /// Sessions driven from several threads at once are serialized by the model: each thread's
    /// conversation still equals its run alone (ThreadSanitizer runs this in `make sanitize`).
    func testSessionsFromManyThreadsStayIsolated() throws {
        let model = try Self.model()
        let vocab = model.config.vocabSize
        let inputs = (0..<4).map { sequence(10, seed: 50 + UInt64($0), vocab: vocab) }
        let want = try inputs.map { try model.makeSession().forward($0) }
        let results = ResultBox(count: inputs.count)
        DispatchQueue.concurrentPerform(iterations: inputs.count) { i in
            do {
                let s = try model.makeSession()
                var last: [Float] = []
                for t in inputs[i] { last = try s.forward([t]) }
                results.set(i, last)
            } catch {
                XCTFail("thread \(i): \(error)")
            }
        }
        for i in inputs.indices { XCTAssertTrue(results.get(i) == want[i], "thread \(i)") }
    }
}

/// Results written by concurrent iterations, under a lock.
final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [[Float]]
    init(count: Int) { values = Array(repeating: [], count: count) }
    func set(_ i: Int, _ v: [Float]) { lock.lock(); values[i] = v; lock.unlock() }
    func get(_ i: Int) -> [Float] { lock.lock(); defer { lock.unlock() }; return values[i] }
}
