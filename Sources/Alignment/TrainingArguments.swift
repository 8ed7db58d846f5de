import Datasets
import Foundation
import NN
import Optimizers
import Training

/// The settings every training stage shares, with the names of Hugging Face's `TrainingArguments`
/// (TRL's configs add their own keys on top: ``SFTConfig``, ``RewardConfig``, ``DPOConfig``,
/// ``PPOConfig``, ``RLOOConfig``, ``GRPOConfig``). Models are not here: a stage names them by role
/// (`model`, `ref_model`, ...), and the recipe checker resolves them.
public struct TrainingArguments: Codable, Equatable, Sendable {
    public var data: String?
    public var validationData: String?
    public var validationSplit: Double = 0.1
    public var outputDir: String?
    public var maxLength: Int = 256
    public var batchSize: Int = 8
    public var numTrainEpochs: Double?
    public var maxSteps: Int?
    public var gradientAccumulationSteps: Int = 1
    public var learningRate: Double = 2e-5
    public var lrSchedulerType: LRSchedule.Decay = .linear
    public var warmupSteps: Int = 0
    public var minLR: Double = 0
    public var maxGradNorm: Double = 1
    public var weightDecay: Double = 0
    public var adamBeta1: Double = 0.9
    public var adamBeta2: Double = 0.999
    public var loggingSteps: Int = 10
    public var evalSteps: Int = 0
    public var saveSteps: Int = 0
    public var earlyStoppingPatience: Int = 0
    public var seed: UInt64 = 42
    public var lora: LoRAConfig?
    public var onBadRecord: BadRecordPolicy = .fail
    public var overflow: OverflowPolicy = .truncate
    public var resume: Bool = true
    /// Evaluate before the first step too (logged at step 0), so the stage's improvement shows.
    public var evalOnStart: Bool = false
    /// Held-out prompts with answers (JSONL: `prompt` as text or messages, and `answer`): the
    /// policy's greedy exact-match accuracy is measured before and after the stage.
    public var evalPrompts: String?
    /// The most tokens generated per prompt for `eval_prompts`.
    public var evalMaxNewTokens: Int = 16

    enum CodingKeys: String, CodingKey, CaseIterable {
        case data, validationData = "validation_data", validationSplit = "validation_split", outputDir = "output_dir"
        case maxLength = "max_length", batchSize = "batch_size", numTrainEpochs = "num_train_epochs", maxSteps = "max_steps"
        case gradientAccumulationSteps = "gradient_accumulation_steps", learningRate = "learning_rate"
        case lrSchedulerType = "lr_scheduler_type", warmupSteps = "warmup_steps", minLR = "min_lr", maxGradNorm = "max_grad_norm"
        case weightDecay = "weight_decay", adamBeta1 = "adam_beta1", adamBeta2 = "adam_beta2", loggingSteps = "logging_steps"
        case evalSteps = "eval_steps", saveSteps = "save_steps", earlyStoppingPatience = "early_stopping_patience", seed
        case lora, onBadRecord = "on_bad_record", overflow, resume
        case evalOnStart = "eval_on_start", evalPrompts = "eval_prompts", evalMaxNewTokens = "eval_max_new_tokens"
    }

    /// Every key, as written in a config.
    public static var keys: [String] { CodingKeys.allCases.map(\.rawValue) }

    /// The defaults above.
    public init() {}

    /// Decodes, keeping the defaults for absent keys; keys of other configs are ignored here (the
    /// recipe checker rejects keys a stage kind does not declare).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var d = TrainingArguments()
        func read<T: Decodable>(_ key: CodingKeys, _ into: inout T) throws { if let v = try c.decodeIfPresent(T.self, forKey: key) { into = v } }
        func readOptional<T: Decodable>(_ key: CodingKeys, _ into: inout T?) throws { if let v = try c.decodeIfPresent(T.self, forKey: key) { into = v } }
        try readOptional(.data, &d.data); try readOptional(.validationData, &d.validationData)
        try read(.validationSplit, &d.validationSplit); try readOptional(.outputDir, &d.outputDir); try read(.maxLength, &d.maxLength)
        try read(.batchSize, &d.batchSize); try readOptional(.numTrainEpochs, &d.numTrainEpochs); try readOptional(.maxSteps, &d.maxSteps)
        try read(.gradientAccumulationSteps, &d.gradientAccumulationSteps); try read(.learningRate, &d.learningRate)
        try read(.lrSchedulerType, &d.lrSchedulerType); try read(.warmupSteps, &d.warmupSteps); try read(.minLR, &d.minLR)
        try read(.maxGradNorm, &d.maxGradNorm); try read(.weightDecay, &d.weightDecay); try read(.adamBeta1, &d.adamBeta1)
        try read(.adamBeta2, &d.adamBeta2); try read(.loggingSteps, &d.loggingSteps); try read(.evalSteps, &d.evalSteps)
        try read(.saveSteps, &d.saveSteps); try read(.earlyStoppingPatience, &d.earlyStoppingPatience); try read(.seed, &d.seed)
        try readOptional(.lora, &d.lora)
        try read(.onBadRecord, &d.onBadRecord); try read(.overflow, &d.overflow); try read(.resume, &d.resume)
        try read(.evalOnStart, &d.evalOnStart); try readOptional(.evalPrompts, &d.evalPrompts)
        try read(.evalMaxNewTokens, &d.evalMaxNewTokens)
        self = d
    }

    /// Problems no single key's range shows, each "key: message".
    public func problems() -> [String] {
        data == nil ? ["data: required (a .jsonl or .txt file)"] : []
    }

    /// The trainer settings, with `max_steps` from the epochs when only those are given.
    public func trainerConfig(examples: Int) -> TrainerConfig {
        var t = TrainerConfig()
        t.learningRate = learningRate
        t.lrSchedulerType = lrSchedulerType
        t.warmupSteps = warmupSteps
        t.minLearningRate = minLR
        let perEpoch = max(1, Int((Double(examples) / Double(batchSize * gradientAccumulationSteps)).rounded(.up)))
        t.maxSteps = maxSteps ?? max(1, Int((Double(perEpoch) * (numTrainEpochs ?? 1)).rounded(.up)))
        t.gradientAccumulationSteps = gradientAccumulationSteps
        t.maxGradNorm = maxGradNorm
        t.weightDecay = weightDecay
        t.adamBeta1 = adamBeta1
        t.adamBeta2 = adamBeta2
        t.loggingSteps = loggingSteps
        t.evalSteps = evalSteps
        t.saveSteps = saveSteps
        t.earlyStoppingPatience = earlyStoppingPatience
        t.seed = seed
        t.evalOnStart = evalOnStart
        return t
    }
}

