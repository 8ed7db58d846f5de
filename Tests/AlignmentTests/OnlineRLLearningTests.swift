import Generation
import NN
import Testing
import Alignment
import TensorCore

// PPO and GRPO move a policy toward what the reward pays for: a tiny random model rewarded for
// the share of its response tokens below 64 (1/8 of the vocabulary at the start) samples more of
// them after a few dozen updates. The loop is the stages' loop without the store: sample with
// the Generator, score, run the trainer's update.

/// The reward: the fraction of the response's tokens (up to and including the first EOS) below 64.
func lowTokenShare(_ responses: [Int32], rows: Int, length R: Int, pad: Int32) -> [Float] {
    (0..<rows).map { r in
        let row = responses[(r * R)..<((r + 1) * R)].prefix { $0 != pad }
        return row.isEmpty ? 0 : Float(row.filter { $0 < 64 }.count) / Float(row.count)
    }
}

/// `rows` left-padded prompts (3-5 tokens) and responses sampled at temperature 1, pads after EOS.
func sampleBatch(_ model: DecoderModel, rows: Int, R: Int, step: Int, pad: Int32, eos: Int32)
    -> (queries: [Int32], responses: [Int32], logProbs: [Float], ctx: Int) {
    var rng = RNG(seed: UInt64(1000 + step))
    let prompts = (0..<rows).map { _ in (0..<(3 + rng.int(below: 3))).map { _ in Int32(100 + rng.int(below: 300)) } }
    let ctx = prompts.map(\.count).max()!
    var rngs = (0..<rows).map { RNG(seed: UInt64(step * 977 + $0)) }
    let out = Generator(model: model, padId: 5).generate(
        prompts: prompts, options: SamplingOptions(temperature: 1, maxNewTokens: R, stopTokens: [eos]), rngs: &rngs)
    var queries: [Int32] = [], responses: [Int32] = [], lp: [Float] = []
    for (p, o) in zip(prompts, out) {
        queries += Array(repeating: pad, count: ctx - p.count) + p
        responses += o.tokens + Array(repeating: pad, count: R - o.tokens.count)
        lp += o.logProbs + Array(repeating: invalidLogProb, count: R - o.tokens.count)
    }
    return (queries, responses, lp, ctx)
}

@Suite struct OnlineRLLearningTests {
    let pad: Int32 = 511, eos: Int32 = 0

    /// The learning tests' PPO settings: KL 0.01, temperature 1, 4 epochs of one 16-row micro-batch,
    /// a constant learning rate of 3e-3.
    func ppoSettings(vfCoef: Float = 0.1) -> PPOTrainerSettings {
        var rs = PPORolloutSettings(eos: eos, pad: pad)
        rs.klCoef = 0.01
        var s = PPOTrainerSettings(rollout: rs)
        s.temperature = 1
        s.microBatchSize = 16
        s.numPPOEpochs = 4
        s.learningRate = 3e-3
        s.vfCoef = vfCoef
        s.numTotalBatches = 1_000_000   // a constant learning rate for the test
        return s
    }

    @Test func ppoRaisesTheReward() throws {
        let policy = smallModel(seed: 1), reference = smallModel(seed: 1), value = smallModel(seed: 2)
        var rng = RNG(seed: 3)
        value.addScoreHead(rng: &rng)
        let trainer = try PPOTrainer(policy: policy, reference: reference, valueModel: value, settings: ppoSettings())
        var means: [Float] = []
        for update in 1...30 {
            let b = sampleBatch(policy, rows: 16, R: 6, step: update, pad: pad, eos: eos)
            let rewards = lowTokenShare(b.responses, rows: 16, length: 6, pad: pad)
            means.append(rewards.reduce(0, +) / 16)
            let r = try trainer.rollout(queries: b.queries, responses: b.responses, rows: 16, contextLength: b.ctx, responseLength: 6,
                                        policyLogProbs: b.logProbs) { _, _ in rewards }
            let m = try trainer.train(r, update: update, rng: &rng)
            #expect(m["objective/scores"].map { abs($0 - Double(means.last!)) < 1e-5 } == true)
        }
        let first = means.prefix(5).reduce(0, +) / 5, last = means.suffix(5).reduce(0, +) / 5
        print("ppo low-token share: first 5 updates \(first), last 5 \(last)")
        #expect(last > first + 0.2, "PPO did not learn: \(means)")
    }

