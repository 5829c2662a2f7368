import XCTest
@testable import BitNet

/// The prompt share of a batched step follows what steps cost on the host.
final class StepBudgetTests: XCTestCase {
    /// Before anything was measured, and whenever nobody decodes, prompts get the whole budget.
    func testUnmeasuredOrNobodyDecodingGetsTheConfiguredBudget() {
        var b = StepBudget()
        XCTAssertEqual(b.promptRows(configured: 64, decoding: 8), 56)
        XCTAssertEqual(b.promptRows(configured: 64, decoding: 0), 64)
        b.record(decoding: 8, prompt: 0, seconds: 0.1)
        b.record(decoding: 8, prompt: 56, seconds: 1.0)
        XCTAssertEqual(b.promptRows(configured: 64, decoding: 0), 64)
    }

    /// A decoding step of 0.1 s and prompt rows of (1.0 − 0.1) / 56 s each: three more
    /// decoding steps' worth (slowdown 4) is 18 rows (0.3 / 0.016071…), not the 56 a
    /// fixed budget gives.
    func testPromptRowsFitTheSlowdown() {
        XCTAssertEqual(StepBudget.slowdown, 4)
        var b = StepBudget()
        b.record(decoding: 8, prompt: 0, seconds: 0.1)
        b.record(decoding: 8, prompt: 56, seconds: 1.0)
        XCTAssertEqual(b.decodeStepSeconds!, 0.1, accuracy: 1e-12)
        XCTAssertEqual(b.secondsPerPromptRow!, 0.9 / 56, accuracy: 1e-12)
        XCTAssertEqual(b.promptRows(configured: 64, decoding: 8), 18)
        // never above what the configured budget leaves, never below a quarter of it
        XCTAssertEqual(b.promptRows(configured: 20, decoding: 8), 12)
        b.record(decoding: 8, prompt: 1, seconds: 100)
        XCTAssertEqual(b.promptRows(configured: 64, decoding: 8), 16)
        XCTAssertEqual(b.promptRows(configured: 64, decoding: 60), 4, "the floor is capped by what is left")
        XCTAssertEqual(b.promptRows(configured: 2, decoding: 8), 1, "at least one")
    }

    /// The estimates are moving averages: a quarter of each new step.
    func testEstimatesFollowTheSteps() {
        var b = StepBudget()
        b.record(decoding: 4, prompt: 0, seconds: 0.2)
        b.record(decoding: 4, prompt: 0, seconds: 0.6)
        XCTAssertEqual(b.decodeStepSeconds!, 0.3, accuracy: 1e-12)
        b.record(decoding: 4, prompt: 0, seconds: .nan) // ignored
        b.record(decoding: 4, prompt: 0, seconds: 0)
        XCTAssertEqual(b.decodeStepSeconds!, 0.3, accuracy: 1e-12)
    }
}
