import Foundation
import Testing
import NN
import Optimizers
import TensorCore
import Training

/// An optimizer that changes nothing and keeps a copy of the gradients of each step (what the
/// loop handed it after reducing and clipping).
final class GradientRecorder: Optimizer {
    let arena: ParameterArena
    var learningRate = 0.0
    private(set) var stepCount = 0
    private(set) var gradients: [[Float]] = []

    init(arena: ParameterArena) { self.arena = arena }

    func step() {
        stepCount += 1
        gradients.append(Array(UnsafeBufferPointer(start: arena.grads.base, count: arena.usedCount)))
    }

    func exportState() -> OptimizerSnapshot {
        OptimizerSnapshot(stepCount: stepCount, parameterNames: arena.entries.map(\.name),
                          parameterSteps: arena.entries.map { _ in stepCount }, buffers: [:])
    }

    func importState(_ snapshot: OptimizerSnapshot) throws { stepCount = snapshot.stepCount }
}

/// SFT-like rows: every row has 10 tokens, the labels cover a different stretch of each (ignored
/// elsewhere, always at position 0, which the shifted loss never scores).
struct LabelledRows {
    var ids: [Int32] = []
    var labels: [Int32] = []
    var rows = 0
    static let length = 10

    /// Rows whose labels start at `labelStart[r]`: the micro-batch scores `10 - start` tokens per row.
    init(seed: UInt64, labelStarts: [Int]) {
        var rng = RNG(seed: seed)
        for start in labelStarts {
            let row = (0..<Self.length).map { _ in Int32(rng.int(below: 61)) }
            ids += row
            labels += row.enumerated().map { $0.offset >= max(1, start) ? $0.element : -100 }
            rows += 1
        }
    }

    static func + (a: LabelledRows, b: LabelledRows) -> LabelledRows {
        var c = a
        c.ids += b.ids
        c.labels += b.labels
        c.rows += b.rows
        return c
    }

    /// Label positions scored (position 0 of a row never is).
    var scored: Int {
        (0..<rows).reduce(0) { n, r in n + (1..<Self.length).filter { labels[r * Self.length + $0] != -100 }.count }
    }

    func loss(_ model: DecoderModel) -> Tensor {
        model.languageModelingLoss(logits: model.logits(ids: ids, batch: rows, length: Self.length),
                                   labels: labels, batch: rows, length: Self.length)
    }
}

/// Four micro-batches of very different label counts (2 rows each).
func unevenMicroBatches() -> [LabelledRows] {
    [LabelledRows(seed: 1, labelStarts: [9, 8]),    // 1 + 2 = 3 tokens
     LabelledRows(seed: 2, labelStarts: [1, 2]),    // 9 + 8 = 17
     LabelledRows(seed: 3, labelStarts: [6, 9]),    // 4 + 1 = 5
     LabelledRows(seed: 4, labelStarts: [3, 1])]    // 7 + 9 = 16
}

