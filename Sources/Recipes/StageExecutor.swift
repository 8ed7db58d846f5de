import Alignment
import Checkpoints
import DataParallel
import Datasets
import Evaluation
import Foundation
import NN
import TensorCore
import Tokenizers
import Training

/// Where a training stage's starting model comes from, resolved to files.
public enum StartingModel: Sendable, Equatable {
    /// A Hugging Face directory or a .gguf file.
    case load(String)
    /// A fresh model: a Hugging Face `config.json` fragment (architecture keys) and the tokenizer
    /// directory (or tokenizer.json) that sets its vocabulary.
    case initialize(configJSON: String, tokenizer: String)
}

/// What a training stage produced.
public struct StageOutcome: Sendable {
    /// The trainer's summary (steps, final train loss, validation metrics, interrupted).
    public var summary: StageSummary
    /// The exported model directory (nil when interrupted).
    public var modelDirectory: URL?
    /// Greedy exact-match accuracy on `eval_prompts` before and after the stage, when measured.
    public var exactMatch: (before: Double, after: Double)?
}

/// What a stage reports while it runs.
public enum StageEvent: Sendable {
    /// A line worth showing (what was loaded, how much data).
    case note(String)
    /// One optimizer step finished.
    case step(TrainingProgress, unit: String)
}

/// Runs one training stage: loads or initializes the model, reads and tokenizes the data, hands
/// them to the kind's `train` (its declaration in ``StageKinds``), with checkpoints (resuming from
/// `checkpoints/last` when present and `resume` is set), and exports the model in the Hugging Face
/// layout to `outputDirectory/model`. Used by `rein train` and by the recipe runner.
public struct StageExecutor {
    public let kind: RecipeStageKind
    /// The stage's settings, paths resolved.
    public let settings: StageSettings
    /// The stage's models by role, resolved to files (`model` is the one trained).
    public let models: [String: StartingModel]
    public let outputDirectory: URL
    /// Where metrics go (the run store), if anywhere.
    public var sink: MetricsSink?
    /// Where online RL stages write their rollouts.
    public var rolloutSink: RolloutSink?
    /// Called after each checkpoint with its kind, step and directory.
    public var onCheckpoint: ((String, Int, URL) throws -> Void)?
    /// Sees notes and steps; returning false stops training after the current step (a checkpoint is written).
    public var onEvent: (StageEvent) -> Bool = { _ in true }
    /// Receives the exact-match generations (before the first step, at step 0, and after the last).
    public var onSamples: ((_ step: Int, _ samples: [ExactMatchSet.Sample]) throws -> Void)?

    /// A stage of `kind` with `settings` (paths in it already resolved) and its models by role.
    public init(kind: RecipeStageKind, settings: StageSettings, models: [String: StartingModel], outputDirectory: URL) {
        self.kind = kind
        self.settings = settings
        self.models = models
        self.outputDirectory = outputDirectory
    }

    /// `outputDirectory/checkpoints`.
    public var checkpointDirectory: URL { outputDirectory.appendingPathComponent("checkpoints") }
    /// `outputDirectory/model`: the exported model.
    public var modelDirectory: URL { outputDirectory.appendingPathComponent("model") }

    func note(_ text: String) { _ = onEvent(.note(text)) }

