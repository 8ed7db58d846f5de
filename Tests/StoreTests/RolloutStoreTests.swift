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
    #expect(try store.appliedMigrations() == ["v1", "v2", "v3", "v4", "v5", "v6-ratings", "v6-comparisons"])
    let columns = try store.dbPool.read { db in try db.columns(in: "rollout").map(\.name) }
    #expect(columns.suffix(3) == ["responseTokenIds", "advantage", "groupIndex"])
    let indexes = try store.dbPool.read { db in try db.indexes(on: "rollout").map(\.name) }
    #expect(indexes.contains("rollout_on_stageId_phase_step_reward"))
    let stageId = try #require(try store.runs().first?.stages.first?.id)
    let old = try store.rollouts(stageId: stageId)
    #expect(old == [Rollout(stageId: stageId, phase: "eval", step: 0, idx: 0, prompt: "p", response: "r", responseTokens: 3,
                            stopReason: "eos", score: 1, policyVersion: 0)])
    #expect(old.first?.responseTokenIds == nil && old.first?.advantage == nil && old.first?.groupIndex == nil)

    // The new columns round-trip on the upgraded file; token ids are a JSON array in the column.
    let new = Rollout(stageId: stageId, phase: "train", step: 1, idx: 0, prompt: "p", response: "r2", responseTokens: 3,
                      stopReason: "length",
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
        Rollout(stageId: stageId, phase: RolloutPhase.train, step: step, idx: idx, prompt: "p\(idx)", response: response, responseTokens: response.count,
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
        Rollout(stageId: stageId, phase: RolloutPhase.train, step: step, idx: idx, prompt: "p", response: "r", responseTokens: tokens, stopReason: stop,
                score: score, kl: kl, reward: reward, policyVersion: step - 1)
    })
    // Evaluation replies at the same keys (and a later step) are rows of their own and stay out
    // of the training views.
    try store.record(rollouts: [(1, 0), (1, 1), (3, 0), (4, 0)].map { step, idx in
        Rollout(stageId: stageId, step: step, idx: idx, prompt: "q", response: "a", responseTokens: 100, stopReason: "length",
                score: 9, policyVersion: step)
    })
    #expect(try store.lastRolloutStep(stageId: stageId) == 3)
    #expect(try store.lastRolloutStep(stageId: stageId, phase: RolloutPhase.eval) == 4)
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

    // The evaluation replies, asked for by phase.
    #expect(try store.rolloutStepAggregates(stageId: stageId, phase: RolloutPhase.eval).map { [$0.firstStep, $0.count] }
        == [[1, 2], [3, 1], [4, 1]])
    #expect(try store.rolloutAggregate(stageId: stageId, steps: 0...3, phase: RolloutPhase.eval)?.meanScore == 9)
    #expect(try store.rollouts(stageId: stageId, steps: 3...4, phase: RolloutPhase.eval).map(\.step) == [3, 4])
    #expect(try store.rolloutsByReward(stageId: stageId, step: 1, limit: 10, phase: RolloutPhase.eval).map(\.response) == ["a", "a"])
    // Both phases at once: a step's training rollouts before its evaluation replies.
    let both = try store.rollouts(stageId: stageId).filter { $0.step == 1 }.map { "\($0.phase)/\($0.idx)" }
    #expect(both == ["train/0", "train/1", "train/2", "eval/0", "eval/1"])
    #expect(try store.rollouts(stageId: stageId, phase: RolloutPhase.eval).count == 4)
    #expect(try store.rollouts(stageId: stageId, phase: RolloutPhase.train).count == 7)
}

