import Alignment
import ArgumentParser
import Checkpoints
import DataParallel
import Datasets
import Foundation
import NN
import Recipes
import TensorCore
import Store
import Training

/// `rein train pretrain|sft|reward|dpo --config FILE.yaml`: one stage, checked by the recipe
/// checker as a one-stage recipe (the same messages with file:line and key, the same suggestions).
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train one stage (pretrain, sft, reward, dpo, ppo, rloo, grpo) from a YAML config or flags.",
        discussion: """
        Config keys follow TRL: data, validation_data, validation_split, output_dir, max_length, \
        batch_size, num_train_epochs or max_steps, learning_rate, lr_scheduler_type, warmup_steps, beta, \
        loss_type, lora: {r, lora_alpha, lora_dropout, target_modules}, ...; models by role: model, \
        ref_model (DPO). Flags override the file. An interrupted run resumes from output_dir/checkpoints/last.
        """
    )

    @Argument(help: "The stage: pretrain, sft, reward, dpo, ppo, rloo or grpo.")
    var kind: RecipeStageKind

    @Option(help: "A YAML file with the stage's settings.")
    var config: String?

    @Option(help: "Model: a Hugging Face directory or a .gguf file.") var model: String?
    @Option(help: "Training data (.jsonl, or .txt for pretrain).") var data: String?
    @Option(name: .customLong("output-dir"), help: "Where checkpoints and the trained model go.") var outputDir: String?
    @Option(name: .customLong("max-steps"), help: "Optimizer steps.") var maxSteps: Int?
    @Option(name: .customLong("learning-rate"), help: "Peak learning rate.") var learningRate: Double?
    @Option(name: .customLong("batch-size"), help: "Examples (or pairs) per micro-batch.") var batchSize: Int?
    @Option(help: "Threads for OpenBLAS and the kernels.") var threads: Int?
    @Option(help: "A SQLite run store to record the run, the stage and every metric in (see docs/store.md).") var store: String?
    @Option(name: .customLong("init-config"), help: ArgumentHelp("Train a fresh model instead of --model: a JSON file of config.json keys (model_type, n_layer, n_embd, ...); needs --tokenizer.", valueName: "file"))
    var initConfig: String?
    @Option(help: ArgumentHelp("The tokenizer directory (or tokenizer.json) of a fresh --init-config model.", valueName: "path"))
    var tokenizer: String?

    func validate() throws {
        guard kind.definition.train != nil else {
            let kinds = RecipeStageKind.implemented.filter { $0.definition.train != nil }.map(\.rawValue)
            throw ValidationError(kind.definition.implemented
                ? "'\(kind.rawValue)' is not a training stage (rein train takes \(kinds.joined(separator: ", ")))"
                : "'\(kind.rawValue)' is not implemented yet (rein train takes \(kinds.joined(separator: ", ")))")
        }
    }

    /// The flags as config keys, applied over the file.
    func flagSettings() throws -> [(key: String, value: String)] {
        var out: [(String, String)] = []
        func quoted(_ text: String) -> String { JSONText.quoted(text) }
        if let model { out.append(("model", quoted(model))) }
        if let initConfig {
            guard let tokenizer else { throw CLIError("--init-config needs --tokenizer (the fresh model's vocabulary)") }
            guard let data = FileManager.default.contents(atPath: initConfig),
                  (try? JSONSerialization.jsonObject(with: data)) is [String: Any] else {
                throw CLIError("\(initConfig): expected a JSON object of config.json keys")
            }
            // JSON is YAML: the file's object becomes the `init` mapping.
            out.append(("model", "{init: \(String(decoding: data, as: UTF8.self)), tokenizer: \(quoted(tokenizer))}"))
        } else if tokenizer != nil {
            throw CLIError("--tokenizer is only used with --init-config")
        }
        if let data { out.append(("data", quoted(data))) }
        if let outputDir { out.append(("output_dir", quoted(outputDir))) }
        if let maxSteps { out.append(("max_steps", String(maxSteps))) }
        if let learningRate { out.append(("learning_rate", "\(learningRate)")) }
        if let batchSize { out.append(("batch_size", String(batchSize))) }
        return out
    }

    func run() throws {
        let world = ProcessGroup.world
        if world.isDistributed && !StageExecutor.dataParallelKinds.contains(kind) {
            throw CLIError("\(kind.rawValue) runs on one process only so far; under mpirun with \(world.size) processes rein train takes \(StageExecutor.dataParallelKinds.map(\.rawValue).joined(separator: ", "))")
        }
        if let threads { Threads.set(threads) }
        var text: String?
        if let path = config {
            guard let contents = try? String(contentsOfFile: path, encoding: .utf8) else { throw CLIError("\(path): cannot read the config file") }
            text = contents
        }
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        let stage: ResolvedStage
        do {
            stage = try Recipe.stage(kind: kind, yaml: text, fileName: config ?? "flags", baseDirectory: cwd, settings: try flagSettings())
        } catch let error as RecipeError {
            // Missing inputs fail before anything is written (store rows, output directories).
            throw CLIError(error.description)
        }
        var settings = stage.settings
        var args = settings.training!
        if stage.ratings != nil, !world.isRoot {
            // Rank 0 writes the pairs file below; the others read it once it is there.
            try world.barrier()
            args.data = URL(fileURLWithPath: args.outputDir ?? "runs/\(kind.rawValue)").appendingPathComponent("ratings.jsonl").path
        } else if let ratings = stage.ratings {
            // The task's pairs as `rein rate export --format trl` writes them, in the output directory.
            guard let path = ratings.store ?? store else {
                throw CLIError("data: {ratings: \(ratings.ratings)} needs the store: give store: FILE in the mapping or --store")
            }
            guard FileManager.default.fileExists(atPath: path) else { throw CLIError("data.store: no store at \(path)") }
            let lines = try ratings.lines(in: RunStore(path: path), keyPath: "data.ratings")
            guard !lines.isEmpty else { throw CLIError("data.ratings: task '\(ratings.ratings)' gives no preference pairs yet") }
            let file = URL(fileURLWithPath: args.outputDir ?? "runs/\(kind.rawValue)").appendingPathComponent("ratings.jsonl")
            try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(lines.map { $0 + "\n" }.joined().utf8).write(to: file, options: .atomic)
            args.data = file.path
            try world.barrier()
        }
        let models = try stage.models.mapValues { source in
            try StageExecutor.startingModel(source, resolve: { reference in
                guard !reference.hasPrefix("stage:") else { throw CLIError("\(reference): stage references need a recipe (rein run)") }
                return reference
            })
        }
        settings.training = args
        let runner = StageRunner(kind: kind, settings: settings, models: models)
        // Data parallel: rank 0 records the run and prints; the other processes only train.
        guard let store, world.isRoot else { return try runner.run() }
        // Record the run: a run row, one stage row, its metrics through the sink, and the final status.
        let db = try RunStore(path: store)
        let configJSON = Recipe.canonicalJSON(settings)
        let run = try db.createRun(name: "train-\(kind.rawValue)", recipe: configJSON, seed: Int64(bitPattern: args.seed))
        var fileHashes: [String: String] = [:]
        let hash = try stage.effectiveHash(dependencies: [:], fileHashes: &fileHashes, resolve: { $0 })
        let row = try db.createStage(runId: run.id!, stageKey: kind.rawValue, kind: kind.rawValue, configJSON: configJSON,
                                     configHash: hash)
        let sink = StoreMetricsSink(store: db, stageId: row.id!)
        var recorded = runner
        recorded.sink = sink
        recorded.rolloutSink = StoreRolloutSink(store: db, stageId: row.id!)
        do {
            try recorded.run()
            try sink.flush()
            _ = try db.setStageStatus(row.id!, .completed, checkpointPath: runner.checkpointPath)
            _ = try db.setRunStatus(run.id!, .completed)
            Terminal.note("recorded as run \(run.id!) in \(store)")
        } catch {
            try? sink.flush()
            _ = try? db.setStageStatus(row.id!, .failed)
            _ = try? db.setRunStatus(run.id!, .failed)
            throw error
        }
    }
}

