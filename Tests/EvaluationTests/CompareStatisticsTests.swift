import Evaluation
import Foundation
import TensorCore
import Testing

/// Outcomes of one verdict per prompt: `wins` for A, `losses`, `ties`, `failures`.
private func singles(wins: Int, losses: Int, ties: Int = 0, failures: Int = 0) -> [PairwiseOutcome] {
    Array(repeating: PairwiseOutcome([.a]), count: wins) + Array(repeating: PairwiseOutcome([.b]), count: losses)
        + Array(repeating: PairwiseOutcome([.tie]), count: ties) + Array(repeating: PairwiseOutcome([.failed]), count: failures)
}

@Suite struct CompareStatisticsTests {
    @Test func bothOrdersAgreeingGiveTheVerdictDisagreeingATie() {
        // `swapped` is in the positions the judge saw: B first, so `.b` there picked A.
        #expect(PairwiseOutcome.combine(forward: .a, swapped: .b) == .a)
        #expect(PairwiseOutcome.combine(forward: .b, swapped: .a) == .b)
        // A judge that always picks the first shown: the orders disagree, a tie.
        #expect(PairwiseOutcome.combine(forward: .a, swapped: .a) == .tie)
        #expect(PairwiseOutcome.combine(forward: .b, swapped: .b) == .tie)
        #expect(PairwiseOutcome.combine(forward: .tie, swapped: .b) == .tie)
        #expect(PairwiseOutcome.combine(forward: .tie, swapped: .tie) == .tie)
        #expect(PairwiseOutcome.combine(forward: .a, swapped: .failed) == .failed)
        #expect(PairwiseOutcome.combine(forward: .failed, swapped: .b) == .failed)
    }

    @Test func positionBiasIsTheShareOfDecisiveVerdictsForTheFirstShown() throws {
        // Every `.a` (in either order) picked the first shown, every `.b` the second: 5 of 7 decisive verdicts.
        let bias = try PositionBias.compute([(.a, .a), (.a, .b), (.b, .a), (.tie, .a), (.failed, .failed)])
        #expect(bias.decisive == 7 && bias.pickedFirst == 5)
        #expect(abs(try #require(bias.share) - 5.0 / 7) < 1e-15)
        let wilson = try #require(Agreement.wilson(successes: 5, n: 7)), interval = try #require(bias.interval)
        #expect(abs(interval.low - wilson.low) < 1e-7 && abs(interval.high - wilson.high) < 1e-7)
        let none = try PositionBias.compute([(.tie, .failed)])
        #expect(none.decisive == 0 && none.share == nil && none.interval == nil)
    }

    @Test func wilsonIntervalOfSixtyOfAHundred() throws {
        // The textbook check: 60 of 100 gives [0.502, 0.691] (0.50200, 0.69060 to five places).
        let summary = try PairwiseSummary.compute(outcomes: singles(wins: 60, losses: 40), bootstrap: 0, seed: 1)
        let interval = try #require(summary.decisiveWinRateInterval)
        #expect(abs(interval.low - 0.5020026) < 1e-6 && abs(interval.high - 0.6905987) < 1e-6)
        #expect(summary.decisiveWinRate == 0.6 && summary.winRate == 0.6)
        #expect(summary.winRateInterval == nil)
    }

    @Test func signTestAgainstExactBinomialSums() {
        // References: 2 * sum_{i <= k} C(d, i) / 2^d in exact rational arithmetic (Python's fractions).
        #expect(abs(CompareStatistics.signTest(wins: 60, losses: 40) - 0.05688793364098079) < 1e-13)
        #expect(CompareStatistics.signTest(wins: 50, losses: 50) == 1)
        #expect(abs(CompareStatistics.signTest(wins: 9, losses: 1) / 0.021484375 - 1) < 1e-12)
        #expect(abs(CompareStatistics.signTest(wins: 0, losses: 10) / 0.001953125 - 1) < 1e-12)
        #expect(CompareStatistics.signTest(wins: 0, losses: 0) == 1)
        // Ten thousand trials: the log-space sum keeps full relative precision.
        #expect(abs(CompareStatistics.signTest(wins: 5100, losses: 4900) / 0.04658552770494739 - 1) < 1e-9)
        #expect(abs(CompareStatistics.signTest(wins: 4800, losses: 5200) / 6.593515598672442e-05 - 1) < 1e-9)
        // A hundred thousand all one way underflows to 0, never NaN.
        let extreme = CompareStatistics.signTest(wins: 100_000, losses: 0)
        #expect(extreme == 0)
        #expect(abs(CompareStatistics.signTest(wins: 50_000, losses: 50_001) - 1) < 1e-9)
    }

