import Testing
import TensorCore

@Suite struct ShapeOpsTests {
    @Test func embeddingScatterAddsRepeatedIds() {
        var rng = RNG(seed: 1)
        let w = param([5, 3], &rng)
        let ids: [Int32] = [4, 1, 4, 0, 4]
        let e = embedding(w, ids: ids)
        #expect(e.shape == [5, 3])
        #expect(Array(e.values[0..<3]) == Array(w.values[12..<15]))
        checkGradients([w]) { embedding(w, ids: ids) }
    }

    @Test(arguments: [0, 1, 2, -1])
    func concatAndSlice(axis: Int) {
        var rng = RNG(seed: 2)
        var shapeB = [2, 3, 4]
        shapeB[(axis + 3) % 3] = 2
        let a = param([2, 3, 4], &rng), b = param(shapeB, &rng)
        let c = concat([a, b], axis: axis)
        let ax = (axis + 3) % 3
        #expect(c.shape[ax] == [2, 3, 4][ax] + 2)
        checkGradients([a, b]) { concat([a, b, a], axis: axis) }
        // Slicing the concatenation gives the parts back.
        #expect(c.slice(axis: axis, 0..<[2, 3, 4][ax]).values == a.values)
        #expect(c.slice(axis: axis, [2, 3, 4][ax]..<c.shape[ax]).values == b.values)
        checkGradients([a]) { a.slice(axis: axis, 1..<2) }
    }

    @Test func permuteAndTranspose() {
        var rng = RNG(seed: 3)
        let x = param([2, 3, 4], &rng)
        let p = x.permuted([2, 0, 1])
        #expect(p.shape == [4, 2, 3])
        #expect(p[3, 1, 2] == x[1, 2, 3])
        checkGradients([x]) { x.permuted([2, 0, 1]) }
        checkGradients([x]) { x.transposed(0, 2) }
        #expect(x.transposed().transposed().values == x.values)
    }

    @Test func reshapeViewsCarryGradients() {
        var rng = RNG(seed: 4)
        let x = param([2, 6], &rng)
        checkGradients([x]) { x.reshaped([3, 4]) * x.reshaped([3, -1]) }
    }

    @Test func dropoutIsSeededAndScaled() {
        let x = Tensor(shape: [1000], repeating: 1, requiresGrad: true)
        var r1 = RNG(seed: 9), r2 = RNG(seed: 9)
        let a = dropout(x, p: 0.25, rng: &r1), b = dropout(x, p: 0.25, rng: &r2)
        #expect(a.values == b.values)
        let kept = a.values.filter { $0 != 0 }
        #expect(kept.allSatisfy { abs($0 - 1 / 0.75) < 1e-6 })
        #expect(abs(Double(kept.count) / 1000 - 0.75) < 0.05)
        var r3 = RNG(seed: 9)
        #expect(dropout(x, p: 0, rng: &r3) === x)
        checkGradients([x]) {
            var r = RNG(seed: 5)
            return dropout(x, p: 0.5, rng: &r)
        }
    }
}
