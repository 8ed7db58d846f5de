import Foundation
import GRDB
import Recipes
import Store
import Testing

/// A store file in a fresh temporary directory; `removeStore` deletes it.
private func temporaryStorePath() -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rein-sink-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent("runs.sqlite").path
}

private func removeStore(_ path: String) {
    try? FileManager.default.removeItem(at: URL(fileURLWithPath: path).deletingLastPathComponent())
}

@Test func sinkWritesInBatchesAndReRecordingReplaces() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let store = try RunStore(path: path)
    let runId = try #require(try store.createRun(name: "r", recipe: "", seed: 0).id)
    let stageId = try #require(try store.createStage(runId: runId, stageKey: "sft", kind: "sft", configJSON: "{}", configHash: "h").id)

    let sink = StoreMetricsSink(store: store, stageId: stageId, batchSize: 4)
    for step in 1...3 { sink.record(step: step, name: "train/loss", value: Double(step)) }
    #expect(sink.pendingCount == 3)
    #expect(try store.metrics(stageId: stageId).isEmpty)
    sink.record(step: 4, name: "train/loss", value: 4)
    #expect(sink.pendingCount == 0)
    #expect(try store.metrics(stageId: stageId).count == 4)
    #expect(try store.latestStep(stageId: stageId) == 4)

    // A resumed stage re-logs steps 3 and 4: values replace, rows do not duplicate.
    sink.record(step: 3, name: "train/loss", value: 30)
    sink.record(step: 4, name: "train/loss", value: 40)
    sink.record(step: 5, name: "train/loss", value: 50)
    try sink.flush()
    #expect(sink.lastError == nil)
    let rows = try store.metrics(stageId: stageId)
    #expect(rows.map(\.step) == [1, 2, 3, 4, 5])
    #expect(rows.map(\.value) == [1, 2, 30, 40, 50])
    #expect(try store.latestStep(stageId: stageId) == 5)

    // Deinit writes what is left.
    do {
        let other = StoreMetricsSink(store: store, stageId: stageId, batchSize: 100)
        other.record(step: 6, name: "eval/loss", value: 0.5)
    }
    #expect(try store.metrics(stageId: stageId).last == Metric(stageId: stageId, step: 6, name: "eval/loss", value: 0.5))
}

@Test func aFailedBatchIsReportedAndKept() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let store = try RunStore(path: path)
    // Stage 42 does not exist: the write fails on the foreign key.
    let sink = StoreMetricsSink(store: store, stageId: 42, batchSize: 1)
    sink.record(step: 1, name: "train/loss", value: 1)
    #expect(sink.lastError != nil)
    #expect(sink.pendingCount == 1)
    #expect(try store.dbPool.read { db in try Metric.fetchCount(db) } == 0)
}
