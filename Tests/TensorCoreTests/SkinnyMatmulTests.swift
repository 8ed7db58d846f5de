import Testing
@testable import TensorCore

/// Row-major x[m×k]·op(w) in Double, and the bound Σ|x||w| on each element's magnitude terms.
private func reference(_ x: [Float], _ w: [Float], _ bias: [Float]?, m: Int, n: Int, k: Int,
                       layout: WeightLayout) -> (values: [Double], magnitudes: [Double]) {
    var values = [Double](repeating: 0, count: m * n), magnitudes = values
    for r in 0..<m {
        for j in 0..<n {
            var s = Double(bias?[j] ?? 0), a = abs(s)
            for i in 0..<k {
                let wv = Double(layout == .outputMajor ? w[j * k + i] : w[i * n + j])
                s += Double(x[r * k + i]) * wv
                a += abs(Double(x[r * k + i]) * wv)
            }
            values[r * n + j] = s
            magnitudes[r * n + j] = a
        }
    }
    return (values, magnitudes)
}

@Suite struct SkinnyMatmulTests {
    // Any float32 sum of k products, in any order, is within γ(k+1)·Σ|x·w| (γ(j) ≈ j·2⁻²⁴) of the
    // exact value (Higham, Accuracy and Stability, 3.1; an FMA only removes roundings). The kernel
    // and BLAS are each checked against the exact (Double) product with that bound, so they agree
    // to within twice it whatever order each sums in.
    func check(m: Int, n: Int, k: Int, layout: WeightLayout, bias withBias: Bool, seed: UInt64,
               sourceLocation: SourceLocation = #_sourceLocation) {
        var rng = RNG(seed: seed)
        let x = Tensor.randn([m, k], rng: &rng)
        let w = Tensor.randn(layout == .outputMajor ? [n, k] : [k, n], rng: &rng)
        let bias = withBias ? Tensor.randn([n], rng: &rng) : nil
        let exact = reference(x.values, w.values, bias?.values, m: m, n: n, k: k, layout: layout)
        let gamma = Double(k + 1) * 0x1p-24 / (1 - Double(k + 1) * 0x1p-24)
        func expectWithinBound(_ y: [Float], _ what: String) {
            var worst = 0.0, at = 0
            for i in y.indices {
                let e = abs(Double(y[i]) - exact.values[i]) / (gamma * exact.magnitudes[i] + Double.leastNormalMagnitude)
                if e > worst || e.isNaN { worst = e.isNaN ? .infinity : e; at = i }
            }
            #expect(worst <= 1, "\(what) m \(m) n \(n) k \(k) \(layout): element \(at) is \(y[at]), exact \(exact.values[at])",
                    sourceLocation: sourceLocation)
        }
        // BLAS, as the linear layers call it.
        var blas = layout == .outputMajor ? matmul(x, w, transposeB: true) : matmul(x, w)
        if let bias { blas = blas + bias }
        expectWithinBound(blas.values, "BLAS")
        for width in [8, 16] {
            let y = Tensor(shape: [m, n], repeating: .nan)
            if width == 8 {
                skinnyMatmul(SIMD8<Float>.self, m: m, n: n, k: k, x.data, ldx: k, w.data, layout: layout, bias: bias?.data, y.data, ldy: n)
            } else {
                skinnyMatmul(SIMD16<Float>.self, m: m, n: n, k: k, x.data, ldx: k, w.data, layout: layout, bias: bias?.data, y.data, ldy: n)
            }
            expectWithinBound(y.values, "SIMD\(width) kernel")
        }
    }

    @Test(arguments: [WeightLayout.outputMajor, .inputMajor])
    func everyRowCountWithOddShapes(layout: WeightLayout) {
        // k and n not multiples of 8 or 16, nor n of the 4-column or 2-vector groups.
        for m in 1...16 {
            for (k, n) in [(37, 13), (67, 35), (5, 3), (16, 33)] {
                check(m: m, n: n, k: k, layout: layout, bias: m % 2 == 0, seed: UInt64(m * 1000 + k * 10 + n))
            }
        }
    }

    @Test(arguments: [WeightLayout.outputMajor, .inputMajor])
    func largeProductsSplitOverThreads(layout: WeightLayout) {
        // 301 × 1003 weights: more than two threads' worth of chunks, with a column tail.
        #expect(workerCount((1003 + 31) / 32, grain: Swift.max(1, skinnyChunkFloats / (32 * 301))) > 1 || Threads.count == 1)
        for m in [1, 3, 8, 16] { check(m: m, n: 1003, k: 301, layout: layout, bias: true, seed: UInt64(m)) }
    }

    @Test func emptyInnerDimensionGivesTheBias() {
        let bias = Tensor(shape: [3], values: [1, 2, 3])
        let y = Tensor(shape: [2, 3], repeating: .nan), x = Tensor(shape: [2, 1], repeating: 0)
        skinnyMatmul(m: 2, n: 3, k: 0, x.data, ldx: 0, x.data, layout: .outputMajor, bias: bias.data, y.data, ldy: 3)
        #expect(y.values == [1, 2, 3, 1, 2, 3])
    }

    @Test func inferenceLinearMatchesLinearAndRecordsNothing() {
        var rng = RNG(seed: 3)
        let w = Tensor.randn([29, 41], rng: &rng, requiresGrad: true), b = Tensor.randn([29], rng: &rng)
        let x = Tensor.randn([2, 3, 41], rng: &rng)
        let fast = Autograd.withoutGrad { inferenceLinear(x, weight: w, bias: b) }
        let blas = Autograd.withoutGrad { SkinnyMatmul.$isEnabled.withValue(false) { inferenceLinear(x, weight: w, bias: b) } }
        #expect(fast.shape == [2, 3, 29] && !fast.requiresGrad)
        expectClose(fast.values, blas.values, tol: 1e-5, "6 rows")
        // With a gradient to record it is `linear`, graph and all.
        let recorded = inferenceLinear(x, weight: w, bias: b)
        #expect(recorded.requiresGrad)
        expectClose(recorded.values, blas.values, tol: 0, "recorded")
        // More rows than a decoding batch go to BLAS.
        let many = Tensor.randn([17, 41], rng: &rng)
        expectClose(Autograd.withoutGrad { inferenceLinear(many, weight: w, bias: b) }.values,
                    linear(many, weight: w, bias: b).values, tol: 0, "17 rows")
    }
}
