import Alignment
import Checkpoints
import Datasets
import Evaluation
import Foundation
import Generation
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

/// Runs one supervised stage (pretrain, sft, reward, dpo): loads or initializes the model, reads
/// and tokenizes the data, trains with checkpoints (resuming from `checkpoints/last` when present
/// and `resume` is set), and exports the model in the Hugging Face layout to `outputDirectory/model`.
/// Used by `rein train` and by the recipe runner.
public struct StageExecutor {
    public let kind: StageKind
    public let settings: StageConfig
    public let startingModel: StartingModel
    public let outputDirectory: URL
    /// Where metrics go (the run store), if anywhere.
    public var sink: MetricsSink?
    /// Called after each checkpoint with its kind, step and directory.
    public var onCheckpoint: ((String, Int, URL) throws -> Void)?
    /// Sees notes and steps; returning false stops training after the current step (a checkpoint is written).
    public var onEvent: (StageEvent) -> Bool = { _ in true }
    /// Receives the exact-match generations (before the first step, at step 0, and after the last).
    public var onSamples: ((_ step: Int, _ samples: [ExactMatchSet.Sample]) throws -> Void)?

    /// A stage of `kind` with `settings` (paths in it already resolved) starting from `startingModel`.
    public init(kind: StageKind, settings: StageConfig, startingModel: StartingModel, outputDirectory: URL) {
        self.kind = kind
        self.settings = settings
        self.startingModel = startingModel
        self.outputDirectory = outputDirectory
    }

    /// `outputDirectory/checkpoints`.
    public var checkpointDirectory: URL { outputDirectory.appendingPathComponent("checkpoints") }
    /// `outputDirectory/model`: the exported model.
    public var modelDirectory: URL { outputDirectory.appendingPathComponent("model") }

    func note(_ text: String) { _ = onEvent(.note(text)) }

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