    /// A model reference resolved to files; `resolve` maps a path or `stage:ID` written in the
    /// recipe to a file path.
    public static func startingModel(_ source: ModelSource, resolve: (String) throws -> String) throws -> StartingModel {
        switch source {
        case .stage(let id): .load(try resolve("stage:\(id)"))
        case .path(let p), .hf(let p), .gguf(let p): .load(try resolve(p))
        case let .initialize(config, tokenizer): .initialize(configJSON: config, tokenizer: try resolve(tokenizer))
        }
    }
    /// Loads the starting model, with its tokenizer and template.
    public static func startingLanguageModel(_ start: StartingModel, seed: UInt64) throws -> LanguageModel {
        switch start {
        case .load(let path):
            return try LanguageModel.load(path)
        case let .initialize(configJSON, tokenizerPath):
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: tokenizerPath, isDirectory: &isDirectory)
            let file = isDirectory.boolValue ? URL(fileURLWithPath: tokenizerPath).appendingPathComponent("tokenizer.json")
                : URL(fileURLWithPath: tokenizerPath)
            guard exists, FileManager.default.fileExists(atPath: file.path) else {
                throw RunnerError("\(file.path): tokenizer.json not found (the tokenizer of a model initialized from a config)")
            }
            let tokenizer = try Tokenizer(tokenizerJSON: file)
            let config = try modelConfig(json: configJSON, vocabularySize: tokenizer.vocabularySize, tokenizer: tokenizer)
            var rng = RNG(seed: seed)
            let model = DecoderModel(config: config, rng: &rng)
            let eos = tokenizer.eosTokenID.flatMap { tokenizer.token(forID: $0) } ?? "<|endoftext|>"
            return LanguageModel(model: model, tokenizer: tokenizer, chatTemplate: .plain(endOfTurn: eos), source: "init")
        }
    }

    /// A model config from architecture keys, with the vocabulary and special ids of `tokenizer`.
    static func modelConfig(json: String, vocabularySize: Int, tokenizer: Tokenizer) throws -> ModelConfig {
        guard var object = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] else {
            throw RunnerError("model.init: expected a mapping of config.json keys")
        }
        object["vocab_size"] = vocabularySize
        // A trained tokenizer.json names no EOS; the end-of-text special token is it.
        let eos = tokenizer.eosTokenID ?? tokenizer.id(forToken: "<|endoftext|>")
        if let eos { object["eos_token_id"] = Int(eos) }
        if let bos = tokenizer.bosTokenID ?? eos { object["bos_token_id"] = Int(bos) }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        do { return try ModelConfig(huggingFaceJSON: data, file: "model.init") } catch {
            throw RunnerError("\(error)")
        }
    }

    /// The kinds that train data-parallel under `mpirun`.
    public static let dataParallelKinds: [RecipeStageKind] = [.pretrain, .sft, .reward, .dpo, .ppo, .rloo, .grpo]

    /// Trains and exports. When `onEvent` stops training, the outcome is `interrupted` and nothing
    /// is exported (the last checkpoint holds the step reached).
    public func run() throws -> StageOutcome {
        let definition = kind.definition
        guard let train = definition.train, let args = settings.training else {
            throw RunnerError("\(kind.rawValue): not a training stage Rein can run yet")
        }
        // Data parallel (`mpirun`): every process trains its share; rank 0 alone records and writes.
        let world = ProcessGroup.world
        if world.isDistributed && !Self.dataParallelKinds.contains(kind) {
            throw RunnerError("\(kind.rawValue): runs on one process only so far (under mpirun with \(world.size) processes: data-parallel stages are \(Self.dataParallelKinds.map(\.rawValue).joined(separator: ", ")))")
        }
        let sink = world.isRoot ? self.sink : nil
        let onSamples = world.isRoot ? self.onSamples : nil
        guard let startingModel = models["model"] else { throw RunnerError("\(kind.rawValue): model: required") }
        guard let data = args.data else { throw RunnerError("\(kind.rawValue): data: required") }
        let lm = try Self.startingLanguageModel(startingModel, seed: args.seed)
        let model = lm.model
        let origin: String
        switch startingModel {
        case .load(let path): origin = path
        case .initialize: origin = "a fresh \(model.config.family.rawValue) config"
        }
        note("model: \(origin) (\(model.config.family.rawValue), \(model.arena.parameterCount / 1000)k parameters)")
        let eos = lm.eosTokenId ?? 0
        let padID = try Collator.padTokenID(for: lm.tokenizer, eosTokenID: eos, template: lm.chatTemplate)
        let collator = try Collator(padTokenID: padID, eosTokenID: eos)
        let builder = try ExampleBuilder(tokenizer: lm.tokenizer, template: lm.chatTemplate, eosTokenID: eos,
                                         maxLength: min(args.maxLength, model.config.maxPositions), overflow: args.overflow)
        let sets = try RecordSet.readSplits(train: URL(fileURLWithPath: data),
                                            validation: args.validationData.map { URL(fileURLWithPath: $0) },
                                            validationFraction: args.validationData == nil && !definition.promptsOnly ? args.validationSplit : 0,
                                            seed: args.seed, onBadRecord: args.onBadRecord)
        if sets.train.stats.skipped > 0 {
            note("skipped \(sets.train.stats.skipped) bad line(s) of \(data): \(sets.train.stats.skipReasons.first.map { "\($0)" } ?? "")")
        }
        let evalSet = definition.measuresExactMatch ? try args.evalPrompts.map { try ExactMatchSet(path: $0, builder: builder) } : nil
        var rng = RNG(seed: args.seed)
        definition.prepare?(model, settings, &rng)
        var before: Double?
        if let evalSet {
            let samples = evalSet.samples(lm, maxNewTokens: args.evalMaxNewTokens)
            try onSamples?(0, samples)
            before = ExactMatchSet.accuracy(samples)
            sink?.record(step: 0, name: "eval/exact_match", value: before!)
            note("exact match before: \(percent(before!)) of \(evalSet.count) held-out prompts")
        }
        if let lora = args.lora {
            let n = try model.addLoRA(lora, rng: &rng)
            note("LoRA r=\(lora.r) on \(n) layers: \(model.arena.trainableCount / 1000)k trainable parameters")
        }
        let unit = definition.unit
        var context = TrainingContext(settings: settings, args: args, lm: lm, builder: builder, collator: collator,
                                      train: sets.train.records, validation: sets.validation.records, models: models,
                                      start: startingModel, sink: sink, checkpointDirectory: checkpointDirectory,
                                      progress: { onEvent(.step($0, unit: unit)) }, onCheckpoint: onCheckpoint, note: note)
        context.rolloutSink = world.isRoot ? rolloutSink : nil
        if args.resume, let last = Checkpointer.resolve(checkpointDirectory.appendingPathComponent("last")),
           let saved = Checkpointer.storedValues(last)?[CheckpointState.processesKey], Int(saved) != world.size {
            note("warning: \(last.path) was written by a run on \(Int(saved)) process(es) and resumes on \(world.size): "
                 + "the results will differ from an uninterrupted run in the last bits")
        }
        var summary = try train(context)
        if summary.interrupted { return StageOutcome(summary: summary, modelDirectory: nil, exactMatch: nil) }
        if args.lora != nil {
            if world.isRoot { try model.saveLoRA(to: outputDirectory.appendingPathComponent("adapter")) }
            model.mergeLoRA()
        }
        var exactMatch: (Double, Double)?
        if let evalSet, let before {
            if world.isRoot { try rolloutSink?.flush() }   // an RL stage's last rollouts are in the store before the replies
            let samples = evalSet.samples(lm, maxNewTokens: args.evalMaxNewTokens)
            try onSamples?(summary.steps, samples)
            let after = ExactMatchSet.accuracy(samples)
            sink?.record(step: summary.steps, name: "eval/exact_match", value: after)
            summary.validation["exact_match"] = after
            exactMatch = (before, after)
        }
        let final = modelDirectory
        if world.isRoot {
            try LanguageModel(model: model, tokenizer: lm.tokenizer, chatTemplate: lm.chatTemplate, source: final.path).save(to: final)
            try definition.exported?(summary, final)
            try sink?.flush()
            try rolloutSink?.flush()
        }
        // No process goes on (to a stage that reads this model) before rank 0 has written it.
        try world.barrier()
        return StageOutcome(summary: summary, modelDirectory: final, exactMatch: exactMatch)
    }
}

/// An error of the runner with a message for the user.
public struct RunnerError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

func percent(_ x: Double) -> String { String(format: "%.1f%%", x * 100) }
