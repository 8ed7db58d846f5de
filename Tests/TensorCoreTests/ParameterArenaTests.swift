import Testing
import TensorCore

/// The arena's gradient buffer as an array (layout order).
private func gradArray(_ arena: ParameterArena) -> [Float] {
    Array(UnsafeBufferPointer(start: arena.grads.base, count: arena.usedCount))
}

/// Fills every parameter's gradient view with `f(entry index, element index)`.
private func fillGrads(_ arena: ParameterArena, _ f: (Int, Int) -> Float) {
    for (k, t) in arena.tensors.enumerated() {
        for i in 0..<t.count { t.grad!.data[i] = f(k, i) }
    }
}

@Test func viewsAliasTheArena() {
    let arena = ParameterArena()
    let a = arena.add(name: "a", shape: [2, 3])
    let b = arena.add(name: "b", values: Tensor(shape: [4], values: [1, 2, 3, 4]))
    #expect(a.values == [Float](repeating: 0, count: 6))
    #expect(a.requiresGrad && b.requiresGrad)
    #expect(a.name == "a" && arena.tensor(named: "b") === b)

    a[1, 2] = 5
    #expect(arena.values.base[arena.entry(named: "a")!.offset + 5] == 5)
    let bOffset = arena.entry(named: "b")!.offset
    #expect(bOffset % ParameterArena.alignment == 0 && bOffset >= 6)
    arena.values.base[bOffset + 3] = 40
    #expect(b.values == [1, 2, 3, 40])
    // The pinned gradient is the same offset in `grads`.
    b.grad!.data[1] = 7
    #expect(arena.grads.base[bOffset + 1] == 7)
    #expect(arena.parameterCount == 10 && arena.usedCount == bOffset + 4)
}

