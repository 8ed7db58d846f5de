import Foundation
import Store

/// Writes Rein's HTML reports: one self-contained file (inline CSS and SVG, no script, nothing
/// fetched) that reads at 1280 px and prints.
public enum ReportRenderer {
    /// The report of run `runId` in `store`: its facts, a table of its stages, each stage's metric
    /// curves (loss, reward, score, KL, ... over steps) and final metrics, the highest- and
    /// lowest-reward rollouts of RL stages, and its recipe.
    public static func render(runId: Int64, store: RunStore) throws -> String {
        let report = try RunReport(runId: runId, store: store)
        let page = PageModel(title: "Run \(runId): \(report.run.name)", subtitle: ["Rein run report · store \(store.path)"],
                             comparisons: [], runs: [try RunModel(report, showHeading: false)], notes: [])
        return try Templates.render(page, with: "page")
    }

    /// The report of a comparison: policies with their KL and length, win rates with intervals
    /// per judge, the Bradley-Terry ranking, the reward-vs-KL frontier and the over-optimization
    /// view (gold and proxy against √KL), sample responses side by side; then the runs in
    /// `comparison.runIds`, read from `store` (left out, with a note, when `store` is nil).
    public static func render(comparison: ComparisonReportData, store: RunStore?) throws -> String {
        var runs: [RunModel] = [], notes: [String] = []
        if let store {
            for id in comparison.runIds {
                do { runs.append(try RunModel(try RunReport(runId: id, store: store), showHeading: true)) } catch ReportError.runNotFound {
                    notes.append("Run \(id) is not in \(store.path).")
                }
            }
        } else if !comparison.runIds.isEmpty {
            let ids = comparison.runIds.map { String($0) }.joined(separator: ", ")
            notes.append((comparison.runIds.count == 1 ? "Run \(ids) is" : "Runs \(ids) are") + " left out: no store was given.")
        }
        let page = PageModel(title: comparison.title, subtitle: ["Rein comparison report · \(Format.date(comparison.createdAt))"],
                             comparisons: [try ComparisonModel(comparison)], runs: runs, notes: notes)
        return try Templates.render(page, with: "page")
    }
}

// MARK: - View models (every field non-optional; lists stand for optional parts)

struct PageModel {
    let title: String
    let subtitle: [String]
    let comparisons: [ComparisonModel]
    let runs: [RunModel]
    let notes: [String]
}

struct Fact {
    let key: String
    let value: String
}

struct RunModel {
    struct StageModel {
        struct MetricRow {
            let name: String
            let value: String
            let exact: String
            let step: String
        }

        struct RolloutRow {
            let rank: String
            let reward: String
            let score: String
            let kl: String
            let tokens: String
            let stop: String
            let prompt: String
            let response: String
        }

        struct RolloutTable {
            let step: String
            let count: String
            let rows: [RolloutRow]
        }

        let key: String
        let anchor: String
        let kind: String
        let status: String
        let statusClass: String
        let duration: String
        let steps: String
        let summary: String
        let hasCharts: Bool
        let charts: [String]
        let hasMetrics: Bool
        let metrics: [MetricRow]
        let rollouts: [RolloutTable]
    }

    let id: String
    let name: String
    /// Whether the run gets its own heading (not when it is the page).
    let showHeading: Bool
    let facts: [Fact]
    let hasStages: Bool
    let stages: [StageModel]
    let recipe: String

