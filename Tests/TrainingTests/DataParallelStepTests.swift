import DataParallel
import Foundation
import Testing
import TensorCore
import Training

/// Two processes whose shares were identical, seen from one of them: a sum doubles every value,
/// max and min leave them. Records the element count of each gradient all-reduce.
final class MirrorCommunicator: Communicator, @unchecked Sendable {
    var rank: Int { 0 }
    var size: Int { 2 }
    var reducedCounts: [Int] = []
    /// Added to the first value of every max reduction (a process reporting other metrics).
    var skew = 0.0
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
        reducedCounts.append(count)
        for i in 0..<count { buffer[i] *= 2 }
    }
    func allReduce(_ values: inout [Double], _ op: ReduceOp) throws {
        switch op {
        case .sum: values = values.map { $0 * 2 }
        case .max: values[0] += skew
        case .min: break
        }
    }
    func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) throws {}
    func barrier() throws {}
}

/// An arena of three parameters (the middle one frozen: two trainable ranges) and a loss on it.
private func twoRangeArena() -> (ParameterArena, () -> Tensor) {
    let arena = ParameterArena()
    let a = arena.add(name: "a", values: Tensor(shape: [5], values: [0.5, -1, 2, 0.25, 3]))
    _ = arena.add(name: "frozen", values: Tensor(shape: [3], values: [1, 1, 1]))
    let c = arena.add(name: "c", values: Tensor(shape: [4], values: [-2, 0.75, 1.5, -0.5]))
    arena.freeze { $0.name == "frozen" }
    return (arena, { (a * a).sum() * 0.5 + (c * c * c).sum() * 0.25 })
}

/// Identical shares on two processes give exactly the one-process step: gradients summed over
/// the buckets (several pieces through the staging buffer included), items and losses summed,
/// then the same mean.
@Test func aDataParallelStepOfIdenticalSharesIsTheOneProcessStep() throws {
    let (alone, lossAlone) = twoRangeArena()
    let recorderAlone = GradientRecorder(arena: alone)
    let one = OptimizerStep(optimizer: recorderAlone, maxGradNorm: 0)
    try one.accumulate(loss: lossAlone(), items: 3, metrics: ["m": 1.5])
    let expected = one.step(learningRate: 0.1)

    let (arena, loss) = twoRangeArena()
    let recorder = GradientRecorder(arena: arena)
    let step = OptimizerStep(optimizer: recorder, maxGradNorm: 0)
    let mirror = MirrorCommunicator()
    try step.accumulate(loss: loss(), items: 3, metrics: ["m": 1.5])
    let result = try step.step(learningRate: 0.1, over: mirror, bucketElements: 3)
    #expect(result.items == 6 && result.microBatches == 2)
    #expect(result.loss == expected.loss && result.metrics == expected.metrics && result.gradNorm == expected.gradNorm)
    #expect(recorder.gradients == recorderAlone.gradients)
    // Buckets of 3 over the trainable ranges in arena order: a (5 elements) then c (4), the
    // frozen parameter skipped; a bucket may join the end of one range and the start of the next.
    let ranges = arena.trainableRanges
    #expect(ranges.count == 2)
    #expect(mirror.reducedCounts.reduce(0, +) == ranges.reduce(0) { $0 + $1.count })
    #expect(mirror.reducedCounts.allSatisfy { $0 <= 3 })
    #expect(mirror.reducedCounts.dropLast().allSatisfy { $0 == 3 })
    // The frozen gradient stays zero; the step zeroed the rest.
    #expect(recorder.gradients[0][ranges[0].upperBound..<ranges[1].lowerBound].allSatisfy { $0 == 0 })
}

/// Processes that report different metrics cannot be summed side by side: a clear error.
@Test func processesReportingDifferentMetricsAreAnError() throws {
    let (arena, loss) = twoRangeArena()
    let step = OptimizerStep(optimizer: GradientRecorder(arena: arena), maxGradNorm: 1)
    let mirror = MirrorCommunicator()
    mirror.skew = 1
    try step.accumulate(loss: loss(), items: 2, metrics: ["accuracy": 1])
    var message = ""
    do { _ = try step.step(learningRate: 0.1, over: mirror) } catch { message = "\(error)" }
    #expect(message.contains("different metrics"), "\(message)")
}

/// Alone, the data-parallel step is the plain step and calls no collective.
@Test func aSingleProcessStepCallsNoCollective() throws {
    let (arena, loss) = twoRangeArena()
    let step = OptimizerStep(optimizer: GradientRecorder(arena: arena), maxGradNorm: 1)
    try step.accumulate(loss: loss(), items: 2)
    let result = try step.step(learningRate: 0.1, over: SingleProcess())
    #expect(result.items == 2 && step.communicationSeconds == 0)
}
