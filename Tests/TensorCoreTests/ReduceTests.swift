import Foundation
import Testing
import TensorCore

@Suite struct ReduceTests {
    @Test(arguments: [1, 2, 3] as [UInt64])
    func sumsAndMeans(seed: UInt64) {
        var rng = RNG(seed: seed)
        let x = param([2, 3, 4], &rng)
        checkGradients([x]) { x.sum() }
        checkGradients([x]) { x.mean() }
        for axis in [0, 1, 2, -1] {
            checkGradients([x]) { x.sum(axis: axis) }
            checkGradients([x]) { x.mean(axis: axis, keepDim: true) }
        }
    }

    @Test func axisValues() {
        let x = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        #expect(x.sum(axis: 0).values == [5, 7, 9])
        #expect(x.sum(axis: 1).values == [6, 15])
        #expect(x.mean(axis: -1, keepDim: true).shape == [2, 1])
        #expect(x.mean().item == 3.5)
    }

    @Test func largeSumIsAccurate() {
        // 3M elements of 0.1: a naive Float running sum drifts by far more than 1e-4 relative.
        let n = 3_000_000
        let x = Tensor(shape: [n], repeating: 0.1)
        let exact = Double(Float(0.1)) * Double(n)
        #expect(abs(Double(x.sum().item) - exact) / exact < 1e-6)
    }

    @Test(arguments: [1, 2] as [UInt64])
    func softmaxGradients(seed: UInt64) {
        var rng = RNG(seed: seed)
        let x = param([3, 5], &rng, std: 2)
        checkGradients([x]) { softmax(x) }
        checkGradients([x]) { logSoftmax(x) }
    }

    @Test func softmaxValues() {
        var rng = RNG(seed: 3)
        let x = Tensor.randn([4, 7], std: 5, rng: &rng)
        let v = x.values
        var expected = [Float](), expectedLog = [Float]()
        for r in 0..<4 {
            let row = v[(r * 7)..<(r * 7 + 7)].map(Double.init)
            let m = row.max()!
            let s = row.reduce(0) { $0 + Foundation.exp($1 - m) }
            expected += row.map { Float(Foundation.exp($0 - m) / s) }
            expectedLog += row.map { Float($0 - m - Foundation.log(s)) }
        }
        expectClose(softmax(x).values, expected, tol: 1e-6, "softmax")
        expectClose(logSoftmax(x).values, expectedLog, tol: 1e-6, "logSoftmax")
        // Huge logits do not overflow.
        let big = Tensor(shape: [1, 3], values: [1000, 1000, -1000])
        #expect(softmax(big).values == [0.5, 0.5, 0])
    }
}
