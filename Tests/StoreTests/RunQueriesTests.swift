import Foundation
import Store
import Testing

@Test func runNamedIsTheNewestRunWithThatName() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let store = try RunStore(path: path)
    #expect(try store.run(named: "quickstart") == nil)
    let first = try store.createRun(name: "quickstart", recipe: "", seed: 1)
    let other = try store.createRun(name: "chat", recipe: "", seed: 1)
    #expect(try store.run(named: "quickstart")?.id == first.id)
    let second = try store.createRun(name: "quickstart", recipe: "", seed: 2)
    #expect(try store.run(named: "quickstart")?.id == second.id)
    #expect(try store.run(named: "chat")?.id == other.id)
    #expect(try store.run(named: "Quickstart") == nil)
}

@Test func finalMetricsTakeEachMetricAtItsHighestStep() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let store = try RunStore(path: path)
    let runId = try #require(try store.createRun(name: "r", recipe: "", seed: 0).id)
    let sft = try #require(try store.createStage(runId: runId, stageKey: "sft", kind: "sft", configJSON: "{}", configHash: "a").id)
    let dpo = try #require(try store.createStage(runId: runId, stageKey: "dpo", kind: "dpo", configJSON: "{}", configHash: "b").id)
    #expect(try store.finalMetrics(stageId: sft).isEmpty)
    // Train metrics every step, eval every other step, a summary metric at the last step only.
    var rows: [Metric] = []
    for step in 1...5 {
        rows.append(Metric(stageId: sft, step: step, name: "train/loss", value: 10 - Double(step)))
        if step % 2 == 0 { rows.append(Metric(stageId: sft, step: step, name: "eval/loss", value: Double(step))) }
    }
    rows.append(Metric(stageId: sft, step: 5, name: "eval/exact_match", value: 0.25))
    rows.append(Metric(stageId: dpo, step: 9, name: "train/loss", value: 0.5))
    try store.record(metrics: rows)

    #expect(try store.finalMetrics(stageId: sft) == ["train/loss": 5, "eval/loss": 4, "eval/exact_match": 0.25])
    #expect(try store.finalMetrics(stageId: dpo) == ["train/loss": 0.5])
}

@Test func seriesIsOneMetricOfOneStageInStepOrder() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let store = try RunStore(path: path)
    let runId = try #require(try store.createRun(name: "r", recipe: "", seed: 0).id)
    let sft = try #require(try store.createStage(runId: runId, stageKey: "sft", kind: "sft", configJSON: "{}", configHash: "a").id)
    let other = try #require(try store.createStage(runId: runId, stageKey: "dpo", kind: "dpo", configJSON: "{}", configHash: "b").id)
    // Recorded out of order, as a resumed stage re-logging steps would.
    try store.record(metrics: [
        Metric(stageId: sft, step: 3, name: "train/loss", value: 1.5),
        Metric(stageId: sft, step: 1, name: "train/loss", value: 2.5),
        Metric(stageId: sft, step: 2, name: "train/loss", value: 2.0),
        Metric(stageId: sft, step: 2, name: "eval/loss", value: 9),
        Metric(stageId: other, step: 1, name: "train/loss", value: 7),
    ])
    let series = try store.series(stageId: sft, name: "train/loss")
    #expect(series.map(\.step) == [1, 2, 3])
    #expect(series.map(\.value) == [2.5, 2.0, 1.5])
    #expect(try store.series(stageId: sft, name: "eval/accuracy").isEmpty)
}
