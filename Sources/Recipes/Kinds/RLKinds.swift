import Alignment
import Foundation
import TensorCore
import Yams

/// The RL kinds. Their keys, roles and ranges are declared so that recipes can be checked (and a
/// PPO key on a DPO stage is named as one); their trainers are in OnlineRL.swift.
extension StageKinds {
    static let rolloutKeys: [KeySpec] = [
        KeySpec("response_length", .integer(.atLeast(1))),
        KeySpec("temperature", .number(.above(0))),
        KeySpec("missing_eos_penalty", .number()),
        KeySpec("num_mini_batches", .integer(.atLeast(1))),
        KeySpec("top_k", .integer(.atLeast(0))),
        KeySpec("top_p", .number(.closed(0, 1))),
        KeySpec("total_episodes", .integer(.atLeast(1))),
        KeySpec("judge", .string),
        KeySpec("normalize_reward", .bool),
        KeySpec("reward_clip", .number(.above(0))),
        KeySpec("eval_judge", .string),
        KeySpec("export_steps", .integer(.atLeast(0))),
        KeySpec("rollout_precision", .choice(WeightPrecision.allCases.map(\.rawValue))),
        KeySpec("ref_precision", .choice(WeightPrecision.allCases.map(\.rawValue))),
        KeySpec("reward_precision", .choice(WeightPrecision.allCases.map(\.rawValue))),
    ]

    /// `eval_judge` names a judge Rein has (checked before anything runs).
    static func validateRollout(_ rollout: RolloutArguments) -> [(key: String, message: String)] {
        guard let spec = rollout.evalJudge else { return [] }
        let name = String(spec.prefix { $0 != ":" })
        let known = RolloutScorer.textJudges
        guard known.contains(name) else {
            let hint = Suggestions.nearest(to: name, in: known).map { " (did you mean '\($0)'?)" } ?? ""
            return [("eval_judge", "unknown judge '\(name)'\(hint); expected one of \(known.joined(separator: ", "))")]
        }
        return []
    }

    /// The reward: a reward stage, or a directory holding a reward model.
    static let rewardRole = ModelRole(key: "reward_model", purpose: "the reward model that scores responses", required: false,
                                      accepts: [.reward], needsScoreHead: true)

    static let ppo = StageKindDefinition(
        kind: .ppo, implemented: true,
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
            KeySpec("kl_target", .number(.above(0))),
            KeySpec("kl_horizon", .number(.above(0))),
            KeySpec("shared_value_head", .bool),
        ],
        roles: [policyRole("the policy to train"), referenceRole, rewardRole,
                ModelRole(key: "value_model", purpose: "the value model (default: the reward model)", required: false,
                          accepts: [.reward])],
        producesModel: true, unit: "episodes", measuresExactMatch: true, promptsOnly: true,
        decode: { .ppo(try YAMLDecoder().decode(PPOConfig.self, from: $0)) },
        validate: { settings in if case .ppo(let c) = settings { validateRollout(c.rollout) } else { [] } },
        prepare: { model, settings, rng in
            // The value head on the policy's trunk starts at zero: the first advantages are the
            // rewards' own, not a random head's V(s') - V(s).
            guard case .ppo(let config) = settings, config.sharedValueHead, model.valueHead == nil else { return }
            model.addValueHead(rng: &rng)
            if let head = model.valueHead { head.weight.data.update(repeating: 0, count: head.weight.count) }
        },
        train: { try trainPPO($0) }, summary: rlSummary)

    static let criticFreeKeys: [KeySpec] = trainingKeys + policyEvalKeys + rolloutKeys + [
        KeySpec("num_generations", .integer(.atLeast(2))),
        KeySpec("beta", .number(.atLeast(0))),
        KeySpec("epsilon", .number(.above(0))),
        KeySpec("num_iterations", .integer(.atLeast(1))),
    ]

    static let rloo = StageKindDefinition(
        kind: .rloo, implemented: true,
        keys: criticFreeKeys + [KeySpec("rloo_k", .integer(.atLeast(2))), KeySpec("normalize_advantages", .bool)],
        roles: [policyRole("the policy to train"), referenceRole, rewardRole],
        producesModel: true, unit: "episodes", measuresExactMatch: true, promptsOnly: true,
        decode: { .criticFree(try YAMLDecoder().decode(CriticFreeConfig.self, from: $0)) },
        validate: { settings in if case .criticFree(let c) = settings { validateRollout(c.rollout) } else { [] } },
        train: { c in
            guard case .criticFree(let config) = c.settings else { throw RunnerError("rloo: wrong settings") }
            return try trainCriticFree(c, estimator: .rloo(normalizeAdvantages: config.normalizeAdvantages))
        }, summary: rlSummary)

    static let grpo = StageKindDefinition(
        kind: .grpo, implemented: true,
        keys: criticFreeKeys + [
            KeySpec("scale_rewards", .choice(["group", "batch", "none", "true", "false"])),
            KeySpec("loss_type", .choice(["grpo", "bnpo", "dr_grpo", "dapo"])),
        ],
        roles: [policyRole("the policy to train"), referenceRole, rewardRole],
        producesModel: true, unit: "episodes", measuresExactMatch: true, promptsOnly: true,
        decode: { .criticFree(try YAMLDecoder().decode(CriticFreeConfig.self, from: $0)) },
        validate: { settings in if case .criticFree(let c) = settings { validateRollout(c.rollout) } else { [] } },
        train: { c in
            guard case .criticFree(let config) = c.settings else { throw RunnerError("grpo: wrong settings") }
            return try trainCriticFree(c, estimator: .grpo(scaleRewards: try RewardScaling(setting: config.scaleRewards)))
        }, summary: rlSummary)

    /// What PPO, RLOO and GRPO changed: on held-out prompts, exact match, the judge's score and the
    /// KL to the reference (0 before the first update).
    static let rlSummary = [SummaryMetric("eval/exact_match", "exact match", percent: true),
                            SummaryMetric("eval/score", "score"), SummaryMetric("eval/judge_score", "gold judge"),
                            SummaryMetric("eval/kl", "KL to the reference"),
                            SummaryMetric("eval/response_length", "response tokens")]
}
