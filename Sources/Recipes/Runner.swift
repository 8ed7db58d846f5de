import Alignment
import DataParallel
import Evaluation
import Foundation
import TensorCore
import Store
import Training

/// What the runner reports while it works; `rein run` renders these as progress lines, a bar, or JSON.
public enum RunEvent: Sendable {
    /// Another `rein run` holds the output directory's lock; this one waits.
    case waiting(lockFile: String)
    /// The run row in use: a new run, or an unfinished one taken over.
    case runStarted(runId: Int64, resumed: Bool, store: String)
    /// A stage needs no work: `reason` says whose output it reuses.
    case stageSkipped(stage: String, kind: RecipeStageKind, reason: String)
    /// A stage starts (or resumes from a checkpoint at `resumeStep`).
    case stageStarted(stage: String, kind: RecipeStageKind, resumeStep: Int?)
    /// Something worth a line (what was loaded, data sizes).
    case note(stage: String, text: String)
    /// One optimizer step of a training stage.
    case step(stage: String, progress: TrainingProgress, unit: String)
    /// A stage ended (completed or interrupted).
    case stageFinished(StageReport)
    /// The run ended.
    case runFinished(RunReport)
}

/// How a stage went, for the summary: metric values at its start and end.
public struct StageReport: Sendable {
    public var stage: String
    public var kind: RecipeStageKind
    public var status: Status
    /// True when the stage was skipped (its output reused).
    public var skipped: Bool
    /// Wall time of this process's work on the stage.
    public var seconds: Double
    /// Optimizer steps in total.
    public var steps: Int
    /// `eval/*` metric values before the first step (when measured) and after the last.
    public var before: [String: Double]
    public var after: [String: Double]
    /// One-line facts for stages without metrics (files written, vocabulary size).
    public var facts: [String]
    /// What the stage produced.
    public var output: String?
}

/// The outcome of `RecipeRunner.run`.
public struct RunReport: Sendable {
    public var runId: Int64
    public var status: Status
    public var stages: [StageReport]
    public var seconds: Double
    /// Set when a `rate` stage stopped the run to wait for ratings (the run is `interrupted`).
    public var waiting: RatingsPending? = nil
}

/// Runs a validated recipe: stages in order, recording everything in the run store.
///
/// - A stage whose resolved config and inputs (file contents and the stages it reads) hash to a
///   completed stage in the store, whose output is still on disk, is skipped.
/// - An unfinished run of the same recipe text (interrupted, failed, or killed) is taken over: its
///   unfinished stage resumes from `checkpoints/last`, logging into the same stage row (metrics
///   are upserts, so a re-logged step replaces its row).
/// - `from` reruns that stage and every later one from scratch, in a new run.
/// - A stop request (`Interrupts`) ends the current stage after its step with a checkpoint; the
///   stage and run are marked `interrupted`.
/// - One output directory is used by one process at a time (a lock file); a second `rein run`
///   waits, then finds the stages done.
public final class RecipeRunner {
    public let recipe: Recipe
    /// The recipe text as run (with `--set` lines), stored with the run.
    public let recipeText: String
    /// Rerun this stage and all later ones.
    public var from: String?
    /// Receives progress.
    public var onEvent: (RunEvent) -> Void = { _ in }
    /// Polled after every step: true stops the current stage with a checkpoint (Ctrl-C by default).
    public var shouldStop: () -> Bool = { Interrupts.requested }

    var store: RunStore!
    var outputs: [String: URL] = [:]
    var hashes: [String: String] = [:]
    var fileHashes: [String: String] = [:]
    /// The TRL lines a stage with `data: {ratings: TASK}` trains on, read when its hash is computed.
    var ratingsLines: [String: [String]] = [:]

    /// A runner of `recipe`, whose text (`recipeText`) is recorded in the store.
    public init(recipe: Recipe, recipeText: String) {
        self.recipe = recipe
        self.recipeText = recipeText
    }

    var outputRoot: URL { recipe.resolve(recipe.outputDir) }