    init(_ report: RunReport, showHeading: Bool) throws {
        let run = report.run
        id = String(run.id ?? 0)
        name = run.name
        self.showHeading = showHeading
        var facts = [Fact(key: "status", value: run.status.rawValue), Fact(key: "started", value: Format.date(run.startedAt))]
        if let end = run.finishedAt {
            facts.append(Fact(key: "finished", value: Format.date(end) + " (took \(Format.duration(end.timeIntervalSince(run.startedAt))))"))
        }
        facts.append(Fact(key: "seed", value: String(run.seed)))
        let completed = report.stages.filter { $0.stage.status == .completed }.count
        facts.append(Fact(key: "stages", value: "\(completed) of \(report.stages.count) completed"))
        if let dir = run.outputDir { facts.append(Fact(key: "output", value: dir)) }
        if let host = run.host { facts.append(Fact(key: "host", value: host)) }
        self.facts = facts
        hasStages = !report.stages.isEmpty
        recipe = run.recipe
        let runId = id
        stages = try report.stages.map { s in
            let stage = s.stage
            let duration: String
            if let reused = stage.reusedStageId {
                duration = "skipped: reuses stage \(reused)"
            } else if let end = stage.finishedAt {
                duration = Format.duration(end.timeIntervalSince(stage.startedAt))
            } else {
                duration = "not finished"
            }
            let steps = s.series.values.compactMap { $0.last?.x }.max().map { String(Int($0)) } ?? "0"
            let charts = try RunReport.chartGroups(s.series).map { group in
                var svg = LineChart(title: group.name, xLabel: "step", yLabel: group.name,
                                    series: group.metrics.map { LineChart.Series(name: $0, points: s.series[$0]!) }).svg()
                svg.set("data-run", runId)
                svg.set("data-stage", stage.stageKey)
                return try svg.render()
            }
            let metrics = s.final.map {
                StageModel.MetricRow(name: $0.name, value: Format.number($0.value), exact: Format.exact($0.value), step: String($0.step))
            }
            let summaryNames = s.final.filter { ["loss", "accuracy", "score", "kl", "reward", "exact_match", "judge_score"]
                .contains($0.name.split(separator: "/").last.map(String.init) ?? "") }
            var rollouts: [StageModel.RolloutTable] = []
            if let r = s.rollouts {
                let row = { (rank: String, x: Rollout) in
                    StageModel.RolloutRow(rank: rank, reward: Format.number(x.reward), score: Format.number(x.score), kl: Format.number(x.kl),
                               tokens: String(x.responseTokens), stop: x.stopReason, prompt: x.prompt, response: x.response)
                }
                let rows = r.highest.enumerated().map { row("highest \($0 + 1)", $1) }
                    + r.lowest.enumerated().map { row("lowest \(r.lowest.count - $0)", $1) }
                rollouts = [StageModel.RolloutTable(step: String(r.step), count: String(r.count), rows: rows)]
            }
            return StageModel(key: stage.stageKey, anchor: "run-\(runId)-stage-\(Self.anchor(stage.stageKey))", kind: stage.kind,
                              status: stage.status.rawValue, statusClass: stage.status.rawValue, duration: duration, steps: steps,
                              summary: summaryNames.map { "\($0.name) \(Format.number($0.value))" }.joined(separator: ", "),
                              hasCharts: !charts.isEmpty, charts: charts, hasMetrics: !metrics.isEmpty, metrics: metrics,
                              rollouts: rollouts)
        }
    }

    /// `key` as an HTML id fragment: letters, digits, `-` and `_` kept, anything else as `-`.
    static func anchor(_ key: String) -> String {
        String(key.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") ? $0 : "-" })
    }
}

struct ComparisonModel {
    struct PolicyRow {
        let name: String
        let source: String
        let meanLength: String
        let kl: String
        let perplexityBefore: String
        let perplexityAfter: String
    }

    struct PairRow {
        let a: String
        let b: String
        let n: String
        let wins: String
        let losses: String
        let ties: String
        let failures: String
        let winRate: String
        let noTie: String
        let signTestP: String
        let meanDifference: String
        let lengthControlled: String
        let positionBias: String
        let promptsNeeded: String
    }

    struct RankingRow {
        let policy: String
        let rating: String
        let interval: String
        let rank: String
    }

    struct RankingSection {
        let judge: String
        let svg: String
        let rows: [RankingRow]
    }

    struct JudgeSection {
        let judge: String
        let charts: [String]
        let pairs: [PairRow]
        let rankingChart: [RankingSection]
    }

    struct FrontierRow {
        let series: String
        let label: String
        let kl: String
        let sqrtKL: String
        let gold: String
        let proxy: String
        let pareto: String
    }

    struct FrontierSection {
        let charts: [String]
        let rows: [FrontierRow]
    }

    struct Cell {
        let text: String
        let score: [String]
    }

    struct SampleRow {
        let prompt: String
        let cells: [Cell]
    }

    struct SampleSection {
        let columns: [String]
        let rows: [SampleRow]
    }

    let facts: [Fact]
    let policies: [PolicyRow]
    let policyCharts: [String]
    let judges: [JudgeSection]
    let frontier: [FrontierSection]
    let samples: [SampleSection]

