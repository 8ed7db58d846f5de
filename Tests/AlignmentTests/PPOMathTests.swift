import Foundation
import Testing
import Alignment
import TensorCore

// Fixed tensors in, exact numbers out: the PPO details that bit other frameworks.

@Suite struct PPOMathTests {
    let eos: Int32 = 2, pad: Int32 = 3

    @Test func truncationKeepsTheFirstEOSAndPadsAfterIt() throws {
        let responses: [Int32] = [4, 2, 5, 2,   2, 7, 7, 7,   4, 5, 6, 7,   4, 5, 6, 2]
        let post = try truncateAfterFirstEOS(responses, rows: 4, length: 4, eos: eos, pad: pad)
        #expect(post == [4, 2, 3, 3,   2, 3, 3, 3,   4, 5, 6, 7,   4, 5, 6, 2])
        let m = try PPOResponseMasks(postprocessed: post, rows: 4, length: 4, eos: eos, pad: pad)
        #expect(m.sequenceLengths == [1, 0, 3, 3])
        #expect(m.containsEOS == [true, true, false, true])
        #expect(m.paddingMask == [false, false, true, true,  false, true, true, true,
                                  false, false, false, false, false, false, false, false])
        #expect(m.paddingMaskP1 == [false, false, false, true,  false, false, true, true,
                                    false, false, false, false, false, false, false, false])
        #expect(try firstTrueIndices([false, true, true, false, false, false], rows: 2, length: 3) == [1, 3])
    }

    @Test func anEOSInThePromptDoesNotCancelTheMissingEOSPenalty() throws {
        // Prompts (context 3, left-padded) with an EOS in them; row 0's response has none.
        let queryResponses: [Int32] = [3, 2, 9,  9, 8, 7,
                                       5, 2, 6,  9, 2, 3]
        let responses = try responsesOf(queryResponses: queryResponses, rows: 2, contextLength: 3)
        #expect(responses == [9, 8, 7, 9, 2, 3])
        var settings = PPORolloutSettings(eos: eos, pad: pad)
        settings.missingEOSPenalty = 1
        let zeros = [Float](repeating: 0, count: 6)
        let t = try processPPORollout(responses: responses, logProbs: zeros, refLogProbs: zeros, values: zeros,
                                      rawScores: [1.5, 1.5], rows: 2, length: 3, settings: settings)
        #expect(t.masks.containsEOS == [false, true])
        #expect(t.scores == [0.5, 1.5])
        // No penalty configured: scores unchanged.
        #expect(try applyMissingEOSPenalty(scores: [1.5, 1.5], containsEOS: [false, true], penalty: nil) == [1.5, 1.5])
    }

    @Test func paddedLogProbsHoldOneAndValuesZeroBeyondTheNextPosition() throws {
        let m = try PPOResponseMasks(postprocessed: [4, 2, 3, 3], rows: 1, length: 4, eos: eos, pad: pad)
        #expect(try m.masked(logProbs: [-0.5, -1, -2, -3]) == [-0.5, -1, 1, 1])
        #expect(try m.masked(values: [0.25, 0.5, 0.75, 1]) == [0.25, 0.5, 0.75, 0])
        // With both log-probs at 1.0 the padded KL is 0 (k1 gives -0.0).
        let kl = try perTokenKL(logProbs: [-0.5, -1, 1, 1], refLogProbs: [-0.75, -1, 1, 1], estimator: .k1)
        #expect(kl == [0.25, 0, 0, 0])
    }

    @Test func theScoreLandsOneAfterTheEOSOrOnTheLastToken() throws {
        // EOS at 1 -> score at 2; EOS at 2 -> 3; EOS at the last position -> 3; no EOS -> 3.
        let post: [Int32] = [4, 2, 3, 3,   4, 5, 2, 3,   4, 5, 6, 2,   4, 5, 6, 7]
        let m = try PPOResponseMasks(postprocessed: post, rows: 4, length: 4, eos: eos, pad: pad)
        #expect(m.scorePositions == [2, 3, 3, 3])
        let kl: [Float] = [0.5, 1, 0, 0,  0, 0, 0.25, 0,  0, 0, 0, 2,  1, 1, 1, 1]
        let (nonScore, rewards) = try ppoRewards(kl: kl, scores: [10, 20, 30, 40], masks: m, klCoef: 0.5)
        #expect(nonScore == kl.map { -0.5 * $0 })
        #expect(rewards == [-0.25, -0.5, 10, 0,   0, 0, -0.125, 20,   0, 0, 0, 29,   -0.5, -0.5, -0.5, 39.5])
    }

    @Test func gaeOnAHandComputedThreeStepExample() throws {
        let rewards: [Float] = [0, 0, 1], values: [Float] = [0.5, 0.25, 0.75]
        // γ = 1, λ = 0.5: δ = [-0.25, 0.5, 0.25]; A2 = 0.25, A1 = 0.5 + 0.5·0.25, A0 = -0.25 + 0.5·0.625.
        let a = try generalizedAdvantageEstimates(rewards: rewards, values: values, rows: 1, length: 3, gamma: 1, lam: 0.5)
        #expect(a.advantages == [0.0625, 0.625, 0.25])
        #expect(a.returns == [0.5625, 0.875, 1])
        // γ = 0.5, λ = 1: δ = [0 + 0.125 - 0.5, 0 + 0.375 - 0.25, 1 - 0.75]; γλ = 0.5.
        let b = try generalizedAdvantageEstimates(rewards: rewards, values: values, rows: 1, length: 3, gamma: 0.5, lam: 1)
        #expect(b.advantages == [-0.25, 0.25, 0.25])
        #expect(b.returns == [0.25, 0.5, 1])
    }

    @Test func whiteningIgnoresPadding() throws {
        // Valid positions hold 1, 2, 3, 4 (two rows); padding holds 1000s that must not count.
        let m = try PPOResponseMasks(postprocessed: [5, 5, 2, 3,  5, 2, 3, 3], rows: 2, length: 4, eos: eos, pad: pad)
        let adv: [Float] = [1, 2, 3, 1000,  4, 1.5, 1000, 1000]
        // Included: positions <= sequence length: 1, 2, 3 and 4, 1.5.
        let x = [1, 2, 3, 4, 1.5]
        let mean = x.reduce(0, +) / 5
        let variance = x.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 4   // unbiased
        let inv = 1 / (variance + 1e-8).squareRoot()
        let w = try whitenedAdvantages(adv, masks: m)
        let expected = [(1 - mean) * inv, (2 - mean) * inv, (3 - mean) * inv, 0, (4 - mean) * inv, (1.5 - mean) * inv, 0, 0]
        for (a, e) in zip(w, expected) { #expect(abs(Double(a) - e) < 1e-6) }
        #expect(w[3] == 0 && w[6] == 0 && w[7] == 0)
        // Rewards: over positions <= sequence length + 1, mean kept (shift_mean false).
        let r = try whitenedRewards(adv, masks: m)
        let xr = [1, 2, 3, 1000, 4, 1.5, 1000]
        let mr = xr.reduce(0, +) / 7
        let vr = xr.reduce(0) { $0 + ($1 - mr) * ($1 - mr) } / 6
        let ir = 1 / (vr + 1e-8).squareRoot()
        #expect(abs(Double(r[0]) - ((1 - mr) * ir + mr)) < 1e-4)
        #expect(abs(Double(r[3]) - ((1000 - mr) * ir + mr)) < 1e-3)
        #expect(r[7] == 0)
        // One included element has no unbiased variance: an error, not a crash.
        #expect(throws: PPOMathError.tooFewElementsToWhiten(name: "values", count: 1)) {
            try maskedWhiten([1, 2], include: [true, false])
        }
    }

    @Test func k3IsNeverNegativeAndMatchesTheFormula() throws {
        var lp: [Float] = [], ref: [Float] = []
        for a in stride(from: -6.0, through: 0, by: 0.5) {
            for b in stride(from: -6.0, through: 0, by: 0.5) { lp.append(Float(a)); ref.append(Float(b)) }
        }
        let k3 = try perTokenKL(logProbs: lp, refLogProbs: ref, estimator: .k3)
        #expect(k3.allSatisfy { $0 >= 0 })
        // logr = ln 2: r = 2, (2 - 1) - ln 2.
        let one = try perTokenKL(logProbs: [-1], refLogProbs: [-1 + Float(Foundation.log(2.0))], estimator: .k3)
        #expect(abs(Double(one[0]) - (1 - Foundation.log(2.0))) < 1e-6)
        let k1 = try perTokenKL(logProbs: [-1], refLogProbs: [-1.5], estimator: .k1)
        #expect(k1 == [0.5])
        #expect(throws: PPOMathError.unknownKLEstimator("k2")) { try KLEstimator.named("k2") }
    }

    @Test func shapeMismatchesAreErrors() {
        #expect(throws: PPOMathError.shapeMismatch(name: "responses", expected: 6, got: 5)) {
            try truncateAfterFirstEOS([1, 2, 3, 4, 5], rows: 2, length: 3, eos: 2, pad: 3)
        }
        #expect(throws: PPOMathError.self) {
            try generalizedAdvantageEstimates(rewards: [], values: [], rows: -1, length: 0, gamma: 1, lam: 1)
        }
        #expect(throws: PPOMathError.self) {
            try ppoPolicyLoss(newLogProbs: Tensor.zeros([1, 2]), oldLogProbs: [0], advantages: [0, 0],
                              paddingMask: [false, false], cliprange: 0.2)
        }
    }

    @Test func accumulationStepsEveryNthMicroBatchAndEveryOneAtTheDataloadersEnd() {
        var c = GradientAccumulationCounter(steps: 2)
        #expect([c.microStep(), c.microStep(), c.microStep(), c.microStep()] == [false, true, false, true])
        #expect(c.counter == 4 && c.lossScale == 0.5)
        // The dataloader's last batch: a step on every micro-batch.
        #expect([c.microStep(endOfDataloader: true), c.microStep(endOfDataloader: true)] == [true, true])
    }

    @Test func theLearningRateIsTRLsSchedulerSteppedOncePerUpdate() {
        var s = PPOTrainerSettings(rollout: PPORolloutSettings(eos: 0, pad: 1))
        s.learningRate = 1e-3
        s.numTotalBatches = 4
        // TRL's default: linear to 0 over num_total_batches, no warmup: 1e-3, 1e-3 · 3/4, ...
        #expect(s.learningRate(update: 1) == 1e-3)
        #expect(s.learningRate(update: 3) == 1e-3 * 0.5)
        #expect(s.learningRate(update: 9) == 0)
        // warmup_steps counts updates: 0, 1/2 of the peak, then the decay over the updates left.
        s.warmupUpdates = 2
        #expect([1, 2, 3, 4].map { s.learningRate(update: $0) } == [0, 1e-3 * 0.5, 1e-3, 1e-3 * 0.5])
        // lr_scheduler_type and min_lr: a cosine from the peak at update 3 to the floor at update 5.
        s.lrDecay = .cosine
        s.minLR = 1e-4
        #expect(abs(s.learningRate(update: 3) - 1e-3) < 1e-15)
        #expect(abs(s.learningRate(update: 4) - (1e-4 + 0.9e-3 * 0.5)) < 1e-15)
        #expect(abs(s.learningRate(update: 5) - 1e-4) < 1e-15)
        s.lrDecay = .constant
        #expect(s.learningRate(update: 4) == 1e-3)
    }

    @Test func microBatchesAreConsecutiveSlicesOfTheEpochPermutation() {
        let order = [5, 0, 3, 4, 2, 6, 1, 7]
        #expect(ppoMicroBatches(order: order, numMiniBatches: 1, microBatchSize: 4) == [[[5, 0, 3, 4], [2, 6, 1, 7]]])
        #expect(ppoMicroBatches(order: order, numMiniBatches: 2, microBatchSize: 2)
                == [[[5, 0], [3, 4]], [[2, 6], [1, 7]]])
        #expect(ppoMicroBatches(order: order, numMiniBatches: 3, microBatchSize: 2).isEmpty)
    }
}