    /// Runs every stage; returns the report (status `interrupted` when stopped). Throws when a
    /// stage fails, after marking the stage and run `failed`.
    public func run() throws -> RunReport {
        let started = Date()
        if let from, !recipe.stages.contains(where: { $0.id == from }) {
            throw RunnerError("--from \(from): no such stage (stages: \(recipe.stages.map(\.id).joined(separator: ", ")))")
        }
        let lockPath = outputRoot.appendingPathComponent(".rein.lock").path
        let lock = try FileLock(path: lockPath) { onEvent(.waiting(lockFile: lockPath)) }
        defer { withExtendedLifetime(lock) {} }
        defer { releaseFollowers() }
        let storePath = recipe.resolve(recipe.store).path
        store = try RunStore(path: storePath)

        // Holding the lock, a `running` row for this output directory belongs to a dead process.
        var run: Run
        var resumed = false
        if from == nil, let previous = try store.unfinishedRun(name: recipe.name, outputDir: outputRoot.path),
           previous.recipe == recipeText {
            run = try store.resumeRun(previous.id!)
            resumed = true
        } else {
            if let stale = try store.unfinishedRun(name: recipe.name, outputDir: outputRoot.path), stale.status == .running {
                try store.setRunStatus(stale.id!, .interrupted)
            }
            run = try store.createRun(name: recipe.name, recipe: recipeText, seed: Int64(bitPattern: recipe.seed ?? 0),
                                      outputDir: outputRoot.path)
        }
        let runId = run.id!
        onEvent(.runStarted(runId: runId, resumed: resumed, store: storePath))
        let existing = Dictionary(try store.stages(runId: runId).map { ($0.stageKey, $0) }, uniquingKeysWith: { a, _ in a })
        let fromIndex = from.flatMap { id in recipe.stages.firstIndex { $0.id == id } } ?? recipe.stages.count

        var reports: [StageReport] = []
        for (index, stage) in recipe.stages.enumerated() {
            let report: StageReport
            do {
                report = try runStage(stage, runId: runId, existing: existing[stage.id], rerun: index >= fromIndex)
            } catch let pending as RatingsPending {
                try store.setRunStatus(runId, .interrupted)
                let result = RunReport(runId: runId, status: .interrupted, stages: reports, seconds: Date().timeIntervalSince(started),
                                       waiting: pending)
                onEvent(.runFinished(result))
                return result
            } catch {
                _ = try? store.setRunStatus(runId, .failed)
                throw error
            }
            reports.append(report)
            if report.status == .interrupted {
                try store.setRunStatus(runId, .interrupted)
                let result = RunReport(runId: runId, status: .interrupted, stages: reports, seconds: Date().timeIntervalSince(started))
                onEvent(.runFinished(result))
                return result
            }
        }
        try store.setRunStatus(runId, .completed)
        let result = RunReport(runId: runId, status: .completed, stages: reports, seconds: Date().timeIntervalSince(started))
        onEvent(.runFinished(result))
        return result
    }

    // MARK: Stages

    /// The directory a stage writes into, and what later stages read from it.
    func stageDirectory(_ stage: ResolvedStage) -> URL { outputRoot.appendingPathComponent(stage.id) }

    func outputURL(_ stage: ResolvedStage) -> URL {
        stage.definition.producesModel ? stageDirectory(stage).appendingPathComponent("model") : stageDirectory(stage)
    }

    /// A path or `stage:` reference resolved to a file.
    func resolve(_ reference: String) throws -> String {
        if reference.hasPrefix("stage:") {
            let rest = reference.dropFirst(6)
            let id = String(rest.prefix { $0 != "/" })
            guard let base = outputs[id] else { throw RunnerError("\(reference): stage '\(id)' has no output yet") }
            let file = rest.dropFirst(id.count + 1)
            return file.isEmpty ? base.path : base.appendingPathComponent(String(file)).path
        }
        return recipe.resolve(reference).path
    }

    /// The stage's config hash combined with its dependencies' hashes and its inputs' contents.
    /// A stage that trains on ratings also hashes the pairs it would train on: new answers rerun it.
    func effectiveHash(_ stage: ResolvedStage) throws -> String {
        let hash = try stage.effectiveHash(dependencies: hashes, fileHashes: &fileHashes, resolve: { recipe.resolve($0).path })
        guard let ratings = stage.ratings else { return hash }
        let source = try ratings.store.map { path -> RunStore in
            let file = recipe.resolve(path).path
            guard FileManager.default.fileExists(atPath: file) else { throw RunnerError("stages.\(stage.id).data.store: no store at \(path)") }
            return try RunStore(path: file)
        } ?? store!
        let (lines, fingerprint) = try ratings.read(in: source, keyPath: "stages.\(stage.id).data.ratings")
        ratingsLines[stage.id] = lines
        return ContentHash.combine([hash, "ratings:" + fingerprint])
    }

    struct Marker: Codable {
        var hash: String
        var completed: Bool
    }

    func marker(_ stage: ResolvedStage) -> Marker? {
        let url = stageDirectory(stage).appendingPathComponent("rein-stage.json")
        return FileManager.default.contents(atPath: url.path).flatMap { try? JSONDecoder().decode(Marker.self, from: $0) }
    }

