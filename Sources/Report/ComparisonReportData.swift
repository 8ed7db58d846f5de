import Foundation

/// Everything the comparison part of a report shows, as plain values: `rein compare` fills it from
/// the store, `ReportRenderer.render(comparison:store:)` draws it. Shares are in [0, 1]; intervals
/// are the bounds the statistics produced (e.g. 95%); nil means not measured.
public struct ComparisonReportData: Codable, Sendable, Equatable {
    /// One policy that was sampled.
    public struct Policy: Codable, Sendable, Equatable {
        /// Its name in the comparison (e.g. `sft`, `ppo@step40`).
        public var name: String
        /// Where it came from (a stage reference, a checkpoint directory).
        public var source: String
        /// Mean response length in tokens.
        public var meanLength: Double
        /// Mean KL to the reference policy, if measured.
        public var kl: Double?
        /// Perplexity on held-out text before and after training, if measured.
        public var perplexityBefore: Double?
        public var perplexityAfter: Double?

        public init(name: String, source: String, meanLength: Double, kl: Double? = nil, perplexityBefore: Double? = nil,
                    perplexityAfter: Double? = nil) {
            self.name = name
            self.source = source
            self.meanLength = meanLength
            self.kl = kl
            self.perplexityBefore = perplexityBefore
            self.perplexityAfter = perplexityAfter
        }
    }

    /// A judge's verdicts on policy `a` against policy `b`.
    public struct Pair: Codable, Sendable, Equatable {
        public var judge: String
        public var a: String
        public var b: String
        /// Prompts judged.
        public var n: Int
        /// Prompts where `a` won, lost, tied; prompts the judge failed on.
        public var wins: Int
        public var losses: Int
        public var ties: Int
        public var failures: Int
        /// `a`'s win rate (ties as the statistics count them) and its interval.
        public var winRate: Double
        public var winRateLow: Double
        public var winRateHigh: Double
        /// The win rate among decided prompts, and its interval.
        public var noTieWinRate: Double?
        public var noTieLow: Double?
        public var noTieHigh: Double?
        /// Two-sided sign-test p-value of wins against losses.
        public var signTestP: Double?
        /// Mean score difference `a - b` (score judges), and its interval.
        public var meanDifference: Double?
        public var meanDifferenceLow: Double?
        public var meanDifferenceHigh: Double?
        /// Prompts a comparison would need to tell this difference apart.
        public var promptsNeeded: Int?
        /// How much the judge prefers the first-shown response (share of verdicts that flip with
        /// the order), if measured.
        public var positionBias: Double?
        /// The win rate with the length difference regressed out, if measured.
        public var lengthControlledWinRate: Double?

        public init(judge: String, a: String, b: String, n: Int, wins: Int, losses: Int, ties: Int, failures: Int,
                    winRate: Double, winRateLow: Double, winRateHigh: Double, noTieWinRate: Double? = nil,
                    noTieLow: Double? = nil, noTieHigh: Double? = nil, signTestP: Double? = nil,
                    meanDifference: Double? = nil, meanDifferenceLow: Double? = nil, meanDifferenceHigh: Double? = nil,
                    promptsNeeded: Int? = nil, positionBias: Double? = nil, lengthControlledWinRate: Double? = nil) {
            self.judge = judge
            self.a = a
            self.b = b
            self.n = n
            self.wins = wins
            self.losses = losses
            self.ties = ties
            self.failures = failures
            self.winRate = winRate
            self.winRateLow = winRateLow
            self.winRateHigh = winRateHigh
            self.noTieWinRate = noTieWinRate
            self.noTieLow = noTieLow
            self.noTieHigh = noTieHigh
            self.signTestP = signTestP
            self.meanDifference = meanDifference
            self.meanDifferenceLow = meanDifferenceLow
            self.meanDifferenceHigh = meanDifferenceHigh
            self.promptsNeeded = promptsNeeded
            self.positionBias = positionBias
            self.lengthControlledWinRate = lengthControlledWinRate
        }
    }

    /// A policy's Bradley-Terry rating under one judge, with its interval and the range of ranks
    /// it takes over that interval (1 is best).
    public struct RankingEntry: Codable, Sendable, Equatable {
        public var judge: String
        public var policy: String
        public var rating: Double
        public var low: Double
        public var high: Double
        public var rankLow: Int
        public var rankHigh: Int

        public init(judge: String, policy: String, rating: Double, low: Double, high: Double, rankLow: Int, rankHigh: Int) {
            self.judge = judge
            self.policy = policy
            self.rating = rating
            self.low = low
            self.high = high
            self.rankLow = rankLow
            self.rankHigh = rankHigh
        }
    }

    /// A checkpoint on the reward-vs-KL plane: its gold-judge reward and optionally the proxy
    /// (reward-model) score it was trained on. `pareto` marks the points on the front: no other
    /// point has KL as low and gold as high with one of them strictly better (the comparison marks
    /// them with `CompareStatistics.paretoFront`).
    public struct FrontierPoint: Codable, Sendable, Equatable {
        /// The training run or sweep the point belongs to (one colour per series).
        public var series: String
        /// The checkpoint (e.g. `step 40`).
        public var label: String
        public var kl: Double
        public var gold: Double
        public var proxy: Double?
        public var pareto: Bool

        public init(series: String, label: String, kl: Double, gold: Double, proxy: Double? = nil, pareto: Bool = false) {
            self.series = series
            self.label = label
            self.kl = kl
            self.gold = gold
            self.proxy = proxy
            self.pareto = pareto
        }
    }

    /// One policy's response to a sample prompt.
    public struct Response: Codable, Sendable, Equatable {
        public var policy: String
        public var text: String
        public var score: Double?

        public init(policy: String, text: String, score: Double? = nil) {
            self.policy = policy
            self.text = text
            self.score = score
        }
    }

    /// A prompt and each policy's response to it.
    public struct Sample: Codable, Sendable, Equatable {
        public var prompt: String
        public var responses: [Response]

        public init(prompt: String, responses: [Response]) {
            self.prompt = prompt
            self.responses = responses
        }
    }

    public var title: String
    public var createdAt: Date
    public var seed: Int64
    /// The sampling options the responses were generated with (temperature, max tokens, ...).
    public var sampling: [String: String]
    public var policies: [Policy]
    public var judges: [String]
    public var pairs: [Pair]
    public var ranking: [RankingEntry]
    public var frontier: [FrontierPoint]
    public var samples: [Sample]
    /// Runs whose stages' curves the report includes (read from the store given to the renderer).
    public var runIds: [Int64]

    public init(title: String, createdAt: Date, seed: Int64, sampling: [String: String] = [:], policies: [Policy] = [],
                judges: [String] = [], pairs: [Pair] = [], ranking: [RankingEntry] = [], frontier: [FrontierPoint] = [],
                samples: [Sample] = [], runIds: [Int64] = []) {
        self.title = title
        self.createdAt = createdAt
        self.seed = seed
        self.sampling = sampling
        self.policies = policies
        self.judges = judges
        self.pairs = pairs
        self.ranking = ranking
        self.frontier = frontier
        self.samples = samples
        self.runIds = runIds
    }
}
