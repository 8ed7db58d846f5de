import Foundation
import GRDB
@testable import Store
import Testing

/// A store with one run, for the v2 tests.
private func storeWithRun(_ path: String, name: String = "quickstart", outputDir: String? = "runs/quickstart")
    throws -> (RunStore, Int64) {
    let store = try RunStore(path: path)
    let run = try store.createRun(name: name, recipe: "name: \(name)", seed: 1, outputDir: outputDir)
    return (store, try #require(run.id))
}

@Test func aV1StoreOpensAndGainsV2WithoutLosingRows() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(),
                                            withIntermediateDirectories: true)
    // A file as a v1-only rein left it.
    var config = Configuration()
    config.foreignKeysEnabled = true
    let queue = try DatabaseQueue(path: path, configuration: config)
    try RunStore.migrator.migrate(queue, upTo: "v1")
    try queue.write { db in
        try db.execute(sql: """
            INSERT INTO run (name, recipe, seed, status, startedAt, finishedAt)
            VALUES ('old', 'name: old', 3, 'completed', '2026-01-02 03:04:05.000', '2026-01-02 03:05:05.000')
            """)
        let runId = db.lastInsertedRowID
        try db.execute(sql: """
            INSERT INTO stage (runId, stageKey, kind, configJSON, configHash, status, checkpointPath, startedAt, finishedAt)
            VALUES (?, 'sft', 'sft', '{}', 'h', 'completed', 'ckpt/last', '2026-01-02 03:04:05.000', '2026-01-02 03:05:05.000')
            """, arguments: [runId])
        let stageId = db.lastInsertedRowID
        try db.execute(sql: "INSERT INTO metric VALUES (?, 1, 'train/loss', 2.5), (?, 2, 'train/loss', 2.0)",
                       arguments: [stageId, stageId])
    }
    #expect(try queue.read(RunStore.migrator.appliedMigrations) == ["v1"])
    #expect(try queue.read { db in try db.columns(in: "run").map(\.name) }.contains("outputDir") == false)
    try queue.close()

    let store = try RunStore(path: path)
    #expect(try store.appliedMigrations() == ["v1", "v2", "v3", "v4", "v5", "v6-ratings", "v6-comparisons"])
    let runs = try store.runs()
    try #require(runs.count == 1)
    let old = runs[0]
    #expect(old.run.name == "old" && old.run.status == .completed && old.run.seed == 3)
    #expect(old.run.outputDir == nil && old.run.pid == nil && old.run.host == nil)
    let stage = try #require(old.stages.first)
    #expect(stage.checkpointPath == "ckpt/last" && stage.outputPath == nil && stage.reusedStageId == nil)
    let stageId = try #require(stage.id)
    #expect(try store.metrics(stageId: stageId).map(\.value) == [2.5, 2.0])

    // The v2 columns and table work on the upgraded file.
    try store.recordCheckpoint(stageId: stageId, kind: "final", step: 2, path: "ckpt/final")
    #expect(try store.checkpoints(stageId: stageId).map(\.path) == ["ckpt/final"])
    let new = try store.createRun(name: "new", recipe: "", seed: 0, outputDir: "runs/new")
    #expect(try store.run(try #require(new.id))?.outputDir == "runs/new")
}

@Test func unfinishedRunIsTheNewestRunWithNameAndOutputDirUnlessItCompleted() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let (store, first) = try storeWithRun(path)
    // Still running (its process may have died): resumable.
    #expect(try store.unfinishedRun(name: "quickstart", outputDir: "runs/quickstart")?.id == first)
    #expect(try store.unfinishedRun(name: "quickstart", outputDir: "elsewhere") == nil)
    #expect(try store.unfinishedRun(name: "other", outputDir: "runs/quickstart") == nil)

    try store.setRunStatus(first, .completed)
    #expect(try store.unfinishedRun(name: "quickstart", outputDir: "runs/quickstart") == nil)

    let second = try #require(try store.createRun(name: "quickstart", recipe: "", seed: 1, outputDir: "runs/quickstart").id)
    try store.setRunStatus(second, .interrupted)
    let third = try #require(try store.createRun(name: "quickstart", recipe: "", seed: 1, outputDir: "runs/quickstart").id)
    try store.setRunStatus(third, .failed)
    #expect(try store.unfinishedRun(name: "quickstart", outputDir: "runs/quickstart")?.id == third)

    // Only the newest counts: once it completed, the older interrupted run is not picked up.
    let fourth = try #require(try store.createRun(name: "quickstart", recipe: "", seed: 1, outputDir: "runs/quickstart").id)
    try store.setRunStatus(fourth, .completed)
    #expect(try store.unfinishedRun(name: "quickstart", outputDir: "runs/quickstart") == nil)
}

