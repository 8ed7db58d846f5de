import Foundation
import GRDB
import Store
import Testing

/// The SQL of every `sqlite3 FILE "..."` command in docs/store.md.
private func documentedQueries() throws -> [String] {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let doc = try String(contentsOf: root.appendingPathComponent("docs/store.md"), encoding: .utf8)
    var queries: [String] = []
    for block in doc.components(separatedBy: "```sh\n").dropFirst() {
        guard let code = block.components(separatedBy: "```").first, code.hasPrefix("sqlite3") else { continue }
        // The query is the one double-quoted argument (the SQL itself uses single quotes).
        let parts = code.components(separatedBy: "\"")
        if parts.count == 3 { queries.append(parts[1]) }
    }
    return queries
}

/// Three runs of a four-stage recipe, as `rein run` would record them: run 1 ran every stage,
/// run 2 reused three of them and reran `dpo`, run 3 is still in `sft`. Stage 3 is run 1's `sft`.
private func sampleStore(_ path: String) throws -> RunStore {
    let store = try RunStore(path: path)
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    func curve(_ stageId: Int64, _ name: String, _ steps: StrideThrough<Int>, _ f: (Double) -> Double) -> [Metric] {
        steps.map { Metric(stageId: stageId, step: $0, name: name, value: f(Double($0))) }
    }

    let run1 = try #require(try store.createRun(name: "quickstart", recipe: "", seed: 1, outputDir: "runs/quickstart",
                                                startedAt: t0).id)
    var ids: [String: Int64] = [:]
    for (i, key) in ["tokenizer", "data", "sft", "dpo"].enumerated() {
        let id = try #require(try store.createStage(runId: run1, stageKey: key, kind: key, configJSON: "{}",
                                                    configHash: key + "1", startedAt: t0 + Double(i) * 60).id)
        ids[key] = id
        try store.setStageOutput(id, path: "runs/quickstart/\(key)")
    }
    let sft = ids["sft"]!, dpo = ids["dpo"]!
    try #require(sft == 3)
    try store.record(metrics: curve(sft, "train/loss", stride(from: 1, through: 20, by: 1)) { 3 / $0 + 1 }
        + curve(sft, "eval/loss", stride(from: 10, through: 20, by: 10)) { 3 / $0 + 1.1 }
        + [Metric(stageId: sft, step: 20, name: "eval/exact_match", value: 0.25)]
        + curve(dpo, "train/loss", stride(from: 1, through: 10, by: 1)) { 0.7 / $0 }
        + curve(dpo, "eval/loss", stride(from: 5, through: 10, by: 5)) { 0.7 / $0 + 0.1 })
    try store.recordCheckpoint(stageId: sft, kind: "last", step: 20, path: "runs/quickstart/sft/checkpoints/last", at: t0 + 100)
    try store.recordCheckpoint(stageId: sft, kind: "final", step: 20, path: "runs/quickstart/sft/model", at: t0 + 110)
    try store.recordCheckpoint(stageId: dpo, kind: "last", step: 10, path: "runs/quickstart/dpo/checkpoints/last", at: t0 + 200)
    for key in ["tokenizer", "data", "sft", "dpo"] { try store.setStageStatus(ids[key]!, .completed, at: t0 + 230) }
    try store.setRunStatus(run1, .completed, at: t0 + 240)

    let t1 = t0 + 86400
    let run2 = try #require(try store.createRun(name: "quickstart", recipe: "", seed: 1, outputDir: "runs/quickstart",
                                                startedAt: t1).id)
    for key in ["tokenizer", "data", "sft"] {
        _ = try store.createStage(runId: run2, stageKey: key, kind: key, configJSON: "{}", configHash: key + "1",
                                  status: .completed, outputPath: "runs/quickstart/\(key)", reusedStageId: ids[key], startedAt: t1)
    }
    let dpo2 = try #require(try store.createStage(runId: run2, stageKey: "dpo", kind: "dpo", configJSON: "{}",
                                                  configHash: "dpo2", startedAt: t1).id)
    try store.record(metrics: curve(dpo2, "eval/loss", stride(from: 5, through: 10, by: 5)) { 0.6 / $0 + 0.1 })
    try store.setStageStatus(dpo2, .completed, at: t1 + 60)
    try store.setRunStatus(run2, .completed, at: t1 + 60)

    let t2 = t1 + 86400
    let run3 = try #require(try store.createRun(name: "quickstart", recipe: "", seed: 1, outputDir: "runs/quickstart",
                                                pid: 999_999, host: "gone", startedAt: t2).id)
    _ = try store.createStage(runId: run3, stageKey: "tokenizer", kind: "tokenizer", configJSON: "{}", configHash: "tokenizer1",
                              status: .completed, reusedStageId: ids["tokenizer"], startedAt: t2)
    let data3 = try #require(try store.createStage(runId: run3, stageKey: "data", kind: "data", configJSON: "{}",
                                                   configHash: "data2", startedAt: t2).id)
    try store.setStageStatus(data3, .completed, at: t2 + 1)
    let sft3 = try #require(try store.createStage(runId: run3, stageKey: "sft", kind: "sft", configJSON: "{}",
                                                  configHash: "sft2", startedAt: t2 + 2).id)
    try store.record(metrics: curve(sft3, "train/loss", stride(from: 1, through: 5, by: 1)) { 3 / $0 + 1 })
    return store
}

