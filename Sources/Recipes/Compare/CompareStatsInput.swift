import Evaluation
import Foundation

/// The bridge from a comparison's verdict tables to the statistics of the Evaluation target
/// (`CompareStatistics`, `BradleyTerryRanking`, `LengthControlledWinRate`).
enum CompareStatsInput {
    /// One judged item, in policy terms.
    typealias Outcome = Verdict

    /// One battle of a ranking: policy positions and who won.
    struct Battle: Sendable {
        var a: Int
        var b: Int
        var outcome: Outcome
    }

    /// A pair's statistics from its per-prompt outcomes (several samples per prompt possible).
    ///
    /// - Parameters:
    ///   - scores: for score judges, each prompt's (A, B) scores, paired by sample.
    ///   - orders: for pairwise judges, every item's verdicts in the positions the judge saw them
    ///     (A first, then B first), for the position bias.
    ///   - lengthsA, lengthsB: response lengths in tokens, per prompt and sample.
    static func pairSummary(a: String, b: String, outcomes: [[Outcome]], scores: [[(Double, Double)]]?,
                            orders: [(forward: Verdict, swapped: Verdict)]?, lengthsA: [[Double]], lengthsB: [[Double]],
                            bootstrap: Int, seed: UInt64) throws -> CompareSummary.PairSummary {
        func mean(_ rows: [[Double]]) -> Double {
            let all = rows.flatMap { $0 }
            return all.isEmpty ? 0 : all.reduce(0, +) / Double(all.count)
        }
        let stats = try PairwiseSummary.compute(outcomes: outcomes.map(PairwiseOutcome.init), bootstrap: bootstrap, seed: seed)
        var pair = CompareSummary.PairSummary(
            a: a, b: b, n: stats.n, wins: stats.wins, losses: stats.losses, ties: stats.ties, failures: stats.failures,
            winRate: stats.winRate, winRateLow: stats.winRateInterval?.low, winRateHigh: stats.winRateInterval?.high,
            noTieWinRate: stats.decisiveWinRate, noTieLow: stats.decisiveWinRateInterval?.low,
            noTieHigh: stats.decisiveWinRateInterval?.high, signTestP: stats.signTestP, promptsNeeded: stats.promptsNeeded,
            meanTokensA: mean(lengthsA), meanTokensB: mean(lengthsB))
        if let scores {
            // Paired by prompt: each prompt's mean over its samples, so the bootstrap resamples prompts.
            var xs: [Double] = [], ys: [Double] = []
            for row in scores where !row.isEmpty {
                xs.append(row.reduce(0) { $0 + $1.0 } / Double(row.count))
                ys.append(row.reduce(0) { $0 + $1.1 } / Double(row.count))
            }
            if !xs.isEmpty {
                let difference = try CompareStatistics.meanDifference(a: xs, b: ys, bootstrap: bootstrap, seed: seed)
                pair.meanDifference = difference.mean
                pair.meanDifferenceLow = difference.interval?.low
                pair.meanDifferenceHigh = difference.interval?.high
            }
        }
        if let orders, !orders.isEmpty {
            pair.positionBias = try PositionBias.compute(orders).share
        }
        // B as the baseline: the win rate a judge blind to the length difference would give.
        var withLengths: [[VerdictWithLengths]] = []
        for (i, row) in outcomes.enumerated() {
            withLengths.append(row.enumerated().map { s, v in VerdictWithLengths(v, lengthA: lengthsA[i][s], lengthB: lengthsB[i][s]) })
        }
        if stats.n > 0 {
            pair.lengthControlledWinRate = try LengthControlledWinRate.compute(prompts: withLengths, bootstrap: bootstrap, seed: seed).winRate
        }
        return pair
    }

    /// A policy's mean score over its judged responses, with a bootstrap interval over prompts.
    static func policyScore(policy: String, values: [[Double?]], bootstrap: Int, seed: UInt64) throws -> CompareSummary.PolicyScore {
        let all = values.flatMap { $0 }
        let scored = all.compactMap { $0 }
        var out = CompareSummary.PolicyScore(policy: policy, mean: nil, low: nil, high: nil, scored: scored.count,
                                             failed: all.count - scored.count)
        let perPrompt = values.compactMap { row -> Double? in
            let s = row.compactMap { $0 }
            return s.isEmpty ? nil : s.reduce(0, +) / Double(s.count)
        }
        guard !perPrompt.isEmpty else { return out }
        out.mean = scored.reduce(0, +) / Double(scored.count)
        // The interval of a mean is that of its difference from zero, paired by prompt.
        let interval = try CompareStatistics.meanDifference(a: perPrompt, b: [Double](repeating: 0, count: perPrompt.count),
                                                            bootstrap: bootstrap, seed: seed).interval
        out.low = interval?.low
        out.high = interval?.high
        return out
    }

    /// Bradley-Terry ratings, best first, on the Elo scale with mean 1000.
    static func ranking(_ battles: [Battle], names: [String], bootstrap: Int, seed: UInt64) throws -> [CompareSummary.RankSummary] {
        guard battles.contains(where: { $0.outcome != .failed }) else { return [] }
        let fit = try BradleyTerryRanking.fit(policies: names, battles: battles.map { Evaluation.Battle(names[$0.a], names[$0.b], $0.outcome) },
                                              bootstrap: bootstrap, seed: seed)
        return fit.ratings.map {
            CompareSummary.RankSummary(policy: $0.policy, rating: $0.rating, low: $0.interval?.low ?? $0.rating,
                                       high: $0.interval?.high ?? $0.rating, rankLow: $0.rankBest, rankHigh: $0.rankWorst)
        }
    }

    /// The KL of best-of-n sampling to the sampled policy: log n - (n - 1) / n.
    static func bestOfNKL(_ n: Int) throws -> Double { try CompareStatistics.bestOfNKL(n: n) }

    /// Whether each (KL, reward) point is on the Pareto front.
    static func paretoFront(_ points: [(kl: Double, reward: Double)]) throws -> [Bool] {
        let front = Set(try CompareStatistics.paretoFront(points.enumerated().map { KLRewardPoint("\($0.offset)", kl: $0.element.kl, reward: $0.element.reward) }))
        return points.indices.map { front.contains($0) }
    }
}