@Test func resumeRunTakesOverUnfinishedRunsButNotCompletedOnes() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let store = try RunStore(path: path)
    // A run whose process was killed: still marked running, with the dead process's id.
    let dead = try #require(try store.createRun(name: "q", recipe: "", seed: 1, outputDir: "runs/q",
                                                pid: 999_999, host: "old-host").id)
    let resumed = try store.resumeRun(dead, pid: 42, host: "new-host")
    #expect(resumed.status == .running && resumed.finishedAt == nil)
    #expect(resumed.pid == 42 && resumed.host == "new-host")
    #expect(try store.run(dead) == resumed)

    try store.setRunStatus(dead, .failed)
    let again = try store.resumeRun(dead, pid: 43, host: "new-host")
    #expect(again.status == .running && again.finishedAt == nil && again.pid == 43)

    try store.setRunStatus(dead, .completed)
    #expect(throws: StoreError.self) { try store.resumeRun(dead) }
    #expect(try store.run(dead)?.status == .completed)
    #expect(throws: StoreError.self) { try store.resumeRun(12345) }
}

@Test func stagesOfARunInStartOrderAndSkippedStagesReuseAnother() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let (store, firstRun) = try storeWithRun(path)
    let tokenizer = try store.createStage(runId: firstRun, stageKey: "tokenizer", kind: "tokenizer", configJSON: "{}",
                                          configHash: "t1")
    let tokenizerId = try #require(tokenizer.id)
    try store.setStageOutput(tokenizerId, path: "runs/quickstart/tokenizer")
    try store.setStageStatus(tokenizerId, .completed)
    _ = try store.createStage(runId: firstRun, stageKey: "sft", kind: "sft", configJSON: "{}", configHash: "s1")
    try store.setRunStatus(firstRun, .completed)

    let secondRun = try #require(try store.createRun(name: "quickstart", recipe: "", seed: 1).id)
    let start = Date(timeIntervalSince1970: 1_800_000_000)
    let skipped = try store.createStage(runId: secondRun, stageKey: "tokenizer", kind: "tokenizer", configJSON: "{}",
                                        configHash: "t1", status: .completed, outputPath: "runs/quickstart/tokenizer",
                                        reusedStageId: tokenizerId, startedAt: start)
    #expect(skipped.status == .completed && skipped.reusedStageId == tokenizerId)
    #expect(skipped.startedAt == start && skipped.finishedAt == start)
    let sft = try store.createStage(runId: secondRun, stageKey: "sft", kind: "sft", configJSON: "{}", configHash: "s2")

    #expect(try store.stages(runId: firstRun).map(\.stageKey) == ["tokenizer", "sft"])
    let second = try store.stages(runId: secondRun)
    #expect(second.map(\.id) == [skipped.id, sft.id])
    #expect(second[0].reusedStageId == tokenizerId && second[0].outputPath == "runs/quickstart/tokenizer")
    #expect(second[0].startedAt == second[0].finishedAt)
    #expect(try store.stages(runId: 999).isEmpty)

    // The reused stage must exist; deleting it clears the reference instead of the skipped stage.
    #expect(throws: DatabaseError.self) {
        try store.createStage(runId: secondRun, stageKey: "dpo", kind: "dpo", configJSON: "{}", configHash: "d",
                              status: .completed, reusedStageId: 999)
    }
    try store.dbPool.write { db in _ = try Run.deleteOne(db, key: firstRun) }
    #expect(try store.stage(try #require(skipped.id))?.reusedStageId == nil)
}

