import ArgumentParser
import Foundation
import Recipes
import Store
import TensorCore

/// `rein runs show RUN`: one run, stage by stage.
struct RunsShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show a run: each stage's status, duration, steps, final metrics, latest checkpoint, loss chart and rollouts.",
        discussion: """
        Final metrics are each metric's value at its highest step (eval/* first). The chart plots \
        train/loss (*) and eval/loss (o) over steps; with more steps than columns, each column is the \
        mean of its steps.

        A stage with training rollouts (PPO, RLOO, GRPO samples, phase train) gets a rollout section: its \
        steps split into at most 8 ranges, each with the number of rollouts, mean score, mean KL, mean \
        reward, mean length in tokens and the share that ended with EOS; examples from each range's \
        last step (the highest- and lowest-reward ones, prompt and response cut to one line, line \
        breaks shown as ⏎); and charts of the mean score, KL and reward per step. Evaluation replies \
        (phase eval: exact match before the first and after the last step) are counted apart, with \
        their mean score (the share exactly right) per step.

        --json prints the same facts as one JSON document (non-finite values are null).
        """
    )

    @Argument(help: ArgumentHelp("The run: its id, or its name (the newest run with that name).", valueName: "run"))
    var runReference: String

    @OptionGroup var stores: StoreOptions

    @Flag(help: "Print a JSON document instead of text.")
    var json = false

    @Option(help: ArgumentHelp("Example rollouts per step range (half the highest-reward, half the lowest).", valueName: "n"))
    var rollouts = 2

    @Option(help: ArgumentHelp("Show only the stage with this id (its key in the recipe).", valueName: "id"))
    var stage: String?

    func validate() throws {
        guard rollouts >= 0 else { throw ValidationError("--rollouts must be 0 or more, not \(rollouts)") }
    }

    func run() throws {
        let opened = try stores.open()
        let info = try resolveRun(runReference, in: opened)
        guard let store = opened.first(where: { $0.path == info.storePath })?.store else { return }
        var stages = info.stages
        if let stage {
            stages = stages.filter { $0.stageKey == stage }
            if stages.isEmpty {
                let keys = info.stages.map(\.stageKey)
                throw CLIError("run \(info.run.id ?? 0) (\(info.run.name)) has no stage '\(stage)'"
                               + (keys.isEmpty ? "; it has no stages yet" : "; its stages: " + keys.joined(separator: ", ")))
            }
        }
        let details = try stages.map { try StageDetail(stage: $0, store: store, examples: rollouts) }
        if json {
            Terminal.write(try jsonDocument(RunDocument(info: info, details: details)))
        } else {
            Terminal.write(render(info, details).joined(separator: "\n") + "\n")
        }
    }

    /// The text report.
    func render(_ info: RunInfo, _ details: [StageDetail]) -> [String] {
        let run = info.run
        var lines = ["run \(run.id ?? 0) \(run.name): \(info.statusLabel)"]
        var started = "  started     \(ReportText.shortDate(run.startedAt))"
        if let seconds = info.durationSeconds {
            started += run.status == .running ? ", running for \(ReportText.duration(seconds))" : ", took \(ReportText.duration(seconds))"
        }
        lines.append(started)
        lines.append("  stages      \(info.stageProgress)")
        if let dir = run.outputDir { lines.append("  output      \(dir)") }
        if run.status == .running, let pid = run.pid {
            lines.append("  process     \(pid)" + (run.host.map { " on \($0)" } ?? "") + (info.processGone ? " (exited)" : ""))
        }
        lines.append("  store       \(info.storePath)")
        for detail in details {
            lines.append("")
            lines += detail.render(processGone: info.processGone)
        }
        if details.isEmpty { lines += ["", "no stages recorded yet"] }
        return lines
    }
}

/// What `runs show` reports about one stage.
struct StageDetail {
    let stage: Store.Stage
    /// The run of the stage this one reuses, when it was skipped.
    let reusedRunId: Int64?
    /// The highest step with a metric (0 for stages that only record summary metrics).
    let steps: Int?
    let finalMetrics: [String: Double]
    let checkpoints: [Checkpoint]
    let trainLoss: [(step: Int, value: Double)]
    let evalLoss: [(step: Int, value: Double)]
    /// Nil when the stage recorded no training rollouts.
    let rollouts: RolloutSection?
    /// The evaluation replies (phase `eval`), one aggregate per step.
    let evalReplies: [RolloutAggregate]