    /// A PPO trainer whose values come from a zeroed `v_head` on the policy's own trunk.
    func sharedTrainer(_ policy: DecoderModel, vfCoef: Float = 0.1) throws -> PPOTrainer {
        var rng = RNG(seed: 4)
        policy.addValueHead(rng: &rng)
        policy.valueHead!.weight.data.update(repeating: 0, count: policy.valueHead!.weight.count)
        return try PPOTrainer(policy: policy, reference: smallModel(seed: 1), valueModel: policy, settings: ppoSettings(vfCoef: vfCoef))
    }

    @Test func ppoWithAValueHeadOnThePolicyTrunkRaisesTheReward() throws {
        let policy = smallModel(seed: 1)
        let trainer = try sharedTrainer(policy)
        #expect(trainer.sharesTrunk && trainer.valueOptimizer === trainer.policyOptimizer)
        var rng = RNG(seed: 3)
        var means: [Float] = []
        var firstValues: [Float] = []
        for update in 1...30 {
            let b = sampleBatch(policy, rows: 16, R: 6, step: update, pad: pad, eos: eos)
            let rewards = lowTokenShare(b.responses, rows: 16, length: 6, pad: pad)
            means.append(rewards.reduce(0, +) / 16)
            let r = try trainer.rollout(queries: b.queries, responses: b.responses, rows: 16, contextLength: b.ctx, responseLength: 6,
                                        policyLogProbs: b.logProbs) { _, _ in rewards }
            if update == 1 { firstValues = r.rawValues }
            _ = try trainer.train(r, update: update, rng: &rng)
        }
        // The zeroed head predicts 0 everywhere at first (its bias starts at 0 too) ...
        #expect(firstValues.allSatisfy { $0 == 0 })
        // ... and the value loss trained it: rewards are in [0, 1], so V moves off 0.
        let head = policy.valueHead!
        #expect(head.bias.values[0] != 0 && head.weight.values.contains { $0 != 0 })
        let first = means.prefix(5).reduce(0, +) / 5, last = means.suffix(5).reduce(0, +) / 5
        print("ppo (shared value head) low-token share: first 5 updates \(first), last 5 \(last)")
        #expect(last > first + 0.2, "PPO with a shared value head did not learn: \(means)")
    }