@Test func setStageOutputRecordsThePathOrReportsAMissingStage() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let (store, runId) = try storeWithRun(path)
    let stageId = try #require(try store.createStage(runId: runId, stageKey: "data", kind: "data", configJSON: "{}",
                                                     configHash: "h").id)
    #expect(try store.stage(stageId)?.outputPath == nil)
    try store.setStageOutput(stageId, path: "runs/quickstart/data")
    #expect(try store.stage(stageId)?.outputPath == "runs/quickstart/data")
    #expect(throws: StoreError.self) { try store.setStageOutput(999, path: "x") }
}

@Test func checkpointsUpsertAndLastBecomesTheResumePoint() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let (store, runId) = try storeWithRun(path)
    let stageId = try #require(try store.createStage(runId: runId, stageKey: "sft", kind: "sft", configJSON: "{}",
                                                     configHash: "h").id)
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    try store.recordCheckpoint(stageId: stageId, kind: "last", step: 10, path: "ck/last", at: t0)
    try store.recordCheckpoint(stageId: stageId, kind: "best", step: 10, path: "ck/best-a", at: t0 + 1)
    #expect(try store.stage(stageId)?.checkpointPath == "ck/last")

    // Same kind and step: the row is replaced, not duplicated.
    try store.recordCheckpoint(stageId: stageId, kind: "best", step: 10, path: "ck/best", at: t0 + 2)
    try store.recordCheckpoint(stageId: stageId, kind: "last", step: 20, path: "ck/last-20", at: t0 + 3)
    try store.recordCheckpoint(stageId: stageId, kind: "final", step: 20, path: "ck/final", at: t0 + 4)
    let rows = try store.checkpoints(stageId: stageId)
    #expect(rows.map(\.kind) == ["last", "best", "last", "final"])
    #expect(rows.map(\.step) == [10, 10, 20, 20])
    #expect(rows.map(\.path) == ["ck/last", "ck/best", "ck/last-20", "ck/final"])
    // Only `last` moves the stage's resume point.
    #expect(try store.stage(stageId)?.checkpointPath == "ck/last-20")
    #expect(throws: DatabaseError.self) {
        try store.recordCheckpoint(stageId: 999, kind: "last", step: 1, path: "x")
    }
}

@Test func restartStageClearsOnlyThatStagesRows() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let (store, runId) = try storeWithRun(path)
    var ids: [Int64] = []
    for key in ["sft", "dpo"] {
        let id = try #require(try store.createStage(runId: runId, stageKey: key, kind: key, configJSON: "{}",
                                                    configHash: "old").id)
        ids.append(id)
        try store.record(metrics: (1...3).map { Metric(stageId: id, step: $0, name: "train/loss", value: Double($0)) })
        try store.record(rollouts: [Rollout(stageId: id, step: 1, idx: 0, prompt: "p", response: "r", responseTokens: 1,
                                            stopReason: "eos", policyVersion: 1)])
        try store.recordCheckpoint(stageId: id, kind: "last", step: 3, path: "ck/\(key)")
        try store.setStageOutput(id, path: "out/\(key)")
    }
    try store.setStageStatus(ids[1], .failed)

    let later = Date(timeIntervalSince1970: 1_900_000_000)
    let restarted = try store.restartStage(ids[1], configJSON: "{\"beta\":0.2}", configHash: "new", at: later)
    #expect(restarted.status == .running && restarted.finishedAt == nil && restarted.startedAt == later)
    #expect(restarted.configHash == "new" && restarted.configJSON == "{\"beta\":0.2}")
    #expect(restarted.checkpointPath == nil && restarted.outputPath == nil && restarted.reusedStageId == nil)
    #expect(try store.metrics(stageId: ids[1]).isEmpty)
    #expect(try store.rollouts(stageId: ids[1]).isEmpty)
    #expect(try store.checkpoints(stageId: ids[1]).isEmpty)

    // The other stage keeps everything.
    #expect(try store.metrics(stageId: ids[0]).count == 3)
    #expect(try store.rollouts(stageId: ids[0]).count == 1)
    #expect(try store.checkpoints(stageId: ids[0]).map(\.path) == ["ck/sft"])
    #expect(try store.stage(ids[0])?.outputPath == "out/sft")
    #expect(throws: StoreError.self) { try store.restartStage(999, configJSON: "{}", configHash: "h") }
}