@Test func everyQueryInTheStoreDocRunsAndAnswers() throws {
    let queries = try documentedQueries()
    #expect(queries.count >= 6)
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let store = try sampleStore(path)
    for sql in queries {
        let rows = try store.dbPool.read { db in try Row.fetchAll(db, sql: sql) }
        #expect(!rows.isEmpty, "no rows from: \(sql)")
    }
}

@Test func docQueriesAnswerWhatTheySay() throws {
    let queries = try documentedQueries()
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let store = try sampleStore(path)
    func answer(_ marker: String) throws -> [Row] {
        let sql = try #require(queries.first { $0.contains(marker) }, "no documented query contains \(marker)")
        return try store.dbPool.read { db in try Row.fetchAll(db, sql: sql) }
    }
    // Runs newest first; skipped stages and the stages they reuse.
    #expect(try answer("FROM run r ORDER BY r.id DESC").map { $0["id"] as Int64 } == [3, 2, 1])
    let skipped = try answer("WHERE s.reusedStageId IS NOT NULL")
    #expect(skipped.map { $0["stageKey"] as String } == ["tokenizer", "data", "sft", "tokenizer"])
    #expect(skipped.allSatisfy { ($0["reused_run"] as Int64) == 1 })
    // Final eval metrics include the summary metric at the last step.
    let finals = try answer("m.name LIKE 'eval/%'")
    #expect(finals.map { "\($0["stageKey"] as String) \($0["name"] as String) \($0["step"] as Int)" }
        == ["sft eval/exact_match 20", "sft eval/loss 20", "dpo eval/loss 10"])
    // The latest checkpoint of each stage.
    let checkpoints = try answer("FROM checkpoint c JOIN stage s")
    #expect(checkpoints.map { $0["path"] as String } == ["runs/quickstart/sft/model", "runs/quickstart/dpo/checkpoints/last"])
    // The loss of a skipped stage is that of the stage it reuses: run 2's sft shows run 1's 20 steps.
    let lossQuery = try #require(queries.first { $0.contains("m.name = 'train/loss'") && $0.contains("COALESCE") })
    let reusedLoss = try store.dbPool.read { db in
        try Row.fetchAll(db, sql: lossQuery.replacingOccurrences(of: "(SELECT MAX(id) FROM run)", with: "2"))
    }
    #expect(reusedLoss.map { $0["step"] as Int } == Array(1...20))
    #expect(try answer("m.name = 'train/loss'\nORDER BY m.step").count == 5)
    // Run 2's skipped sft reads run 1's metrics, so its change is zero; dpo improved.
    let compared = try answer("COALESCE(reusedStageId, id)")
    #expect(compared.map { $0["stageKey"] as String } == ["dpo", "sft"])
    #expect(compared.map { $0["change"] as Double } == [-0.01, 0])
}