    init(_ data: ComparisonReportData) throws {
        var facts = [Fact(key: "created", value: Format.date(data.createdAt)), Fact(key: "seed", value: String(data.seed))]
        if !data.sampling.isEmpty {
            facts.append(Fact(key: "sampling", value: data.sampling.keys.sorted().map { "\($0) \(data.sampling[$0]!)" }.joined(separator: ", ")))
        }
        if !data.judges.isEmpty { facts.append(Fact(key: "judges", value: data.judges.joined(separator: ", "))) }
        if !data.runIds.isEmpty { facts.append(Fact(key: "runs", value: data.runIds.map { String($0) }.joined(separator: ", "))) }
        self.facts = facts

        policies = data.policies.map {
            PolicyRow(name: $0.name, source: $0.source, meanLength: Format.number($0.meanLength), kl: Format.number($0.kl),
                      perplexityBefore: Format.number($0.perplexityBefore), perplexityAfter: Format.number($0.perplexityAfter))
        }
        var policyCharts: [String] = []
        let withKL = data.policies.filter { $0.kl != nil }
        if !withKL.isEmpty {
            policyCharts.append(try IntervalChart(title: "KL to the reference per policy", axisLabel: "KL (nats)",
                                                  rows: withKL.map { .init(label: $0.name, value: $0.kl!, note: Format.number($0.kl!),
                                                                           data: [("policy", $0.name)]) }).svg().render())
        }
        if !data.policies.isEmpty {
            policyCharts.append(try IntervalChart(title: "Mean response length per policy", axisLabel: "tokens",
                                                  rows: data.policies.map { .init(label: $0.name, value: $0.meanLength,
                                                                                  note: Format.number($0.meanLength),
                                                                                  data: [("policy", $0.name)]) }).svg().render())
        }
        self.policyCharts = policyCharts

        // Judges in the order given, then any that only appear in the pairs or the ranking.
        var judgeNames = data.judges
        for j in data.pairs.map(\.judge) + data.ranking.map(\.judge) where !judgeNames.contains(j) { judgeNames.append(j) }
        judges = try judgeNames.compactMap { (judge: String) -> JudgeSection? in
            let pairs = data.pairs.filter { $0.judge == judge }
            let ranking = data.ranking.filter { $0.judge == judge }.sorted { ($0.rating, $1.policy) > ($1.rating, $0.policy) }
            guard !pairs.isEmpty || !ranking.isEmpty else { return nil }
            let interval = { (v: Double, lo: Double, hi: Double) in "\(Format.percent(v)) [\(Format.percent(lo)), \(Format.percent(hi))]" }
            var charts: [String] = []
            if !pairs.isEmpty {
                let rows = pairs.map { p in
                    IntervalChart.Row(label: "\(p.a) vs \(p.b)", value: p.winRate, low: p.winRateLow, high: p.winRateHigh,
                                      note: interval(p.winRate, p.winRateLow, p.winRateHigh),
                                      tooltip: "\(p.a) vs \(p.b) (\(judge)): win rate \(interval(p.winRate, p.winRateLow, p.winRateHigh)), "
                                          + "\(p.wins) wins, \(p.losses) losses, \(p.ties) ties of \(p.n)",
                                      data: [("judge", judge), ("a", p.a), ("b", p.b), ("n", String(p.n))])
                }
                charts.append(try IntervalChart(title: "Win rate of A over B, judge \(judge)", axisLabel: "win rate of A (95% interval)",
                                                rows: rows, domain: (0, 1), reference: 0.5, percentAxis: true).svg().render())
            }
            let pairRows = pairs.map { p in
                PairRow(a: p.a, b: p.b, n: String(p.n), wins: String(p.wins), losses: String(p.losses), ties: String(p.ties),
                        failures: String(p.failures), winRate: interval(p.winRate, p.winRateLow, p.winRateHigh),
                        noTie: p.noTieWinRate.map { v in
                            p.noTieLow.flatMap { lo in p.noTieHigh.map { hi in interval(v, lo, hi) } } ?? Format.percent(v)
                        } ?? "–",
                        signTestP: Format.number(p.signTestP),
                        meanDifference: p.meanDifference.map { v in
                            Format.number(v) + (p.meanDifferenceLow.flatMap { lo in p.meanDifferenceHigh.map { hi in
                                " [\(Format.number(lo)), \(Format.number(hi))]" } } ?? "")
                        } ?? "–",
                        lengthControlled: p.lengthControlledWinRate.map(Format.percent) ?? "–",
                        positionBias: p.positionBias.map(Format.percent) ?? "–",
                        promptsNeeded: p.promptsNeeded.map { String($0) } ?? "–")
            }
            var rankingSection: [RankingSection] = []
            if !ranking.isEmpty {
                let rank = { (r: ComparisonReportData.RankingEntry) in r.rankLow == r.rankHigh ? "\(r.rankLow)" : "\(r.rankLow)–\(r.rankHigh)" }
                let rows = ranking.map { r in
                    IntervalChart.Row(label: r.policy, value: r.rating, low: r.low, high: r.high,
                                      note: "rank \(rank(r))",
                                      tooltip: "\(r.policy) (\(judge)): rating \(Format.number(r.rating)) [\(Format.number(r.low)), "
                                          + "\(Format.number(r.high))], rank \(rank(r))",
                                      data: [("judge", judge), ("policy", r.policy), ("rank-low", String(r.rankLow)),
                                             ("rank-high", String(r.rankHigh))])
                }
                let svg = try IntervalChart(title: "Bradley-Terry ratings, judge \(judge)", axisLabel: "rating (95% interval)",
                                            rows: rows, style: .points).svg().render()
                rankingSection = [RankingSection(judge: judge, svg: svg, rows: ranking.map {
                    RankingRow(policy: $0.policy, rating: Format.number($0.rating),
                               interval: "[\(Format.number($0.low)), \(Format.number($0.high))]", rank: rank($0))
                })]
            }
            return JudgeSection(judge: judge, charts: charts, pairs: pairRows, rankingChart: rankingSection)
        }

        if data.frontier.isEmpty {
            frontier = []
        } else {
            var charts = [try ScatterChart(title: "Gold reward against KL", xLabel: "KL", yLabel: "gold reward",
                                           points: data.frontier.map { .init(series: $0.series, label: $0.label, x: $0.kl, y: $0.gold,
                                                                             highlighted: $0.pareto) }).svg().render()]
            if data.frontier.contains(where: { $0.proxy != nil }) {
                // Over-optimization (Gao et al. 2023): gold and proxy reward against the square root of the KL,
                // one line per series that is a curve (best-of-n, a stage's steps), not the loose policies;
                // a KL estimate below 0 (sampling noise about 0) is drawn at 0.
                var names: [String] = []
                for p in data.frontier where !names.contains(p.series) && p.series != "compared" { names.append(p.series) }
                let line = { (value: KeyPath<ComparisonReportData.FrontierPoint, Double?>, what: String) in
                    try LineChart(title: "\(what) reward against √KL", xLabel: "√KL", yLabel: "\(what) reward",
                                  series: names.map { name in
                                      LineChart.Series(name: name, points: data.frontier.filter { $0.series == name && $0.kl.isFinite }
                                          .compactMap { p in p[keyPath: value].map { ChartPoint(x: max(p.kl, 0).squareRoot(), y: $0) } }
                                          .sorted { $0.x < $1.x })
                                  }.filter { !$0.points.isEmpty }).svg().render()
                }
                charts.append(try line(\.goldValue, "gold"))
                charts.append(try line(\.proxy, "proxy"))
            }
            frontier = [FrontierSection(charts: charts, rows: data.frontier.map {
                FrontierRow(series: $0.series, label: $0.label, kl: Format.number($0.kl),
                            sqrtKL: $0.kl.isFinite ? Format.number(max($0.kl, 0).squareRoot()) : "–", gold: Format.number($0.gold),
                            proxy: Format.number($0.proxy), pareto: $0.pareto ? "yes" : "")
            })]
        }

        if data.samples.isEmpty {
            samples = []
        } else {
            var columns = data.policies.map(\.name)
            for r in data.samples.flatMap(\.responses) where !columns.contains(r.policy) { columns.append(r.policy) }
            samples = [SampleSection(columns: columns, rows: data.samples.map { sample in
                SampleRow(prompt: sample.prompt, cells: columns.map { policy in
                    let response = sample.responses.first { $0.policy == policy }
                    return Cell(text: response?.text ?? "–", score: response?.score.map { [Format.number($0)] } ?? [])
                })
            })]
        }
    }
}

extension ComparisonReportData.FrontierPoint {
    /// `gold` as an optional, to share a key path type with `proxy`.
    var goldValue: Double? { gold }
}
