import Foundation
import GRDB
@testable import Store
import Testing

/// A store with one run and one `ppo` stage; returns the stage id.
private func storeWithStage(_ path: String) throws -> (RunStore, Int64) {
    let store = try RunStore(path: path)
    let runId = try #require(try store.createRun(name: "rl", recipe: "", seed: 1).id)
    let stageId = try #require(try store.createStage(runId: runId, stageKey: "ppo", kind: "ppo", configJSON: "{}",
                                                     configHash: "h").id)
    return (store, stageId)
}

@Test func aV2StoreGainsTheV3RolloutColumnsAndKeepsItsRollouts() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(),
                                            withIntermediateDirectories: true)
    // A file as a v2 rein left it, with an evaluation rollout.
    var config = Configuration()
    config.foreignKeysEnabled = true
    let queue = try DatabaseQueue(path: path, configuration: config)
    try RunStore.migrator.migrate(queue, upTo: "v2")
    try queue.write { db in
        try db.execute(sql: """
            INSERT INTO run (name, recipe, seed, status, startedAt) VALUES ('old', '', 1, 'completed', '2026-01-02 03:04:05.000')
            """)
        try db.execute(sql: """
            INSERT INTO stage (runId, stageKey, kind, configJSON, configHash, status, startedAt)
            VALUES (?, 'sft', 'sft', '{}', 'h', 'completed', '2026-01-02 03:04:05.000')
            """, arguments: [db.lastInsertedRowID])
        try db.execute(sql: """
            INSERT INTO rollout (stageId, step, idx, prompt, response, responseTokens, stopReason, score, policyVersion)
            VALUES (?, 0, 0, 'p', 'r', 3, 'eos', 1, 0)
            """, arguments: [db.lastInsertedRowID])
    }
    #expect(try queue.read { db in try db.columns(in: "rollout").map(\.name) }.contains("advantage") == false)
    try queue.close()

    let store = try RunStore(path: path)
    #expect(try store.appliedMigrations() == ["v1", "v2", "v3"])
    let columns = try store.dbPool.read { db in try db.columns(in: "rollout").map(\.name) }
    #expect(columns.suffix(3) == ["responseTokenIds", "advantage", "groupIndex"])
    let indexes = try store.dbPool.read { db in try db.indexes(on: "rollout").map(\.name) }
    #expect(indexes.contains("rollout_on_stageId_step_reward"))
    let stageId = try #require(try store.runs().first?.stages.first?.id)
    let old = try store.rollouts(stageId: stageId)
    #expect(old == [Rollout(stageId: stageId, step: 0, idx: 0, prompt: "p", response: "r", responseTokens: 3,
                            stopReason: "eos", score: 1, policyVersion: 0)])
    #expect(old.first?.responseTokenIds == nil && old.first?.advantage == nil && old.first?.groupIndex == nil)

    // The new columns round-trip on the upgraded file; token ids are a JSON array in the column.
    let new = Rollout(stageId: stageId, step: 1, idx: 0, prompt: "p", response: "r2", responseTokens: 3, stopReason: "length",
                      score: 0.5, kl: 0.1, reward: 0.4, policyVersion: 0, responseTokenIds: [5, -1, 70000],
                      advantage: -0.25, groupIndex: 2)
    try store.record(rollouts: [new])
    #expect(try store.rollouts(stageId: stageId).last == new)
    let text = try store.dbPool.read { db in
        try String.fetchOne(db, sql: "SELECT responseTokenIds FROM rollout WHERE step = 1")
    }
    #expect(text == "[5,-1,70000]")
    let type = try store.dbPool.read { db in
        try String.fetchOne(db, sql: "SELECT typeof(responseTokenIds) FROM rollout WHERE step = 1")
    }
    #expect(type == "text")
    #expect(try store.dbPool.read { db in
        try Int.fetchOne(db, sql: "SELECT json_array_length(responseTokenIds) FROM rollout WHERE step = 1")
    } == 3)
}

