import Testing
import TensorCore

/// Naive row-major product of op(A) (M×K) and op(B) (K×N).
func naiveMatmul(_ a: [Float], _ b: [Float], M: Int, N: Int, K: Int, tA: Bool, tB: Bool) -> [Float] {
    var c = [Float](repeating: 0, count: M * N)
    for i in 0..<M {
        for j in 0..<N {
            var s: Double = 0
            for k in 0..<K {
                let av = tA ? a[k * M + i] : a[i * K + k]
                let bv = tB ? b[j * K + k] : b[k * N + j]
                s += Double(av) * Double(bv)
            }
            c[i * N + j] = Float(s)
        }
    }
    return c
}

@Suite struct MatmulTests {
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func twoDimensional(tA: Bool, tB: Bool) {
        var rng = RNG(seed: 11)
        let (M, N, K) = (3, 4, 5)
        let a = param(tA ? [K, M] : [M, K], &rng), b = param(tB ? [N, K] : [K, N], &rng)
        let c = matmul(a, b, transposeA: tA, transposeB: tB)
        #expect(c.shape == [M, N])
        expectClose(c.values, naiveMatmul(a.values, b.values, M: M, N: N, K: K, tA: tA, tB: tB), "forward")
        checkGradients([a, b]) { matmul(a, b, transposeA: tA, transposeB: tB) }
    }

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func batched(tA: Bool, tB: Bool) {
        var rng = RNG(seed: 12)
        let (B, M, N, K) = (2, 3, 2, 4)
        let a = param(tA ? [B, K, M] : [B, M, K], &rng), b = param(tB ? [B, N, K] : [B, K, N], &rng)
        let c = matmul(a, b, transposeA: tA, transposeB: tB)
        #expect(c.shape == [B, M, N])
        for i in 0..<B {
            let ai = Array(a.values[(i * M * K)..<((i + 1) * M * K)]), bi = Array(b.values[(i * K * N)..<((i + 1) * K * N)])
            expectClose(Array(c.values[(i * M * N)..<((i + 1) * M * N)]),
                        naiveMatmul(ai, bi, M: M, N: N, K: K, tA: tA, tB: tB), "batch \(i)")
        }
        checkGradients([a, b]) { matmul(a, b, transposeA: tA, transposeB: tB) }
    }

    @Test(arguments: [false, true])
    func sharedRightOperand(tA: Bool) {
        // [B, T, K] x [K, N]: folded into one product when not transposed, a loop otherwise.
        var rng = RNG(seed: 13)
        let a = param(tA ? [2, 4, 3] : [2, 3, 4], &rng), w = param([4, 5], &rng), wt = param([5, 4], &rng)
        checkGradients([a, w]) { matmul(a, w, transposeA: tA) }
        checkGradients([a, wt]) { matmul(a, wt, transposeA: tA, transposeB: true) }
    }

    @Test func linearWithBias() {
        var rng = RNG(seed: 14)
        let x = param([2, 3, 4], &rng), w = param([5, 4], &rng), b = param([5], &rng)
        let y = linear(x, weight: w, bias: b)
        #expect(y.shape == [2, 3, 5])
        checkGradients([x, w, b]) { linear(x, weight: w, bias: b) }
    }

    @Test func linearBiasGradientOverManyRows() {
        // Enough rows for the parallel column sums.
        var rng = RNG(seed: 16)
        let x = Tensor.randn([8192, 16], rng: &rng), w = Tensor.randn([24, 16], rng: &rng)
        let b = Tensor.randn([24], rng: &rng, requiresGrad: true)
        let g = Tensor.randn([8192, 24], rng: &rng)
        let y = linear(x, weight: w, bias: b)
        expectClose(y.values, (matmul(x, w, transposeB: true) + b).values, tol: 1e-6, "fused bias")
        y.backward(gradient: g)
        let gv = g.values
        let expected = (0..<24).map { j in Float((0..<8192).reduce(0.0) { $0 + Double(gv[$1 * 24 + j]) }) }
        expectClose(b.grad!.values, expected, tol: 1e-4, "bias gradient")
    }

    @Test func largeProductMatchesNaive() {
        var rng = RNG(seed: 15)
        let (M, N, K) = (67, 45, 129)
        let a = Tensor.randn([M, K], rng: &rng), b = Tensor.randn([K, N], rng: &rng)
        expectClose(matmul(a, b).values, naiveMatmul(a.values, b.values, M: M, N: N, K: K, tA: false, tB: false),
                    tol: 1e-5, "67x45x129")
    }
}

@Suite struct MatrixVectorTests {
    // M == 1 or N == 1 take the sgemv path; every transpose combination, forward and backward.
    @Test(arguments: [(1, 5, 4), (4, 1, 5), (1, 1, 6)])
    func vectorShapes(M: Int, N: Int, K: Int) {
        for (tA, tB) in [(false, false), (true, false), (false, true), (true, true)] {
            var rng = RNG(seed: UInt64(M * 100 + N * 10 + K))
            let a = param(tA ? [K, M] : [M, K], &rng), b = param(tB ? [N, K] : [K, N], &rng)
            expectClose(matmul(a, b, transposeA: tA, transposeB: tB).values,
                        naiveMatmul(a.values, b.values, M: M, N: N, K: K, tA: tA, tB: tB), "M \(M) N \(N) tA \(tA) tB \(tB)")
            checkGradients([a, b]) { matmul(a, b, transposeA: tA, transposeB: tB) }
        }
        var rng = RNG(seed: 9)
        let x = param([1, 1, 6], &rng), w = param([3, 6], &rng), bias = param([3], &rng)
        checkGradients([x, w, bias]) { linear(x, weight: w, bias: bias) }
    }
}
