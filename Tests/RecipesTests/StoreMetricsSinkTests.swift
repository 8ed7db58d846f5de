import Foundation
import GRDB
import Recipes
import Store
import Testing
import Training

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

/// A stage's rollout of `index` at `step`: prompt group `index / 2`, two samples each.
private func rolloutRow(step: Int, index: Int, response: String = "r", reward: Double? = 1) -> RolloutRow {
    RolloutRow(step: step, index: index, prompt: "prompt \(index / 2)", response: response,
               responseTokenIds: Array(repeating: Int32(7), count: response.count), stopReason: index % 2 == 0 ? "eos" : "length",
               score: 0.5, kl: 0.25, reward: reward, advantage: -0.5, group: index / 2, policyVersion: step - 1)
}

@Test func rolloutSinkWritesEachBatchInOneTransactionAndAResumedStepReplaces() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let store = try RunStore(path: path)
    let runId = try #require(try store.createRun(name: "r", recipe: "", seed: 0).id)
    let stageId = try #require(try store.createStage(runId: runId, stageKey: "grpo", kind: "grpo", configJSON: "{}", configHash: "h").id)
    // Count the transactions the sink's writes commit.
    let commits = Commits()
    store.dbPool.add(transactionObserver: commits, extent: .databaseLifetime)

    let sink: any RolloutSink = StoreRolloutSink(store: store, stageId: stageId)
    try sink.record(rollouts: (0..<4).map { rolloutRow(step: 1, index: $0) })
    #expect(commits.count == 1)
    try sink.record(rollouts: (0..<4).map { rolloutRow(step: 2, index: $0) })
    #expect(commits.count == 2)
    var rows = try store.rollouts(stageId: stageId)
    #expect(rows.count == 8)
    let first = try #require(rows.first)
    #expect(first == Rollout(stageId: stageId, phase: RolloutPhase.train, step: 1, idx: 0, prompt: "prompt 0", response: "r", responseTokens: 1,
                             stopReason: "eos", score: 0.5, kl: 0.25, reward: 1, policyVersion: 0, responseTokenIds: [7],
                             advantage: -0.5, groupIndex: 0))
    #expect(rows.map(\.groupIndex) == [0, 0, 1, 1, 0, 0, 1, 1])
    #expect(rows.allSatisfy { $0.phase == RolloutPhase.train })

    // A resumed stage regenerates step 2 (NaN is unmeasured: null).
    try sink.record(rollouts: (0..<4).map { rolloutRow(step: 2, index: $0, response: "again", reward: $0 == 3 ? .nan : 2) })
    try sink.flush()
    #expect(commits.count == 3)
    rows = try store.rollouts(stageId: stageId)
    #expect(rows.count == 8)
    #expect(rows.filter { $0.step == 2 }.map(\.response) == ["again", "again", "again", "again"])
    #expect(rows.filter { $0.step == 2 }.map(\.reward) == [2, 2, 2, nil])
    #expect(rows.filter { $0.step == 2 }.map(\.responseTokens) == [5, 5, 5, 5])
    #expect(rows.filter { $0.step == 1 }.map(\.response) == ["r", "r", "r", "r"])
}

@Test func rolloutSinkBuffersUpToItsBatchSizeAndFlushes() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let store = try RunStore(path: path)
    let runId = try #require(try store.createRun(name: "r", recipe: "", seed: 0).id)
    let stageId = try #require(try store.createStage(runId: runId, stageKey: "rloo", kind: "rloo", configJSON: "{}", configHash: "h").id)
    let commits = Commits()
    store.dbPool.add(transactionObserver: commits, extent: .databaseLifetime)

    let sink = StoreRolloutSink(store: store, stageId: stageId, batchSize: 6)
    try sink.record(rollouts: (0..<4).map { rolloutRow(step: 1, index: $0) })
    #expect(sink.pendingCount == 4 && commits.count == 0)
    #expect(try store.rollouts(stageId: stageId).isEmpty)
    try sink.record(rollouts: (0..<4).map { rolloutRow(step: 2, index: $0) })
    #expect(sink.pendingCount == 0 && commits.count == 1)
    try sink.record(rollouts: [rolloutRow(step: 3, index: 0)])
    try sink.flush()
    try sink.flush()  // nothing left: no transaction
    #expect(commits.count == 2)
    #expect(try store.rollouts(stageId: stageId).map(\.step) == [1, 1, 1, 1, 2, 2, 2, 2, 3])

    // Deinit writes what is left.
    do {
        let other = StoreRolloutSink(store: store, stageId: stageId, batchSize: 100)
        try other.record(rollouts: [rolloutRow(step: 4, index: 0)])
    }
    #expect(try store.lastRolloutStep(stageId: stageId) == 4)
}

@Test func aFailedRolloutWriteNamesTheStageAndStoreAndKeepsTheRows() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let store = try RunStore(path: path)
    // Stage 42 does not exist: the write fails on the foreign key.
    let sink = StoreRolloutSink(store: store, stageId: 42)
    do {
        try sink.record(rollouts: [rolloutRow(step: 1, index: 0), rolloutRow(step: 1, index: 1)])
        Issue.record("recording into a missing stage succeeded")
    } catch let error as StoreRolloutSinkError {
        #expect(error.description.hasPrefix("cannot record 2 rollouts of stage 42 in \(path): "))
    }
    #expect(sink.pendingCount == 2)
    #expect(try store.dbPool.read { db in try Rollout.fetchCount(db) } == 0)
}

/// Counts committed transactions.
private final class Commits: TransactionObserver, @unchecked Sendable {
    private let lock = NSLock()
    private var commits = 0

    var count: Int { lock.withLock { commits } }

    func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool { true }
    func databaseDidChange(with event: DatabaseEvent) {}
    func databaseDidCommit(_ db: Database) { lock.withLock { commits += 1 } }
    func databaseDidRollback(_ db: Database) {}
}