    func writeMarker(_ stage: ResolvedStage, _ marker: Marker) throws {
        let dir = stageDirectory(stage)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try AtomicFile.write(JSONEncoder().encode(marker), to: dir.appendingPathComponent("rein-stage.json"))
    }

    /// What the store records as a stage's config: its kind, models by role, and settings.
    func configJSON(_ stage: ResolvedStage) -> String {
        struct Snapshot: Encodable {
            var kind: RecipeStageKind
            var models: [String: String]
            var settings: StageSettings
            var ratings: RatingsData?
        }
        return Recipe.canonicalJSON(Snapshot(kind: stage.kind, models: stage.models.mapValues(\.reference), settings: stage.settings,
                                             ratings: stage.ratings))
    }

    func runStage(_ stage: ResolvedStage, runId: Int64, existing: Stage?, rerun: Bool) throws -> StageReport {
        let hash = try effectiveHash(stage)
        hashes[stage.id] = hash
        let output = outputURL(stage)
        let onDisk = marker(stage)
        let outputIntact = onDisk?.hash == hash && onDisk?.completed == true && FileManager.default.fileExists(atPath: output.path)

        // Done already: in this run, or identical in an earlier one.
        if !rerun, outputIntact {
            if let existing, existing.status == .completed, existing.configHash == hash {
                outputs[stage.id] = output
                return try skipped(stage, stageId: existing.reusedStageId ?? existing.id!, reason: "completed earlier in this run")
            }
            if existing == nil, let done = try store.completedStage(stageKey: stage.id, kind: stage.kind.rawValue, configHash: hash) {
                outputs[stage.id] = output
                try store.createStage(runId: runId, stageKey: stage.id, kind: stage.kind.rawValue,
                                      configJSON: configJSON(stage), configHash: hash, status: .completed,
                                      outputPath: output.path, reusedStageId: done.reusedStageId ?? done.id!,
                                      checkpointPath: done.checkpointPath)
                let origin = done.reusedStageId ?? done.id!
                let originRun = try store.stage(origin)?.runId ?? done.runId
                return try skipped(stage, stageId: origin, reason: "same config and inputs as stage \(origin) of run \(originRun)")
            }
        }

        // Work to do: resume this run's unfinished stage with the same hash, or start fresh.
        var row: Stage
        var resume = false
        if let existing {
            if existing.configHash == hash && existing.status != .completed && !rerun && onDisk?.hash == hash {
                if existing.status == .running { try store.setStageStatus(existing.id!, .interrupted) }
                row = try store.setStageStatus(existing.id!, .running)
                resume = true
            } else {
                if existing.status == .running { try store.setStageStatus(existing.id!, .interrupted) }
                row = try store.restartStage(existing.id!, configJSON: configJSON(stage), configHash: hash)
            }
        } else {
            row = try store.createStage(runId: runId, stageKey: stage.id, kind: stage.kind.rawValue,
                                        configJSON: configJSON(stage), configHash: hash)
        }
        if !resume {
            try? FileManager.default.removeItem(at: stageDirectory(stage))
        }
        try writeMarker(stage, Marker(hash: hash, completed: false))
        let stageId = row.id!
        let last = stageDirectory(stage).appendingPathComponent("checkpoints/last")
        let resumeStep = resume ? checkpointStep(last) : nil
        onEvent(.stageStarted(stage: stage.id, kind: stage.kind, resumeStep: resumeStep))
        let started = Date()
        var steps = 0
        var interrupted = false
        do {
            if shouldStop() {
                interrupted = true
            } else {
                if let write = stage.definition.write {
                    var context = WriteContext(settings: stage.settings, output: output, resolve: resolve)
                    context.models = try stage.models.mapValues { try StageExecutor.startingModel($0, resolve: resolve) }
                    context.modelReferences = stage.models.mapValues(\.reference)
                    context.store = store
                    context.runId = runId
                    context.stageName = "\(recipe.name)/\(stage.id)"
                    let id = stage.id
                    context.note = { [onEvent] text in onEvent(.note(stage: id, text: text)) }
                    context.stageId = id
                    context.hash = hash
                    if case .rate(var config) = stage.settings {
                        // What makes the candidates, not how many answers to wait for or whom the command names.
                        config.minRatings = nil
                        config.rater = nil
                        context.hash = try stage.with(settings: .rate(config))
                            .effectiveHash(dependencies: hashes, fileHashes: &fileHashes, resolve: { recipe.resolve($0).path })
                    }
                    context.storeDisplay = recipe.store
                    let facts = try write(context)
                    try store.record(metrics: facts.sorted { $0.key < $1.key }.map { Metric(stageId: stageId, step: 0, name: $0.key, value: $0.value) })
                } else {
                    let outcome = try train(stage, stageId: stageId)
                    steps = outcome.summary.steps
                    interrupted = outcome.summary.interrupted
                }
            }
        } catch let pending as RatingsPending {
            // Not a failure: the stage is taken up again (task kept) by the next `rein run`.
            try store.setStageStatus(stageId, .interrupted)
            onEvent(.stageFinished(StageReport(stage: stage.id, kind: stage.kind, status: .interrupted, skipped: false,
                                               seconds: Date().timeIntervalSince(started), steps: 0, before: [:], after: [:],
                                               facts: ["waiting for ratings: \(pending.answers) of \(pending.needed) answers"], output: nil)))
            throw pending
        } catch {
            _ = try? store.setStageStatus(stageId, .failed)
            throw RunnerError("stage \(stage.id) (\(stage.kind.rawValue)) failed: \(error)")
        }
        if interrupted {
            try store.setStageStatus(stageId, .interrupted)
            let report = StageReport(stage: stage.id, kind: stage.kind, status: .interrupted, skipped: false,
                                     seconds: Date().timeIntervalSince(started), steps: steps, before: [:], after: [:],
                                     facts: [], output: nil)
            onEvent(.stageFinished(report))
            return report
        }
        try writeMarker(stage, Marker(hash: hash, completed: true))
        outputs[stage.id] = output
        if stage.definition.producesModel {
            try store.recordCheckpoint(stageId: stageId, kind: "final", step: steps, path: output.path)
        }
        try store.setStageOutput(stageId, path: output.path)
        try store.setStageStatus(stageId, .completed)
        var report = try metricsReport(stage, stageId: stageId, status: .completed, skipped: false,
                                       seconds: Date().timeIntervalSince(started))
        report.output = output.path
        onEvent(.stageFinished(report))
        return report
    }