func maxAbsDifference(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

@Suite struct OptimizerStepTests {
    @Test func microBatchesOfDifferentSizesAccumulateToTheGradientOfOneBatch() throws {
        let micro = unevenMicroBatches()
        #expect(micro.map(\.scored) == [3, 17, 5, 16])
        let all = micro.dropFirst().reduce(micro[0], +)

        let model = tinyLM(seed: 21)
        let recorder = GradientRecorder(arena: model.arena)
        let step = OptimizerStep(optimizer: recorder, maxGradNorm: 0)
        for m in micro { try step.accumulate(loss: m.loss(model), items: m.scored) }
        let accumulated = step.step(learningRate: 0.1)
        #expect(accumulated.items == 41 && accumulated.microBatches == 4 && accumulated.learningRate == 0.1)
        #expect(recorder.learningRate == 0.1)
        // The gradients are zeroed for the next update.
        #expect(UnsafeBufferPointer(start: model.arena.grads.base, count: model.arena.usedCount).allSatisfy { $0 == 0 })

        let whole = all.loss(model)
        try step.accumulate(loss: whole, items: all.scored)
        let once = step.step(learningRate: 0.1)
        #expect(once.items == 41 && once.microBatches == 1)

        let (a, b) = (recorder.gradients[0], recorder.gradients[1])
        let scale = b.map { abs($0) }.max()!
        #expect(scale > 1e-3)
        #expect(maxAbsDifference(a, b) <= 1e-5 * scale, "accumulated vs whole batch: \(maxAbsDifference(a, b)) of \(scale)")
        // The logged loss is the item-weighted mean: the loss of the whole batch.
        #expect(abs(accumulated.loss - Double(whole.item)) < 1e-5)
        #expect(abs(accumulated.gradNorm - once.gradNorm) < 1e-5 * once.gradNorm)
    }

    @Test func weightingEachMicroBatchAlikeGivesAnotherGradient() throws {
        // What the loop did before: backward of each micro-batch's mean / k. With these counts it
        // is far from the whole batch's gradient, so the test above can tell the two apart.
        let micro = unevenMicroBatches()
        let all = micro.dropFirst().reduce(micro[0], +)
        let model = tinyLM(seed: 21)
        let arena = model.arena
        for m in micro { (m.loss(model) * 0.25).backward() }
        let unweighted = Array(UnsafeBufferPointer(start: arena.grads.base, count: arena.usedCount))
        arena.zeroGrad()
        all.loss(model).backward()
        let whole = Array(UnsafeBufferPointer(start: arena.grads.base, count: arena.usedCount))
        let scale = whole.map { abs($0) }.max()!
        #expect(maxAbsDifference(unweighted, whole) > 0.05 * scale)
        // With equal counts the two ways agree (the old loop was exact there).
        let even = [LabelledRows(seed: 5, labelStarts: [4, 6]), LabelledRows(seed: 6, labelStarts: [5, 5])]
        #expect(even[0].scored == even[1].scored)
        arena.zeroGrad()
        for m in even { (m.loss(model) * 0.5).backward() }
        let halves = Array(UnsafeBufferPointer(start: arena.grads.base, count: arena.usedCount))
        arena.zeroGrad()
        let recorder = GradientRecorder(arena: arena)
        let step = OptimizerStep(optimizer: recorder, maxGradNorm: 0)
        for m in even { try step.accumulate(loss: m.loss(model), items: m.scored) }
        step.step(learningRate: 0)
        #expect(maxAbsDifference(halves, recorder.gradients[0]) <= 1e-5 * halves.map { abs($0) }.max()!)
    }

    @Test func clippingReportsTheNormBeforeItAndMetricsAreItemWeighted() throws {
        let micro = unevenMicroBatches()
        let model = tinyLM(seed: 22)
        let recorder = GradientRecorder(arena: model.arena)
        let free = OptimizerStep(optimizer: recorder, maxGradNorm: 0)
        for m in micro { try free.accumulate(loss: m.loss(model), items: m.scored) }
        let unclipped = free.step(learningRate: 1)
        #expect(unclipped.gradNorm > 0.2)

        let clipped = OptimizerStep(optimizer: recorder, maxGradNorm: unclipped.gradNorm / 4)
        for (k, m) in micro.enumerated() {
            try clipped.accumulate(loss: m.loss(model), items: m.scored, metrics: ["k": Double(k)])
        }
        let result = clipped.step(learningRate: 1)
        #expect(abs(result.gradNorm - unclipped.gradNorm) < 1e-5 * unclipped.gradNorm)
        let norm = recorder.gradients[1].reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        #expect(abs(norm - unclipped.gradNorm / 4) < 1e-4 * unclipped.gradNorm)
        // (0*3 + 1*17 + 2*5 + 3*16) / 41
        #expect(abs(result.metrics["k"]! - 75.0 / 41) < 1e-12)
    }

    @Test func aNonFiniteLossOrANegativeCountIsAnErrorBeforeAnyGradient() throws {
        let model = tinyLM(seed: 23)
        let step = OptimizerStep(optimizer: GradientRecorder(arena: model.arena))
        let m = unevenMicroBatches()[0]
        do {
            try step.accumulate(loss: m.loss(model) * Float.nan, items: 3)
            Issue.record("a NaN loss was accumulated")
        } catch {
            #expect("\(error)".contains("NaN"))
        }
        #expect(throws: TrainingError.self) { try step.accumulate(loss: m.loss(model), items: -1) }
        #expect(step.microBatches == 0 && step.items == 0)
        #expect(UnsafeBufferPointer(start: model.arena.grads.base, count: model.arena.usedCount).allSatisfy { $0 == 0 })
    }
}
