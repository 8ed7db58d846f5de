import Foundation
import TensorCore

/// The settings of online RL on sampled responses, shared by PPO and the critic-free methods, with
/// TRL's names and defaults. The trainers arrive with the PPO issue; the recipe checker already
/// knows their keys, so a key of one kind written on another is named as such.
public struct RolloutArguments: Codable, Equatable, Sendable {
    /// New tokens sampled per response (TRL's `response_length` / `max_completion_length`).
    public var responseLength: Int = 53
    /// Sampling temperature; training log-probs divide the logits by the same value.
    public var temperature: Double = 0.7
    /// Subtracted from the score of a response that has no EOS (nil: no penalty).
    public var missingEOSPenalty: Double?
    /// Minibatches per PPO epoch.
    public var numMiniBatches: Int = 1
    /// Sampling filters (none unless set).
    public var topK: Int?
    public var topP: Double?
    /// Episodes (responses) to train on; default: `num_train_epochs` passes over the prompts.
    public var totalEpisodes: Int?
    /// What scores a response when it is not the reward model: `synthetic_task`, `length`,
    /// `regex:PATTERN`, `vader`, or `command:PROGRAM ARGS...` (JSONL on stdin, a score per line out).
    public var judge: String?
    /// Normalize reward-model scores with its stored mean and std (`reward_stats.json`).
    public var normalizeReward: Bool = false
    /// Clip scores to [-c, c] (after normalizing).
    public var rewardClip: Double?
    /// A gold judge (the `judge` specs) also scoring the held-out responses: `eval/judge_score`.
    public var evalJudge: String?
    /// Every N updates the policy is also exported as a model (`steps/N`, LoRA merged), which
    /// `rein compare` takes as `stage:ID@N` and draws on the reward-vs-KL frontier (0: never).
    public var exportSteps: Int = 0
    /// Weights of the copy of the policy that samples the rollouts (refreshed from the fp32 policy
    /// before each rollout), of a separate frozen `ref_model`, and of the reward model when it
    /// scores; nil is fp32 (see docs/precision.md).
    public var rolloutPrecision: WeightPrecision?
    public var refPrecision: WeightPrecision?
    public var rewardPrecision: WeightPrecision?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case responseLength = "response_length", temperature, missingEOSPenalty = "missing_eos_penalty"
        case numMiniBatches = "num_mini_batches", topK = "top_k", topP = "top_p", totalEpisodes = "total_episodes"
        case judge, normalizeReward = "normalize_reward", rewardClip = "reward_clip", evalJudge = "eval_judge"
        case exportSteps = "export_steps"
        case rolloutPrecision = "rollout_precision", refPrecision = "ref_precision", rewardPrecision = "reward_precision"
    }
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        responseLength = try c.decodeIfPresent(Int.self, forKey: .responseLength) ?? 53
        temperature = try c.decodeIfPresent(Double.self, forKey: .temperature) ?? 0.7
        missingEOSPenalty = try c.decodeIfPresent(Double.self, forKey: .missingEOSPenalty)
        numMiniBatches = try c.decodeIfPresent(Int.self, forKey: .numMiniBatches) ?? 1
        topK = try c.decodeIfPresent(Int.self, forKey: .topK)
        topP = try c.decodeIfPresent(Double.self, forKey: .topP)
        totalEpisodes = try c.decodeIfPresent(Int.self, forKey: .totalEpisodes)
        judge = try c.decodeIfPresent(String.self, forKey: .judge)
        normalizeReward = try c.decodeIfPresent(Bool.self, forKey: .normalizeReward) ?? false
        rewardClip = try c.decodeIfPresent(Double.self, forKey: .rewardClip)
        evalJudge = try c.decodeIfPresent(String.self, forKey: .evalJudge)
        exportSteps = try c.decodeIfPresent(Int.self, forKey: .exportSteps) ?? 0
        rolloutPrecision = try c.decodeIfPresent(WeightPrecision.self, forKey: .rolloutPrecision)
        refPrecision = try c.decodeIfPresent(WeightPrecision.self, forKey: .refPrecision)
        rewardPrecision = try c.decodeIfPresent(WeightPrecision.self, forKey: .rewardPrecision)
    }
    public static var keys: [String] { CodingKeys.allCases.map(\.rawValue) }
}

/// PPO with a KL-regularized policy (TRL 1.9's `PPOConfig`).
public struct PPOConfig: TrainingStageConfig {
    public var args = TrainingArguments()
    public var rollout = RolloutArguments()
    public var numPPOEpochs: Int = 4
    public var cliprange: Double = 0.2
    public var cliprangeValue: Double = 0.2
    public var vfCoef: Double = 0.1
    public var klCoef: Double = 0.05
    /// `k1` (log-ratio) or `k3` ((r-1) - log r).
    public var klEstimator: String = "k1"
    public var gamma: Double = 1
    public var lam: Double = 0.95
    public var whitenRewards: Bool = false
    /// The adaptive KL controller (Ziegler et al. 2019; older TRL's `adap_kl_ctrl`, `target`,
    /// `horizon`): the KL per response it steers to, and over how many episodes. Off unless set.
    public var klTarget: Double?
    public var klHorizon: Double = 10000
    /// A value head (`v_head.summary`, with bias) on the policy's own trunk instead of a separate
    /// value model: one network, one optimizer, the value loss's gradient through the shared layers.
    public var sharedValueHead: Bool = false