    init(stage: Store.Stage, store: RunStore, examples: Int = 2) throws {
        self.stage = stage
        let id = stage.id ?? -1
        reusedRunId = try stage.reusedStageId.flatMap { try store.stage($0)?.runId }
        steps = try store.latestStep(stageId: id)
        finalMetrics = try store.finalMetrics(stageId: id)
        checkpoints = try store.checkpoints(stageId: id)
        trainLoss = try store.series(stageId: id, name: "train/loss")
        evalLoss = try store.series(stageId: id, name: "eval/loss")
        rollouts = try RolloutSection(stageId: id, store: store, examples: examples)
        evalReplies = try store.rolloutStepAggregates(stageId: id, phase: RolloutPhase.eval)
    }

    /// The newest checkpoint row, else the stage's recorded resume point (stores written before v2).
    var latestCheckpoint: (path: String, note: String)? {
        if let newest = checkpoints.last { return (newest.path, "\(newest.kind), step \(newest.step)") }
        return stage.checkpointPath.map { ($0, "") }
    }

    func statusLabel(processGone: Bool) -> String {
        if let reused = stage.reusedStageId, stage.status == .completed {
            return "skipped: reuses stage \(reused)" + (reusedRunId.map { " of run \($0)" } ?? " (no longer in the store)")
        }
        return stage.status == .running && processGone ? "running (process gone)" : stage.status.rawValue
    }

    func durationSeconds(processGone: Bool) -> Double? {
        stage.reusedStageId != nil ? nil
            : RunInfo.duration(from: stage.startedAt, to: stage.finishedAt, running: stage.status == .running, gone: processGone)
    }

    func render(processGone: Bool) -> [String] {
        var head = "stage \(stage.stageKey) (\(stage.kind)): \(statusLabel(processGone: processGone))"
        if let seconds = durationSeconds(processGone: processGone) { head += ", \(ReportText.duration(seconds))" }
        if let steps, steps > 0 { head += ", \(steps) step\(steps == 1 ? "" : "s")" }
        var lines = [head]
        let label = { (name: String) in "  " + name.padding(toLength: 12, withPad: " ", startingAt: 0) }
        if !finalMetrics.isEmpty {
            let items = ReportText.metricOrder(finalMetrics.keys).map { "\($0) \(ReportText.number(finalMetrics[$0]!))" }
            let wrapped = ReportText.wrap(items, width: 100, indent: String(repeating: " ", count: 14))
            lines += wrapped.enumerated().map { i, line in i == 0 ? label("metrics") + line.dropFirst(14) : line }
        }
        if let checkpoint = latestCheckpoint {
            lines.append(label("checkpoint") + checkpoint.path + (checkpoint.note.isEmpty ? "" : " (\(checkpoint.note))"))
        }
        if let output = stage.outputPath { lines.append(label("output") + output) }
        if !evalReplies.isEmpty {
            let items = evalReplies.map { a in
                "step \(a.firstStep): \(a.count) repl\(a.count == 1 ? "y" : "ies")"
                    + (a.meanScore.map { ", score \(ReportText.number($0))" } ?? "")
            }
            lines.append(label("eval") + items.joined(separator: "; "))
        }
        var series: [ChartSeries] = []
        if !trainLoss.isEmpty { series.append(ChartSeries(name: "train/loss", mark: "*", points: trainLoss)) }
        if !evalLoss.isEmpty { series.append(ChartSeries(name: "eval/loss", mark: "o", points: evalLoss)) }
        let chart = ReportText.chart(series)
        if !chart.isEmpty { lines += [""] + chart.map { "  " + $0 } }
        if let rollouts { lines += [""] + rollouts.render() }
        return lines
    }
}

/// The rollouts of one stage as `runs show` reports them: per step-range means, examples, per-step charts.
struct RolloutSection {
    /// One range of steps: its means and example rollouts from its last step.
    struct StepRange {
        let aggregate: RolloutAggregate
        /// The highest-reward rollouts first, then the lowest-reward ones (lowest last).
        let examples: [Rollout]
    }

