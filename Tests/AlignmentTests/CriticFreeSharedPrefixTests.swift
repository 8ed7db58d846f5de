import Generation
import NN
import Testing
@testable import Alignment
import TensorCore

@Suite struct CriticFreeSharedPrefixTests {
    let pad: Int32 = 511, eos: Int32 = 0

    /// 12 rows, 3 prompts x 4 samples (rows 4g..4g+3 share row 4g's query), responses of up to 6
    /// tokens with pads after the EOS.
    func batch(_ policy: DecoderModel) -> (queries: [Int32], responses: [Int32], ctx: Int) {
        var b = sampleBatch(policy, rows: 12, R: 6, step: 5, pad: pad, eos: eos)
        for r in 0..<12 where r % 4 != 0 {
            for t in 0..<b.ctx { b.queries[r * b.ctx + t] = b.queries[(r - r % 4) * b.ctx + t] }
        }
        return (b.queries, b.responses, b.ctx)
    }

    func run(_ estimator: AdvantageEstimator, beta: Float, share: Bool, iterations: Int, micro: Int, reuse: Bool = true)
        throws -> (rollout: CriticFreeRollout, metrics: [String: Double]) {
        let policy = smallModel(seed: 21)
        let reference = smallModel(seed: 21)
        let objective = CriticFreeObjective(estimator: estimator, groupSize: 4, beta: beta, maxCompletionLength: 6)
        var s = CriticFreeTrainerSettings(objective: objective, eos: eos, pad: pad)
        s.microBatchSize = micro
        s.gradientAccumulationSteps = 12 / micro
        s.numIterations = iterations
        s.sharePromptForward = share
        s.reuseTrainingForward = reuse
        let trainer = try CriticFreeTrainer(policy: policy, reference: beta != 0 ? reference : nil, settings: s)
        let b = batch(policy)
        let rewards = lowTokenShare(b.responses, rows: 12, length: 6, pad: pad)
        let rollout = try trainer.prepare(queries: b.queries, responses: b.responses, rows: 12, contextLength: b.ctx,
                                          responseLength: 6, rewards: rewards)
        var rng = RNG(seed: 9)
        let metrics = try trainer.train(rollout, step: 0, learningRate: { _ in 1e-3 }, rng: &rng)
        return (rollout, metrics)
    }

    func close(_ a: [Float]?, _ b: [Float]?, _ tol: Float) -> Bool {
        guard let a, let b else { return a == nil && b == nil }
        return a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tol * (1 + abs($1)) }
    }

    /// (estimator, beta, iterations, micro-batch rows of the 12).
    static let cases: [(AdvantageEstimator, Float, Int, Int)] = [
        (.rloo(normalizeAdvantages: false), 0.05, 1, 12), (.grpo(scaleRewards: .group), 0.04, 2, 4),
        (.grpo(scaleRewards: .group), 0, 1, 6),
    ]

    @Test(arguments: cases)
    func sharingThePromptForwardChangesNoNumber(estimator: AdvantageEstimator, beta: Float, iterations: Int, micro: Int) throws {
        let shared = try run(estimator, beta: beta, share: true, iterations: iterations, micro: micro)
        let plain = try run(estimator, beta: beta, share: false, iterations: iterations, micro: micro)
        #expect(close(shared.rollout.logProbs.old, plain.rollout.logProbs.old, 1e-5))
        #expect(close(shared.rollout.logProbs.ref, plain.rollout.logProbs.ref, 1e-5))
        #expect(close(shared.rollout.advantage.advantages, plain.rollout.advantage.advantages, 1e-4))
        #expect(shared.metrics.keys.sorted() == plain.metrics.keys.sorted())
        for (k, v) in plain.metrics where v.isFinite {
            #expect(abs(shared.metrics[k]! - v) <= 1e-4 * (1 + abs(v)), "\(k): \(shared.metrics[k]!) vs \(v)")
        }
        // The gradient (its norm before clipping) and the loss come from the shared forward.
        #expect(plain.metrics["grad_norm"]! > 0 && plain.metrics["loss"] != nil)
    }

    @Test(arguments: [true, false])
    func rlooKeepsItsTrainingForwardForTheOldLogProbs(share: Bool) throws {
        // One iteration, one micro-batch: the old log-probs come from the training forward run in
        // prepare, not from a separate pass; the numbers are the separate pass's.
        let estimator = AdvantageEstimator.rloo(normalizeAdvantages: false)
        let kept = try run(estimator, beta: 0.05, share: share, iterations: 1, micro: 12, reuse: true)
        let separate = try run(estimator, beta: 0.05, share: share, iterations: 1, micro: 12, reuse: false)
        #expect(kept.rollout.retained != nil && separate.rollout.retained == nil)
        #expect(close(kept.rollout.logProbs.old, separate.rollout.logProbs.old, 1e-5))
        #expect(close(kept.rollout.advantage.advantages, separate.rollout.advantage.advantages, 1e-4))
        for (k, v) in separate.metrics where v.isFinite {
            #expect(abs(kept.metrics[k]! - v) <= 1e-4 * (1 + abs(v)), "\(k): \(kept.metrics[k]!) vs \(v)")
        }
        #expect(kept.rollout.retained?.used == true)
        // Several micro-batches fall back to the separate pass.
        #expect(try run(estimator, beta: 0.05, share: share, iterations: 1, micro: 6, reuse: true).rollout.retained == nil)
    }
}
