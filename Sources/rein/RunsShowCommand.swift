import ArgumentParser
import Foundation
import Recipes
import Store

/// `rein runs show RUN`: one run, stage by stage.
struct RunsShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show a run: each stage's status, duration, steps, final metrics, latest checkpoint and loss chart.",
        discussion: """
        Final metrics are each metric's value at its highest step (eval/* first). The chart plots \
        train/loss (*) and eval/loss (o) over steps; with more steps than columns, each column is the \
        mean of its steps. --json prints the same facts as one JSON document (non-finite values are null).
        """
    )

    @Argument(help: ArgumentHelp("The run: its id, or its name (the newest run with that name).", valueName: "run"))
    var runReference: String

    @OptionGroup var stores: StoreOptions

    @Flag(help: "Print a JSON document instead of text.")
    var json = false

    func run() throws {
        let opened = try stores.open()
        let info = try resolveRun(runReference, in: opened)
        guard let store = opened.first(where: { $0.path == info.storePath })?.store else { return }
        let details = try info.stages.map { try StageDetail(stage: $0, store: store) }
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

    init(stage: Store.Stage, store: RunStore) throws {
        self.stage = stage
        let id = stage.id ?? -1
        reusedRunId = try stage.reusedStageId.flatMap { try store.stage($0)?.runId }
        steps = try store.latestStep(stageId: id)
        finalMetrics = try store.finalMetrics(stageId: id)
        checkpoints = try store.checkpoints(stageId: id)
        trainLoss = try store.series(stageId: id, name: "train/loss")
        evalLoss = try store.series(stageId: id, name: "eval/loss")
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
        var series: [ChartSeries] = []
        if !trainLoss.isEmpty { series.append(ChartSeries(name: "train/loss", mark: "*", points: trainLoss)) }
        if !evalLoss.isEmpty { series.append(ChartSeries(name: "eval/loss", mark: "o", points: evalLoss)) }
        let chart = ReportText.chart(series)
        if !chart.isEmpty { lines += [""] + chart.map { "  " + $0 } }
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
                             outputPath: s.outputPath)
        }
    }
}