@Test func recordingARolloutKeyAgainReplacesTheRow() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let (store, stageId) = try storeWithStage(path)
    func row(_ step: Int, _ idx: Int, _ response: String, reward: Double?) -> Rollout {
        Rollout(stageId: stageId, step: step, idx: idx, prompt: "p\(idx)", response: response, responseTokens: response.count,
                stopReason: "eos", reward: reward, policyVersion: step - 1, responseTokenIds: [1, 2], advantage: 0,
                groupIndex: idx / 2)
    }
    try store.record(rollouts: (0..<4).map { row(1, $0, "first", reward: 1) } + (0..<4).map { row(2, $0, "first", reward: 1) })
    // A resumed stage regenerates step 2.
    try store.record(rollouts: (0..<4).map { row(2, $0, "again", reward: 2) })
    let rows = try store.rollouts(stageId: stageId)
    #expect(rows.count == 8)
    #expect(rows.filter { $0.step == 2 }.map(\.response) == Array(repeating: "again", count: 4))
    #expect(rows.filter { $0.step == 1 }.map(\.response) == Array(repeating: "first", count: 4))
    #expect(try store.dbPool.read { db in try Rollout.fetchCount(db) } == 8)
    #expect(try store.rollouts(stageId: stageId, steps: 2...2).map(\.reward) == [2, 2, 2, 2])
}

@Test func rolloutAggregatesMatchHandComputedMeans() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let (store, stageId) = try storeWithStage(path)
    #expect(try store.lastRolloutStep(stageId: stageId) == nil)
    #expect(try store.rolloutStepAggregates(stageId: stageId).isEmpty)
    #expect(try store.rolloutAggregate(stageId: stageId, steps: 1...10) == nil)
    // (step, idx, tokens, stop, score, kl, reward)
    let table: [(Int, Int, Int, String, Double?, Double?, Double?)] = [
        (1, 0, 4, "eos", 1.0, 0.0, 1.0),
        (1, 1, 8, "length", 0.0, 0.5, -0.5),
        (1, 2, 6, "eos", 0.5, nil, nil),  // reward and KL not measured: left out of their means
        (3, 0, 10, "length", 2.0, 1.0, 1.0),
        (3, 1, 2, "eos", 3.0, 2.0, 1.0),
        (3, 2, 3, "context", 4.0, 3.0, 1.0),
        (3, 3, 1, "eos", nil, nil, nil),
    ]
    try store.record(rollouts: table.map { step, idx, tokens, stop, score, kl, reward in
        Rollout(stageId: stageId, step: step, idx: idx, prompt: "p", response: "r", responseTokens: tokens, stopReason: stop,
                score: score, kl: kl, reward: reward, policyVersion: step - 1)
    })
    #expect(try store.lastRolloutStep(stageId: stageId) == 3)
    let steps = try store.rolloutStepAggregates(stageId: stageId)
    #expect(steps == [
        RolloutAggregate(firstStep: 1, lastStep: 1, count: 3, meanScore: 0.5, meanKL: 0.25, meanReward: 0.25,
                         meanResponseTokens: 6, eosShare: 2.0 / 3.0),
        RolloutAggregate(firstStep: 3, lastStep: 3, count: 4, meanScore: 3, meanKL: 2, meanReward: 1,
                         meanResponseTokens: 4, eosShare: 0.5),
    ])
    let all = try #require(try store.rolloutAggregate(stageId: stageId, steps: 0...100))
    #expect(all.firstStep == 1 && all.lastStep == 3 && all.count == 7)
    #expect(all.meanScore == 10.5 / 6 && all.meanKL == 6.5 / 5 && all.meanReward == 3.5 / 5)
    #expect(all.meanResponseTokens == 34.0 / 7 && all.eosShare == 4.0 / 7)
    #expect(try store.rolloutAggregate(stageId: stageId, steps: 2...3)?.count == 4)
    #expect(try store.rolloutAggregate(stageId: stageId, steps: 4...9) == nil)
    #expect(try store.rollouts(stageId: stageId, steps: 2...5).map(\.idx) == [0, 1, 2, 3])

    // Ranked by reward (rows without one last, then by score), either way round.
    #expect(try store.rolloutsByReward(stageId: stageId, step: 1, limit: 10).map(\.idx) == [0, 1, 2])
    #expect(try store.rolloutsByReward(stageId: stageId, step: 1, limit: 1, lowest: true).map(\.idx) == [1])
    #expect(try store.rolloutsByReward(stageId: stageId, step: 3, limit: 2).map(\.idx) == [2, 1])
    #expect(try store.rolloutsByReward(stageId: stageId, step: 3, limit: 4, lowest: true).map(\.idx) == [0, 1, 2, 3])
    #expect(try store.rolloutsByReward(stageId: stageId, step: 2, limit: 4).isEmpty)
}