    @Test func promptsNeededForTheObservedEffect() throws {
        // 0.6: the normal approximation (z + sqrt(z^2 + 0.8))^2 / 0.16 = 105.8 -> 106, where the exact test on
        // 64-42 gives 0.041. All wins: 2 / 2^6 = 0.031 is the first below 0.05 (2 / 2^5 = 0.0625).
        #expect(CompareStatistics.decisiveVerdictsNeeded(winRate: 0.6) == 106)
        #expect(CompareStatistics.signTest(wins: 64, losses: 42) < 0.05)
        #expect(CompareStatistics.decisiveVerdictsNeeded(winRate: 1) == 6)
        #expect(CompareStatistics.decisiveVerdictsNeeded(winRate: 0) == 6)
        #expect(CompareStatistics.decisiveVerdictsNeeded(winRate: 0.5) == nil)
        let sixty = try PairwiseSummary.compute(outcomes: singles(wins: 60, losses: 40), bootstrap: 0, seed: 1)
        #expect(sixty.promptsNeeded == 106)
        #expect(abs(try #require(sixty.signTestP) - 0.05688793364098079) < 1e-13)
        // Half the prompts tied: half a decisive verdict per prompt, twice the prompts.
        let tied = try PairwiseSummary.compute(outcomes: singles(wins: 60, losses: 40, ties: 100), bootstrap: 0, seed: 1)
        #expect(tied.promptsNeeded == 212)
        #expect(tied.winRate == 0.55 && tied.decisiveWinRate == 0.6)
        let even = try PairwiseSummary.compute(outcomes: singles(wins: 50, losses: 50), bootstrap: 0, seed: 1)
        #expect(even.promptsNeeded == nil && even.signTestP == 1)
    }

    @Test func failuresAreCountedApartAndNeverAsWins() throws {
        let outcomes = [
            PairwiseOutcome([.a, .failed, .tie]),
            PairwiseOutcome([.failed, .failed]),  // no counted verdict: not a prompt of the summary
            PairwiseOutcome([.b]),
            PairwiseOutcome([]),
        ]
        let summary = try PairwiseSummary.compute(outcomes: outcomes, bootstrap: 100, seed: 3)
        #expect(summary.prompts == 2 && summary.n == 3)
        #expect(summary.wins == 1 && summary.losses == 1 && summary.ties == 1 && summary.failures == 3)
        #expect(summary.winRate == 0.5 && summary.decisiveWinRate == 0.5)
    }

    @Test func emptyOrAllFailedGivesNilFigures() throws {
        for outcomes in [[], [PairwiseOutcome([.failed])]] {
            let summary = try PairwiseSummary.compute(outcomes: outcomes, seed: 1)
            #expect(summary.n == 0 && summary.winRate == nil && summary.winRateInterval == nil)
            #expect(summary.decisiveWinRate == nil && summary.signTestP == nil && summary.promptsNeeded == nil)
            // It still encodes (JSON has no NaN, and there is none to encode).
            let decoded = try JSONDecoder().decode(PairwiseSummary.self, from: JSONEncoder().encode(summary))
            #expect(decoded == summary)
        }
        let tiesOnly = try PairwiseSummary.compute(outcomes: singles(wins: 0, losses: 0, ties: 5), seed: 1)
        #expect(tiesOnly.winRate == 0.5 && tiesOnly.winRateInterval == ConfidenceInterval(low: 0.5, high: 0.5))
        #expect(tiesOnly.decisiveWinRate == nil && tiesOnly.signTestP == nil)
    }

