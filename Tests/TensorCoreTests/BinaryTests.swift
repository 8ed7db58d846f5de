import Testing
import TensorCore

@Suite struct BinaryGradients {
    @Test(arguments: [1, 2, 3] as [UInt64])
    func sameShape(seed: UInt64) {
        var rng = RNG(seed: seed)
        let shape = randomShape(&rng)
        let a = param(shape, &rng), b = param(shape, &rng)
        let far = Tensor.uniform(shape, 0.5, 2, rng: &rng, requiresGrad: true)
        checkGradients([a, b]) { a + b }
        checkGradients([a, b]) { a - b }
        checkGradients([a, b]) { a * b }
        checkGradients([a, far]) { a / far }
        checkGradients([a]) { a * a }
    }

    @Test(arguments: [1, 2] as [UInt64])
    func trailingBroadcast(seed: UInt64) {
        var rng = RNG(seed: seed)
        let x = param([2, 3, 4], &rng), row = param([4], &rng), plane = param([3, 4], &rng)
        let scalar = param([], &rng)
        let positiveRow = Tensor.uniform([4], 0.5, 2, rng: &rng, requiresGrad: true)
        checkGradients([x, row]) { x + row }
        checkGradients([x, plane]) { x * plane }
        checkGradients([row, x]) { row - x }
        checkGradients([x, positiveRow]) { x / positiveRow }
        checkGradients([x, scalar]) { x * scalar }
        checkGradients([scalar, x]) { scalar - x }
    }

    @Test func minMaxWhere() {
        // a and b differ by at least 0.2 everywhere, so the kink is never crossed.
        var rng = RNG(seed: 7)
        let base = (0..<10).map { _ in rng.uniform(-2, 2) }
        let gap = (0..<10).map { _ in (rng.uniform() < 0.5 ? -1 : 1) * rng.uniform(0.2, 1) }
        let a = Tensor(shape: [2, 5], values: base, requiresGrad: true)
        let b = Tensor(shape: [2, 5], values: zip(base, gap).map(+), requiresGrad: true)
        checkGradients([a, b]) { minimum(a, b) }
        checkGradients([a, b]) { maximum(a, b) }
        let cond = Tensor(shape: [2, 5], values: gap.map { $0 > 0 ? 1 : 0 })
        checkGradients([a, b]) { `where`(cond, a, b) }
    }
}

@Suite struct BinaryValues {
    @Test func broadcastValues() {
        let x = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        let bias = Tensor(shape: [3], values: [10, 20, 30])
        #expect((x + bias).values == [11, 22, 33, 14, 25, 36])
        #expect((bias - x).values == [9, 18, 27, 6, 15, 24])
        #expect((x * Tensor(scalar: 2)).values == [2, 4, 6, 8, 10, 12])
        #expect(minimum(x, Tensor(shape: [2, 3], values: [0, 5, 0, 5, 0, 5])).values == [0, 2, 0, 4, 0, 5])
        let cond = Tensor(shape: [2, 3], values: [1, 0, 1, 0, 1, 0])
        #expect(`where`(cond, x, -x).values == [1, -2, 3, -4, 5, -6])
    }

    @Test func gradientsAccumulateAcrossUses() {
        // y = x·x + x: dy/dx = 2x + 1, with x used three times.
        let x = Tensor(shape: [3], values: [1, -2, 0.5], requiresGrad: true)
        (x * x + x).sum().backward()
        #expect(x.grad!.values == [3, -3, 2])
        // A second backward adds to the first.
        (x * 2).sum().backward()
        #expect(x.grad!.values == [5, -1, 4])
    }

    @Test func inferenceRecordsNothing() {
        let x = Tensor(shape: [3], values: [1, 2, 3], requiresGrad: true)
        let y = Autograd.withoutGrad { (x * x).sum() }
        #expect(!y.requiresGrad)
        let z = (x.detached() * x.detached()).sum()
        #expect(!z.requiresGrad)
    }
}
