import Foundation
import Testing
import Alignment
import TensorCore

// PPO's clipped losses on fixed tensors: values, clip fractions and where the gradient goes.

@Suite struct PPOLossTests {
    @Test func clippedPolicyLossValueClipFractionAndGradient() throws {
        // Ratios 1.5 (A = 1: clipped to 1.2) and 0.9 (A = -1: inside), the third position padded.
        let old: [Float] = [-1, -1, 1]
        let new = Tensor(shape: [1, 3], values: [-1 + Float(Foundation.log(1.5)), -1 + Float(Foundation.log(0.9)), -7],
                         requiresGrad: true)
        let l = try ppoPolicyLoss(newLogProbs: new, oldLogProbs: old, advantages: [1, -1, 0],
                                  paddingMask: [false, false, true], cliprange: 0.2)
        // max(-1.5, -1.2) = -1.2 and max(0.9, 0.9) = 0.9: mean -0.15.
        #expect(abs(l.loss.item - -0.15) < 1e-6)
        #expect(l.clipFraction == 0.5)
        #expect(abs(l.ratio[0] - 1.5) < 1e-6 && abs(l.ratio[1] - 0.9) < 1e-6)
        #expect(l.ratio[2] == 1 && l.logProbsDiff[2] == 0)   // padded: both log-probs are 1.0
        // approxkl = 0.5 · mean(diff²) over all three positions.
        let d0 = Foundation.log(1.5), d1 = Foundation.log(0.9)
        #expect(abs(Double(l.approxKL) - 0.5 * (d0 * d0 + d1 * d1) / 3) < 1e-6)
        #expect(abs(Double(l.ratioMean) - (1.5 + 0.9 + 1) / 3) < 1e-6)
        l.loss.backward()
        // Clipped token: no gradient; token 1: d(-A ρ)/d logp / 2 = 0.9 / 2; padded: none.
        let g = try #require(new.grad).values
        #expect(g[0] == 0 && g[2] == 0)
        #expect(abs(g[1] - 0.45) < 1e-6)
    }

    @Test func clippedValueLossTakesTheLargerErrorAndTheHalf() throws {
        let v = Tensor(shape: [1, 3], values: [1, 0.625, 7], requiresGrad: true)
        let l = try ppoValueLoss(values: v, oldValues: [0.5, 0.5, 0], returns: [1, 0, 0],
                                 paddingMaskP1: [false, false, true], cliprangeValue: 0.25)
        // Token 0: V clipped to 0.75, errors 0 and 0.0625; token 1 inside: 0.390625 twice.
        #expect(l.vpred == [1, 0.625, 0])
        #expect(l.vpredClipped == [0.75, 0.625, 0])
        #expect(l.vfLosses1 == [0, 0.390625, 0])
        #expect(l.vfLosses2 == [0.0625, 0.390625, 0])
        #expect(l.loss.item == 0.5 * (0.0625 + 0.390625) / 2)
        #expect(l.clipFraction == 0.5)
        l.loss.backward()
        let g = try #require(v.grad).values
        // Token 0's larger error is the clipped one, a constant in V; token 1: 0.5 · 2 · 0.625 / 2.
        #expect(g == [0, 0.3125, 0])
    }

    @Test func totalLossAddsTheWeightedValueLossAndStatsAverage() throws {
        let new = Tensor(shape: [1, 2], values: [-1, -2])
        let l = try ppoLoss(newLogProbs: new, values: Tensor(shape: [1, 2], values: [0.5, 0.5]),
                            oldLogProbs: [-1, -2], oldValues: [0.5, 0.5], advantages: [2, -1], returns: [1.5, 0.5],
                            paddingMask: [false, false], paddingMaskP1: [false, false],
                            cliprange: 0.2, cliprangeValue: 0.2, vfCoef: 0.1)
        // ρ = 1: pg = mean(-2, 1) = -0.5; vf = 0.5 · mean(1, 0) = 0.25.
        #expect(l.policy.loss.item == -0.5 && l.value.loss.item == 0.25)
        #expect(abs(l.loss.item - (-0.5 + 0.025)) < 1e-7)
        var stats = PPOUpdateStats()
        stats.record(l, entropyMean: 2)
        stats.record(l, entropyMean: 4)
        let m = stats.metrics
        #expect(m["policy/entropy_avg"] == 3 && m["loss/policy_avg"] == -0.5 && m["val/ratio"] == 1 && m["val/ratio_var"] == 0)
    }

    @Test func temperatureAddsTheEpsilonOfTRL() {
        let scaled = temperatureScaledLogits(Tensor(shape: [2], values: [0.7000001, -1.4000002]), temperature: 0.7)
        #expect(abs(scaled.values[0] - 1) < 1e-6 && abs(scaled.values[1] + 2) < 1e-6)
        // 7 / 0.7000001 = 9.9999986, not 10: the offset is visible in float32.
        let seven = temperatureScaledLogits(Tensor(shape: [1], values: [7]), temperature: 0.7).values[0]
        #expect(seven < 10 && abs(seven - 9.9999986) < 1e-6)
    }

    @Test func entropyOfUniformAndPeakedLogits() {
        let logits = Tensor(shape: [2, 4], values: [0, 0, 0, 0,  100, 0, 0, 0])
        let e = tokenEntropies(logits: logits)
        #expect(abs(Double(e[0]) - Foundation.log(4)) < 1e-6)
        #expect(abs(e[1]) < 1e-6)
    }
}
