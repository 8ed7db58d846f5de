import Alignment
import Foundation
import Yams

/// The RL kinds. Their keys, roles and ranges are declared so that recipes can be checked (and a
/// PPO key on a DPO stage is named as one); their trainers arrive with the PPO issue, so a recipe
/// using them is told they are not implemented yet.
extension StageKinds {
    static let rolloutKeys: [KeySpec] = [
        KeySpec("response_length", .integer(.atLeast(1))),
        KeySpec("temperature", .number(.above(0))),
        KeySpec("missing_eos_penalty", .number()),
        KeySpec("num_mini_batches", .integer(.atLeast(1))),
    ]

    /// The reward: a reward stage, or a directory holding a reward model.
    static let rewardRole = ModelRole(key: "reward_model", purpose: "the reward model that scores responses", required: true,
                                      accepts: [.reward], needsScoreHead: true)

    static let ppo = StageKindDefinition(
        kind: .ppo, implemented: false,
        keys: trainingKeys + policyEvalKeys + rolloutKeys + [
            KeySpec("num_ppo_epochs", .integer(.atLeast(1))),
            KeySpec("cliprange", .number(.above(0))),
            KeySpec("cliprange_value", .number(.above(0))),
            KeySpec("vf_coef", .number(.atLeast(0))),
            KeySpec("kl_coef", .number(.atLeast(0))),
            KeySpec("kl_estimator", .choice(["k1", "k3"])),
            KeySpec("gamma", .number(.closed(0, 1))),
            KeySpec("lam", .number(.closed(0, 1))),
            KeySpec("whiten_rewards", .bool),
        ],
        roles: [policyRole("the policy to train"), referenceRole, rewardRole,
                ModelRole(key: "value_model", purpose: "the value model (default: the reward model)", required: false,
                          accepts: [.reward])],
        producesModel: true, unit: "episodes", measuresExactMatch: true,
        decode: { .ppo(try YAMLDecoder().decode(PPOConfig.self, from: $0)) }, validate: { _ in [] })

    static let criticFreeKeys: [KeySpec] = trainingKeys + policyEvalKeys + rolloutKeys + [
        KeySpec("num_generations", .integer(.atLeast(2))),
        KeySpec("beta", .number(.atLeast(0))),
        KeySpec("epsilon", .number(.above(0))),
        KeySpec("num_iterations", .integer(.atLeast(1))),
    ]

    static let rloo = StageKindDefinition(
        kind: .rloo, implemented: false,
        keys: criticFreeKeys + [KeySpec("rloo_k", .integer(.atLeast(2)))],
        roles: [policyRole("the policy to train"), referenceRole, rewardRole],
        producesModel: true, unit: "episodes", measuresExactMatch: true,
        decode: { .criticFree(try YAMLDecoder().decode(CriticFreeConfig.self, from: $0)) }, validate: { _ in [] })

    static let grpo = StageKindDefinition(
        kind: .grpo, implemented: false,
        keys: criticFreeKeys + [
            KeySpec("scale_rewards", .choice(["group", "batch", "none", "true", "false"])),
            KeySpec("loss_type", .choice(["grpo", "bnpo", "dr_grpo", "dapo"])),
        ],
        roles: [policyRole("the policy to train"), referenceRole, rewardRole],
        producesModel: true, unit: "episodes", measuresExactMatch: true,
        decode: { .criticFree(try YAMLDecoder().decode(CriticFreeConfig.self, from: $0)) }, validate: { _ in [] })
}
