import Foundation
import Testing
import Alignment
import TensorCore

// Hand-computed cases of the critic-free advantages and clipped losses.

@Suite struct CriticFreeAdvantageTests {
    @Test func allEqualGroupGivesExactlyZero() throws {
        let rewards: [Float] = [0.3, 0.3, 0.3, 0.3, 1, 2, 0, 5]
        for estimator: AdvantageEstimator in [.grpo(scaleRewards: .group), .grpo(scaleRewards: .batch),
                                               .grpo(scaleRewards: .none), .rloo(normalizeAdvantages: false)] {
            let a = try estimator.advantages(rewards: rewards, groupSize: 4).advantages
            #expect(Array(a[0..<4]) == [0, 0, 0, 0], "\(estimator)")
            #expect(a[4..<8].contains { $0 != 0 })
        }
        let m = try AdvantageEstimator.grpo(scaleRewards: .group).advantages(rewards: rewards, groupSize: 4).metrics
        #expect(m["frac_reward_zero_std"] == 0.5)   // 4 of the 8 completions
        let m3 = try AdvantageEstimator.grpo(scaleRewards: .group)
            .advantages(rewards: [1, 1, 2, 3, 4, 5], groupSize: 2).metrics
        #expect(abs(m3["frac_reward_zero_std"]! - 2.0 / 6) < 1e-12)
    }

    @Test func groupScalingByHand() throws {
        // Group [1, 2, 3]: mean 2, unbiased std 1, so A = (r - 2) / 1.0001.
        let a = try AdvantageEstimator.grpo(scaleRewards: .group).advantages(rewards: [1, 2, 3], groupSize: 3).advantages
        #expect(abs(a[0] + 1 / 1.0001) < 1e-7 && a[1] == 0 && abs(a[2] - 1 / 1.0001) < 1e-7)
        let none = try AdvantageEstimator.grpo(scaleRewards: .none).advantages(rewards: [1, 2, 3], groupSize: 3).advantages
        #expect(none == [-1, 0, 1])
    }

    @Test func batchScalingKeepsTheGroupMean() throws {
        // Groups [1, 2, 3] and [10, 11, 12]: centred on their own means (2 and 11) to [-1, 0, 1] twice, then
        // divided by the std of all six: mean 6.5, squared deviations 2·(5.5² + 4.5² + 3.5²) = 125.5, /5 = 25.1.
        let r = try AdvantageEstimator.grpo(scaleRewards: .batch).advantages(rewards: [1, 2, 3, 10, 11, 12], groupSize: 3)
        let s = 25.1.squareRoot() + 1e-4
        let expected = [-1, 0, 1, -1, 0, 1].map { Float(Double($0) / s) }
        for (x, y) in zip(r.advantages, expected) { #expect(abs(x - y) < 1e-7) }
        #expect(r.metrics["frac_reward_zero_std"] == 0)
        #expect(abs(r.metrics["reward"]! - 6.5) < 1e-12)
        #expect(abs(r.metrics["reward_std"]! - 25.1.squareRoot()) < 1e-12)
    }

    @Test func rlooLeaveOneOutOnThreeValues() throws {
        // r = [1, 2, 6]: baselines (2+6)/2 = 4, (1+6)/2 = 3.5, (1+2)/2 = 1.5.
        let a = try AdvantageEstimator.rloo(normalizeAdvantages: false).advantages(rewards: [1, 2, 6], groupSize: 3)
        #expect(a.advantages == [-3, -1.5, 4.5])
        // Normalized: the mean is 0, the unbiased std √((9 + 2.25 + 20.25)/2) = √15.75.
        let n = try AdvantageEstimator.rloo(normalizeAdvantages: true).advantages(rewards: [1, 2, 6], groupSize: 3)
        let s = 15.75.squareRoot() + 1e-4
        for (x, y) in zip(n.advantages, [-3, -1.5, 4.5]) { #expect(abs(Double(x) - y / s) < 1e-7) }
    }

    @Test func rlooPutsTheKLIntoTheReward() throws {
        // Row 0: (old - ref) = [0.5, 0] → 0.5; row 1: [-1, masked] → -1. beta 0.1: r = [0.95, 0.1].
        let lp = try CompletionLogProbs(rows: 2, width: 2, mask: [1, 1, 1, 0], old: [-1, -2, -1, -3], ref: [-1.5, -2, 0, 0])
        let a = try AdvantageEstimator.rloo(normalizeAdvantages: false)
            .advantages(rewards: [1, 0], groupSize: 2, beta: 0.1, logProbs: lp)
        #expect(abs(a.shapedRewards[0] - 0.95) < 1e-7 && abs(a.shapedRewards[1] - 0.1) < 1e-7)
        #expect(abs(a.advantages[0] - 0.85) < 1e-6 && abs(a.advantages[1] + 0.85) < 1e-6)
        #expect(abs(a.metrics["kl"]! + 0.5 / 3) < 1e-9)       // (0.5 + 0 - 1) / 3 tokens
        #expect(a.metrics["reward"] == 0.5)                  // of the raw rewards
    }

    @Test func badInputsThrow() {
        #expect(throws: CriticFreeError.badGroupSize(rows: 5, groupSize: 2)) {
            try AdvantageEstimator.grpo(scaleRewards: .group).advantages(rewards: [1, 2, 3, 4, 5], groupSize: 2)
        }
        #expect(throws: CriticFreeError.badGroupSize(rows: 3, groupSize: 1)) {
            try AdvantageEstimator.rloo(normalizeAdvantages: false).advantages(rewards: [1, 2, 3], groupSize: 1)
        }
        #expect(throws: CriticFreeError.self) { try RewardScaling(setting: "groups") }
        #expect(throws: CriticFreeError.self) { try GRPOLossType(setting: "ppo") }
        #expect(throws: CriticFreeError.badMask(index: 1, value: 2)) {
            try CompletionLogProbs(rows: 1, width: 2, mask: [1, 2], old: nil)
        }
        #expect(throws: CriticFreeError.self) {
            try AdvantageEstimator.rloo(normalizeAdvantages: false).advantages(rewards: [1, 2], groupSize: 2, beta: 0.1)
        }
    }
}

