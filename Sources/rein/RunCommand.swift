import ArgumentParser
import DataParallel
import Foundation
import Recipes
import Store
import TensorCore
import Training

/// `rein run RECIPE`: runs a whole pipeline.
struct RunRecipe: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a recipe: every stage in order, recorded in the recipe's SQLite store.",
        discussion: """
        Completed stages whose config and inputs are unchanged are skipped; an interrupted run resumes \
        from its last checkpoint. Ctrl-C finishes the current step, writes a checkpoint, marks the run \
        interrupted and exits with status 130. A rate stage whose task has fewer than min_ratings answers \
        stops the run with status 3 (waiting for ratings) after printing the rein rate command to run; \
        rein run again goes on once enough answers exist. Paths in the recipe are relative to the current directory.
        """
    )

    @Argument(help: "The recipe YAML file.")
    var recipe: String

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a setting, e.g. stages.sft.learning_rate=1e-5 (repeatable).",
                                                          valueName: "key=value"))
    var overrides: [String] = []

    @Option(help: "Rerun this stage and every later one, even if completed.")
    var from: String?

    @Option(help: "Threads for OpenBLAS and the kernels (default: all cores).")
    var threads: Int?

    @Flag(help: "Print only the final summary (and errors).")
    var quiet = false

    @Flag(help: "Print one JSON object per event on stdout instead of text.")
    var json = false

    func run() throws {
        let world = ProcessGroup.world
        if let threads { Threads.set(threads) }
        let resolved: Recipe
        do {
            resolved = try Recipe.load(path: recipe, overrides: overrides)
        } catch {
            Terminal.writeError(error.description + "\n")
            Terminal.writeError("\(error.problems.count) problem\(error.problems.count == 1 ? "" : "s"); nothing was run\n")
            throw ExitCode.failure
        }
        let text = (try? String(contentsOfFile: recipe, encoding: .utf8)) ?? ""
        let recorded = overrides.isEmpty ? text : text + "\n" + overrides.map { "# --set \($0)" }.joined(separator: "\n") + "\n"
        let runner = RecipeRunner(recipe: resolved, recipeText: recorded)
        runner.from = from
        if world.isDistributed {
            // Data parallel: rank 0 runs the recipe (store, lock, skips, files, progress) and
            // announces each training stage; the other processes train their shares silently.
            guard world.isRoot else {
                Interrupts.install()
                return try runner.follow()
            }
            if !quiet && !json { Terminal.note("data parallel: \(world.size) processes (rank 0 writes)") }
        }
        var view = RunView(mode: json ? .json : quiet ? .quiet : .text)
        runner.onEvent = { view.show($0) }
        Interrupts.install()
        let report: RunReport
        do {
            report = try runner.run()
        } catch {
            view.endLine()
            throw CLIError("\(error)\n(completed stages are kept: `rein run \(recipe)` again continues from the failed stage)")
        }
        if let pending = report.waiting {
            if json {
                view.emitJSON(pending)
            } else {
                Terminal.note("run \(report.runId) waits for ratings: task \(pending.task) has \(pending.answers) of the "
                              + "\(pending.needed) answers stage \(pending.stage) needs (exit status \(RatingsPending.exitStatus))")
                Terminal.write("rate: \(pending.command)\nthen: rein run \(recipe)\n")
            }
            throw ExitCode(RatingsPending.exitStatus)
        }
        if report.status == .interrupted {
            Terminal.note("run \(report.runId) interrupted; `rein run \(recipe)` resumes it from the last checkpoint")
            throw ExitCode(130)
        }
    }
}

/// Renders runner events: text lines (a bar redrawn in place on a terminal), JSON lines, or quiet.
struct RunView {
    enum Mode { case text, quiet, json }
    let mode: Mode
    private var steps = StepProgressView()
    private var stepsStage = ""

    init(mode: Mode) { self.mode = mode }

    mutating func endLine() { steps.endLine() }

