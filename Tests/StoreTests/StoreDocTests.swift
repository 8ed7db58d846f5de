import Foundation
import GRDB
import Store
import Testing

/// The SQL of every `sqlite3 runs/quickstart.sqlite "..."` command in docs/store.md (the rating
/// queries read another store; `RatingStoreTests` checks them).
private func documentedQueries() throws -> [String] {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let doc = try String(contentsOf: root.appendingPathComponent("docs/store.md"), encoding: .utf8)
    var queries: [String] = []
    for block in doc.components(separatedBy: "```sh\n").dropFirst() {
        guard let code = block.components(separatedBy: "```").first, code.hasPrefix("sqlite3"), !code.hasPrefix("sqlite3 runs/rate.sqlite") else { continue }
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
    let ppo = try #require(try store.createStage(runId: run1, stageKey: "ppo", kind: "ppo", configJSON: "{}",
                                                 configHash: "ppo1", startedAt: t0 + 230).id)
    try store.record(rollouts: sampleRollouts.map { $0.rollout(stageId: ppo) } + sampleReplies.map { $0.rollout(stageId: ppo) })
    try store.setStageStatus(ppo, .completed, at: t0 + 235)
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

/// One sample rollout of run 1's `ppo` stage, with the values the doc queries aggregate.
private struct SampleRollout {
    let step: Int, idx: Int
    var group: Int { idx / 2 }
    var prompt: String { "<|user|>What is \(group) + \(group)?<|assistant|>" }
    var response: String { "\(2 * group) (step \(step))" }
    var score: Double { Double(step) * 0.5 + Double(idx) * 0.01 }
    var kl: Double { Double(step) * 0.1 + Double(idx % 2) * 0.001 }
    var reward: Double { score - kl }
    /// `length` for the first 4 - step rollouts of a step, `context` for the last one at step 1.
    var stopReason: String { idx < 4 - step ? "length" : step == 1 && idx == 11 ? "context" : "eos" }
    var tokens: Int { stopReason == "eos" ? 3 + idx % 3 : 16 }

    func rollout(stageId: Int64) -> Rollout {
        Rollout(stageId: stageId, phase: RolloutPhase.train, step: step, idx: idx, prompt: prompt, response: response,
                responseTokens: tokens, stopReason: stopReason, score: score, kl: kl, reward: reward, policyVersion: step - 1,
                responseTokenIds: Array(repeating: 7, count: tokens), advantage: 0, groupIndex: group)
    }
}

/// Three updates of 6 prompts with 2 samples each.
private let sampleRollouts = (1...3).flatMap { step in (0..<12).map { SampleRollout(step: step, idx: $0) } }

/// One evaluation reply of run 1's `ppo` stage: the same prompts, answered greedily before the first
/// update (step 0) and after the last (step 3, the key of a training rollout too). The training
/// queries must leave them out.
private struct SampleReply {
    let step: Int, idx: Int
    var prompt: String { "<|user|>What is \(idx) + \(idx)?<|assistant|>" }
    /// Right for 1 of 4 prompts at step 0, for 3 of 4 at step 3.
    var correct: Bool { step == 0 ? idx == 0 : idx != 3 }
    var tokens: Int { 20 + idx }

    func rollout(stageId: Int64) -> Rollout {
        Rollout(stageId: stageId, phase: RolloutPhase.eval, step: step, idx: idx, prompt: prompt,
                response: correct ? "\(2 * idx)" : "many", responseTokens: tokens, stopReason: "length",
                score: correct ? 1 : 0, policyVersion: step)
    }
}

private let sampleReplies = [0, 3].flatMap { step in (0..<4).map { SampleReply(step: step, idx: $0) } }