/// `rein train`'s view of a `StageExecutor`: progress lines on stderr, a summary on stdout.
struct StageRunner {
    let kind: RecipeStageKind
    let settings: StageSettings
    /// The stage's models by role, resolved to files.
    let models: [String: StartingModel]
    /// Where metrics go (the run store), if anywhere.
    var sink: MetricsSink?
    /// Where online RL stages write their rollouts.
    var rolloutSink: RolloutSink?

    init(kind: RecipeStageKind, settings: StageSettings, models: [String: StartingModel]) {
        self.kind = kind
        self.settings = settings
        self.models = models
    }

    var args: TrainingArguments { settings.training! }
    var outputDirectory: URL { URL(fileURLWithPath: args.outputDir ?? "runs/\(kind.rawValue)") }
    var checkpointPath: String { outputDirectory.appendingPathComponent("checkpoints/last").path }

    func run() throws {
        let started = Date()
        var executor = StageExecutor(kind: kind, settings: settings, models: models, outputDirectory: outputDirectory)
        executor.sink = sink
        executor.rolloutSink = rolloutSink
        var steps = StepProgressView(logEverySteps: args.loggingSteps)
        let world = ProcessGroup.world
        if world.isDistributed && world.isRoot { Terminal.note("data parallel: \(world.size) processes (rank 0 writes)") }
        executor.onEvent = { event in
            guard world.isRoot else { return !Interrupts.requested }
            switch event {
            case .note(let text):
                steps.endLine()
                Terminal.note(text)
            case let .step(p, unit):
                steps.show(p, unit: unit)
            }
            return !Interrupts.requested
        }
        Interrupts.install()
        let outcome = try executor.run()
        steps.endLine()
        let summary = outcome.summary
        guard world.isRoot else {
            if summary.interrupted { throw ExitCode(130) }
            return
        }
        if summary.interrupted {
            Terminal.note("interrupted at step \(summary.steps); the same command resumes from \(checkpointPath)")
            throw ExitCode(130)
        }
        let metrics = summary.validation.sorted { $0.key < $1.key }.map { "\($0.key) \(fmt($0.value, 0, 4))" }.joined(separator: ", ")
        print("\(kind.rawValue): \(summary.steps) steps in \(ReportText.duration(Date().timeIntervalSince(started))); final train loss \(fmt(summary.finalTrainLoss, 0, 4))")
        if !metrics.isEmpty { print("validation: \(metrics)") }
        let final = executor.modelDirectory
        print("model written to \(final.path)" + (args.lora != nil ? " (adapters merged; adapter alone in \(outputDirectory.appendingPathComponent("adapter").path))" : ""))
    }
}

extension RecipeStageKind: ExpressibleByArgument {}