@Suite struct CriticFreeLossTests {
    @Test func grpoTokenLossByHand() throws {
        // One row, two tokens, log-ratios [0, ln 1.5]: coef_1 = [1, 1.5], coef_2 = [1, 1.2].
        let objective = CriticFreeObjective(estimator: .grpo(scaleRewards: .group), groupSize: 2, lossType: .bnpo,
                                            maxCompletionLength: 2)
        let batch = try CompletionLogProbs(rows: 1, width: 2, mask: [1, 1], old: [-1, -1])
        for (a, loss, grad): (Float, Float, [Float]) in [
            (1, -1.1, [-0.5, 0]),      // A > 0: token 1 is clipped at 1.2 and gets no gradient
            (-1, 1.25, [0.5, 0.75]),   // A < 0: -min(-1.5, -1.2) = 1.5 is unclipped, d/dlogp = 1.5
        ] {
            let leaf = Tensor(shape: [1, 2], values: [-1, -1 + Float(Foundation.log(1.5))], requiresGrad: true)
            let out = try objective.loss(logProbs: leaf, batch: batch, advantages: [a])
            #expect(abs(out.loss.item - loss) < 1e-6)
            out.loss.backward()
            let g = leaf.grad!.values
            #expect(abs(g[0] - grad[0]) < 1e-6 && abs(g[1] - grad[1]) < 1e-6, "A = \(a): \(g)")
            #expect(out.metrics["clip_ratio/high_mean"] == (a > 0 ? 0.5 : 0))
        }
    }