@Test func docRolloutQueriesAnswerWhatTheySay() throws {
    let queries = try documentedQueries()
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let store = try sampleStore(path)
    func answer(_ marker: String) throws -> [Row] {
        let sql = try #require(queries.first { $0.contains(marker) }, "no documented query contains \(marker)")
        return try store.dbPool.read { db in try Row.fetchAll(db, sql: sql) }
    }
    func rounded(_ x: Double, _ places: Double = 4) -> Double { (x * pow(10, places)).rounded() / pow(10, places) }
    func mean(_ xs: [Double]) -> Double { xs.reduce(0, +) / Double(xs.count) }
    let bySteps = Dictionary(grouping: sampleRollouts, by: \.step)

    // The 10 highest rewards at step 3, best first.
    let top = try answer("ORDER BY r.reward DESC LIMIT 10")
    let expected = bySteps[3]!.sorted { $0.reward > $1.reward }.prefix(10)
    #expect(top.map { $0["idx"] as Int } == expected.map(\.idx))
    #expect(top.allSatisfy { ($0["step"] as Int) == 3 })
    #expect(top.map { $0["reward"] as Double } == expected.map { rounded($0.reward) })
    #expect(top.first.map { $0["response"] as String } == "10 (step 3)")

    let kl = try answer("AVG(kl)")
    #expect(kl.map { $0["step"] as Int } == [1, 2, 3])
    #expect(kl.map { $0["n"] as Int } == [12, 12, 12])
    #expect(kl.map { $0["mean_kl"] as Double } == [1, 2, 3].map { rounded(mean(bySteps[$0]!.map(\.kl))) })
    #expect(kl.map { $0["mean_kl"] as Double } == [0.1005, 0.2005, 0.3005])
    #expect(kl.map { $0["max_kl"] as Double } == [0.101, 0.201, 0.301])

    let scores = try answer("AVG(score)")
    #expect(scores.map { $0["mean_score"] as Double } == [1, 2, 3].map { rounded(mean(bySteps[$0]!.map(\.score))) })
    #expect(scores.map { $0["mean_score"] as Double } == [0.555, 1.055, 1.555])
    #expect(scores.map { $0["mean_reward"] as Double } == [1, 2, 3].map { rounded(mean(bySteps[$0]!.map(\.reward))) })

    // Step 1: 3 at the length limit and 1 with a full context; then 2, then 1 of 12.
    let lengths = try answer("stopReason IN ('length', 'context')")
    #expect(lengths.map { $0["length_share"] as Double } == [rounded(4 / 12), rounded(2 / 12), rounded(1 / 12)])
    #expect(lengths.map { $0["mean_tokens"] as Double }
        == [1, 2, 3].map { rounded(mean(bySteps[$0]!.map { Double($0.tokens) }), 1) })

    // Prompt group 2 at every step, both samples.
    let prompt = try answer("LIKE '%What is 2 + 2?%'")
    #expect(prompt.map { "\($0["step"] as Int)/\($0["idx"] as Int)" } == ["1/4", "1/5", "2/4", "2/5", "3/4", "3/5"])
    #expect(prompt.map { $0["policyVersion"] as Int } == [0, 0, 1, 1, 2, 2])
    #expect(prompt.map { $0["response"] as String } == ["4 (step 1)", "4 (step 1)", "4 (step 2)", "4 (step 2)",
                                                         "4 (step 3)", "4 (step 3)"])

    // The evaluation before and after: 1 and 3 of 4 replies exactly right.
    let evaluation = try answer("phase = 'eval'")
    #expect(evaluation.map { $0["step"] as Int } == [0, 3])
    #expect(evaluation.map { $0["n"] as Int } == [4, 4])
    #expect(evaluation.map { $0["exact_match"] as Double } == [0.25, 0.75])
    #expect(evaluation.map { $0["mean_tokens"] as Double } == [21.5, 21.5])

    // Every training query reads the training rollouts only (the store has replies at step 3 too).
    for sql in try documentedQueries() where sql.contains("FROM rollout") && !sql.contains("phase = 'eval'") {
        #expect(sql.contains("phase = 'train'"), "a rollout query without a phase filter: \(sql)")
    }
}