    let ranges: [StepRange]
    /// The means of each step, for the charts.
    let steps: [RolloutAggregate]
    /// Nil when stage `stageId` has no training rollouts (evaluation replies are not part of the
    /// section); `examples` per range (half highest-, half lowest-reward).
    init?(stageId: Int64, store: RunStore, examples: Int) throws {
        let train = RolloutPhase.train
        steps = try store.rolloutStepAggregates(stageId: stageId, phase: train)
        guard !steps.isEmpty else { return nil }
        ranges = try ReportText.stepRanges(steps.map(\.firstStep)).compactMap { range in
            guard let aggregate = try store.rolloutAggregate(stageId: stageId, steps: range, phase: train) else { return nil }
            let step = aggregate.lastStep
            let highest = try store.rolloutsByReward(stageId: stageId, step: step, limit: (examples + 1) / 2, phase: train)
            let lowest = try store.rolloutsByReward(stageId: stageId, step: step, limit: examples / 2, lowest: true, phase: train)
            let shown = Set(highest.map(\.idx))
            return StepRange(aggregate: aggregate, examples: highest + lowest.reversed().filter { !shown.contains($0.idx) })
        }
    }

    static func mean(_ x: Double?) -> String { x.map(ReportText.number) ?? "-" }

    /// The section's lines, indented under the stage.
    func render(width: Int = 100) -> [String] {
        let count = ranges.map(\.aggregate.count).reduce(0, +)
        let first = steps.first?.firstStep ?? 0, last = steps.last?.lastStep ?? 0
        var lines = ["  rollouts    \(count) in \(steps.count) step\(steps.count == 1 ? "" : "s")"
                     + (first == last ? " (step \(first))" : " (steps \(first)-\(last))")]
        var rows = [["STEPS", "N", "SCORE", "KL", "REWARD", "TOKENS", "EOS"]]
        for range in ranges {
            let a = range.aggregate
            rows.append([a.firstStep == a.lastStep ? "\(a.firstStep)" : "\(a.firstStep)-\(a.lastStep)", String(a.count),
                         Self.mean(a.meanScore), Self.mean(a.meanKL), Self.mean(a.meanReward),
                         String(format: "%.1f", a.meanResponseTokens), ReportText.percent(a.eosShare)])
        }
        lines += ReportText.table(rows, rightAligned: [1, 2, 3, 4, 5, 6]).map { "    " + $0 }

        if ranges.contains(where: { !$0.examples.isEmpty }) {
            lines += ["", "  examples (each range's last step; highest reward first, lowest last)"]
            let textWidth = max(20, width - 17)
            for range in ranges where !range.examples.isEmpty {
                lines.append("    step \(range.aggregate.lastStep)")
                for r in range.examples {
                    var facts = ["#\(r.idx)"]
                    if let group = r.groupIndex { facts.append("group \(group)") }
                    if let reward = r.reward { facts.append("reward \(ReportText.number(reward))") }
                    if let score = r.score { facts.append("score \(ReportText.number(score))") }
                    if let kl = r.kl { facts.append("kl \(ReportText.number(kl))") }
                    facts.append("\(r.responseTokens) token\(r.responseTokens == 1 ? "" : "s"), \(r.stopReason)")
                    lines.append("      " + facts.joined(separator: "  "))
                    lines.append("        prompt   " + ReportText.oneLine(r.prompt, width: textWidth))
                    lines.append("        response " + ReportText.oneLine(r.response, width: textWidth))
                }
            }
        }

        let charts: [(String, KeyPath<RolloutAggregate, Double?>)] = [("mean score", \.meanScore), ("mean KL", \.meanKL),
                                                                       ("mean reward", \.meanReward)]
        for (name, value) in charts {
            let points = steps.compactMap { s in s[keyPath: value].map { (step: s.firstStep, value: $0) } }
            let chart = ReportText.chart([ChartSeries(name: name, mark: "*", points: points)], height: 4)
            if !chart.isEmpty { lines += [""] + chart.map { "  " + $0 } }
        }
        return lines
    }
}

/// `rein runs show --json`.
struct RunDocument: Encodable {
    struct RunPart: Encodable {
        let id: Int64
        let name: String
        let status: String
        let processGone: Bool
        let seed: Int64
        let startedAt: Date
        @Nullable var finishedAt: Date?
        @Nullable var durationSeconds: Double?
        @Nullable var outputDir: String?
        @Nullable var pid: Int64?
        @Nullable var host: String?
        let recipe: String
    }

    struct CheckpointPart: Encodable {
        let kind: String
        let step: Int
        let path: String
        let createdAt: Date
    }

