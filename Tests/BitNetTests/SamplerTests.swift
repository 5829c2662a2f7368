import XCTest
@testable import BitNet

final class SamplerTests: XCTestCase {
    let logits: [Float] = [0.5, 2.0, 1.9, -1.0, 2.0, 0.0]

    func testGreedyIsArgmaxWithLowestIdOnTies() {
        var s = Sampler(.greedy)
        XCTAssertEqual(s.sample(logits), 1)
        XCTAssertEqual(Sampler.argmax([3, 1, 3]), 0)
    }

    func testSameSeedSameTokensAndDifferentSeedsDiffer() {
        var p = SamplingParameters()
        p.temperature = 1.5; p.topK = 0; p.topP = 1; p.minP = 0; p.seed = 42
        var a = Sampler(p), b = Sampler(p)
        let seqA = (0..<200).map { _ in a.sample(logits) }
        XCTAssertEqual(seqA, (0..<200).map { _ in b.sample(logits) })
        p.seed = 43
        var c = Sampler(p)
        XCTAssertNotEqual(seqA, (0..<200).map { _ in c.sample(logits) })
        XCTAssertEqual(Set(seqA), Set([0, 1, 2, 3, 4, 5]), "temperature 1.5 reaches every token")
    }

    func testTopKTopPAndMinPRestrictTheCandidates() {
        var p = SamplingParameters()
        p.temperature = 1; p.topP = 1; p.minP = 0; p.topK = 2; p.seed = 1
        var s = Sampler(p)
        XCTAssertEqual(Set((0..<300).map { _ in s.sample(logits) }), [1, 4], "top-2 keeps the two 2.0 logits")
        p.topK = 0; p.topP = 0.5
        s = Sampler(p)
        XCTAssertEqual(Set((0..<300).map { _ in s.sample(logits) }).count, 2, "top-p 0.5: two tokens hold ≥ 50%")
        p.topP = 1; p.minP = 0.8
        s = Sampler(p)
        XCTAssertEqual(Set((0..<300).map { _ in s.sample(logits) }), [1, 2, 4], "min-p 0.8 keeps e^-0.1 but not e^-1.5")
    }

    func testSampledFrequenciesFollowTheSoftmax() {
        var p = SamplingParameters()
        p.temperature = 1; p.topK = 0; p.topP = 1; p.minP = 0; p.seed = 9
        var s = Sampler(p)
        let l: [Float] = [0, log(3)] // probabilities 1/4, 3/4
        let n = 20000
        let ones = (0..<n).filter { _ in s.sample(l) == 1 }.count
        XCTAssertEqual(Double(ones) / Double(n), 0.75, accuracy: 0.015)
    }

    func testPenaltiesDiscourageRepeats() {
        var p = SamplingParameters.greedy
        p.repetitionPenalty = 1.5
        var s = Sampler(p)
        XCTAssertEqual(s.sample(logits, history: [1, 4]), 2, "2.0/1.5 < 1.9")
        p = .greedy
        p.presencePenalty = 0.2
        s = Sampler(p)
        XCTAssertEqual(s.sample(logits, history: [1, 4]), 2)
        p = .greedy
        p.frequencyPenalty = 0.06
        s = Sampler(p)
        XCTAssertEqual(s.sample(logits, history: [1, 1, 4]), 4, "one repeat of 4 costs less than two of 1")
    }
}
