import Foundation
import Optimizers
import Testing
import TensorCore

/// The optimizers under test, made through the protocol a checkpointer sees.
enum OptimizerKind: String, CaseIterable, CustomStringConvertible {
    case adamW, sgdMomentum, sgdPlain

    var description: String { rawValue }

    func make(_ arena: ParameterArena) -> any Optimizer {
        switch self {
        case .adamW: AdamW(arena: arena, learningRate: 1e-2, beta2: 0.95, weightDecay: 0.1, decayFilter: .matricesOnly)
        case .sgdMomentum: SGD(arena: arena, learningRate: 0.05, momentum: 0.9, weightDecay: 1e-3)
        case .sgdPlain: SGD(arena: arena, learningRate: 0.05)
        }
    }

    var bufferNames: Set<String> {
        switch self {
        case .adamW: ["exp_avg", "exp_avg_sq"]
        case .sgdMomentum: ["momentum_buffer"]
        case .sgdPlain: []
        }
    }
}

@Test(arguments: OptimizerKind.allCases)
func anExportedStateContinuesBitIdenticallyThroughTheProtocol(kind: OptimizerKind) throws {
    let straight = randomArena(seed: 11)
    let a = kind.make(straight)
    for step in 1...4 {
        randomGradients(straight, step: step)
        a.step()
    }
    let first = randomArena(seed: 11)
    let b = kind.make(first)
    for step in 1...2 {
        randomGradients(first, step: step)
        b.step()
    }
    let snapshot = b.exportState()
    #expect(Set(snapshot.buffers.keys) == kind.bufferNames)
    #expect(snapshot.buffers.values.allSatisfy { $0.count == first.usedCount })
    #expect(snapshot.stepCount == 2 && snapshot.parameterSteps == [2, 2, 2])

    let resumed = randomArena(seed: 12)
    resumed.restoreValues(first.snapshotValues())
    let c = kind.make(resumed)
    try c.importState(snapshot)
    #expect(c.stepCount == 2)
    for step in 3...4 {
        randomGradients(resumed, step: step)
        c.step()
    }
    #expect(resumed.snapshotValues() == straight.snapshotValues())
    #expect(c.exportState() == a.exportState())
}

@Test func importingAStateWithoutItsBuffersIsAClearErrorAndChangesNothing() throws {
    let arena = randomArena(seed: 13)
    let opt = OptimizerKind.adamW.make(arena)
    randomGradients(arena, step: 1)
    opt.step()
    let before = opt.exportState()
    var damaged = before
    damaged.buffers["exp_avg_sq"] = nil
    damaged.stepCount = 7
    #expect(throws: OptimizerStateError.badBuffer("exp_avg_sq is missing")) { try opt.importState(damaged) }
    #expect(opt.exportState() == before)
    // SGD with momentum needs its buffer too; an AdamW state is not one.
    let sgd = OptimizerKind.sgdMomentum.make(randomArena(seed: 13))
    #expect(throws: OptimizerStateError.badBuffer("momentum_buffer is missing")) { try sgd.importState(before) }
}
