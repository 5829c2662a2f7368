import XCTest
@testable import BitNet

/// The async API: text pieces as they become final, cancellable in the prompt and
/// between tokens.
final class StreamingTests: XCTestCase {
    private func setUpModel(batchSize: Int = 128, context: Int = 256) throws -> (BitNetModel, Tokenizer) {
        let weights = try ModelWeights(path: GoldenModelTests.modelPath)
        return (try BitNetModel(weights: weights, contextLength: context, threads: 2, batchSize: batchSize),
                try Tokenizer(gguf: weights.file))
    }

    /// Waits until no generation owns `session` (its thread ends after the stream's consumer left).
    private func waitUntilFree(_ session: Session) throws {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            do {
                try session.claim()
                session.release()
                return
            } catch SessionError.busy {
                usleep(2000)
            }
        }
        XCTFail("the generation thread never released the session")
    }

    func testTextStreamJoinsToTheGeneratedText() async throws {
        let (model, tokenizer) = try setUpModel()
        let prompt = tokenizer.encode("KING HENRY.\nNow, lords, ")
        var want: [Int32] = []
        try Generator(session: try model.makeSession()).generate(prompt: prompt, maxTokens: 40) { want.append($0); return true }
        var pieces: [String] = []
        for try await piece in Generator(session: try model.makeSession()).textStream(prompt: prompt, tokenizer: tokenizer, maxTokens: 40) {
            pieces.append(piece)
        }
        XCTAssertGreaterThan(pieces.count, 5, "streamed piece by piece")
        XCTAssertEqual(pieces.joined(), try tokenizer.decode(want))
        var ids: [Int32] = []
        for try await id in Generator(session: try model.makeSession()).stream(prompt: prompt, maxTokens: 40) { ids.append(id) }
        XCTAssertEqual(ids, want)
    }

    /// Leaving the loop after a few pieces stops generation at the next token and frees the session.
    func testLeavingTheLoopStopsBetweenTokens() async throws {
        let (model, tokenizer) = try setUpModel()
        let session = try model.makeSession()
        let prompt = tokenizer.encode("ROMEO.\n")
        var seen = 0
        for try await _ in Generator(session: session).textStream(prompt: prompt, tokenizer: tokenizer, maxTokens: 200) {
            seen += 1
            if seen == 3 { break }
        }
        try waitUntilFree(session)
        XCTAssertLessThan(session.count, prompt.count + 50, "generation stopped soon after the consumer left")
        XCTAssertNoThrow(try Generator(session: session).generate(prompt: [5], maxTokens: 1) { _ in true })
    }

    /// Cancelling the consuming task during a long prompt stops between prompt chunks: the
    /// cache holds only the chunks fed so far and no token is produced.
    func testCancellingDuringThePromptStopsBetweenChunks() async throws {
        let (model, _) = try setUpModel(batchSize: 8, context: 4096)
        let session = try model.makeSession()
        let prompt = (0..<4000).map { Int32(10 + $0 % 3000) }
        let stream = Generator(session: session).stream(prompt: prompt, maxTokens: 10)
        let task = Task {
            var n = 0
            for try await _ in stream { n += 1 }
            return n
        }
        try await Task.sleep(nanoseconds: 50_000_000)
        task.cancel()
        let produced = try await task.value
        try waitUntilFree(session)
        XCTAssertEqual(produced, 0)
        XCTAssertLessThan(session.count, prompt.count, "stopped part-way through the prompt")
        XCTAssertEqual(session.count % 8, 0, "whole chunks only")
    }
}
