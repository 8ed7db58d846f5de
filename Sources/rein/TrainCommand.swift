import Alignment
import ArgumentParser
import Checkpoints
import Datasets
import Foundation
import NN
import Recipes
import TensorCore
import Store
import Training
import Yams

/// `rein train pretrain|sft|reward|dpo --config FILE.yaml`: one supervised stage.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train one stage (pretrain, sft, reward, dpo) from a YAML config or flags.",
        discussion: """
        Config keys follow TRL: model, data, validation_data, validation_split, output_dir, max_length, \
        batch_size, num_train_epochs or max_steps, learning_rate, lr_scheduler_type, warmup_steps, beta, \
        loss_type, lora: {r, lora_alpha, lora_dropout, target_modules}, ... Flags override the file. \
        An interrupted run resumes from output_dir/checkpoints/last.
        """
    )

    @Argument(help: "The stage: pretrain, sft, reward or dpo.")
    var kind: StageKind

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

    func run() throws {
        if let threads { Threads.set(threads) }
        var settings = StageConfig()
        if let path = config {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw CLIError("\(path): cannot read the config file") }
            let raw: Any?
            do { raw = try Yams.load(yaml: text) } catch { throw CLIError("\(path): not valid YAML: \(error)") }
            guard let dict = raw as? [String: Any] else { throw CLIError("\(path): expected a mapping of settings at the top level") }
            let unknown = StageConfig.unknownKeys(in: dict)
            if !unknown.isEmpty {
                throw CLIError(unknown.map { "\(path): unknown key '\($0.key)'" + ($0.suggestion.map { " (did you mean '\($0)'?)" } ?? "") }
                    .joined(separator: "\n"))
            }
            do { settings = try YAMLDecoder().decode(StageConfig.self, from: text) } catch let error as DecodingError {
                throw CLIError("\(path): \(describe(error))")
            }
        }
        if let model { settings.model = model }
        var start: StartingModel?
        if let initConfig {
            guard let tokenizer else { throw CLIError("--init-config needs --tokenizer (the fresh model's vocabulary)") }
            guard let data = FileManager.default.contents(atPath: initConfig),
                  (try? JSONSerialization.jsonObject(with: data)) is [String: Any] else {
                throw CLIError("\(initConfig): expected a JSON object of config.json keys")
            }
            guard FileManager.default.fileExists(atPath: tokenizer) else { throw CLIError("--tokenizer: \(tokenizer) does not exist") }
            start = .initialize(configJSON: String(decoding: data, as: UTF8.self), tokenizer: tokenizer)
            settings.model = initConfig
        } else if tokenizer != nil {
            throw CLIError("--tokenizer is only used with --init-config")
        }
        if let data { settings.data = data }
        if let outputDir { settings.outputDir = outputDir }
        if let maxSteps { settings.maxSteps = maxSteps }
        if let learningRate { settings.learningRate = learningRate }
        if let batchSize { settings.batchSize = batchSize }
        let problems = settings.problems(for: kind)
        guard problems.isEmpty else { throw CLIError(problems.map { (config ?? "flags") + ": " + $0 }.joined(separator: "\n")) }
        // Missing inputs fail before anything is written (store rows, output directories).
        let missing = [("model", settings.model), ("data", settings.data), ("validation_data", settings.validationData)]
            .compactMap { key, path in path.flatMap { FileManager.default.fileExists(atPath: $0) ? nil : "\(key): \($0) does not exist" } }
        guard missing.isEmpty else { throw CLIError(missing.map { (config ?? "flags") + ": " + $0 }.joined(separator: "\n")) }
        var runner = StageRunner(kind: kind, settings: settings)
        runner.start = start
        guard let store else { return try runner.run() }
        // Record the run: a run row, one stage row, its metrics through the sink, and the final status.
        let db = try RunStore(path: store)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let configJSON = String(decoding: try encoder.encode(settings), as: UTF8.self)
        let run = try db.createRun(name: "train-\(kind.rawValue)", recipe: configJSON, seed: Int64(bitPattern: settings.seed))
        let stage = try db.createStage(runId: run.id!, stageKey: kind.rawValue, kind: kind.rawValue, configJSON: configJSON,
                                       configHash: String(Recipe.configHash(settings), radix: 16))
        let sink = StoreMetricsSink(store: db, stageId: stage.id!)
        runner.sink = sink
        do {
            try runner.run()
            try sink.flush()
            _ = try db.setStageStatus(stage.id!, .completed, checkpointPath: runner.checkpointPath)
            _ = try db.setRunStatus(run.id!, .completed)
            Terminal.note("recorded as run \(run.id!) in \(store)")
        } catch {
            try? sink.flush()
            _ = try? db.setStageStatus(stage.id!, .failed)
            _ = try? db.setRunStatus(run.id!, .failed)
            throw error
        }
    }

    /// A decoding error as "key.path: what was wrong".
    func describe(_ error: DecodingError) -> String {
        func path(_ c: [CodingKey]) -> String { c.map(\.stringValue).joined(separator: ".") }
        switch error {
        case let .typeMismatch(type, ctx): return "\(path(ctx.codingPath)): expected \(type)"
        case let .valueNotFound(type, ctx): return "\(path(ctx.codingPath)): missing \(type)"
        case let .keyNotFound(key, ctx): return "\(path(ctx.codingPath + [key])): missing"
        case let .dataCorrupted(ctx): return "\(path(ctx.codingPath)): \(ctx.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}

/// `rein train`'s view of a `StageExecutor`: progress lines on stderr, a summary on stdout.
struct StageRunner {
    let kind: StageKind
    let settings: StageConfig
    /// Where metrics go (the run store), if anywhere.
    var sink: MetricsSink?
    /// A fresh model to train instead of loading `settings.model`.
    var start: StartingModel?

    init(kind: StageKind, settings: StageConfig) {
        self.kind = kind
        self.settings = settings
    }

    var outputDirectory: URL { URL(fileURLWithPath: settings.outputDir ?? "runs/\(kind.rawValue)") }
    var checkpointPath: String { outputDirectory.appendingPathComponent("checkpoints/last").path }

    func run() throws {
        let started = Date()
        var executor = StageExecutor(kind: kind, settings: settings, startingModel: start ?? .load(settings.model!),
                                     outputDirectory: outputDirectory)
        executor.sink = sink
        var steps = StepProgressView(logEverySteps: settings.loggingSteps)
        executor.onEvent = { event in
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
        if summary.interrupted {
            Terminal.note("interrupted at step \(summary.steps); the same command resumes from \(checkpointPath)")
            throw ExitCode(130)
        }
        let metrics = summary.validation.sorted { $0.key < $1.key }.map { "\($0.key) \(fmt($0.value, 0, 4))" }.joined(separator: ", ")
        print("\(kind.rawValue): \(summary.steps) steps in \(ReportText.duration(Date().timeIntervalSince(started))); final train loss \(fmt(summary.finalTrainLoss, 0, 4))")
        if !metrics.isEmpty { print("validation: \(metrics)") }
        let final = executor.modelDirectory
        print("model written to \(final.path)" + (settings.lora != nil ? " (adapters merged; adapter alone in \(outputDirectory.appendingPathComponent("adapter").path))" : ""))
    }
}

extension StageKind: ExpressibleByArgument {}