/// A stage config: the shared ``TrainingArguments`` plus the kind's own keys. Shared settings read
/// through the config (`config.learningRate`) as TRL's configs inherit them.
@dynamicMemberLookup
public protocol TrainingStageConfig: Codable, Equatable, Sendable {
    var args: TrainingArguments { get set }
    /// The kind's own keys (not those of ``TrainingArguments``).
    static var ownKeys: [String] { get }
    init()
}

extension TrainingStageConfig {
    /// Every key the config reads.
    public static var keys: [String] { TrainingArguments.keys + ownKeys }

    /// A shared setting, read and written through the config.
    public subscript<T>(dynamicMember key: WritableKeyPath<TrainingArguments, T>) -> T {
        get { args[keyPath: key] }
        set { args[keyPath: key] = newValue }
    }
}

/// SFT (and pretraining, which is SFT with every token labelled and rows packed). TRL's `SFTConfig`
/// keys Rein supports live in ``TrainingArguments`` (`max_length`, ...).
public struct SFTConfig: TrainingStageConfig {
    public var args = TrainingArguments()
    public static let ownKeys: [String] = []
    public init() {}
    public init(from decoder: Decoder) throws { args = try TrainingArguments(from: decoder) }
    public func encode(to encoder: Encoder) throws { try args.encode(to: encoder) }
}

/// A reward model on preference pairs (TRL's `RewardConfig`).
public struct RewardConfig: TrainingStageConfig {
    public var args = TrainingArguments()
    /// Weight of the mean squared reward added to the loss (centers rewards near zero).
    public var centerRewardsCoefficient: Double = 0

    enum Keys: String, CodingKey, CaseIterable { case centerRewardsCoefficient = "center_rewards_coefficient" }
    public static var ownKeys: [String] { Keys.allCases.map(\.rawValue) }
    public init() {}
    public init(from decoder: Decoder) throws {
        args = try TrainingArguments(from: decoder)
        let c = try decoder.container(keyedBy: Keys.self)
        centerRewardsCoefficient = try c.decodeIfPresent(Double.self, forKey: .centerRewardsCoefficient) ?? 0
    }
    public func encode(to encoder: Encoder) throws {
        try args.encode(to: encoder)
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(centerRewardsCoefficient, forKey: .centerRewardsCoefficient)
    }
}

/// Direct preference optimization against a frozen reference (TRL's `DPOConfig`).
public struct DPOConfig: TrainingStageConfig {
    public var args = TrainingArguments()
    public var beta: Double = 0.1
    public var lossType: DPOLossType = .sigmoid
    public var labelSmoothing: Double = 0
    /// Weight of the chosen completions' NLL added to the loss (TRL's `rpo_alpha`; 0: plain DPO).
    public var rpoAlpha: Double = 0

    enum Keys: String, CodingKey, CaseIterable {
        case beta, lossType = "loss_type", labelSmoothing = "label_smoothing", rpoAlpha = "rpo_alpha"
    }
    public static var ownKeys: [String] { Keys.allCases.map(\.rawValue) }
    public init() {}
    public init(from decoder: Decoder) throws {
        args = try TrainingArguments(from: decoder)
        let c = try decoder.container(keyedBy: Keys.self)
        beta = try c.decodeIfPresent(Double.self, forKey: .beta) ?? 0.1
        lossType = try c.decodeIfPresent(DPOLossType.self, forKey: .lossType) ?? .sigmoid
        labelSmoothing = try c.decodeIfPresent(Double.self, forKey: .labelSmoothing) ?? 0
        rpoAlpha = try c.decodeIfPresent(Double.self, forKey: .rpoAlpha) ?? 0
    }
    public func encode(to encoder: Encoder) throws {
        try args.encode(to: encoder)
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(beta, forKey: .beta)
        try c.encode(lossType, forKey: .lossType)
        try c.encode(labelSmoothing, forKey: .labelSmoothing)
        try c.encode(rpoAlpha, forKey: .rpoAlpha)
    }
}