    func skipped(_ stage: ResolvedStage, stageId: Int64, reason: String) throws -> StageReport {
        onEvent(.stageSkipped(stage: stage.id, kind: stage.kind, reason: reason))
        var report = try metricsReport(stage, stageId: stageId, status: .completed, skipped: true, seconds: 0)
        report.output = outputs[stage.id]?.path
        return report
    }

    /// The step of a checkpoint directory, if it holds one.
    func checkpointStep(_ directory: URL) -> Int? {
        guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent("trainer_state.json").path),
              let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return nil }
        return object["step"] as? Int
    }

    /// `eval/*` values at step 0 and at the last step of a stage, from the store.
    func metricsReport(_ stage: ResolvedStage, stageId: Int64, status: Status, skipped: Bool, seconds: Double) throws -> StageReport {
        let metrics = try store.metrics(stageId: stageId)
        let lastStep = metrics.map(\.step).max() ?? 0
        var before: [String: Double] = [:], after: [String: Double] = [:]
        for m in metrics where m.name.hasPrefix("eval/") {
            if m.step == 0 { before[m.name] = m.value }
            if m.step == lastStep { after[m.name] = m.value }
        }
        if lastStep == 0 { after = before; before = [:] }
        var facts: [String] = []
        for m in metrics {
            if m.name.hasPrefix("data/") { facts.append("\(m.name.dropFirst(5)) \(Int(m.value)) lines") }
            if m.name == "tokenizer/vocab_size" { facts.append("vocabulary \(Int(m.value)) tokens") }
            if m.name == "tokenizer/bytes_per_token" { facts.append(String(format: "%.2f bytes per token", m.value)) }
            if m.name == "judge_pairs/chosen_score" { facts.append(String(format: "chosen score %.3f", m.value)) }
            if m.name == "judge_pairs/rejected_score" { facts.append(String(format: "rejected score %.3f", m.value)) }
        }
        return StageReport(stage: stage.id, kind: stage.kind, status: status, skipped: skipped, seconds: seconds, steps: lastStep,
                           before: before, after: after, facts: facts, output: nil)
    }

    // MARK: Training

    /// What rank 0 tells the other processes of a data-parallel run before each training stage:
    /// which stage, and the outputs of the stages before it (their paths resolve `stage:` references).
    struct FollowerPlan: Codable {
        var stage: String
        var outputs: [String: String]
    }

    /// Data-parallel `rein run` on a process other than rank 0: trains each stage rank 0 announces
    /// (its share of every batch; no store, no lock, no files written) until rank 0 ends the run.
    public func follow() throws {
        let world = ProcessGroup.world
        while true {
            let message = try world.broadcast(nil, root: 0)
            guard !message.isEmpty else { return }
            let plan = try JSONDecoder().decode(FollowerPlan.self, from: message)
            guard let stage = recipe.stages.first(where: { $0.id == plan.stage }) else {
                throw RunnerError("rank 0 runs stage '\(plan.stage)', which this process's recipe does not have: every process must run the same recipe")
            }
            outputs = plan.outputs.mapValues { URL(fileURLWithPath: $0) }
            var executor = try makeExecutor(for: stage, writesFiles: false)
            executor.onEvent = { [shouldStop] _ in !shouldStop() }
            _ = try executor.run()
        }
    }

    /// Ends the other processes' `follow()` (rank 0, at the end of a data-parallel run).
    func releaseFollowers() {
        let world = ProcessGroup.world
        if world.isDistributed && world.isRoot { _ = try? world.broadcast(Data(), root: 0) }
    }

    /// The executor of a training stage: settings with paths resolved, checkpoints every 50 steps,
    /// resume on. Only the process that `writesFiles` writes the ratings pairs.
    func makeExecutor(for stage: ResolvedStage, writesFiles: Bool) throws -> StageExecutor {
        var settings = stage.settings
        guard var args = settings.training else { throw RunnerError("\(stage.id): not a training stage") }
        args.data = try args.data.map(resolve)
        if !writesFiles, stage.ratings != nil {
            args.data = stageDirectory(stage).appendingPathComponent("ratings.jsonl").path
        } else if let lines = ratingsLines[stage.id] {
            // The task's pairs as TRL lines, beside the model: what `rein rate export` would write.
            guard !lines.isEmpty else {
                throw RunnerError("stages.\(stage.id).data.ratings: task '\(stage.ratings!.ratings)' gives no preference pairs yet "
                                  + "(ties, both-bad, skipped and gold answers are left out)")
            }
            let file = stageDirectory(stage).appendingPathComponent("ratings.jsonl")
            try FileManager.default.createDirectory(at: stageDirectory(stage), withIntermediateDirectories: true)
            try AtomicFile.write(Data(lines.map { $0 + "\n" }.joined().utf8), to: file)
            args.data = file.path
        }
        args.validationData = try args.validationData.map(resolve)
        args.evalPrompts = try args.evalPrompts.map(resolve)
        if args.saveSteps == 0 { args.saveSteps = 50 }
        args.resume = true
        settings.training = args
        let models = try stage.models.mapValues { try StageExecutor.startingModel($0, resolve: resolve) }
        return StageExecutor(kind: stage.kind, settings: settings, models: models, outputDirectory: stageDirectory(stage))
    }

    func train(_ stage: ResolvedStage, stageId: Int64) throws -> StageOutcome {
        var executor = try makeExecutor(for: stage, writesFiles: true)
        let world = ProcessGroup.world
        if world.isDistributed {
            guard StageExecutor.dataParallelKinds.contains(stage.kind) else {
                throw RunnerError("\(stage.kind.rawValue) runs on one process only so far (under mpirun with \(world.size) processes, data-parallel stages are \(StageExecutor.dataParallelKinds.map(\.rawValue).joined(separator: ", ")))")
            }
            let plan = FollowerPlan(stage: stage.id, outputs: outputs.mapValues(\.path))
            _ = try world.broadcast(try JSONEncoder().encode(plan), root: 0)
        }
        let sink = StoreMetricsSink(store: store, stageId: stageId)
        executor.sink = sink
        executor.rolloutSink = StoreRolloutSink(store: store, stageId: stageId)
        let store = self.store!
        executor.onSamples = { step, samples in
            // Every evaluation reply is visible in the store (rollout rows of phase `eval`, apart from
            // the stage's training rollouts at the same step; score 1 when exactly right).
            try store.record(rollouts: samples.enumerated().map { i, s in
                Rollout(stageId: stageId, phase: RolloutPhase.eval, step: step, idx: i, prompt: s.prompt, response: s.reply, responseTokens: s.tokens,
                        stopReason: s.stopReason, score: s.correct ? 1 : 0, policyVersion: step)
            })
        }
        executor.onCheckpoint = { kindName, step, directory in
            try store.recordCheckpoint(stageId: stageId, kind: kindName, step: step, path: directory.path)
        }
        let id = stage.id
        executor.onEvent = { [onEvent, shouldStop] event in
            switch event {
            case .note(let text): onEvent(.note(stage: id, text: text))
            case let .step(progress, unit): onEvent(.step(stage: id, progress: progress, unit: unit))
            }
            return !shouldStop()
        }
        let outcome = try executor.run()
        try sink.flush()
        return outcome
    }
}