    @Test func bootstrapIntervalIsSeededAndResamplesPrompts() throws {
        let outcomes = singles(wins: 60, losses: 40)
        let one = try PairwiseSummary.compute(outcomes: outcomes, seed: 11)
        let again = try PairwiseSummary.compute(outcomes: outcomes, seed: 11)
        let other = try PairwiseSummary.compute(outcomes: outcomes, seed: 12)
        #expect(one == again)
        #expect(one.winRateInterval != other.winRateInterval)
        // The percentile interval of a proportion of 0.6 over 100 prompts is close to 0.6 ± 1.96 sqrt(0.24 / 100).
        let interval = try #require(one.winRateInterval)
        #expect(abs(interval.low - 0.504) < 0.02 && abs(interval.high - 0.696) < 0.02)
        // The same 60:40 as 25 prompts of four identical verdicts is 25 independent draws, not 100: the
        // interval over prompts is twice as wide (±0.19 instead of ±0.096).
        let clustered = Array(repeating: PairwiseOutcome([.a, .a, .a, .a]), count: 15)
            + Array(repeating: PairwiseOutcome([.b, .b, .b, .b]), count: 10)
        let wide = try #require(try PairwiseSummary.compute(outcomes: clustered, seed: 11).winRateInterval)
        #expect(wide.high - wide.low > 0.3 && wide.high - wide.low < 0.45)
        // A confidence level outside (0, 1) or a negative resample count is refused.
        #expect(throws: EvaluationError.self) { try PairwiseSummary.compute(outcomes: outcomes, seed: 1, confidence: 1) }
        #expect(throws: EvaluationError.self) { try PairwiseSummary.compute(outcomes: outcomes, bootstrap: -1, seed: 1) }
    }

    @Test func meanDifferenceIsPairedByPrompt() throws {
        // Scores that vary a lot across prompts but differ by exactly 0.25 on each: the paired interval is a point.
        let a: [Double] = [1, 5, -3, 8, 2.5], b = a.map { $0 - 0.25 }
        let paired = try CompareStatistics.meanDifference(a: a, b: b, seed: 5)
        #expect(paired.n == 5 && abs(paired.mean - 0.25) < 1e-12)
        #expect(abs(paired.meanA - 2.7) < 1e-12 && abs(paired.meanB - 2.45) < 1e-12)
        let interval = try #require(paired.interval)
        #expect(abs(interval.low - 0.25) < 1e-12 && abs(interval.high - 0.25) < 1e-12)
        // Differences 0 and 1 on 400 prompts: mean 0.5, interval about 0.5 ± 1.96 * 0.5 / 20.
        let spread = try CompareStatistics.meanDifference(a: (0..<400).map { Double($0 % 2) }, b: Array(repeating: 0, count: 400), seed: 5)
        let wide = try #require(spread.interval)
        #expect(abs(wide.low - 0.451) < 0.015 && abs(wide.high - 0.549) < 0.015)
        #expect(try CompareStatistics.meanDifference(a: a, b: b, seed: 5) == paired)
        #expect(throws: EvaluationError.self) { try CompareStatistics.meanDifference(a: [1, 2], b: [1], seed: 1) }
        #expect(throws: EvaluationError.self) { try CompareStatistics.meanDifference(a: [], b: [], seed: 1) }
        #expect(throws: EvaluationError.self) { try CompareStatistics.meanDifference(a: [1, .nan], b: [1, 2], seed: 1) }
    }

    @Test func normalQuantileAndBestOfNKL() throws {
        // References: Python's statistics.NormalDist().inv_cdf.
        #expect(abs(try CompareStatistics.zScore(confidence: 0.95) - 1.9599639845400536) < 1e-13)
        #expect(abs(try CompareStatistics.zScore(confidence: 0.9) - 1.6448536269514715) < 1e-13)
        #expect(abs(try CompareStatistics.zScore(confidence: 0.99) - 2.5758293035489) < 1e-12)
        #expect(abs(CompareStatistics.normalQuantile(1e-10) + 6.361340902404056) < 1e-11)
        #expect(throws: EvaluationError.self) { try CompareStatistics.zScore(confidence: 0) }
        // log n - (n - 1) / n.
        #expect(try CompareStatistics.bestOfNKL(n: 1) == 0)
        #expect(abs(try CompareStatistics.bestOfNKL(n: 4) - 0.6362943611198906) < 1e-15)
        #expect(abs(try CompareStatistics.bestOfNKL(n: 16) - 1.8350887222397811) < 1e-15)
        #expect(throws: EvaluationError.self) { try CompareStatistics.bestOfNKL(n: 0) }
    }

    @Test func tenThousandPromptsTimesTwoThousandResamplesIsQuick() throws {
        var rng = RNG(seed: 7)
        let outcomes = (0..<10_000).map { _ in PairwiseOutcome([[Verdict.a, .b, .tie][rng.int(below: 3)]]) }
        let start = Date()
        let summary = try PairwiseSummary.compute(outcomes: outcomes, bootstrap: 2000, seed: 1)
        let seconds = Date().timeIntervalSince(start)
        print("PairwiseSummary: 10,000 prompts x 2,000 resamples in \(String(format: "%.3f", seconds)) s")
        #expect(summary.n == 10_000 && summary.winRateInterval != nil)
        #expect(seconds < 5)
    }
}
