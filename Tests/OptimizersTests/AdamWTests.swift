import Foundation
import Optimizers
import Testing
import TensorCore

/// torch's AdamW for one tensor, in Double: the reference the Float kernel is checked against.
struct ReferenceAdamW {
    var lr: Double, beta1: Double, beta2: Double, eps: Double, weightDecay: Double
    var p: [Double], m: [Double], v: [Double], t = 0

    init(lr: Double, beta1: Double, beta2: Double, eps: Double, weightDecay: Double, p: [Float]) {
        self.lr = lr; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps
        self.weightDecay = weightDecay
        self.p = p.map(Double.init)
        m = [Double](repeating: 0, count: p.count)
        v = m
    }

    mutating func step(_ g: [Float]) {
        t += 1
        let bc1 = 1 - pow(beta1, Double(t)), bc2 = 1 - pow(beta2, Double(t))
        for i in p.indices {
            let gi = Double(g[i])
            p[i] *= 1 - lr * weightDecay
            m[i] = beta1 * m[i] + (1 - beta1) * gi
            v[i] = beta2 * v[i] + (1 - beta2) * gi * gi
            p[i] -= lr * (m[i] / bc1) / ((v[i] / bc2).squareRoot() + eps)
        }
    }
}

/// Gradients for step `step` of parameter `k` (fixed, varied signs and magnitudes).
func handGradient(step: Int, parameter k: Int, count: Int) -> [Float] {
    (0..<count).map { i in Float(sin(Double(1 + i + 7 * k + 13 * step))) * Float(1 + (i % 3)) * 0.5 }
}

/// Two parameters: a matrix and a bias, with chosen starting values.
func smallArena() -> ParameterArena {
    let arena = ParameterArena()
    arena.add(name: "w", values: Tensor(shape: [2, 3], values: [0.5, -1, 2, 0.25, -0.75, 1.5]))
    arena.add(name: "b", values: Tensor(shape: [3], values: [0.1, -0.2, 0.3]))
    return arena
}

func setGradients(_ arena: ParameterArena, step: Int) {
    for (k, t) in arena.tensors.enumerated() {
        let g = handGradient(step: step, parameter: k, count: t.count)
        t.grad!.data.update(from: g, count: g.count)
    }
}

func expectClose(_ got: [Float], _ want: [Double], tolerance: Double = 2e-6,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(got.count == want.count, sourceLocation: sourceLocation)
    let worst = zip(got, want).map { abs(Double($0) - $1) }.max() ?? 0
    #expect(worst <= tolerance, "max difference \(worst)", sourceLocation: sourceLocation)
}

@Test(arguments: [(0.0, WeightDecayFilter.all), (0.1, .all), (0.1, .matricesOnly)])
func adamWMatchesHandComputation(weightDecay: Double, filter: WeightDecayFilter) {
    let arena = smallArena()
    let opt = AdamW(arena: arena, learningRate: 0.05, beta1: 0.9, beta2: 0.95, epsilon: 1e-8,
                    weightDecay: weightDecay, decayFilter: filter)
    var refs = arena.tensors.enumerated().map { k, t in
        ReferenceAdamW(lr: 0.05, beta1: 0.9, beta2: 0.95, eps: 1e-8,
                       weightDecay: filter.applies(arena.entries[k]) ? weightDecay : 0, p: t.values)
    }
    for step in 1...3 {
        setGradients(arena, step: step)
        opt.step()
        for k in refs.indices {
            refs[k].step(handGradient(step: step, parameter: k, count: arena.tensors[k].count))
            expectClose(arena.tensors[k].values, refs[k].p)
        }
    }
    #expect(opt.stepCount == 3)
}

@Test func adamWFirstStepIsSignedLearningRate() {
    // With m = (1-b1) g and v = (1-b2) g², bias correction makes the first update lr * sign(g).
    let arena = ParameterArena()
    let w = arena.add(name: "w", values: Tensor(shape: [4], values: [1, 1, 1, 1]))
    w.grad!.data.update(from: [3, -0.001, 250, -7], count: 4)
    let opt = AdamW(arena: arena, learningRate: 0.01, weightDecay: 0)
    opt.step()
    expectClose(w.values, [0.99, 1.01, 0.99, 1.01], tolerance: 1e-6)
}

@Test func adamWSkipsFrozenParametersAndCountsTheirStepsSeparately() {
    let arena = smallArena()
    arena.freeze { $0.name == "b" }
    let frozenStart = arena.tensor(named: "b")!.values
    let opt = AdamW(arena: arena, learningRate: 0.05, beta1: 0.9, beta2: 0.95, weightDecay: 0.1)
    var refW = ReferenceAdamW(lr: 0.05, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1,
                              p: arena.tensor(named: "w")!.values)
    for step in 1...2 {
        setGradients(arena, step: step)
        opt.step()
        refW.step(handGradient(step: step, parameter: 0, count: 6))
    }
    #expect(arena.tensor(named: "b")!.values == frozenStart)
    let saved = opt.state()
    #expect(saved.parameterSteps == [2, 0])
    let bRange = arena.entry(named: "b")!.range
    #expect(saved.expAvg[bRange].allSatisfy { $0 == 0 } && saved.expAvgSq[bRange].allSatisfy { $0 == 0 })

    // Unfrozen, "b" takes its first step (bias correction with t = 1) while "w" takes its third.
    arena.unfreezeAll()
    var refB = ReferenceAdamW(lr: 0.05, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, p: frozenStart)
    setGradients(arena, step: 3)
    opt.step()
    refW.step(handGradient(step: 3, parameter: 0, count: 6))
    refB.step(handGradient(step: 3, parameter: 1, count: 3))
    expectClose(arena.tensor(named: "w")!.values, refW.p)
    expectClose(arena.tensor(named: "b")!.values, refB.p)
    #expect(opt.state().parameterSteps == [3, 1])
}