    /// Trains and exports. When `onEvent` stops training, the outcome is `interrupted` and nothing
    /// is exported (the last checkpoint holds the step reached).
    public func run() throws -> StageOutcome {
        let lm = try Self.startingLanguageModel(startingModel, seed: settings.seed)
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
                                         maxLength: min(settings.maxLength, model.config.maxPositions), overflow: settings.overflow)
        let sets = try RecordSet.readSplits(train: URL(fileURLWithPath: settings.data!),
                                            validation: settings.validationData.map { URL(fileURLWithPath: $0) },
                                            validationFraction: settings.validationData == nil ? settings.validationSplit : 0,
                                            seed: settings.seed, onBadRecord: settings.onBadRecord)
        if sets.train.stats.skipped > 0 {
            note("skipped \(sets.train.stats.skipped) bad line(s) of \(settings.data!): \(sets.train.stats.skipReasons.first.map { "\($0)" } ?? "")")
        }
        let evalSet = try settings.evalPrompts.map { try ExactMatchSet(path: $0, builder: builder) }
        var rng = RNG(seed: settings.seed)
        if kind == .reward && model.scoreHead == nil { model.addScoreHead(rng: &rng) }
        var before: Double?
        if let evalSet, kind == .sft || kind == .dpo || kind == .pretrain {
            let samples = evalSet.samples(lm, maxNewTokens: settings.evalMaxNewTokens)
            try onSamples?(0, samples)
            before = ExactMatchSet.accuracy(samples)
            sink?.record(step: 0, name: "eval/exact_match", value: before!)
            note("exact match before: \(percent(before!)) of \(evalSet.count) held-out prompts")
        }
        if let lora = settings.lora {
            let n = try model.addLoRA(lora, rng: &rng)
            note("LoRA r=\(lora.r) on \(n) layers: \(model.arena.trainableCount / 1000)k trainable parameters")
        }
        let unit = kind == .reward || kind == .dpo ? "pairs" : "tokens"
        let progress: (TrainingProgress) -> Bool = { onEvent(.step($0, unit: unit)) }
        var summary: StageSummary
        switch kind {
        case .pretrain, .sft:
            // Pretraining text is packed into full rows, so documents are not cut to max_length first.
            let documents = kind == .pretrain
                ? try ExampleBuilder(tokenizer: lm.tokenizer, template: lm.chatTemplate, eosTokenID: eos, maxLength: nil)
                : builder
            var (train, stats) = try documents.examples(sets.train.records)
            var (validation, _) = try documents.examples(sets.validation.records)
            if kind == .pretrain {
                train = try pack(train, length: builder.maxLength!)
                validation = try pack(validation, length: builder.maxLength!)
                // A text too few documents to split (one long .txt) is split after packing: the last rows.
                if validation.isEmpty && settings.validationData == nil && settings.validationSplit > 0 && train.count > 1 {
                    let held = min(train.count - 1, max(1, Int((Double(train.count) * settings.validationSplit).rounded())))
                    validation = Array(train.suffix(held))
                    train.removeLast(held)
                }
            }
            note("\(train.count) training and \(validation.count) validation sequences (\(stats.truncated) truncated, \(stats.dropped) dropped)")
            summary = try Stages.sft(model: model, train: train, validation: validation, collator: collator, batchSize: settings.batchSize,
                                     config: settings.trainerConfig(examples: train.count), sink: sink,
                                     checkpointDirectory: checkpointDirectory, resume: settings.resume, progress: progress,
                                     onCheckpoint: onCheckpoint)
        case .reward, .dpo:
            let (train, stats) = try builder.pairs(sets.train.records)
            let (validation, _) = try builder.pairs(sets.validation.records)
            note("\(train.count) training and \(validation.count) validation pairs (\(stats.truncated) truncated, \(stats.dropped) dropped)")
            if kind == .reward {
                summary = try Stages.reward(model: model, train: train, validation: validation, collator: collator,
                                            batchSize: settings.batchSize, config: settings.trainerConfig(examples: train.count),
                                            centering: Float(settings.centerRewardsCoefficient), sink: sink,
                                            checkpointDirectory: checkpointDirectory, resume: settings.resume, progress: progress,
                                            onCheckpoint: onCheckpoint)
            } else {
                let reference = try Self.startingLanguageModel(startingModel, seed: settings.seed).model
                summary = try Stages.dpo(policy: model, reference: reference, train: train, validation: validation,
                                         collator: collator, batchSize: settings.batchSize,
                                         config: settings.trainerConfig(examples: train.count), beta: Float(settings.beta),
                                         lossType: settings.lossType, labelSmoothing: Float(settings.labelSmoothing),
                                         rpoAlpha: Float(settings.rpoAlpha), sink: sink, checkpointDirectory: checkpointDirectory, resume: settings.resume,
                                         progress: progress, onCheckpoint: onCheckpoint)
            }
        }
        if summary.interrupted { return StageOutcome(summary: summary, modelDirectory: nil, exactMatch: nil) }
        if settings.lora != nil {
            try model.saveLoRA(to: outputDirectory.appendingPathComponent("adapter"))
            model.mergeLoRA()
        }
        var exactMatch: (Double, Double)?
        if let evalSet, let before {
            let samples = evalSet.samples(lm, maxNewTokens: settings.evalMaxNewTokens)
            try onSamples?(summary.steps, samples)
            let after = ExactMatchSet.accuracy(samples)
            sink?.record(step: summary.steps, name: "eval/exact_match", value: after)
            summary.validation["exact_match"] = after
            exactMatch = (before, after)
        }
        let final = modelDirectory
        try LanguageModel(model: model, tokenizer: lm.tokenizer, chatTemplate: lm.chatTemplate, source: final.path).save(to: final)
        if kind == .reward, let mean = summary.validation["reward_mean"], let std = summary.validation["reward_std"] {
            // Later stages (PPO) normalize scores with the reward model's own statistics.
            let stats = try JSONSerialization.data(withJSONObject: ["mean": mean, "std": std, "split": "validation"],
                                                   options: [.prettyPrinted, .sortedKeys])
            try stats.write(to: final.appendingPathComponent("reward_stats.json"), options: .atomic)
        }
        try sink?.flush()
        return StageOutcome(summary: summary, modelDirectory: final, exactMatch: exactMatch)
    }
}

/// An error of the runner with a message for the user.
public struct RunnerError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

func percent(_ x: Double) -> String { String(format: "%.1f%%", x * 100) }
