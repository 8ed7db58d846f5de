import Foundation
import Report
import Store

extension ComparisonReportData {
    /// The report's view of a stored comparison: its summary, the runs whose stages' curves join
    /// it, and the sample responses it kept.
    public init(summary: CompareSummary, session: CompareSession) {
        let o = summary.options
        var sampling = ["temperature": "\(o.temperature)", "response_length": "\(o.responseLength)",
                        "samples_per_prompt": "\(o.samplesPerPrompt)", "prompts": "\(summary.promptCount) from \(summary.prompts)",
                        "bootstrap": "\(o.bootstrap)"]
        if let k = o.topK { sampling["top_k"] = "\(k)" }
        if let p = o.topP { sampling["top_p"] = "\(p)" }
        let reference = summary.policies.first { $0.kind == "model" && $0.kl == 0 }?.perplexity
        let policies = summary.policies.map { p in
            ComparisonReportData.Policy(name: p.name, source: p.spec, meanLength: p.meanTokens, kl: p.kl,
                                        perplexityBefore: p.perplexity == nil ? nil : reference, perplexityAfter: p.perplexity)
        }
        var pairs: [ComparisonReportData.Pair] = []
        var ranking: [ComparisonReportData.RankingEntry] = []
        for judge in summary.judges {
            for pair in judge.pairs {
                guard let rate = pair.winRate else { continue }
                pairs.append(.init(judge: judge.name, a: pair.a, b: pair.b, n: pair.n, wins: pair.wins, losses: pair.losses,
                                   ties: pair.ties, failures: pair.failures, winRate: rate, winRateLow: pair.winRateLow ?? rate,
                                   winRateHigh: pair.winRateHigh ?? rate, noTieWinRate: pair.noTieWinRate, noTieLow: pair.noTieLow,
                                   noTieHigh: pair.noTieHigh, signTestP: pair.signTestP, meanDifference: pair.meanDifference,
                                   meanDifferenceLow: pair.meanDifferenceLow, meanDifferenceHigh: pair.meanDifferenceHigh,
                                   promptsNeeded: pair.promptsNeeded, positionBias: pair.positionBias,
                                   lengthControlledWinRate: pair.lengthControlledWinRate))
            }
            for entry in judge.ranking {
                ranking.append(.init(judge: judge.name, policy: entry.policy, rating: entry.rating, low: entry.low, high: entry.high,
                                     rankLow: entry.rankLow, rankHigh: entry.rankHigh))
            }
        }
        let frontier = summary.frontier.map {
            ComparisonReportData.FrontierPoint(series: $0.series, label: $0.label, kl: $0.kl, gold: $0.gold, proxy: $0.proxy, pareto: $0.pareto)
        }
        let samples = summary.samples.map { s in
            ComparisonReportData.Sample(prompt: s.prompt, responses: s.responses.map { .init(policy: $0.policy, text: $0.text, score: $0.score) })
        }
        self.init(title: "Comparison \(summary.sessionId): \(summary.name)", createdAt: session.createdAt, seed: Int64(bitPattern: summary.seed),
                  sampling: sampling, policies: policies, judges: summary.judges.map(\.name), pairs: pairs, ranking: ranking,
                  frontier: frontier, samples: samples, runIds: session.runId.map { [$0] } ?? [])
    }
}