/// A model large enough for the parallel path, with random values and per-step random gradients.
func randomArena(seed: UInt64) -> ParameterArena {
    var rng = RNG(seed: seed)
    let arena = ParameterArena()
    arena.add(name: "embed", values: .randn([257, 300], std: 0.02, rng: &rng))
    arena.add(name: "norm", values: .uniform([300], 0.5, 1.5, rng: &rng))
    arena.add(name: "head", values: .randn([300, 211], std: 0.02, rng: &rng))
    return arena
}

func randomGradients(_ arena: ParameterArena, step: Int) {
    var rng = RNG(seed: 1000 + UInt64(step))
    for t in arena.tensors {
        for i in 0..<t.count { t.grad!.data[i] = rng.normal() * 0.1 }
    }
}

@Test func adamWResumesBitIdentically() throws {
    let schedule = LRSchedule.cosine(peak: 1e-2, warmupSteps: 2, totalSteps: 6, minLR: 1e-3)
    func makeOptimizer(_ arena: ParameterArena) -> AdamW {
        AdamW(arena: arena, beta1: 0.9, beta2: 0.95, weightDecay: 0.1, decayFilter: .matricesOnly)
    }
    // Straight through.
    let straight = randomArena(seed: 3)
    let a = makeOptimizer(straight)
    for step in 1...6 {
        randomGradients(straight, step: step)
        a.step(schedule: schedule)
    }

    // Interrupted after 4 steps: values and optimizer state saved (through JSON), then resumed in
    // a fresh model and optimizer.
    let first = randomArena(seed: 3)
    let b = makeOptimizer(first)
    for step in 1...4 {
        randomGradients(first, step: step)
        b.step(schedule: schedule)
    }
    let values = first.snapshotValues()
    let json = try JSONEncoder().encode(b.state())
    let state = try JSONDecoder().decode(AdamWState.self, from: json)
    #expect(state == b.state())

    let resumed = randomArena(seed: 99)
    resumed.restoreValues(values)
    let c = makeOptimizer(resumed)
    try c.restore(state)
    #expect(c.stepCount == 4)
    for step in 5...6 {
        randomGradients(resumed, step: step)
        c.step(schedule: schedule)
    }
    #expect(resumed.snapshotValues() == straight.snapshotValues())
    #expect(c.state() == a.state())
}

@Test func adamWRejectsStateOfAnotherModel() {
    let opt = AdamW(arena: smallArena())
    setGradients(opt.arena, step: 1)
    opt.step()
    let state = opt.state()

    let other = ParameterArena()
    other.add(name: "w", shape: [2, 3])
    other.add(name: "bias", shape: [3])
    #expect(throws: OptimizerStateError.layoutMismatch("saved b, model has bias")) {
        try AdamW(arena: other).restore(state)
    }
    var truncated = state
    truncated.expAvg.removeLast()
    #expect(throws: OptimizerStateError.self) { try AdamW(arena: smallArena()).restore(truncated) }
}

// MARK: - torch fixture

/// The reference fixtures made by torch, shared by the test targets (Tests/Fixtures).
let fixtureRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures")

@Test(arguments: ["hf-tiny-gpt2", "hf-tiny-llama"])
func adamWMatchesTorchFixture(model: String) throws {
    let dir = fixtureRoot.appendingPathComponent(model)
    let params = try SafetensorsFile(url: dir.appendingPathComponent("model.safetensors"))
    let expected = try SafetensorsFile(url: dir.appendingPathComponent("expected.safetensors"))
    let arena = ParameterArena()
    for name in params.names.sorted() {
        let t = arena.add(name: name, values: try params.tensor(name))
        let g = try expected.tensor("grad." + name)
        t.grad!.data.update(from: g.data, count: g.count)
    }
    // The fixture's settings: lr 0.01, betas (0.9, 0.95), eps 1e-8, weight decay 0.1 on every tensor.
    let opt = AdamW(arena: arena, learningRate: 0.01, beta1: 0.9, beta2: 0.95, epsilon: 1e-8,
                    weightDecay: 0.1)
    opt.step()
    var worst: Float = 0
    for (entry, t) in zip(arena.entries, arena.tensors) {
        let want = try expected.tensor("after_adamw." + entry.name)
        worst = max(worst, zip(t.values, want.values).map { abs($0 - $1) }.max() ?? 0)
    }
    // The fixture promises 1e-5; the same op order lands within an ulp, so a tighter bound catches
    // a reordering (decay after the update, eps inside the square root).
    #expect(worst <= 1e-6, "\(model): max difference from torch \(worst)")
}
