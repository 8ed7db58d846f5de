import Foundation
import Testing
import TensorCore

/// Attention computed naively in Double: q [B, T, Hq·D], k/v [B, S, Hkv·D].
func referenceAttention(q: Tensor, k: Tensor, v: Tensor, heads: Int, kvHeads: Int, mask: [Float]?, causal: Bool) -> [Float] {
    let B = q.shape[0], T = q.shape[1], S = k.shape[1], D = q.shape[2] / heads
    var out = [Float](repeating: 0, count: q.count)
    for b in 0..<B {
        for h in 0..<heads {
            let kh = h / (heads / kvHeads)
            for i in 0..<T {
                var scores = [Double](repeating: -.infinity, count: S)
                for j in 0..<S {
                    if causal && j > S - T + i { continue }
                    if let mask, mask[b * S + j] == 0 { continue }
                    var s = 0.0
                    for d in 0..<D { s += Double(q[b, i, h * D + d]) * Double(k[b, j, kh * D + d]) }
                    scores[j] = s / Double(D).squareRoot()
                }
                let m = scores.max()!
                guard m > -.infinity else { continue }
                let e = scores.map { Foundation.exp($0 - m) }
                let z = e.reduce(0, +)
                for d in 0..<D {
                    var o = 0.0
                    for j in 0..<S { o += e[j] / z * Double(v[b, j, kh * D + d]) }
                    out[(b * T + i) * heads * D + h * D + d] = Float(o)
                }
            }
        }
    }
    return out
}

@Suite struct AttentionTests {
    @Test(arguments: [(4, 4, true), (4, 2, true), (4, 1, false), (2, 2, false)])
    func matchesReferenceAndGradients(heads: Int, kvHeads: Int, causal: Bool) {
        var rng = RNG(seed: UInt64(heads * 10 + kvHeads))
        let (B, T, D) = (2, 3, 4)
        let q = param([B, T, heads * D], &rng), k = param([B, T, kvHeads * D], &rng), v = param([B, T, kvHeads * D], &rng)
        let mask: [Float] = [1, 1, 1, 0, 1, 1]   // batch 1 is left-padded by one
        let out = attention(q: q, k: k, v: v, heads: heads, kvHeads: kvHeads, keyMask: mask, causal: causal)
        expectClose(out.values, referenceAttention(q: q, k: k, v: v, heads: heads, kvHeads: kvHeads, mask: mask, causal: causal),
                    tol: 1e-5, "attention forward")
        checkGradients([q, k, v]) { attention(q: q, k: k, v: v, heads: heads, kvHeads: kvHeads, keyMask: mask, causal: causal) }
    }

    @Test func fewerQueriesThanKeys() {
        var rng = RNG(seed: 21)
        let q = param([1, 2, 8], &rng), k = param([1, 5, 4], &rng), v = param([1, 5, 4], &rng)
        let out = attention(q: q, k: k, v: v, heads: 2, kvHeads: 1)
        expectClose(out.values, referenceAttention(q: q, k: k, v: v, heads: 2, kvHeads: 1, mask: nil, causal: true),
                    tol: 1e-5, "T < S")
        checkGradients([q, k, v]) { attention(q: q, k: k, v: v, heads: 2, kvHeads: 1) }
    }

    @Test func fullyMaskedRowsGiveZeros() {
        // Left padding: the first query of batch 0 sees only a padding key.
        var rng = RNG(seed: 22)
        let q = Tensor.randn([1, 3, 4], rng: &rng), k = Tensor.randn([1, 3, 4], rng: &rng), v = Tensor.randn([1, 3, 4], rng: &rng)
        let out = attention(q: q, k: k, v: v, heads: 1, kvHeads: 1, keyMask: [0, 1, 1])
        #expect(Array(out.values[0..<4]) == [0, 0, 0, 0])
        #expect(out.values.allSatisfy { $0.isFinite })
    }