    @Test func aggregationsByHand() throws {
        // Two rows of width 3 with 1 and 3 tokens; ratio 1 everywhere (old nil), so l = -A per token.
        let batch = try CompletionLogProbs(rows: 2, width: 3, mask: [1, 0, 0, 1, 1, 1], old: nil)
        let adv: [Float] = [2, -1]   // token losses: row 0 [-2], row 1 [1, 1, 1]; sum 1
        let cases: [(GRPOLossType, Float)] = [
            (.grpo, (-2 + 1) / 2 / 2),      // mean of row means (-2 and 1), / gas 2
            (.bnpo, 1.0 / 4 / 2),           // token mean over 4 tokens, / gas
            (.drGRPO, 1.0 / (2 * 5) / 2),   // / (rows · max_completion_length 5), / gas
            (.dapo, 1.0 / (10.0 * 2 / 4)),  // / (10 tokens in the generation batch · gas 2 / steps 4)
        ]
        for (type, expected) in cases {
            let objective = CriticFreeObjective(estimator: .grpo(scaleRewards: .group), groupSize: 2, lossType: type,
                                                maxCompletionLength: 5, gradientAccumulationSteps: 2, stepsPerGeneration: 4)
            let leaf = Tensor(shape: [2, 3], values: [-1, -2, -3, -1, -2, -3], requiresGrad: true)
            let out = try objective.loss(logProbs: leaf, batch: batch, advantages: adv, tokensInGenerationBatch: 10)
            #expect(abs(out.loss.item - expected) < 1e-7, "\(type): \(out.loss.item) vs \(expected)")
        }
        let dapo = CriticFreeObjective(estimator: .grpo(scaleRewards: .group), groupSize: 2, lossType: .dapo,
                                       maxCompletionLength: 5)
        #expect(throws: CriticFreeError.self) {
            try dapo.loss(logProbs: Tensor(shape: [2, 3], values: [0, 0, 0, 0, 0, 0]), batch: batch, advantages: adv)
        }
    }

    @Test func rlooSequenceLossByHand() throws {
        // Row 0: Σ logp = -1, Σ old = -1 - ln 2, ratio 2 → clipped to 1.2 with A = 1: -1.2, no gradient.
        // Row 1: ratio 1, A = -0.5: loss 0.5, d/dlogp_t = -A · ratio / 2 rows = 0.25 on each valid token.
        let objective = CriticFreeObjective(estimator: .rloo(normalizeAdvantages: false), groupSize: 2, maxCompletionLength: 2)
        let ln2 = Float(Foundation.log(2.0))
        let batch = try CompletionLogProbs(rows: 2, width: 2, mask: [1, 0, 1, 1], old: [-1 - ln2, 7, -0.25, -0.25])
        let leaf = Tensor(shape: [2, 2], values: [-1, 3, -0.25, -0.25], requiresGrad: true)
        let out = try objective.loss(logProbs: leaf, batch: batch, advantages: [1, -0.5])
        #expect(abs(out.loss.item - (-1.2 + 0.5) / 2) < 1e-6)
        out.loss.backward()
        let g = leaf.grad!.values
        #expect(g[0] == 0 && g[1] == 0 && abs(g[2] - 0.25) < 1e-7 && abs(g[3] - 0.25) < 1e-7)
        #expect(out.metrics["clip_ratio/high_mean"] == 0.5 && out.metrics["clip_ratio/high_max"] == 1)
        #expect(out.metrics["clip_ratio/low_min"] == 0)
    }

    /// Finite garbage at padding positions (mask 0) changes neither the loss nor any gradient, and
    /// gets exactly zero gradient, for every GRPO aggregation (with the KL term) and for RLOO.
    @Test func paddingIsMaskedOut() throws {
        let mask: [Float] = [1, 1, 0, 0, 1, 1, 1, 0]
        let clean: [Float] = [-1.2, -0.7, -1, -1, -2.0, -0.3, -0.9, -1]
        var garbage = clean
        garbage[2] = 60; garbage[3] = -80; garbage[7] = 45
        let old: [Float] = [-1.0, -0.9, 30, -70, -1.8, -0.5, -1.1, 2]
        let ref: [Float] = [-1.1, -0.8, -50, 80, -1.9, -0.4, -1.0, -9]
        let batch = try CompletionLogProbs(rows: 2, width: 4, mask: mask, old: old, ref: ref)
        var objectives = GRPOLossType.allCases.map {
            CriticFreeObjective(estimator: .grpo(scaleRewards: .group), groupSize: 2, beta: 0.04, lossType: $0,
                                maxCompletionLength: 4)
        }
        objectives.append(CriticFreeObjective(estimator: .rloo(normalizeAdvantages: false), groupSize: 2,
                                              maxCompletionLength: 4))
        for objective in objectives {
            var results: [(Float, [Float])] = []
            for values in [clean, garbage] {
                let leaf = Tensor(shape: [2, 4], values: values, requiresGrad: true)
                let out = try objective.loss(logProbs: leaf, batch: batch, advantages: [0.7, -1.3], tokensInGenerationBatch: 5)
                out.loss.backward()
                results.append((out.loss.item, leaf.grad!.values))
            }
            #expect(results[0].0.isFinite && results[0].0 == results[1].0, "\(objective.lossType) \(objective.estimator)")
            #expect(results[0].1 == results[1].1)
            for i in 0..<8 where mask[i] == 0 { #expect(results[1].1[i] == 0) }
            #expect(results[1].1.contains { $0 != 0 })
        }
    }
}
