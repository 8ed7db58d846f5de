import Alignment
import Checkpoints
import Datasets
import Foundation
import NN
import TensorCore
import Training
import Yams

/// What the executor hands a training kind: the model loaded, the data read, and where metrics,
/// checkpoints and progress go.
public struct TrainingContext {
    /// The stage's settings as decoded (the kind's own config).
    public let settings: StageSettings
    /// The shared training arguments (paths resolved).
    public let args: TrainingArguments
    /// The model being trained, with its tokenizer and template.
    public let lm: LanguageModel
    public let builder: ExampleBuilder
    public let collator: Collator
    public let train: [DatasetRecord]
    public let validation: [DatasetRecord]
    /// The stage's other models by role (`ref_model`, ...), resolved to files.
    public let models: [String: StartingModel]
    /// Where the stage's starting model came from (a reference defaults to a copy of it).
    public let start: StartingModel
    public let sink: MetricsSink?
    /// Where online RL stages send their rollouts (the run store), if anywhere.
    public var rolloutSink: RolloutSink?
    public let checkpointDirectory: URL
    public let progress: (TrainingProgress) -> Bool
    public let onCheckpoint: ((String, Int, URL) throws -> Void)?
    public let note: (String) -> Void

    public var model: DecoderModel { lm.model }
    /// The trainer settings for `examples` training items.
    public func trainerConfig(examples: Int) -> TrainerConfig { args.trainerConfig(examples: examples) }

    /// A model named by role, loaded fresh (a frozen copy when it is the starting model).
    public func load(role: String) throws -> LanguageModel {
        try StageExecutor.startingLanguageModel(models[role] ?? start, seed: args.seed)
    }
}

/// The supervised kinds: pretraining and SFT on token losses, reward models and DPO on pairs.
extension StageKinds {
    static func decodeSFT(_ node: Node) throws -> StageSettings { .sft(try YAMLDecoder().decode(SFTConfig.self, from: node)) }

    /// Language modelling on packed text from a fresh or loaded model.
    static let pretrain = StageKindDefinition(
        kind: .pretrain, implemented: true, keys: trainingKeys + policyEvalKeys,
        roles: [policyRole("the model to pretrain (or a fresh one: {init: {...}, tokenizer: REF})", allowsInit: true)],
        producesModel: true, unit: "tokens", measuresExactMatch: true,
        decode: decodeSFT, validate: { _ in [] },
        train: { c in try languageModeling(c, packed: true) },
        summary: [SummaryMetric("eval/loss", "validation loss"), SummaryMetric("eval/perplexity", "perplexity")])

    /// Supervised fine-tuning: loss on completion (assistant) tokens only.
    static let sft = StageKindDefinition(
        kind: .sft, implemented: true, keys: trainingKeys + policyEvalKeys,
        roles: [policyRole("the policy to fine-tune", allowsInit: true)],
        producesModel: true, unit: "tokens", measuresExactMatch: true,
        decode: decodeSFT, validate: { _ in [] },
        train: { c in try languageModeling(c, packed: false) },
        summary: [SummaryMetric("eval/loss", "validation loss"), SummaryMetric("eval/exact_match", "exact match", percent: true)])

    /// A Bradley-Terry reward model on preference pairs; writes `reward_stats.json` (mean, std).
    static let reward = StageKindDefinition(
        kind: .reward, implemented: true,
        keys: trainingKeys + [KeySpec("center_rewards_coefficient", .number(.atLeast(0)))],
        roles: [ModelRole(key: "model", purpose: "the model the reward model starts from", required: true,
                          accepts: [.pretrain, .sft, .dpo, .reward])],
        producesModel: true, unit: "pairs", measuresExactMatch: false,
        decode: { .reward(try YAMLDecoder().decode(RewardConfig.self, from: $0)) }, validate: { _ in [] },
        prepare: { model, _, rng in if model.scoreHead == nil { model.addScoreHead(rng: &rng) } },
        train: { c in
            guard case .reward(let config) = c.settings else { throw RunnerError("reward: wrong settings") }
            let (train, validation) = try pairs(c)
            return try Stages.reward(model: c.model, train: train, validation: validation, collator: c.collator,
                                     batchSize: c.args.batchSize, config: c.trainerConfig(examples: train.count),
                                     centering: Float(config.centerRewardsCoefficient), sink: c.sink,
                                     checkpointDirectory: c.checkpointDirectory, resume: c.args.resume, progress: c.progress,
                                     onCheckpoint: c.onCheckpoint)
        },
        exported: { summary, directory in
            guard let mean = summary.validation["reward_mean"], let std = summary.validation["reward_std"] else { return }
            // Later stages (PPO, judges) normalize scores with the reward model's own statistics.
            let stats = try JSONSerialization.data(withJSONObject: ["mean": mean, "std": std, "split": "validation"],
                                                   options: [.prettyPrinted, .sortedKeys])
            try AtomicFile.write(stats, to: directory.appendingPathComponent("reward_stats.json"))
        },
        summary: [SummaryMetric("eval/accuracy", "validation accuracy", percent: true), SummaryMetric("eval/margin", "margin")])