    struct StagePart: Encodable {
        let id: Int64
        let key: String
        let kind: String
        let status: String
        let skipped: Bool
        @Nullable var reusedStageId: Int64?
        @Nullable var reusedRunId: Int64?
        let configHash: String
        let startedAt: Date
        @Nullable var finishedAt: Date?
        @Nullable var durationSeconds: Double?
        @Nullable var steps: Int?
        let finalMetrics: [String: Double?]
        @Nullable var checkpointPath: String?
        let checkpoints: [CheckpointPart]
        @Nullable var outputPath: String?
        @Nullable var rollouts: RolloutsPart?
        /// The evaluation replies' means, one per step (empty without any).
        let evalReplies: [AggregatePart]
    }

    /// Means over a step or a range of steps.
    struct AggregatePart: Encodable {
        let firstStep: Int
        let lastStep: Int
        let count: Int
        @Nullable var meanScore: Double?
        @Nullable var meanKL: Double?
        @Nullable var meanReward: Double?
        let meanResponseTokens: Double
        let eosShare: Double

        init(_ a: RolloutAggregate) {
            let finite = { (x: Double?) in x.flatMap { $0.isFinite ? $0 : nil } }
            firstStep = a.firstStep
            lastStep = a.lastStep
            count = a.count
            meanScore = finite(a.meanScore)
            meanKL = finite(a.meanKL)
            meanReward = finite(a.meanReward)
            meanResponseTokens = a.meanResponseTokens
            eosShare = a.eosShare
        }
    }

    struct ExamplePart: Encodable {
        let step: Int
        let idx: Int
        @Nullable var group: Int?
        let prompt: String
        let response: String
        let responseTokens: Int
        let stopReason: String
        let score: JSONNumber
        let kl: JSONNumber
        let reward: JSONNumber
        let advantage: JSONNumber
        let policyVersion: Int

        init(_ r: Rollout) {
            step = r.step
            idx = r.idx
            group = r.groupIndex
            prompt = r.prompt
            response = r.response
            responseTokens = r.responseTokens
            stopReason = r.stopReason
            score = JSONNumber(r.score)
            kl = JSONNumber(r.kl)
            reward = JSONNumber(r.reward)
            advantage = JSONNumber(r.advantage)
            policyVersion = r.policyVersion
        }
    }

    struct RangePart: Encodable {
        let means: AggregatePart
        let examples: [ExamplePart]
    }

    struct RolloutsPart: Encodable {
        let count: Int
        let ranges: [RangePart]
        let steps: [AggregatePart]

        init(_ section: RolloutSection) {
            count = section.ranges.map(\.aggregate.count).reduce(0, +)
            ranges = section.ranges.map { RangePart(means: AggregatePart($0.aggregate), examples: $0.examples.map(ExamplePart.init)) }
            steps = section.steps.map(AggregatePart.init)
        }
    }

    let store: String
    let run: RunPart
    let stages: [StagePart]

    init(info: RunInfo, details: [StageDetail]) {
        store = info.storePath
        let r = info.run
        run = RunPart(id: r.id ?? 0, name: r.name, status: r.status.rawValue, processGone: info.processGone, seed: r.seed,
                      startedAt: r.startedAt, finishedAt: r.finishedAt, durationSeconds: info.durationSeconds,
                      outputDir: r.outputDir, pid: r.pid, host: r.host, recipe: r.recipe)
        stages = details.map { d in
            let s = d.stage
            return StagePart(id: s.id ?? 0, key: s.stageKey, kind: s.kind, status: s.status.rawValue,
                             skipped: s.reusedStageId != nil && s.status == .completed, reusedStageId: s.reusedStageId,
                             reusedRunId: d.reusedRunId, configHash: s.configHash, startedAt: s.startedAt,
                             finishedAt: s.finishedAt, durationSeconds: d.durationSeconds(processGone: info.processGone),
                             steps: d.steps, finalMetrics: d.finalMetrics.mapValues { $0.isFinite ? $0 : nil },
                             checkpointPath: d.latestCheckpoint?.path,
                             checkpoints: d.checkpoints.map { CheckpointPart(kind: $0.kind, step: $0.step, path: $0.path,
                                                                             createdAt: $0.createdAt) },
                             outputPath: s.outputPath, rollouts: d.rollouts.map(RolloutsPart.init),
                             evalReplies: d.evalReplies.map(AggregatePart.init))
        }
    }
}
