import Evaluation
import Foundation

/// The bridge from a comparison's verdict tables to the statistics of the Evaluation target.
enum CompareStatsInput {
    /// One judged item, in policy terms.
    enum Outcome: String, Sendable {
        case a, b, tie, failed
    }

    /// One battle of a ranking: policy positions and who won.
    struct Battle: Sendable {
        var a: Int
        var b: Int
        var outcome: Outcome
    }

    /// A pair's statistics from its per-prompt outcomes (several samples per prompt possible).
    static func pairSummary(a: String, b: String, outcomes: [[Outcome]], differences: [[Double]]?,
                            positions: (firstShownWins: Int, decisive: Int)?, lengthsA: [[Double]], lengthsB: [[Double]],
                            bootstrap: Int, seed: UInt64) -> CompareSummary.PairSummary {
        let flat = outcomes.flatMap { $0 }
        let wins = flat.filter { $0 == .a }.count, losses = flat.filter { $0 == .b }.count
        let ties = flat.filter { $0 == .tie }.count, failures = flat.filter { $0 == .failed }.count
        let n = wins + losses + ties
        func mean(_ rows: [[Double]]) -> Double {
            let all = rows.flatMap { $0 }
            return all.isEmpty ? 0 : all.reduce(0, +) / Double(all.count)
        }
        var pair = CompareSummary.PairSummary(a: a, b: b, n: n, wins: wins, losses: losses, ties: ties, failures: failures,
                                              meanTokensA: mean(lengthsA), meanTokensB: mean(lengthsB))
        if n > 0 { pair.winRate = (Double(wins) + 0.5 * Double(ties)) / Double(n) }
        if wins + losses > 0 {
            pair.noTieWinRate = Double(wins) / Double(wins + losses)
            if let interval = Agreement.wilson(successes: Double(wins), n: Double(wins + losses)) {
                pair.noTieLow = interval.low
                pair.noTieHigh = interval.high
            }
        }
        if let differences {
            let all = differences.flatMap { $0 }
            if !all.isEmpty { pair.meanDifference = all.reduce(0, +) / Double(all.count) }
        }
        if let positions, positions.decisive > 0 {
            pair.positionBias = Double(positions.firstShownWins) / Double(positions.decisive)
        }
        return pair
    }

    /// A policy's mean score over its judged responses.
    static func policyScore(policy: String, values: [[Double?]], bootstrap: Int, seed: UInt64) -> CompareSummary.PolicyScore {
        let all = values.flatMap { $0 }
        let scored = all.compactMap { $0 }
        return CompareSummary.PolicyScore(policy: policy, mean: scored.isEmpty ? nil : scored.reduce(0, +) / Double(scored.count),
                                          low: nil, high: nil, scored: scored.count, failed: all.count - scored.count)
    }

    /// Bradley-Terry ratings, best first.
    static func ranking(_ battles: [Battle], names: [String], bootstrap: Int, seed: UInt64) -> [CompareSummary.RankSummary] {
        []
    }

    /// The KL of best-of-n sampling to the sampled policy: log n - (n - 1) / n.
    static func bestOfNKL(_ n: Int) -> Double {
        log(Double(n)) - Double(n - 1) / Double(n)
    }

    /// Whether each (KL, reward) point is on the Pareto front (no other point has lower or equal
    /// KL and higher or equal reward, one of them strictly).
    static func paretoFront(_ points: [(kl: Double, reward: Double)]) -> [Bool] {
        points.indices.map { i in
            !points.indices.contains { j in
                j != i && points[j].kl <= points[i].kl && points[j].reward >= points[i].reward
                    && (points[j].kl < points[i].kl || points[j].reward > points[i].reward)
            }
        }
    }
}
