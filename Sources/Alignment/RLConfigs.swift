import Foundation

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

    enum CodingKeys: String, CodingKey, CaseIterable {
        case responseLength = "response_length", temperature, missingEOSPenalty = "missing_eos_penalty"
        case numMiniBatches = "num_mini_batches"
    }
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        responseLength = try c.decodeIfPresent(Int.self, forKey: .responseLength) ?? 53
        temperature = try c.decodeIfPresent(Double.self, forKey: .temperature) ?? 0.7
        missingEOSPenalty = try c.decodeIfPresent(Double.self, forKey: .missingEOSPenalty)
        numMiniBatches = try c.decodeIfPresent(Int.self, forKey: .numMiniBatches) ?? 1
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

    enum Keys: String, CodingKey, CaseIterable {
        case numPPOEpochs = "num_ppo_epochs", cliprange, cliprangeValue = "cliprange_value", vfCoef = "vf_coef"
        case klCoef = "kl_coef", klEstimator = "kl_estimator", gamma, lam, whitenRewards = "whiten_rewards"
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
    }
    public func encode(to encoder: Encoder) throws {
        try args.encode(to: encoder)
        try rollout.encode(to: encoder)
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(numPPOEpochs, forKey: .numPPOEpochs); try c.encode(cliprange, forKey: .cliprange)
        try c.encode(cliprangeValue, forKey: .cliprangeValue); try c.encode(vfCoef, forKey: .vfCoef)
        try c.encode(klCoef, forKey: .klCoef); try c.encode(klEstimator, forKey: .klEstimator)
        try c.encode(gamma, forKey: .gamma); try c.encode(lam, forKey: .lam); try c.encode(whitenRewards, forKey: .whitenRewards)
    }
}

/// The critic-free methods on the same rollouts (TRL 1.16's `RLOOConfig` and `GRPOConfig`): they
/// differ only in their advantages and where the KL goes.
public struct CriticFreeConfig: TrainingStageConfig {
    public var args = TrainingArguments()
    public var rollout = RolloutArguments()
    /// Samples per prompt (TRL's `num_generations`; RLOO's older `rloo_k`).
    public var numGenerations: Int = 2
    /// KL coefficient.
    public var beta: Double = 0.05
    /// `group`, `batch` or `none` (GRPO), or true/false as TRL 1.16 also accepts.
    public var scaleRewards: String = "group"
    /// `grpo`, `bnpo`, `dr_grpo`, `dapo` ...
    public var lossType: String = "grpo"
    public var epsilon: Double = 0.2
    public var numIterations: Int = 1

    enum Keys: String, CodingKey, CaseIterable {
        case numGenerations = "num_generations", rlooK = "rloo_k", beta, scaleRewards = "scale_rewards"
        case lossType = "loss_type", epsilon, numIterations = "num_iterations"
    }
    public static var ownKeys: [String] { Keys.allCases.map(\.rawValue) + RolloutArguments.keys }
    public init() {}
    public init(from decoder: Decoder) throws {
        args = try TrainingArguments(from: decoder)
        rollout = try RolloutArguments(from: decoder)
        let c = try decoder.container(keyedBy: Keys.self)
        numGenerations = try c.decodeIfPresent(Int.self, forKey: .numGenerations) ?? c.decodeIfPresent(Int.self, forKey: .rlooK) ?? 2
        beta = try c.decodeIfPresent(Double.self, forKey: .beta) ?? 0.05
        scaleRewards = try c.decodeIfPresent(String.self, forKey: .scaleRewards) ?? "group"
        lossType = try c.decodeIfPresent(String.self, forKey: .lossType) ?? "grpo"
        epsilon = try c.decodeIfPresent(Double.self, forKey: .epsilon) ?? 0.2
        numIterations = try c.decodeIfPresent(Int.self, forKey: .numIterations) ?? 1
    }
    public func encode(to encoder: Encoder) throws {
        try args.encode(to: encoder)
        try rollout.encode(to: encoder)
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(numGenerations, forKey: .numGenerations); try c.encode(beta, forKey: .beta)
        try c.encode(scaleRewards, forKey: .scaleRewards); try c.encode(lossType, forKey: .lossType)
        try c.encode(epsilon, forKey: .epsilon); try c.encode(numIterations, forKey: .numIterations)
    }
}
