import Datasets
import Foundation
import NN
import Optimizers
import Training

/// The kinds of supervised stage `rein train` runs.
public enum StageKind: String, Codable, CaseIterable, Sendable {
    case pretrain, sft, reward, dpo
}

/// One stage's settings, with TRL's key names. YAML configs and command-line flags decode into it.
public struct StageConfig: Codable, Equatable, Sendable {
    public var model: String?
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
    public var beta: Double = 0.1
    public var lossType: DPOLossType = .sigmoid
    public var labelSmoothing: Double = 0
    /// DPO: weight of the chosen completions' NLL added to the loss (TRL's `rpo_alpha`; 0: plain DPO).
    public var rpoAlpha: Double = 0
    public var centerRewardsCoefficient: Double = 0
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
        case model, data, validationData = "validation_data", validationSplit = "validation_split", outputDir = "output_dir"
        case maxLength = "max_length", batchSize = "batch_size", numTrainEpochs = "num_train_epochs", maxSteps = "max_steps"
        case gradientAccumulationSteps = "gradient_accumulation_steps", learningRate = "learning_rate"
        case lrSchedulerType = "lr_scheduler_type", warmupSteps = "warmup_steps", minLR = "min_lr", maxGradNorm = "max_grad_norm"
        case weightDecay = "weight_decay", adamBeta1 = "adam_beta1", adamBeta2 = "adam_beta2", loggingSteps = "logging_steps"
        case evalSteps = "eval_steps", saveSteps = "save_steps", earlyStoppingPatience = "early_stopping_patience", seed
        case beta, lossType = "loss_type", labelSmoothing = "label_smoothing", rpoAlpha = "rpo_alpha"
        case centerRewardsCoefficient = "center_rewards_coefficient", lora, onBadRecord = "on_bad_record", overflow, resume
        case evalOnStart = "eval_on_start", evalPrompts = "eval_prompts", evalMaxNewTokens = "eval_max_new_tokens"
    }

    /// The defaults above.
    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var d = StageConfig()
        func read<T: Decodable>(_ key: CodingKeys, _ into: inout T) throws { if let v = try c.decodeIfPresent(T.self, forKey: key) { into = v } }
        func readOptional<T: Decodable>(_ key: CodingKeys, _ into: inout T?) throws { if let v = try c.decodeIfPresent(T.self, forKey: key) { into = v } }
        try readOptional(.model, &d.model); try readOptional(.data, &d.data); try readOptional(.validationData, &d.validationData)
        try read(.validationSplit, &d.validationSplit); try readOptional(.outputDir, &d.outputDir); try read(.maxLength, &d.maxLength)
        try read(.batchSize, &d.batchSize); try readOptional(.numTrainEpochs, &d.numTrainEpochs); try readOptional(.maxSteps, &d.maxSteps)
        try read(.gradientAccumulationSteps, &d.gradientAccumulationSteps); try read(.learningRate, &d.learningRate)
        try read(.lrSchedulerType, &d.lrSchedulerType); try read(.warmupSteps, &d.warmupSteps); try read(.minLR, &d.minLR)
        try read(.maxGradNorm, &d.maxGradNorm); try read(.weightDecay, &d.weightDecay); try read(.adamBeta1, &d.adamBeta1)
        try read(.adamBeta2, &d.adamBeta2); try read(.loggingSteps, &d.loggingSteps); try read(.evalSteps, &d.evalSteps)
        try read(.saveSteps, &d.saveSteps); try read(.earlyStoppingPatience, &d.earlyStoppingPatience); try read(.seed, &d.seed)
        try read(.beta, &d.beta); try read(.lossType, &d.lossType); try read(.labelSmoothing, &d.labelSmoothing)
        try read(.rpoAlpha, &d.rpoAlpha)
        try read(.centerRewardsCoefficient, &d.centerRewardsCoefficient); try readOptional(.lora, &d.lora)
        try read(.onBadRecord, &d.onBadRecord); try read(.overflow, &d.overflow); try read(.resume, &d.resume)
        try read(.evalOnStart, &d.evalOnStart); try readOptional(.evalPrompts, &d.evalPrompts)
        try read(.evalMaxNewTokens, &d.evalMaxNewTokens)
        self = d
    }

    /// Every key a config may have.
    public static var keys: [String] { CodingKeys.allCases.map(\.rawValue) }

    /// The keys of `dictionary` this config does not know, each with the nearest valid key.
    public static func unknownKeys(in dictionary: [String: Any]) -> [(key: String, suggestion: String?)] {
        dictionary.keys.sorted().filter { !keys.contains($0) && $0 != "kind" }.map { key in
            let best = keys.min { editDistance(key, $0) < editDistance(key, $1) }
            return (key, best.flatMap { editDistance(key, $0) <= max(2, key.count / 3) ? $0 : nil })
        }
    }

    /// Problems with the values, each naming its key.
    public func problems(for kind: StageKind) -> [String] {
        var out: [String] = []
        if model == nil { out.append("model: required (a Hugging Face directory or a .gguf file)") }
        if data == nil { out.append("data: required (a .jsonl or .txt file)") }
        if maxLength < 2 { out.append("max_length: must be at least 2, got \(maxLength)") }
        if batchSize < 1 { out.append("batch_size: must be at least 1, got \(batchSize)") }
        if gradientAccumulationSteps < 1 { out.append("gradient_accumulation_steps: must be at least 1") }
        if !(learningRate > 0) { out.append("learning_rate: must be positive, got \(learningRate)") }
        if !(0..<1).contains(validationSplit) { out.append("validation_split: must be in [0, 1), got \(validationSplit)") }
        if let steps = maxSteps, steps < 0 { out.append("max_steps: must not be negative") }
        if let epochs = numTrainEpochs, !(epochs > 0) { out.append("num_train_epochs: must be positive") }
        if kind == .dpo && !(beta > 0) { out.append("beta: must be positive for DPO, got \(beta)") }
        if evalMaxNewTokens < 1 { out.append("eval_max_new_tokens: must be at least 1, got \(evalMaxNewTokens)") }
        if saveSteps < 0 { out.append("save_steps: must not be negative") }
        if rpoAlpha < 0 { out.append("rpo_alpha: must not be negative, got \(rpoAlpha)") }
        if !(0..<0.5).contains(labelSmoothing) { out.append("label_smoothing: must be in [0, 0.5), got \(labelSmoothing)") }
        return out
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

/// Levenshtein distance between two keys (for "did you mean").
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.utf8), b = Array(b.utf8)
    var previous = Array(0...b.count)
    for i in 1...max(a.count, 1) where !a.isEmpty {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...max(b.count, 1) where !b.isEmpty {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return a.isEmpty ? b.count : previous[b.count]
}