@Test func aV3StoreGainsThePhaseKeyWithSinkRowsAsTrainAndTheRestAsEval() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(),
                                            withIntermediateDirectories: true)
    // A file as a v3 rein left it: an RL stage with evaluation replies at steps 0 and 2 (no prompt
    // group) and sink rollouts at steps 1 and 2 (with one).
    var config = Configuration()
    config.foreignKeysEnabled = true
    let queue = try DatabaseQueue(path: path, configuration: config)
    try RunStore.migrator.migrate(queue, upTo: "v3")
    try queue.write { db in
        try db.execute(sql: """
            INSERT INTO run (name, recipe, seed, status, startedAt) VALUES ('old', '', 1, 'completed', '2026-01-02 03:04:05.000')
            """)
        try db.execute(sql: """
            INSERT INTO stage (runId, stageKey, kind, configJSON, configHash, status, startedAt)
            VALUES (?, 'grpo', 'grpo', '{}', 'h', 'completed', '2026-01-02 03:04:05.000')
            """, arguments: [db.lastInsertedRowID])
        let stage = db.lastInsertedRowID
        for (step, idx, group) in [(0, 0, nil), (0, 1, nil), (1, 0, 0), (1, 1, 0), (2, 0, 0), (2, 1, 0), (2, 2, nil)] as [(Int, Int, Int?)] {
            try db.execute(sql: """
                INSERT INTO rollout (stageId, step, idx, prompt, response, responseTokens, stopReason, score, kl, reward,
                                     policyVersion, responseTokenIds, advantage, groupIndex)
                VALUES (?, ?, ?, 'p', ?, 2, 'eos', 0.5, ?, ?, ?, ?, ?, ?)
                """, arguments: [stage, step, idx, "r\(step).\(idx)", group.map { _ in 0.1 }, group.map { _ in 0.4 },
                                 max(0, step - 1), group.map { _ in "[1,2]" }, group.map { _ in -0.5 }, group])
        }
    }
    try queue.close()

    let store = try RunStore(path: path)
    #expect(try store.appliedMigrations() == ["v1", "v2", "v3", "v4", "v5", "v6-ratings", "v6-comparisons"])
    let stageId = try #require(try store.runs().first?.stages.first?.id)
    let rows = try store.rollouts(stageId: stageId)
    #expect(rows.map { "\($0.phase) \($0.step).\($0.idx)" }
        == ["eval 0.0", "eval 0.1", "train 1.0", "train 1.1", "train 2.0", "train 2.1", "eval 2.2"])
    // Every other column survives the rebuild.
    let sample = try #require(rows.first { $0.step == 2 && $0.idx == 1 })
    #expect(sample == Rollout(stageId: stageId, phase: "train", step: 2, idx: 1, prompt: "p", response: "r2.1", responseTokens: 2,
                              stopReason: "eos", score: 0.5, kl: 0.1, reward: 0.4, policyVersion: 1, responseTokenIds: [1, 2],
                              advantage: -0.5, groupIndex: 0))

    let columns = try store.dbPool.read { db in try db.columns(in: "rollout").map(\.name) }
    let primaryKey = try store.dbPool.read { db in try db.primaryKey("rollout").columns }
    let indexes = try store.dbPool.read { db in try db.indexes(on: "rollout").map { "\($0.name) \($0.columns)" } }
    let foreignKeys = try store.dbPool.read { db in
        try db.foreignKeys(on: "rollout").map { "\($0.destinationTable) \($0.originColumns)" }
    }
    let onDelete = try store.dbPool.read { db in
        try String.fetchOne(db, sql: "SELECT on_delete FROM pragma_foreign_key_list('rollout')")
    }
    let tables = try store.dbPool.read { db in
        try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE name LIKE '%rollout%' ORDER BY name")
    }
    #expect(columns == ["stageId", "phase", "step", "idx", "prompt", "response", "responseTokens", "stopReason", "score",
                               "kl", "reward", "policyVersion", "responseTokenIds", "advantage", "groupIndex"])
    #expect(primaryKey == ["stageId", "phase", "step", "idx"])
    #expect(indexes.contains("rollout_on_stageId_phase_step_reward [\"stageId\", \"phase\", \"step\", \"reward\"]"))
    #expect(!indexes.contains { $0.hasPrefix("rollout_on_stageId_step_reward") })
    #expect(foreignKeys == ["stage [\"stageId\"]"] && onDelete == "CASCADE")
    #expect(!tables.contains("new_rollout"))
    try store.dbPool.read { db in try db.checkForeignKeys() }

    // The last update and the final evaluation no longer share a key.
    try store.record(rollouts: [Rollout(stageId: stageId, phase: "train", step: 2, idx: 2, prompt: "p", response: "t",
                                        responseTokens: 1, stopReason: "eos", policyVersion: 1, groupIndex: 1)])
    #expect(try store.rollouts(stageId: stageId, steps: 2...2).map(\.response) == ["r2.0", "r2.1", "t"])
    #expect(try store.rollouts(stageId: stageId, steps: 2...2, phase: "eval").map(\.response) == ["r2.2"])
    // Only the two values are accepted.
    #expect(throws: DatabaseError.self) {
        try store.record(rollouts: [Rollout(stageId: stageId, phase: "test", step: 9, idx: 0, prompt: "p", response: "r",
                                            responseTokens: 1, stopReason: "eos", policyVersion: 0)])
    }
    // Deleting the run still deletes its rollouts.
    try store.dbPool.write { db in _ = try Run.deleteAll(db) }
    #expect(try store.dbPool.read { db in try Rollout.fetchCount(db) } == 0)
}

@Test func aResponseWithANULByteReadsBackAsStoredNotCutAtTheNUL() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let (store, stageId) = try storeWithStage(path)
    // A byte-level tokenizer can decode a token to NUL; SQLite would return only "ab".
    let row = Rollout(stageId: stageId, phase: RolloutPhase.train, step: 1, idx: 0, prompt: "q\u{0}", response: "ab\u{0}cd",
                      responseTokens: 5, stopReason: "eos", policyVersion: 0, responseTokenIds: [97, 98, 0, 99, 100])
    #expect(row.response == "ab\u{FFFD}cd")
    try store.record(rollouts: [row])
    let back = try #require(try store.rollouts(stageId: stageId).first)
    #expect(back.response == "ab\u{FFFD}cd")
    #expect(back.prompt == "q\u{FFFD}")
    #expect(back.responseTokenIds == [97, 98, 0, 99, 100])
}
