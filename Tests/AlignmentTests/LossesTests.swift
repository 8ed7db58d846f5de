import Foundation
import Testing
import Alignment
import TensorCore

func logSigmoidD(_ x: Double) -> Double { -Foundation.log1p(Foundation.exp(-x)) }

@Suite struct PreferenceLossTests {
    let pc: [Float] = [-12.5, -20.0, -7.25, -30.0]
    let pr: [Float] = [-14.0, -18.5, -9.0, -29.0]
    let rc: [Float] = [-13.0, -19.0, -8.0, -31.0]
    let rr: [Float] = [-13.5, -19.5, -8.5, -28.0]

    @Test func dpoSigmoidEqualsTheFormula() {
        let beta: Float = 0.1
        let (loss, m) = dpoLoss(policyChosen: Tensor(shape: [4], values: pc), policyRejected: Tensor(shape: [4], values: pr),
                                referenceChosen: rc, referenceRejected: rr, beta: beta)
        var expected = 0.0, acc = 0.0, margin = 0.0, chosen = 0.0
        for i in 0..<4 {
            let hc = Double(pc[i] - rc[i]), hr = Double(pr[i] - rr[i])
            expected -= logSigmoidD(Double(beta) * (hc - hr))
            acc += hc > hr ? 1 : 0
            margin += Double(beta) * (hc - hr)
            chosen += Double(beta) * hc
        }
        #expect(abs(Double(loss.item) - expected / 4) < 1e-6)
        #expect(m["rewards/accuracies"] == acc / 4)
        #expect(abs(m["rewards/margins"]! - margin / 4) < 1e-6)
        #expect(abs(m["rewards/chosen"]! - chosen / 4) < 1e-6)
        #expect(abs(m["logps/rejected"]! - Double(pr.reduce(0, +)) / 4) < 1e-6)
    }

    @Test func cdpoAndIpoEqualTheFormulas() {
        let beta: Float = 0.2, eps: Float = 0.1
        let (cdpo, _) = dpoLoss(policyChosen: Tensor(shape: [4], values: pc), policyRejected: Tensor(shape: [4], values: pr),
                                referenceChosen: rc, referenceRejected: rr, beta: beta, type: .cdpo, labelSmoothing: eps)
        let counts = [5, 8, 3, 10], rcounts = [4, 6, 7, 9]
        let (ipo, _) = dpoLoss(policyChosen: Tensor(shape: [4], values: pc), policyRejected: Tensor(shape: [4], values: pr),
                               referenceChosen: rc, referenceRejected: rr, beta: beta, type: .ipo,
                               chosenCounts: counts, rejectedCounts: rcounts)
        var c = 0.0, i = 0.0
        for k in 0..<4 {
            let d = Double(beta) * Double((pc[k] - rc[k]) - (pr[k] - rr[k]))
            c += -(1 - Double(eps)) * logSigmoidD(d) - Double(eps) * logSigmoidD(-d)
            let h = Double(pc[k] - rc[k]) / Double(counts[k]) - Double(pr[k] - rr[k]) / Double(rcounts[k])
            i += (h - 1 / (2 * Double(beta))) * (h - 1 / (2 * Double(beta)))
        }
        #expect(abs(Double(cdpo.item) - c / 4) < 1e-6)
        #expect(abs(Double(ipo.item) - i / 4) < 1e-4)
    }

    @Test func bradleyTerryWithMarginAndCentering() {
        let c: [Float] = [1.5, -0.5, 2.0], r: [Float] = [0.5, 0.25, 2.5], margins: [Float] = [0.2, 0, 1]
        let (loss, m) = bradleyTerryLoss(chosen: Tensor(shape: [3], values: c), rejected: Tensor(shape: [3], values: r),
                                         margins: margins, centering: 0.01)
        var expected = 0.0, center = 0.0
        for k in 0..<3 {
            expected -= logSigmoidD(Double(c[k] - r[k] - margins[k]))
            center += Double(c[k] + r[k]) * Double(c[k] + r[k])
        }
        #expect(abs(Double(loss.item) - (expected / 3 + 0.01 * center / 3)) < 1e-6)
        #expect(abs(m["accuracy"]! - 1.0 / 3) < 1e-12)
        #expect(abs(m["margin"]! - Double((1.0 - 0.75 - 0.5) / 3)) < 1e-6)
    }

    @Test func sequenceLogProbsScoreOnlyMaskedTokens() {
        var rng = RNG(seed: 3)
        let logits = Tensor.randn([2, 4, 5], rng: &rng)
        let ids: [Int32] = [1, 2, 3, 4, 0, 1, 2, 3]
        let mask = [false, false, true, true, false, true, false, false]
        let (sums, counts) = sequenceLogProbs(logits: logits, ids: ids, lossMask: mask)
        #expect(counts == [2, 1])
        let ls = logSoftmax(logits).values
        // Row 0 scores tokens 2 and 3 (ids 3, 4) from logits at 1 and 2; row 1 scores token 1 (id 1) from logits at 0.
        let expected0 = ls[1 * 5 + 3] + ls[2 * 5 + 4], expected1 = ls[20 + 0 * 5 + 1]
        #expect(abs(sums.values[0] - expected0) < 1e-5 && abs(sums.values[1] - expected1) < 1e-5)
    }
}
