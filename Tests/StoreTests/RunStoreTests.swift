import Foundation
import GRDB
import Store
import Synchronization
import Testing

/// A fresh store file under a new temp directory (its `runs/` parent does not exist yet).
func temporaryStorePath() -> String {
    let dir = FileManager.default.temporaryDirectory
        .appendingPathComponent("rein-store-\(UUID().uuidString)")
    return dir.appendingPathComponent("runs/test.sqlite").path
}

/// Removes the temp directory `temporaryStorePath` made for `path`.
func removeStore(_ path: String) {
    let dir = URL(fileURLWithPath: path).deletingLastPathComponent().deletingLastPathComponent()
    try? FileManager.default.removeItem(at: dir)
}

@Test func migrationsCreateTheSchemaAndReopeningIsIdempotent() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    do {
        let store = try RunStore(path: path)
        #expect(try store.appliedMigrations() == ["v1", "v2", "v3", "v4", "v5", "v6-ratings", "v6-comparisons"])
        let tables = try store.dbPool.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'grdb_migrations' ORDER BY name")
        }
        #expect(tables == ["checkpoint", "compareGeneration", "comparePolicy", "compareSession", "compareVerdict", "comparison", "metric", "rating", "ratingAssignment", "ratingItem", "ratingTask", "rollout", "run", "stage"])
        let journal = try store.dbPool.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(journal == "wal")
        _ = try store.createRun(name: "first", recipe: "name: first", seed: 1)
    }
    let reopened = try RunStore(path: path)
    #expect(try reopened.appliedMigrations() == ["v1", "v2", "v3", "v4", "v5", "v6-ratings", "v6-comparisons"])
    #expect(try reopened.runs().map(\.run.name) == ["first"])
}

@Test func statusTransitionsAndSkipLookupByConfigHash() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let store = try RunStore(path: path)
    let run = try store.createRun(name: "quickstart", recipe: "stages: []", seed: 7)
    let runId = try #require(run.id)
    #expect(run.status == .running && run.finishedAt == nil)

    let sft = try store.createStage(runId: runId, stageKey: "sft", kind: "sft", configJSON: "{}", configHash: "h1")
    let sftId = try #require(sft.id)
    #expect(try store.completedStage(stageKey: "sft", kind: "sft", configHash: "h1") == nil)

    // Interrupted, resumed, then completed with its checkpoint.
    #expect(try store.setStageStatus(sftId, .interrupted).finishedAt != nil)
    #expect(try store.setStageStatus(sftId, .running).finishedAt == nil)
    let done = try store.setStageStatus(sftId, .completed, checkpointPath: "runs/ckpt/sft")
    #expect(done.status == .completed && done.checkpointPath == "runs/ckpt/sft" && done.finishedAt != nil)
    #expect(throws: StoreError.self) { try store.setStageStatus(sftId, .running) }
    #expect(throws: StoreError.self) { try store.setStageStatus(9999, .completed) }

    // The skip lookup matches key, kind and hash, and only completed stages.
    #expect(try store.completedStage(stageKey: "sft", kind: "sft", configHash: "h1")?.id == sftId)
    #expect(try store.completedStage(stageKey: "sft", kind: "sft", configHash: "h2") == nil)
    #expect(try store.completedStage(stageKey: "sft", kind: "dpo", configHash: "h1") == nil)
    let dpo = try store.createStage(runId: runId, stageKey: "dpo", kind: "dpo", configJSON: "{}", configHash: "h3")
    try store.setStageStatus(try #require(dpo.id), .failed)
    #expect(try store.completedStage(stageKey: "dpo", kind: "dpo", configHash: "h3") == nil)

    // One stage key per run.
    #expect(throws: DatabaseError.self) {
        try store.createStage(runId: runId, stageKey: "sft", kind: "sft", configJSON: "{}", configHash: "h1")
    }

    let finished = try store.setRunStatus(runId, .failed)
    #expect(finished.status == .failed && finished.finishedAt != nil)
    let listed = try store.runs()
    #expect(listed.count == 1)
    // Dates round-trip at SQLite's millisecond precision, so compare the rest.
    #expect(listed[0].run.id == runId && listed[0].run.status == .failed && listed[0].run.finishedAt != nil)
    #expect(listed[0].stages.map(\.stageKey) == ["sft", "dpo"])
    #expect(listed[0].stages.map(\.status) == [.completed, .failed])
}

