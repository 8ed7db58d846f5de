import Foundation
import Optimizers
import Testing
import TensorCore

/// torch's SGD for one tensor, in Double.
struct ReferenceSGD {
    var lr: Double, momentum: Double, dampening: Double, nesterov: Bool, weightDecay: Double
    var p: [Double], buffer: [Double]? = nil

    mutating func step(_ g: [Float]) {
        var d = zip(g, p).map { Double($0) + weightDecay * $1 }
        if momentum != 0 {
            let b = buffer.map { zip($0, d).map { momentum * $0 + (1 - dampening) * $1 } } ?? d
            buffer = b
            d = nesterov ? zip(d, b).map { $0 + momentum * $1 } : b
        }
        p = zip(p, d).map { $0 - lr * $1 }
    }
}

@Test(arguments: [
    (0.0, 0.0, false, 0.0),   // plain SGD
    (0.0, 0.0, false, 0.01),  // with weight decay
    (0.9, 0.0, false, 0.01),  // momentum
    (0.9, 0.3, false, 0.0),   // momentum with dampening
    (0.9, 0.0, true, 0.01),   // Nesterov
])
func sgdMatchesHandComputation(momentum: Double, dampening: Double, nesterov: Bool, weightDecay: Double) {
    let arena = smallArena()
    let opt = SGD(arena: arena, learningRate: 0.1, momentum: momentum, dampening: dampening,
                  nesterov: nesterov, weightDecay: weightDecay)
    var refs = arena.tensors.map {
        ReferenceSGD(lr: 0.1, momentum: momentum, dampening: dampening, nesterov: nesterov,
                     weightDecay: weightDecay, p: $0.values.map(Double.init))
    }
    for step in 1...3 {
        setGradients(arena, step: step)
        opt.step()
        for k in refs.indices {
            refs[k].step(handGradient(step: step, parameter: k, count: arena.tensors[k].count))
            expectClose(arena.tensors[k].values, refs[k].p)
        }
    }
}

@Test func sgdSkipsFrozenParametersAndDecaysByFilter() {
    let arena = smallArena()
    arena.freeze { $0.name == "w" }
    let frozen = arena.tensor(named: "w")!.values
    let opt = SGD(arena: arena, learningRate: 0.1, momentum: 0.9, weightDecay: 0.5, decayFilter: .matricesOnly)
    var ref = ReferenceSGD(lr: 0.1, momentum: 0.9, dampening: 0, nesterov: false, weightDecay: 0,
                           p: arena.tensor(named: "b")!.values.map(Double.init))
    for step in 1...2 {
        setGradients(arena, step: step)
        opt.step()
        ref.step(handGradient(step: step, parameter: 1, count: 3))
    }
    #expect(arena.tensor(named: "w")!.values == frozen)
    expectClose(arena.tensor(named: "b")!.values, ref.p)
}

@Test func sgdResumesBitIdentically() throws {
    func makeOptimizer(_ arena: ParameterArena) -> SGD {
        SGD(arena: arena, learningRate: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-3)
    }
    let straight = randomArena(seed: 5)
    let a = makeOptimizer(straight)
    for step in 1...4 {
        randomGradients(straight, step: step)
        a.step()
    }
    let first = randomArena(seed: 5)
    let b = makeOptimizer(first)
    for step in 1...2 {
        randomGradients(first, step: step)
        b.step()
    }
    let state = try JSONDecoder().decode(SGDState.self, from: JSONEncoder().encode(b.state()))
    let resumed = randomArena(seed: 6)
    resumed.restoreValues(first.snapshotValues())
    let c = makeOptimizer(resumed)
    try c.restore(state)
    for step in 3...4 {
        randomGradients(resumed, step: step)
        c.step()
    }
    #expect(resumed.snapshotValues() == straight.snapshotValues())
}