@Test func growthKeepsEarlierViewsValid() {
    let arena = ParameterArena()
    let small = arena.add(name: "small", values: Tensor(shape: [3], values: [1, 2, 3]))
    small.grad!.data[2] = 9
    let big = arena.add(name: "big", shape: [300, 100])  // forces the buffers to grow
    #expect(arena.values.capacity >= 30_016)
    #expect(small.values == [1, 2, 3])
    #expect(small.grad!.values == [0, 0, 9])
    small[0] = -1
    #expect(arena.values.base[0] == -1)
    big[299, 99] = 2
    #expect(arena.values.base[arena.entry(named: "big")!.range.upperBound - 1] == 2)
    // Every parameter starts on a 64-byte boundary.
    for t in arena.tensors { #expect(Int(bitPattern: t.data) % 64 == 0) }
}

@Test func backwardAccumulatesIntoTheArenaAndFrozenRecordsNothing() {
    let arena = ParameterArena()
    let w = arena.add(name: "w", values: Tensor(shape: [1], values: [3]))
    let x = Tensor(shape: [1], values: [2])
    (w * x).backward()
    (w * x).backward()
    #expect(arena.grads.base[0] == 4)

    arena.freeze { $0.name == "w" }
    #expect(!w.requiresGrad && arena.entry(named: "w")!.frozen)
    let y = w * x
    #expect(!y.requiresGrad)
    y.backward()
    #expect(arena.grads.base[0] == 4)

    arena.unfreezeAll()
    #expect(w.requiresGrad)
    arena.zeroGrad()
    #expect(arena.grads.base[0] == 0)
}

@Test func freezingAndTrainableRanges() {
    let arena = ParameterArena()
    arena.add(name: "embed.weight", shape: [5, 4])     // 20 -> padded to 32
    arena.add(name: "layer.weight", shape: [3, 3])     // 9 at 32
    arena.add(name: "layer.bias", shape: [3])          // 3 at 48
    arena.add(name: "head.weight", shape: [2, 4])      // 8 at 64
    #expect(arena.entries.map(\.offset) == [0, 32, 48, 64])
    #expect(arena.parameterCount == 40 && arena.trainableCount == 40)
    #expect(arena.trainableRanges == [0..<72])

    arena.freeze { $0.name.hasPrefix("layer.") }
    #expect(arena.trainableCount == 28)
    #expect(arena.trainableRanges == [0..<20, 64..<72])
    #expect(arena.tensors.map(\.requiresGrad) == [true, false, false, true])

    arena.unfreeze { $0.name == "layer.bias" }
    #expect(arena.trainableRanges == [0..<20, 48..<72])

    arena.freezeAll()
    #expect(arena.trainableCount == 0 && arena.trainableRanges.isEmpty)
    #expect(arena.gradNorm() == 0)
}

@Test func zeroGradClearsEveryGradient() {
    let arena = ParameterArena()
    arena.add(name: "a", shape: [7])
    arena.add(name: "b", shape: [3, 5])
    arena.freeze { $0.name == "a" }
    fillGrads(arena) { k, i in Float(k * 100 + i + 1) }
    #expect(gradArray(arena).contains { $0 != 0 })
    arena.zeroGrad()
    #expect(gradArray(arena).allSatisfy { $0 == 0 })
    #expect(arena.tensors.allSatisfy { $0.grad!.values.allSatisfy { $0 == 0 } })
}

@Test func gradNormAndClippingMatchHandComputation() {
    let arena = ParameterArena()
    arena.add(name: "a", shape: [2, 2])
    arena.add(name: "frozen", shape: [3])
    arena.add(name: "b", shape: [2])
    // a = [1, -2, 3, -4], frozen = [100, 100, 100] (ignored), b = [0.5, 2]
    fillGrads(arena) { k, i in
        switch k {
        case 0: return [1, -2, 3, -4][i]
        case 1: return 100
        default: return [0.5, 2][i]
        }
    }
    arena.freeze { $0.name == "frozen" }
    let sumSquares = 1.0 + 4 + 9 + 16 + 0.25 + 4
    let norm = sumSquares.squareRoot()
    #expect(abs(Double(arena.gradNorm()) - norm) < 1e-6)

    // Above the norm: nothing changes.
    #expect(abs(Double(arena.clipGradNorm(maxNorm: 10)) - norm) < 1e-6)
    #expect(arena.tensor(named: "a")!.grad!.values == [1, -2, 3, -4])

    // Below: scaled by maxNorm / (norm + 1e-6); frozen gradients untouched; pre-clip norm returned.
    let returned = arena.clipGradNorm(maxNorm: 1)
    #expect(abs(Double(returned) - norm) < 1e-6)
    let scale = 1 / (norm + 1e-6)
    let a = arena.tensor(named: "a")!.grad!.values
    let b = arena.tensor(named: "b")!.grad!.values
    for (got, raw) in zip(a + b, [1, -2, 3, -4, 0.5, 2] as [Double]) {
        #expect(abs(Double(got) - raw * scale) < 1e-6)
    }
    #expect(arena.tensor(named: "frozen")!.grad!.values == [100, 100, 100])
    #expect(abs(arena.gradNorm() - 1) < 1e-5)
}

@Test func scaleGradsScalesOnlyTheTrainableGradients() {
    let arena = ParameterArena()
    arena.add(name: "a", shape: [2, 3])
    arena.add(name: "frozen", shape: [2])
    arena.add(name: "b", shape: [5])
    fillGrads(arena) { k, i in Float(k * 10 + i) - 3 }
    arena.freeze { $0.name == "frozen" }
    arena.scaleGrads(by: 0.25)
    #expect(arena.tensor(named: "a")!.grad!.values == [-3, -2, -1, 0, 1, 2].map { $0 * 0.25 })
    #expect(arena.tensor(named: "frozen")!.grad!.values == [7, 8])
    #expect(arena.tensor(named: "b")!.grad!.values == [17, 18, 19, 20, 21].map { $0 * 0.25 })
}

@Test func gradNormOfALargeArenaIsAccurate() {
    let arena = ParameterArena()
    var rng = RNG(seed: 7)
    arena.add(name: "w1", shape: [300, 700])
    arena.add(name: "b1", shape: [701])
    arena.add(name: "w2", shape: [500, 333])
    var expected = 0.0
    fillGrads(arena) { _, _ in
        let g = rng.normal()
        expected += Double(g) * Double(g)
        return g
    }
    let norm = arena.gradNorm()
    #expect(abs(Double(norm) - expected.squareRoot()) / expected.squareRoot() < 1e-6)
}

@Test func copyValuesAndSnapshots() {
    func build() -> ParameterArena {
        let arena = ParameterArena()
        arena.add(name: "x", shape: [3])
        arena.add(name: "y", shape: [2, 2])
        return arena
    }
    let policy = build()
    policy.tensor(named: "x")!.data.update(from: [1, 2, 3], count: 3)
    policy.tensor(named: "y")![1, 1] = 4
    let reference = build()
    reference.copyValues(from: policy)
    reference.freezeAll()
    #expect(reference.tensor(named: "x")!.values == [1, 2, 3])
    #expect(reference.tensor(named: "y")!.values == [0, 0, 0, 4])
    #expect(reference.tensors.allSatisfy { !$0.requiresGrad })

    let snapshot = policy.snapshotValues()
    #expect(snapshot.count == policy.usedCount)
    policy.tensor(named: "x")![0] = 99
    policy.restoreValues(snapshot)
    #expect(policy.tensor(named: "x")!.values == [1, 2, 3])

    let other = ParameterArena()
    other.add(name: "x", shape: [4])
    #expect(!other.hasSameLayout(as: policy) && reference.hasSameLayout(as: policy))
}

@Test func duplicateNamesAreAProgrammerError() async {
    await #expect(processExitsWith: .failure) {
        let arena = ParameterArena()
        arena.add(name: "w", shape: [1])
        arena.add(name: "w", shape: [1])
    }
}

@Test func parallelSlicesCoverEveryElementOnce() {
    let ranges = [5..<100_005, 200_000..<200_000, 300_000..<330_017, 400_000..<400_001]
    let hits = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 400_001)
    defer { hits.deallocate() }
    hits.initialize(repeating: 0)
    let rangeSeen = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: ranges.count * Threads.count)
    defer { rangeSeen.deallocate() }
    rangeSeen.initialize(repeating: 0)
    // Expectations are checked after the loop, on the test's own thread.
    parallelForEachSlice(of: ranges, grain: 1000) { chunk, r, slice in
        let inside = chunk < Threads.count && ranges[r].contains(slice.lowerBound)
            && slice.upperBound <= ranges[r].upperBound
        rangeSeen[min(chunk, Threads.count - 1) * ranges.count + r] = inside ? 1 : 2
        for i in slice { hits[i] &+= 1 }
    }
    #expect(!rangeSeen.contains(2))
    let expected = ranges.reduce(into: [Int]()) { $0 += Array($1) }
    #expect(hits.enumerated().filter { $0.element != 0 }.map(\.offset) == expected)
    #expect(hits.allSatisfy { $0 <= 1 })
    // The empty range is never handed out.
    #expect((0..<Threads.count).allSatisfy { rangeSeen[$0 * ranges.count + 1] == 0 })
}