    @Test func kvCacheDecodingMatchesFullAttention() {
        var rng = RNG(seed: 23)
        let (B, T, heads, kvHeads, D) = (2, 6, 4, 2, 8)
        let q = Tensor.randn([B, T, heads * D], rng: &rng), k = Tensor.randn([B, T, kvHeads * D], rng: &rng)
        let v = Tensor.randn([B, T, kvHeads * D], rng: &rng)
        let mask: [Float] = [0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
        let full = attention(q: q, k: k, v: v, heads: heads, kvHeads: kvHeads, keyMask: mask)
        let cache = KVCache(layers: 1, batch: B, capacity: 16, kvHeads: kvHeads, headDim: D)
        // A 4-token prompt, then one token at a time.
        var pieces: [Tensor] = []
        var start = 0
        for len in [4, 1, 1] {
            let r = start..<(start + len)
            let m = (0..<B).flatMap { b in mask[(b * T)..<(b * T + start + len)] }
            pieces.append(cache.attend(layer: 0, q: q.slice(axis: 1, r), k: k.slice(axis: 1, r), v: v.slice(axis: 1, r),
                                       heads: heads, kvHeads: kvHeads, keyMask: m))
            start += len
        }
        #expect(cache.length == T)
        expectClose(concat(pieces, axis: 1).values, full.values, tol: 1e-6, "cached vs full")
    }

    @Test(arguments: [RoPEConvention.rotateHalf, .interleaved])
    func ropeGradientsAndValues(convention: RoPEConvention) {
        var rng = RNG(seed: 24)
        let table = RoPETable(theta: 10_000, headDim: 4, maxPositions: 16)
        let x = param([2, 3, 8], &rng)
        let positions: [Int32] = [0, 1, 2, 0, 0, 1]
        checkGradients([x]) { rope(x, positions: positions, heads: 2, table: table, convention: convention) }
        let y = rope(x, positions: positions, heads: 2, table: table, convention: convention)
        // Position 0 is the identity; every rotation keeps the norm of each pair.
        #expect(Array(y.values[0..<8]) == Array(x.values[0..<8]))
        let pairs: [(Int, Int)] = convention == .rotateHalf ? [(0, 2), (1, 3)] : [(0, 1), (2, 3)]
        for row in 0..<6 {
            for h in 0..<2 {
                for (a, b) in pairs {
                    let i = row * 8 + h * 4
                    let before = x.values[i + a] * x.values[i + a] + x.values[i + b] * x.values[i + b]
                    let after = y.values[i + a] * y.values[i + a] + y.values[i + b] * y.values[i + b]
                    #expect(abs(before - after) < 1e-5)
                }
            }
        }
        // Explicit value: token at position 2, head 0, first pair, angle 2·θ^0 = 2 radians.
        let i = 2 * 8, (a, b) = pairs[0]
        let x0 = Double(x.values[i + a]), x1 = Double(x.values[i + b])
        #expect(abs(Double(y.values[i + a]) - (x0 * Foundation.cos(2) - x1 * Foundation.sin(2))) < 1e-5)
        #expect(abs(Double(y.values[i + b]) - (x1 * Foundation.cos(2) + x0 * Foundation.sin(2))) < 1e-5)
    }

    @Test func interleavedIsRotateHalfUnderAPermutation() {
        // GGUF stores Q/K rows permuted so that interleaved RoPE equals HF's rotate-half one.
        var rng = RNG(seed: 25)
        let D = 8, half = D / 2
        let table = RoPETable(theta: 500, headDim: D, maxPositions: 8)
        let x = Tensor.randn([1, 4, D], rng: &rng)
        // perm[j]: the rotate-half index stored at interleaved slot j (2i -> i, 2i+1 -> i + D/2).
        let perm = (0..<D).map { $0 % 2 == 0 ? $0 / 2 : $0 / 2 + half }
        let xi = Tensor(shape: x.shape, values: (0..<x.count).map { x.values[($0 / D) * D + perm[$0 % D]] })
        let positions: [Int32] = [0, 3, 5, 7]
        let yh = rope(x, positions: positions, heads: 1, table: table, convention: .rotateHalf)
        let yi = rope(xi, positions: positions, heads: 1, table: table, convention: .interleaved)
        let yhPermuted = (0..<x.count).map { yh.values[($0 / D) * D + perm[$0 % D]] }
        expectClose(yi.values, yhPermuted, tol: 1e-6, "interleaved vs rotate-half")
    }
}

@Suite struct DirectAttentionTests {
    @Test(arguments: [1, 3])
    func inferencePathMatchesReference(rows: Int) {
        // Few query rows and no gradient: the kernel that skips BLAS.
        var rng = RNG(seed: 31)
        let q = Tensor.randn([2, rows, 6 * 8], rng: &rng), k = Tensor.randn([2, 9, 2 * 8], rng: &rng)
        let v = Tensor.randn([2, 9, 2 * 8], rng: &rng)
        let mask: [Float] = [0, 1, 1, 1, 1, 1, 1, 1, 1] + [1, 1, 1, 1, 0, 1, 1, 1, 1]
        let out = Autograd.withoutGrad { attention(q: q, k: k, v: v, heads: 6, kvHeads: 2, keyMask: mask) }
        expectClose(out.values, referenceAttention(q: q, k: k, v: v, heads: 6, kvHeads: 2, mask: mask, causal: true),
                    tol: 1e-5, "direct attention")
    }
}
