import Foundation
import Testing
import TensorCore

@Suite struct LossesTests {
    @Test(arguments: [1, 2, 3] as [UInt64])
    func crossEntropyGradients(seed: UInt64) {
        var rng = RNG(seed: seed)
        let logits = param([2, 3, 7], &rng, std: 2)
        let targets: [Int32] = (0..<6).map { $0 == 1 || $0 == 4 ? ignoreIndex : Int32(rng.int(below: 7)) }
        checkGradients([logits]) { crossEntropy(logits: logits, targets: targets) }
    }

    @Test func crossEntropyValue() {
        var rng = RNG(seed: 8)
        let logits = Tensor.randn([4, 6], std: 3, rng: &rng)
        let targets: [Int32] = [2, ignoreIndex, 0, 5]
        let v = logits.values.map(Double.init)
        var total = 0.0, n = 0.0
        for r in 0..<4 where targets[r] >= 0 {
            let row = v[(r * 6)..<(r * 6 + 6)]
            let m = row.max()!
            let lse = m + Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - m) })
            total += lse - row[r * 6 + Int(targets[r])]
            n += 1
        }
        #expect(abs(Double(crossEntropy(logits: logits, targets: targets).item) - total / n) < 1e-6)
    }

    @Test func allIgnoredIsZeroNotNaN() {
        let logits = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6], requiresGrad: true)
        let loss = crossEntropy(logits: logits, targets: [ignoreIndex, ignoreIndex])
        #expect(loss.item == 0)
        loss.backward()
        #expect(logits.grad!.values.allSatisfy { $0 == 0 })
    }

    @Test(arguments: [1, 2] as [UInt64])
    func gatherLogProbsGradients(seed: UInt64) {
        var rng = RNG(seed: seed)
        let logits = param([2, 2, 5], &rng, std: 2)
        let ids: [Int32] = [3, 0, ignoreIndex, 4]
        checkGradients([logits]) { gatherLogProbs(logits: logits, ids: ids) }
        let lp = gatherLogProbs(logits: logits.detached(), ids: ids)
        #expect(lp.shape == [2, 2])
        let ls = logSoftmax(logits.detached()).values
        expectClose(lp.values, [ls[3], ls[5], 0, ls[15 + 4]], tol: 1e-6, "log-probs")
    }
}
