import Foundation

/// What a comparison found, as `rein compare --json` prints it and the store keeps it
/// (`compareSession.summaryJSON`). Every figure is finite; what could not be measured is absent.
public struct CompareSummary: Codable, Sendable, Equatable {
    public var sessionId: Int64
    public var name: String
    public var seed: UInt64
    public var options: CompareOptions
    public var prompts: String
    public var promptCount: Int
    public var policies: [PolicySummary]
    public var judges: [JudgeSummary]
    /// Reward against KL over the compared policies and their stages' evaluations.
    public var frontier: [FrontierPointSummary]
    /// The first prompts with each policy's first response and its gold-judge score, side by side.
    public var samples: [SampleSummary]

    public struct SampleSummary: Codable, Sendable, Equatable {
        public var prompt: String
        public var responses: [SampleResponse]
    }

    public struct SampleResponse: Codable, Sendable, Equatable {
        public var policy: String
        public var text: String
        public var score: Double?
    }

    public struct PolicySummary: Codable, Sendable, Equatable {
        public var name: String
        public var spec: String
        public var kind: String
        /// Mean response length in tokens and in characters.
        public var meanTokens: Double
        public var meanCharacters: Double
        /// Share of responses that ended with the end-of-sequence token.
        public var finishedShare: Double
        /// Sequence-level KL to the reference on the policy's own samples (analytic for best-of-n).
        public var kl: Double?
        /// Perplexity on the `forgetting` text.
        public var perplexity: Double?
    }

    public struct JudgeSummary: Codable, Sendable, Equatable {
        public var name: String
        /// `score` (one number per response) or `pairwise` (a verdict per pair, both orders).
        public var kind: String
        /// Per policy (score judges): mean score and its bootstrap interval, items that failed.
        public var scores: [PolicyScore]
        public var pairs: [PairSummary]
        /// Bradley-Terry ratings, best first (three or more policies).
        public var ranking: [RankSummary]
        /// Items the judge could not judge, with the first reason.
        public var failures: Int
        public var firstFailure: String?
    }

    public struct PolicyScore: Codable, Sendable, Equatable {
        public var policy: String
        public var mean: Double?
        public var low: Double?
        public var high: Double?
        public var scored: Int
        public var failed: Int
    }

    public struct PairSummary: Codable, Sendable, Equatable {
        public var a: String
        public var b: String
        /// Judged items (prompt × sample pairs that did not fail).
        public var n: Int
        public var wins: Int
        public var losses: Int
        public var ties: Int
        public var failures: Int
        /// A's win rate with ties as half, and its paired bootstrap interval over prompts.
        public var winRate: Double?
        public var winRateLow: Double?
        public var winRateHigh: Double?
        /// A's win rate without ties, with a Wilson interval.
        public var noTieWinRate: Double?
        public var noTieLow: Double?
        public var noTieHigh: Double?
        /// Two-sided exact sign test (ties dropped).
        public var signTestP: Double?
        /// Prompts the observed effect would need for p < 0.05.
        public var promptsNeeded: Int?
        /// Score judges: mean of A's score minus B's, paired by prompt, with a bootstrap interval.
        public var meanDifference: Double?
        public var meanDifferenceLow: Double?
        public var meanDifferenceHigh: Double?
        /// Pairwise judges: share of decisive verdicts that picked the response shown first.
        public var positionBias: Double?
        /// The win rate a length-blind judge would give (AlpacaEval 2's length-controlled win rate),
        /// when B is the baseline.
        public var lengthControlledWinRate: Double?
        public var meanTokensA: Double
        public var meanTokensB: Double
    }

    public struct RankSummary: Codable, Sendable, Equatable {
        public var policy: String
        public var rating: Double
        public var low: Double
        public var high: Double
        public var rankLow: Int
        public var rankHigh: Int
    }

    public struct FrontierPointSummary: Codable, Sendable, Equatable {
        /// The policy, or the stage whose evaluations the point comes from.
        public var series: String
        /// `ppo@20`, `best_of_4`, a policy name.
        public var label: String
        public var kl: Double
        /// The gold judge's mean score, and the proxy's (the reward model) where both exist.
        public var gold: Double
        public var proxy: Double?
        public var pareto: Bool
    }
}
