import Evaluation
import Foundation
import TensorCore
import Testing

/// `count` prompts with one verdict each: A's response `shift` ± 100 longer than B's (normal), the verdict
/// drawn with P(A wins) = `winProbability(Δ)` and a tie whenever a uniform draw falls below `tieShare`.
private func judged(count: Int, shift: Double, tieShare: Double = 0, seed: UInt64,
                    winProbability: (Double) -> Double) -> [[VerdictWithLengths]] {
    var rng = RNG(seed: seed)
    return (0..<count).map { _ in
        let lengthB = 200 + 50 * Double(rng.normal())
        let delta = shift + 100 * Double(rng.normal())
        let verdict: Verdict = Double(rng.uniform()) < tieShare ? .tie : Double(rng.uniform()) < winProbability(delta) ? .a : .b
        return [VerdictWithLengths(verdict, lengthA: lengthB + delta, lengthB: lengthB)]
    }
}

@Suite struct LengthControlledWinRateTests {
    @Test func aJudgeThatOnlyLikesLengthIsControlledToAboutHalf() throws {
        // The verdict depends on the length difference alone, and A is longer on average: the raw win rate is
        // far from 0.5, the length-controlled one is not (its standard error here is about 0.015).
        let prompts = judged(count: 4000, shift: 80, seed: 1) { 1 / (1 + exp(-3 * tanh($0 / 60))) }
        let result = try LengthControlledWinRate.compute(prompts: prompts, bootstrap: 200, seed: 2)
        #expect(result.rawWinRate > 0.7)
        #expect(abs(result.winRate - 0.5) < 0.05, "LC \(result.winRate), raw \(result.rawWinRate)")
        #expect(result.slope > 2)
        let interval = try #require(result.interval)
        #expect(interval.low < result.winRate && result.winRate < interval.high && interval.high < result.rawWinRate)
    }

    @Test func whenLengthDoesNotMatterTheControlledRateIsTheRawOne() throws {
        // A wins 70% of the decisive verdicts, 20% ties, whatever the lengths.
        let prompts = judged(count: 4000, shift: 80, tieShare: 0.2, seed: 3) { _ in 0.7 }
        let result = try LengthControlledWinRate.compute(prompts: prompts, bootstrap: 0, seed: 4)
        #expect(abs(result.rawWinRate - 0.66) < 0.02)
        #expect(abs(result.winRate - result.rawWinRate) < 0.02, "LC \(result.winRate), raw \(result.rawWinRate)")
        #expect(abs(result.slope) < 0.2 && result.interval == nil)
    }

    @Test func equalLengthDifferencesLeaveTheRawRate() throws {
        // Every Δ is 10: length cannot be told from quality; the feature is 0 and σ(θ₀) is the raw 3/4, up to
        // the penalty (l2 θ₀ / (n p (1 - p)) = 1e-3 * 1.1 / 0.75 in θ₀).
        let prompts: [[VerdictWithLengths]] = [
            [VerdictWithLengths(.a, lengthA: 20, lengthB: 10), VerdictWithLengths(.a, lengthA: 30, lengthB: 20)],
            [VerdictWithLengths(.b, lengthA: 15, lengthB: 5)],
            [VerdictWithLengths(.a, lengthA: 11, lengthB: 1), VerdictWithLengths(.failed, lengthA: 0, lengthB: 0)],
        ]
        let result = try LengthControlledWinRate.compute(prompts: prompts, seed: 1)
        #expect(result.prompts == 3 && result.n == 4 && result.failures == 1)
        #expect(result.lengthScale == 0 && result.slope == 0 && result.meanLengthDifference == 10)
        #expect(result.rawWinRate == 0.75 && abs(result.winRate - 0.75) < 1e-3)
    }

    @Test func allWinsStayFiniteAndTheBootstrapIsSeeded() throws {
        let prompts = judged(count: 50, shift: 0, seed: 5) { _ in 1 }
        let result = try LengthControlledWinRate.compute(prompts: prompts, bootstrap: 100, seed: 6)
        #expect(result.rawWinRate == 1 && result.winRate > 0.99 && result.winRate < 1 && result.intercept.isFinite)
        #expect(try LengthControlledWinRate.compute(prompts: prompts, bootstrap: 100, seed: 6) == result)
        let mixed = judged(count: 300, shift: 30, seed: 7) { _ in 0.6 }
        let one = try LengthControlledWinRate.compute(prompts: mixed, bootstrap: 100, seed: 6)
        let other = try LengthControlledWinRate.compute(prompts: mixed, bootstrap: 100, seed: 8)
        #expect(one.interval != other.interval && one.winRate == other.winRate)
    }

    @Test func badInputIsRefusedWithTheItem() throws {
        #expect(throws: EvaluationError.self) {
            try LengthControlledWinRate.compute(prompts: [[VerdictWithLengths(.failed, lengthA: 1, lengthB: 2)]], seed: 1)
        }
        do {
            _ = try LengthControlledWinRate.compute(prompts: [[], [VerdictWithLengths(.a, lengthA: 1, lengthB: 2), VerdictWithLengths(.a, lengthA: .nan, lengthB: 2)]], seed: 1)
            Issue.record("a NaN length was accepted")
        } catch {
            #expect("\(error)".contains("prompt 2, verdict 2"))
        }
        #expect(throws: EvaluationError.self) {
            try LengthControlledWinRate.compute(prompts: [[VerdictWithLengths(.a, lengthA: 1, lengthB: 2)]], seed: 1, l2: 0)
        }
    }
}