    enum Keys: String, CodingKey, CaseIterable {
        case numPPOEpochs = "num_ppo_epochs", cliprange, cliprangeValue = "cliprange_value", vfCoef = "vf_coef"
        case klCoef = "kl_coef", klEstimator = "kl_estimator", gamma, lam, whitenRewards = "whiten_rewards"
        case klTarget = "kl_target", klHorizon = "kl_horizon", sharedValueHead = "shared_value_head"
    }
    public static var ownKeys: [String] { Keys.allCases.map(\.rawValue) + RolloutArguments.keys }
    public init() {}
    public init(from decoder: Decoder) throws {
        args = try TrainingArguments(from: decoder)
        rollout = try RolloutArguments(from: decoder)
        let c = try decoder.container(keyedBy: Keys.self)
        numPPOEpochs = try c.decodeIfPresent(Int.self, forKey: .numPPOEpochs) ?? 4
        cliprange = try c.decodeIfPresent(Double.self, forKey: .cliprange) ?? 0.2
        cliprangeValue = try c.decodeIfPresent(Double.self, forKey: .cliprangeValue) ?? 0.2
        vfCoef = try c.decodeIfPresent(Double.self, forKey: .vfCoef) ?? 0.1
        klCoef = try c.decodeIfPresent(Double.self, forKey: .klCoef) ?? 0.05
        klEstimator = try c.decodeIfPresent(String.self, forKey: .klEstimator) ?? "k1"
        gamma = try c.decodeIfPresent(Double.self, forKey: .gamma) ?? 1
        lam = try c.decodeIfPresent(Double.self, forKey: .lam) ?? 0.95
        whitenRewards = try c.decodeIfPresent(Bool.self, forKey: .whitenRewards) ?? false
        klTarget = try c.decodeIfPresent(Double.self, forKey: .klTarget)
        klHorizon = try c.decodeIfPresent(Double.self, forKey: .klHorizon) ?? 10000
        sharedValueHead = try c.decodeIfPresent(Bool.self, forKey: .sharedValueHead) ?? false
    }
    public func encode(to encoder: Encoder) throws {
        try args.encode(to: encoder)
        try rollout.encode(to: encoder)
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(numPPOEpochs, forKey: .numPPOEpochs); try c.encode(cliprange, forKey: .cliprange)
        try c.encode(cliprangeValue, forKey: .cliprangeValue); try c.encode(vfCoef, forKey: .vfCoef)
        try c.encode(klCoef, forKey: .klCoef); try c.encode(klEstimator, forKey: .klEstimator)
        try c.encode(gamma, forKey: .gamma); try c.encode(lam, forKey: .lam); try c.encode(whitenRewards, forKey: .whitenRewards)
        try c.encodeIfPresent(klTarget, forKey: .klTarget); try c.encode(klHorizon, forKey: .klHorizon)
        if sharedValueHead { try c.encode(sharedValueHead, forKey: .sharedValueHead) }   // absent: earlier stages' hashes hold
    }
}

/// The critic-free methods on the same rollouts (TRL 1.16's `RLOOConfig` and `GRPOConfig`): they
/// differ only in their advantages and where the KL goes.
public struct CriticFreeConfig: TrainingStageConfig {
    public var args = TrainingArguments()
    public var rollout = RolloutArguments()
    /// Samples per prompt (TRL's `num_generations`; RLOO's older `rloo_k`).
    public var numGenerations: Int = 2
    /// KL coefficient; nil: the kind's TRL 1.16 default (RLOO 0.05, GRPO 0).
    public var beta: Double?
    /// `group`, `batch` or `none` (GRPO), or true/false as TRL 1.16 also accepts.
    public var scaleRewards: String = "group"
    /// GRPO's aggregation: `grpo`, `bnpo`, `dr_grpo`, `dapo` (TRL 1.16's default).
    public var lossType: String = "dapo"
    public var epsilon: Double = 0.2
    public var numIterations: Int = 1
    /// RLOO: normalize the advantages over the batch (TRL 1.16 default false).
    public var normalizeAdvantages: Bool = false

    enum Keys: String, CodingKey, CaseIterable {
        case numGenerations = "num_generations", rlooK = "rloo_k", beta, scaleRewards = "scale_rewards"
        case lossType = "loss_type", epsilon, numIterations = "num_iterations", normalizeAdvantages = "normalize_advantages"
    }
    public static var ownKeys: [String] { Keys.allCases.map(\.rawValue) + RolloutArguments.keys }
    public init() {}
    public init(from decoder: Decoder) throws {
        args = try TrainingArguments(from: decoder)
        rollout = try RolloutArguments(from: decoder)
        let c = try decoder.container(keyedBy: Keys.self)
        numGenerations = try c.decodeIfPresent(Int.self, forKey: .numGenerations) ?? c.decodeIfPresent(Int.self, forKey: .rlooK) ?? 2
        beta = try c.decodeIfPresent(Double.self, forKey: .beta)
        scaleRewards = try c.decodeIfPresent(String.self, forKey: .scaleRewards) ?? "group"
        lossType = try c.decodeIfPresent(String.self, forKey: .lossType) ?? "dapo"
        normalizeAdvantages = try c.decodeIfPresent(Bool.self, forKey: .normalizeAdvantages) ?? false
        epsilon = try c.decodeIfPresent(Double.self, forKey: .epsilon) ?? 0.2
        numIterations = try c.decodeIfPresent(Int.self, forKey: .numIterations) ?? 1
    }
    public func encode(to encoder: Encoder) throws {
        try args.encode(to: encoder)
        try rollout.encode(to: encoder)
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(numGenerations, forKey: .numGenerations); try c.encodeIfPresent(beta, forKey: .beta)
        try c.encode(normalizeAdvantages, forKey: .normalizeAdvantages)
        try c.encode(scaleRewards, forKey: .scaleRewards); try c.encode(lossType, forKey: .lossType)
        try c.encode(epsilon, forKey: .epsilon); try c.encode(numIterations, forKey: .numIterations)
    }
}