@Test func metricForMissingStageIsAnError() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let store = try RunStore(path: path)
    #expect(throws: DatabaseError.self) {
        try store.record(metrics: [Metric(stageId: 42, step: 1, name: "train/loss", value: 1)])
    }
    #expect(try store.dbPool.read { db in try Metric.fetchCount(db) } == 0)

    #expect(throws: DatabaseError.self) {
        try store.add(Comparison(runId: 42, policyA: "a", policyB: "b", judge: "rule", winsA: 1, winsB: 0, ties: 0))
    }
}

@Test func twoStoresOnOneFileWriteConcurrently() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    // Open both at once, as two processes starting together would (both may try to migrate).
    let opened = Mutex<[RunStore]>([])
    let openErrors = Mutex<[String]>([])
    DispatchQueue.concurrentPerform(iterations: 2) { _ in
        do {
            let store = try RunStore(path: path, busyTimeout: 10)
            opened.withLock { $0.append(store) }
        } catch {
            openErrors.withLock { $0.append("\(error)") }
        }
    }
    #expect(openErrors.withLock { $0 } == [])
    let stores = opened.withLock { $0 }
    try #require(stores.count == 2)

    let steps = 200
    let writeErrors = Mutex<[String]>([])
    DispatchQueue.concurrentPerform(iterations: 2) { worker in
        do {
            let store = stores[worker]
            let run = try store.createRun(name: "worker\(worker)", recipe: "", seed: Int64(worker))
            guard let runId = run.id else { return }
            guard let stageId = try store.createStage(runId: runId, stageKey: "sft", kind: "sft",
                                                      configJSON: "{}", configHash: "h").id else { return }
            // Batches of 8 rows, as a metrics sink writes them.
            var batch: [Metric] = []
            for step in 0..<steps {
                batch.append(Metric(stageId: stageId, step: step, name: "train/loss", value: Double(step)))
                batch.append(Metric(stageId: stageId, step: step, name: "train/lr", value: 1e-3))
                if batch.count >= 8 { try store.record(metrics: batch); batch.removeAll() }
            }
            if !batch.isEmpty { try store.record(metrics: batch) }
            try store.setStageStatus(stageId, .completed)
            try store.setRunStatus(runId, .completed)
        } catch {
            writeErrors.withLock { $0.append("\(error)") }
        }
    }
    #expect(writeErrors.withLock { $0 } == [])

    let check = try RunStore(path: path)
    let runs = try check.runs()
    #expect(runs.count == 2)
    #expect(runs.allSatisfy { $0.run.status == .completed && $0.stages.count == 1 })
    for summary in runs {
        let stageId = try #require(summary.stages.first?.id)
        #expect(try check.metrics(stageId: stageId).count == 2 * steps)
    }
}

@Test func rolloutsUpsertAndComparisonsInsert() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let store = try RunStore(path: path)
    let runId = try #require(try store.createRun(name: "r", recipe: "", seed: 0).id)
    let stageId = try #require(try store.createStage(runId: runId, stageKey: "ppo", kind: "ppo", configJSON: "{}", configHash: "h").id)
    let rollout = Rollout(stageId: stageId, step: 1, idx: 0, prompt: "2+2=", response: "4", responseTokens: 1,
                          stopReason: "eos", score: 1, kl: 0.01, reward: 0.99, policyVersion: 1)
    try store.record(rollouts: [rollout])
    var replaced = rollout
    replaced.reward = 0.5
    try store.record(rollouts: [replaced])
    #expect(try store.rollouts(stageId: stageId) == [replaced])

    let comparison = try store.add(Comparison(runId: runId, policyA: "stage:sft", policyB: "stage:dpo",
                                              judge: "rule", winsA: 3, winsB: 5, ties: 2))
    #expect(comparison.id != nil)
}