    mutating func show(_ event: RunEvent) {
        if mode == .json { return emitJSON(event) }
        switch event {
        case .waiting(let file):
            Terminal.note("waiting: another rein run is using this output directory (\(file))")
        case let .runStarted(id, resumed, store):
            if mode == .text { Terminal.note("\(resumed ? "resuming" : "run") \(id) (store \(store))") }
        case let .stageSkipped(stage, kind, reason):
            if mode == .text { Terminal.note("[\(stage)] \(kind.rawValue): skipped, \(reason)") }
        case let .stageStarted(stage, kind, resumeStep):
            stepsStage = ""  // a new view: the ETA counts from this start
            if mode == .text {
                Terminal.note("[\(stage)] \(kind.rawValue)" + (resumeStep.map { ": resuming from the checkpoint at step \($0)" } ?? ""))
            }
        case let .note(stage, text):
            if mode == .text { endLine(); Terminal.note("[\(stage)]   \(text)") }
        case let .step(stage, p, unit):
            guard mode == .text else { return }
            if stage != stepsStage {
                steps.endLine()
                steps = StepProgressView(prefix: "[\(stage)] ")
                stepsStage = stage
            }
            steps.show(p, unit: unit)
        case .stageFinished(let report):
            endLine()
            if mode == .text {
                let waiting = report.facts.first { $0.hasPrefix("waiting for ratings") }
                let status = report.status == .interrupted ? waiting ?? "interrupted at step \(report.steps)" : "done in \(ReportText.duration(report.seconds))"
                Terminal.note("[\(report.stage)] \(status)" + (report.output.map { " -> \($0)" } ?? ""))
            }
        case .runFinished(let report):
            endLine()
            guard report.status == .completed else { return }
            Terminal.write(RunView.summary(report))
        }
    }

    /// "What each stage did": the improvements a user wants to see.
    static func summary(_ report: RunReport) -> String {
        var lines = ["", "run \(report.runId) completed in \(ReportText.duration(report.seconds))"]
        for s in report.stages {
            var parts: [String] = []
            parts += s.facts
            for m in s.kind.definition.summary {
                guard let after = s.after[m.metric] else { continue }
                let before = m.showBefore ? s.before[m.metric] : nil
                let show = { (x: Double) in m.percent ? fmt(x * 100, 0, 1) + "%" : fmt(x, 0, 3) }
                parts.append(before.map { "\(m.label) \(show($0)) -> \(show(after))" } ?? "\(m.label) \(show(after))")
            }
            let head = "  \(s.stage) (\(s.kind.rawValue))" + (s.skipped ? ", skipped" : "")
            lines.append(head + (parts.isEmpty ? "" : ": " + parts.joined(separator: "; ")))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `{"event": "waiting_for_ratings", ...}` with the command to run.
    func emitJSON(_ pending: RatingsPending) {
        let object: [String: Any] = ["event": "waiting_for_ratings", "stage": pending.stage, "task": pending.task, "store": pending.store,
                                     "answers": pending.answers, "min_ratings": pending.needed, "command": pending.command]
        if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) {
            Terminal.write(String(decoding: data, as: UTF8.self) + "\n")
        }
    }

    func emitJSON(_ event: RunEvent) {
        var object: [String: Any]
        switch event {
        case .waiting(let file): object = ["event": "waiting", "lock": file]
        case let .runStarted(id, resumed, store): object = ["event": "run_started", "run": id, "resumed": resumed, "store": store]
        case let .stageSkipped(stage, kind, reason): object = ["event": "stage_skipped", "stage": stage, "kind": kind.rawValue, "reason": reason]
        case let .stageStarted(stage, kind, step):
            object = ["event": "stage_started", "stage": stage, "kind": kind.rawValue]
            if let step { object["resume_step"] = step }
        case let .note(stage, text): object = ["event": "note", "stage": stage, "text": text]
        case let .step(stage, p, unit):
            object = ["event": "step", "stage": stage, "step": p.step, "max_steps": p.maxSteps, "loss": p.loss,
                      "learning_rate": p.learningRate, "\(unit)_per_second": p.itemsPerSecond]
            if let e = p.evalLoss { object["eval_loss"] = e }
        case .stageFinished(let r):
            object = ["event": "stage_finished", "stage": r.stage, "kind": r.kind.rawValue, "status": r.status.rawValue,
                      "seconds": r.seconds, "steps": r.steps, "before": r.before, "after": r.after, "facts": r.facts]
            if let o = r.output { object["output"] = o }
        case .runFinished(let r):
            object = ["event": "run_finished", "run": r.runId, "status": r.status.rawValue, "seconds": r.seconds,
                      "stages": r.stages.map { ["stage": $0.stage, "skipped": $0.skipped, "after": $0.after] as [String: Any] }]
        }
        for (k, v) in object { if let d = v as? Double, !d.isFinite { object[k] = String(d) } }
        if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) {
            Terminal.write(String(decoding: data, as: UTF8.self) + "\n")
        }
    }
}