    /// With a shared trunk, the value loss's gradient reaches the trunk: the trunk's gradient at
    /// the first optimizer step differs between vf_coef 0 and vf_coef 1, by exactly the value
    /// loss's own gradient (linear in vf_coef: g(2) - g(1) = g(1) - g(0)).
    @Test func aSharedTrunkReceivesTheValueLossGradient() throws {
        func firstStepGradient(vfCoef: Float) throws -> [Float] {
            let policy = smallModel(seed: 1)
            let trainer = try sharedTrainer(policy, vfCoef: vfCoef)
            trainer.settings.numPPOEpochs = 1
            // Start the head away from zero so the value loss has a gradient through the trunk.
            var hr = RNG(seed: 9)
            let head = policy.valueHead!
            for i in 0..<head.weight.count { head.weight.data[i] = 0.1 * hr.normal() }
            let b = sampleBatch(policy, rows: 16, R: 6, step: 1, pad: pad, eos: eos)
            let rewards = lowTokenShare(b.responses, rows: 16, length: 6, pad: pad)
            let r = try trainer.rollout(queries: b.queries, responses: b.responses, rows: 16, contextLength: b.ctx, responseLength: 6,
                                        policyLogProbs: b.logProbs) { _, _ in rewards }
            let entry = policy.arena.entries.first { $0.name.contains("layers.0") && $0.name.contains("q_proj") }!
            var grad: [Float] = []
            trainer.beforeOptimizerStep = { grad = Array(UnsafeBufferPointer(start: policy.arena.grads.base + entry.offset, count: entry.count)) }
            var rng = RNG(seed: 3)
            _ = try trainer.train(r, update: 1, orders: [Array(0..<16)], rng: &rng)
            return grad
        }
        let g0 = try firstStepGradient(vfCoef: 0), g1 = try firstStepGradient(vfCoef: 1), g2 = try firstStepGradient(vfCoef: 2)
        let d1 = zip(g1, g0).map { $0 - $1 }, d2 = zip(g2, g1).map { $0 - $1 }
        let size = d1.map { abs($0) }.max()!
        #expect(size > 1e-4 * (g0.map { abs($0) }.max()! + 1e-12), "the value loss did not reach the trunk")
        let worst = zip(d1, d2).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-3 * size, "value gradient not linear in vf_coef: \(worst) vs \(size)")
    }

    /// The sampler's log-probs (KV cache, prompts of several lengths left-padded, temperature 0.7)
    /// are the training forward's (TRL's positions from the mask, logits / T): the first PPO epoch's
    /// ratio is 1 only if they agree.
    @Test func sampledLogProbsEqualTheTrainingForwardsAtTemperature() throws {
        let policy = smallModel(seed: 1)
        var rng = RNG(seed: 77)
        let rows = 6, R = 8
        let prompts = (0..<rows).map { r in (0..<(2 + r)).map { _ in Int32(100 + rng.int(below: 300)) } }
        let ctx = prompts.map(\.count).max()!
        var rngs = (0..<rows).map { RNG(seed: UInt64(500 + $0)) }
        let out = Generator(model: policy, padId: 5).generate(
            prompts: prompts, options: SamplingOptions(temperature: 0.7, maxNewTokens: R, stopTokens: [eos]), rngs: &rngs)
        var qr: [Int32] = []
        for (p, o) in zip(prompts, out) {
            qr += Array(repeating: pad, count: ctx - p.count) + p + o.tokens + Array(repeating: pad, count: R - o.tokens.count)
        }
        let forward = responseLogProbsNoGrad(policy, queryResponses: qr, rows: rows, contextLength: ctx, responseLength: R,
                                             pad: pad, temperature: 0.7, chunk: 3)
        var worst: Float = 0, compared = 0
        for (r, o) in out.enumerated() {
            for (t, lp) in o.logProbs.enumerated() {
                worst = max(worst, abs(lp - forward[r * R + t]))
                compared += 1
            }
        }
        #expect(compared > rows * 2)
        #expect(worst < 2e-4, "sampled and training log-probs differ by \(worst)")
    }

    @Test func grpoRaisesTheReward() throws {
        let policy = smallModel(seed: 1)
        let objective = CriticFreeObjective(estimator: .grpo(scaleRewards: .group), groupSize: 4, beta: 0, lossType: .dapo,
                                            maxCompletionLength: 6)
        var s = CriticFreeTrainerSettings(objective: objective, eos: eos, pad: pad)
        s.temperature = 1
        s.microBatchSize = 16
        s.numIterations = 4   // four optimizer steps per generation batch: the old log-probs path too
        let trainer = try CriticFreeTrainer(policy: policy, reference: nil, settings: s)
        var rng = RNG(seed: 3)
        var means: [Float] = []
        for update in 0..<30 {
            var b = sampleBatch(policy, rows: 16, R: 6, step: update + 1, pad: pad, eos: eos)
            // Four samples per prompt: rows 4g..4g+3 share row 4g's prompt.
            for r in 0..<16 where r % 4 != 0 {
                for t in 0..<b.ctx { b.queries[r * b.ctx + t] = b.queries[(r - r % 4) * b.ctx + t] }
            }
            let resampled = sampleBatchSharing(policy, queries: b.queries, rows: 16, ctx: b.ctx, R: 6, step: update + 1)
            let rewards = lowTokenShare(resampled, rows: 16, length: 6, pad: pad)
            means.append(rewards.reduce(0, +) / 16)
            let prepared = try trainer.prepare(queries: b.queries, responses: resampled, rows: 16, contextLength: b.ctx,
                                               responseLength: 6, rewards: rewards)
            _ = try trainer.train(prepared, step: update * 4, learningRate: { _ in 3e-3 }, rng: &rng)
        }
        let first = means.prefix(5).reduce(0, +) / 5, last = means.suffix(5).reduce(0, +) / 5
        print("grpo low-token share: first 5 updates \(first), last 5 \(last)")
        #expect(last > first + 0.2, "GRPO did not learn: \(means)")
    }

    /// Responses sampled for given left-padded queries (pads removed before sampling).
    func sampleBatchSharing(_ model: DecoderModel, queries: [Int32], rows: Int, ctx: Int, R: Int, step: Int) -> [Int32] {
        let prompts = (0..<rows).map { r in Array(queries[(r * ctx)..<((r + 1) * ctx)].filter { $0 != pad }) }
        var rngs = (0..<rows).map { RNG(seed: UInt64(step * 31 + $0)) }
        let out = Generator(model: model, padId: 5).generate(
            prompts: prompts, options: SamplingOptions(temperature: 1, maxNewTokens: R, stopTokens: [eos]), rngs: &rngs)
        return out.flatMap { $0.tokens + Array(repeating: pad, count: R - $0.tokens.count) }
    }
}