    /// DPO (sigmoid, IPO, cDPO; RPO with `rpo_alpha`) against a frozen reference: `ref_model`, or a
    /// copy of `model` as it starts.
    static let dpo = StageKindDefinition(
        kind: .dpo, implemented: true,
        keys: trainingKeys + policyEvalKeys + [
            KeySpec("beta", .number(.above(0))),
            KeySpec("loss_type", .choice(["sigmoid", "ipo", "cdpo"])),
            KeySpec("label_smoothing", .number(.halfOpen(0, 0.5))),
            KeySpec("rpo_alpha", .number(.atLeast(0))),
        ],
        roles: [policyRole("the policy to tune"), referenceRole],
        producesModel: true, unit: "pairs", measuresExactMatch: true,
        decode: { .dpo(try YAMLDecoder().decode(DPOConfig.self, from: $0)) }, validate: { _ in [] },
        train: { c in
            guard case .dpo(let config) = c.settings else { throw RunnerError("dpo: wrong settings") }
            let (train, validation) = try pairs(c)
            let reference = try c.load(role: "ref_model").model
            return try Stages.dpo(policy: c.model, reference: reference, train: train, validation: validation,
                                  collator: c.collator, batchSize: c.args.batchSize,
                                  config: c.trainerConfig(examples: train.count), beta: Float(config.beta),
                                  lossType: config.lossType, labelSmoothing: Float(config.labelSmoothing),
                                  rpoAlpha: Float(config.rpoAlpha), sink: c.sink, checkpointDirectory: c.checkpointDirectory,
                                  resume: c.args.resume, progress: c.progress, onCheckpoint: c.onCheckpoint)
        },
        // Before the first step the policy is the reference: every implicit reward is 0.
        summary: [SummaryMetric("eval/rewards/accuracies", "preference accuracy", percent: true, showBefore: false),
                  SummaryMetric("eval/rewards/margins", "reward margin"),
                  SummaryMetric("eval/exact_match", "exact match", percent: true)])

    /// Tokenized preference pairs of both splits.
    static func pairs(_ c: TrainingContext) throws -> (train: [TokenizedPair], validation: [TokenizedPair]) {
        let (train, stats) = try c.builder.pairs(c.train)
        let (validation, _) = try c.builder.pairs(c.validation)
        c.note("\(train.count) training and \(validation.count) validation pairs (\(stats.truncated) truncated, \(stats.dropped) dropped)")
        return (train, validation)
    }

    /// SFT on examples cut to `max_length`, or pretraining on documents packed into full rows.
    static func languageModeling(_ c: TrainingContext, packed: Bool) throws -> StageSummary {
        let eos = c.lm.eosTokenId ?? 0
        // Pretraining text is packed into full rows, so documents are not cut to max_length first.
        let documents = packed
            ? try ExampleBuilder(tokenizer: c.lm.tokenizer, template: c.lm.chatTemplate, eosTokenID: eos, maxLength: nil)
            : c.builder
        var (train, stats) = try documents.examples(c.train)
        var (validation, _) = try documents.examples(c.validation)
        if packed {
            let length = c.builder.maxLength!
            train = try pack(train, length: length)
            validation = try pack(validation, length: length)
            // A text too few documents to split (one long .txt) is split after packing: the last rows.
            if validation.isEmpty && c.args.validationData == nil && c.args.validationSplit > 0 && train.count > 1 {
                let held = min(train.count - 1, max(1, Int((Double(train.count) * c.args.validationSplit).rounded())))
                validation = Array(train.suffix(held))
                train.removeLast(held)
            }
        }
        c.note("\(train.count) training and \(validation.count) validation sequences (\(stats.truncated) truncated, \(stats.dropped) dropped)")
        return try Stages.sft(model: c.model, train: train, validation: validation, collator: c.collator, batchSize: c.args.batchSize,
                              config: c.trainerConfig(examples: train.count), sink: c.sink,
                              checkpointDirectory: c.checkpointDirectory, resume: c.args.resume, progress: c.progress,
                              onCheckpoint: c.onCheckpoint)
    }
}
