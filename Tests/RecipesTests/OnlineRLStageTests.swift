import Foundation
import Recipes
import Store
import TensorCore
import Training
import Testing

// The PPO and GRPO stages run by the real `rein` binary on the tiny Llama fixtures: exact resume
// after kill -9, failures on non-finite numbers, judges' scores in the rollouts, `rein train ppo`.

private let fixtureRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures")

/// `policy/` (the tiny Llama), `rm/` (the reward model with the same tokenizer), `prompts.jsonl`
/// (`count` prompts) and `eval.jsonl` (three held-out prompts) in `dir`.
private func writeRLInputs(in dir: URL, prompts count: Int = 12) throws {
    let fm = FileManager.default
    let llama = fixtureRoot.appendingPathComponent("hf-tiny-llama")
    let policy = dir.appendingPathComponent("policy"), rm = dir.appendingPathComponent("rm")
    for d in [policy, rm] { try fm.createDirectory(at: d, withIntermediateDirectories: true) }
    for file in ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"] {
        try fm.copyItem(at: llama.appendingPathComponent(file), to: policy.appendingPathComponent(file))
    }
    let reward = fixtureRoot.appendingPathComponent("ppo-step/reward_model")
    for file in ["config.json", "model.safetensors"] {
        try fm.copyItem(at: reward.appendingPathComponent(file), to: rm.appendingPathComponent(file))
    }
    try fm.copyItem(at: llama.appendingPathComponent("tokenizer.json"), to: rm.appendingPathComponent("tokenizer.json"))
    let topics = ["the sea", "a red fox", "rain", "old books", "the moon", "bread", "a small town", "winter",
                  "music", "a garden", "trains", "the river", "clocks", "a letter", "mountains", "coffee"]
    func lines(_ items: [String]) -> Data {
        Data(items.map { "{\"prompt\": \(JSONText.quoted("Write about \($0):"))}\n" }.joined().utf8)
    }
    try lines((0..<count).map { topics[$0 % topics.count] + ($0 >= topics.count ? " again" : "") })
        .write(to: dir.appendingPathComponent("prompts.jsonl"))
    try lines(["a cat", "the wind", "glass"]).write(to: dir.appendingPathComponent("eval.jsonl"))
}

/// A one-stage recipe named `rl` of `kind` on the inputs of `writeRLInputs`.
private func rlRecipe(kind: String, settings: String) -> String {
    """
    name: rl
    seed: 5
    stages:
      - id: \(kind)
        kind: \(kind)
        model: policy
        data: prompts.jsonl
        eval_prompts: eval.jsonl
    \(settings.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
    """
}

private let ppoSettings = """
    reward_model: rm
    batch_size: 4
    max_steps: 6
    save_steps: 1
    response_length: 6
    num_ppo_epochs: 2
    learning_rate: 3.0e-4
    kl_target: 0.5
    """

private let grpoSettings = """
    judge: length
    num_generations: 2
    batch_size: 4
    max_steps: 4
    save_steps: 1
    response_length: 6
    learning_rate: 3.0e-4
    beta: 0.04
    """

/// `rein ARGS` in `directory` to the end: exit status, how it ended and its stderr.
private func runRein(_ arguments: [String], in directory: URL) throws -> (status: Int32, reason: Process.TerminationReason, stderr: String) {
    let process = Process()
    process.executableURL = reinBinary
    process.arguments = arguments
    process.currentDirectoryURL = directory
    let errors = Pipe()
    process.standardError = errors
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, process.terminationReason, message)
}

/// Wall-clock metrics, which differ between any two runs.
private func isTiming(_ name: String) -> Bool {
    name == "eps" || name.hasSuffix("per_second") || name.hasPrefix("time/")
}

/// The one stage of the only run in the store at `path`.
private func onlyStage(_ path: String) throws -> (store: RunStore, stageId: Int64) {
    let store = try RunStore(path: path)
    let runs = try store.runs()
    try #require(runs.count == 1 && runs[0].stages.count == 1, "expected one run of one stage in \(path)")
    return (store, runs[0].stages[0].id!)
}

/// Every metric but the timing ones, keyed "step/name", with a check that no key repeats.
private func stageMetrics(_ path: String) throws -> [String: Double] {
    let (store, id) = try onlyStage(path)
    var out: [String: Double] = [:], count = 0
    for m in try store.metrics(stageId: id) where !isTiming(m.name) {
        out["\(m.step)/\(m.name)"] = m.value
        count += 1
    }
    #expect(out.count == count, "a (step, name) metric appears twice in \(path)")
    return out
}

private func stageRollouts(_ path: String) throws -> [Rollout] {
    let (store, id) = try onlyStage(path)
    return try store.rollouts(stageId: id)
}

private func close(_ a: Double?, _ b: Double?) -> Bool {
    switch (a, b) {
    case (nil, nil): return true
    case let (x?, y?): return x == y || abs(x - y) <= 1e-6 * max(abs(x), abs(y))
    default: return false
    }
}

/// Expects the same metric rows (within 1e-6 relative), naming the first few differences.
private func expectSameMetrics(_ actual: [String: Double], _ expected: [String: Double], _ what: String) {
    #expect(Set(actual.keys) == Set(expected.keys),
            "\(what): metric keys differ: missing \(Set(expected.keys).subtracting(actual.keys).sorted().prefix(8)), extra \(Set(actual.keys).subtracting(expected.keys).sorted().prefix(8))")
    let differing = expected.keys.sorted { a, b in
        let (sa, sb) = (Int(a.prefix { $0 != "/" }) ?? 0, Int(b.prefix { $0 != "/" }) ?? 0)
        return sa != sb ? sa < sb : a < b
    }.filter { actual[$0] != nil && !close(actual[$0], expected[$0]) }
    #expect(differing.isEmpty, "\(what): \(differing.count) metrics differ, first: \(differing.prefix(6).map { "\($0) \(actual[$0]!) vs \(expected[$0]!)" })")
}

/// Expects the same rollout rows, in the same order, nothing repeated.
private func expectSameRollouts(_ actual: [Rollout], _ expected: [Rollout], _ what: String) {
    #expect(Set(actual.map { [$0.step, $0.idx] }).count == actual.count, "\(what): a (step, idx) rollout appears twice")
    #expect(actual.count == expected.count, "\(what): \(actual.count) rollouts, expected \(expected.count)")
    for (a, e) in zip(actual, expected) {
        let same = a.step == e.step && a.idx == e.idx && a.prompt == e.prompt && a.response == e.response
            && a.responseTokenIds == e.responseTokenIds && a.responseTokens == e.responseTokens && a.stopReason == e.stopReason
            && a.groupIndex == e.groupIndex && a.policyVersion == e.policyVersion
            && close(a.score, e.score) && close(a.kl, e.kl) && close(a.reward, e.reward) && close(a.advantage, e.advantage)
        #expect(same, "\(what): rollout step \(e.step) idx \(e.idx) differs:\n  got      \(a)\n  expected \(e)")
        if !same { break }
    }
}

/// Runs `recipe` uninterrupted in `a`, then in `b` killed with SIGKILL once a checkpoint at a
/// random step in `killAfter` is recorded, then again in `b` to the end; compares the stores.
private func expectResumeAfterKillMatches(recipe: String, stage: String, steps: Int, rowsPerStep: Int,
                                          killAfter: ClosedRange<Int>) throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let a = dir.appendingPathComponent("a"), b = dir.appendingPathComponent("b")
    for d in [a, b] {
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        try writeRLInputs(in: d)
        try Data(recipe.utf8).write(to: d.appendingPathComponent("rl.yaml"))
    }
    let arguments = ["run", "rl.yaml", "--threads", "1", "--quiet"]
    let reference = try runRein(arguments, in: a)
    try #require(reference.status == 0, "the uninterrupted run failed: \(reference.stderr)")
    let storeA = a.appendingPathComponent("runs/rl.sqlite").path
    let storeB = b.appendingPathComponent("runs/rl.sqlite").path

    let target = Int.random(in: killAfter)
    let victim = try startRein(arguments, in: b)
    let deadline = Date().addingTimeInterval(60)
    while (lastCheckpointStep(store: storeB, stage: stage) ?? 0) < target && victim.isRunning && Date() < deadline {
        usleep(2_000)
    }
    let wasRunning = victim.isRunning
    kill(victim.processIdentifier, SIGKILL)
    victim.waitUntilExit()
    try #require(wasRunning && victim.terminationReason == .uncaughtSignal, "the run ended before it was killed (target step \(target))")
    let killedAt = try #require(lastCheckpointStep(store: storeB, stage: stage))
    #expect(killedAt >= target && killedAt < steps, "killed with the checkpoint of step \(killedAt) recorded")

    let again = try runRein(arguments, in: b)
    try #require(again.status == 0, "the resumed run failed: \(again.stderr)")
    #expect(again.stderr.contains("resumed from update \(killedAt)") || !again.stderr.contains("resumed from update"),
            "resumed from another update than the checkpoint's \(killedAt): \(again.stderr)")

    let expectedMetrics = try stageMetrics(storeA)
    #expect(expectedMetrics.keys.contains("\(steps)/loss/policy_avg") || expectedMetrics.keys.contains("\(steps)/loss"),
            "the reference run logged no loss at its last step: \(expectedMetrics.keys.sorted().prefix(40))")
    expectSameMetrics(try stageMetrics(storeB), expectedMetrics, "killed after step \(killedAt)")
    let expectedRollouts = try stageRollouts(storeA)
    #expect(expectedRollouts.count == steps * rowsPerStep)
    #expect(Set(expectedRollouts.map(\.step)) == Set(1...steps))
    expectSameRollouts(try stageRollouts(storeB), expectedRollouts, "killed after step \(killedAt)")
}

@Suite(.serialized, .enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
struct OnlineRLStageTests {
    @Test func ppoKilledWithSIGKILLResumesToTheSameMetricsAndRollouts() throws {
        try expectResumeAfterKillMatches(recipe: rlRecipe(kind: "ppo", settings: ppoSettings), stage: "ppo", steps: 6,
                                         rowsPerStep: 4, killAfter: 2...4)
    }

    @Test func grpoKilledWithSIGKILLResumesToTheSameMetricsAndRollouts() throws {
        try expectResumeAfterKillMatches(recipe: rlRecipe(kind: "grpo", settings: grpoSettings), stage: "grpo", steps: 4,
                                         rowsPerStep: 4, killAfter: 1...2)
    }

    @Test func aJudgePrintingNaNFailsTheStageNamingTheJudge() throws {
        let dir = try tempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeRLInputs(in: dir)
        // One line per response, as the protocol asks, but not a number a score can be.
        try Data("cat > /dev/null\nfor i in 1 2 3 4; do echo nan; done\n".utf8).write(to: dir.appendingPathComponent("nan.sh"))
        let settings = ppoSettings.replacingOccurrences(of: "reward_model: rm", with: "judge: \"command:sh nan.sh\"")
        try Data(rlRecipe(kind: "ppo", settings: settings).utf8).write(to: dir.appendingPathComponent("rl.yaml"))
        let result = try runRein(["run", "rl.yaml", "--threads", "1", "--quiet"], in: dir)
        #expect(result.reason == .exit && result.status != 0, "status \(result.status) (\(result.reason))")
        #expect(result.stderr.contains("command judge `sh nan.sh`") && result.stderr.contains("nan")
                && result.stderr.contains("finite"), "\(result.stderr)")
        let (store, id) = try onlyStage(dir.appendingPathComponent("runs/rl.sqlite").path)
        #expect(try store.runs()[0].stages[0].status == .failed)
        #expect(try store.rollouts(stageId: id).isEmpty)
        #expect(try store.checkpoints(stageId: id).isEmpty)
    }

    @Test func aHugeLearningRateStopsAtTheNonFiniteUpdateKeepingTheLastGoodCheckpoint() throws {
        let dir = try tempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeRLInputs(in: dir)
        // One optimizer step per update: the first update's loss is finite, its step wrecks the policy.
        let settings = ppoSettings.replacingOccurrences(of: "learning_rate: 3.0e-4", with: "learning_rate: 1.0e6")
            .replacingOccurrences(of: "num_ppo_epochs: 2", with: "num_ppo_epochs: 1")
        try Data(rlRecipe(kind: "ppo", settings: settings).utf8).write(to: dir.appendingPathComponent("rl.yaml"))
        let result = try runRein(["run", "rl.yaml", "--threads", "1", "--quiet"], in: dir)
        #expect(result.reason == .exit && result.status != 0, "status \(result.status) (\(result.reason)): \(result.stderr)")
        let match = try #require(result.stderr.firstMatch(of: /(\S[^\n]*?) became NaN or infinite at update (\d+)/),
                                 "no update and quantity named: \(result.stderr)")
        let failedAt = try #require(Int(match.2))
        #expect(!match.1.isEmpty)
        #expect(failedAt >= 2 && failedAt <= 6, "\(result.stderr)")

        let storePath = dir.appendingPathComponent("runs/rl.sqlite").path
        let (store, id) = try onlyStage(storePath)
        #expect(try store.runs()[0].stages[0].status == .failed)
        let last = try #require(try store.checkpoints(stageId: id).filter { $0.kind == "last" }.max { $0.step < $1.step })
        #expect(last.step == failedAt - 1, "the last checkpoint holds step \(last.step), the failure was at \(failedAt)")
        let resolved = try #require(Checkpointer.resolve(URL(fileURLWithPath: last.path)))
        #expect(Checkpointer.storedStep(resolved) == failedAt - 1)
        for part in ["policy", "value"] {
            let file = resolved.appendingPathComponent("\(part).safetensors")
            #expect(readsWhole(file), "\(file.path)")
            let tensors = try SafetensorsFile(url: file)
            let bad = try tensors.names.filter { try tensors.tensor($0).values.contains { !$0.isFinite } }
            #expect(bad.isEmpty, "\(part): non-finite parameters in \(bad.prefix(4))")
        }
        // Nothing of the failed update was recorded.
        #expect(try store.rollouts(stageId: id).map(\.step).max() == failedAt - 1)
    }

    @Test func regexJudgeScoresAreWhatThePatternGivesForTheStoredResponses() throws {
        let dir = try tempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeRLInputs(in: dir)
        let settings = grpoSettings.replacingOccurrences(of: "judge: length", with: "judge: \"regex:[aeiou]{2}\"")
            .replacingOccurrences(of: "max_steps: 4", with: "max_steps: 3")
        try Data(rlRecipe(kind: "grpo", settings: settings).utf8).write(to: dir.appendingPathComponent("rl.yaml"))
        let result = try runRein(["run", "rl.yaml", "--threads", "1", "--quiet"], in: dir)
        try #require(result.status == 0, "\(result.stderr)")
        let rollouts = try stageRollouts(dir.appendingPathComponent("runs/rl.sqlite").path)
        #expect(rollouts.count == 3 * 4)
        let pattern = try Regex("[aeiou]{2}")
        for r in rollouts {
            #expect(r.score == (r.response.contains(pattern) ? 1 : 0), "step \(r.step) idx \(r.idx): \(String(reflecting: r.response)) scored \(String(describing: r.score))")
        }
        // Both outcomes occur, so the comparison above tells matching from not matching.
        #expect(Set(rollouts.compactMap(\.score)) == [0, 1], "\(rollouts.map(\.response))")
    }

    @Test func lengthJudgeScoresInPPORolloutsAreTheResponseLengths() throws {
        let dir = try tempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeRLInputs(in: dir)
        let settings = ppoSettings.replacingOccurrences(of: "reward_model: rm", with: "judge: length")
            .replacingOccurrences(of: "max_steps: 6", with: "max_steps: 2")
        try Data(rlRecipe(kind: "ppo", settings: settings).utf8).write(to: dir.appendingPathComponent("rl.yaml"))
        let result = try runRein(["run", "rl.yaml", "--threads", "1", "--quiet"], in: dir)
        try #require(result.status == 0, "\(result.stderr)")
        let rollouts = try stageRollouts(dir.appendingPathComponent("runs/rl.sqlite").path)
        #expect(rollouts.count == 2 * 4)
        for r in rollouts {
            #expect(r.score == Double(r.response.count), "step \(r.step) idx \(r.idx): \(String(reflecting: r.response)) scored \(String(describing: r.score))")
        }
        #expect(Set(rollouts.map(\.response.count)).count > 1, "every response has the same length")
    }

    @Test func reinTrainPPORecordsTheRecipeRunsRollouts() throws {
        let dir = try tempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeRLInputs(in: dir)
        let settings = ppoSettings.replacingOccurrences(of: "max_steps: 6", with: "max_steps: 3")
        try Data(rlRecipe(kind: "ppo", settings: settings).utf8).write(to: dir.appendingPathComponent("rl.yaml"))
        let recipe = try runRein(["run", "rl.yaml", "--threads", "1", "--quiet"], in: dir)
        try #require(recipe.status == 0, "\(recipe.stderr)")
        // The same stage as a config file for `rein train ppo` (the recipe's seed set on the stage).
        let config = "model: policy\ndata: prompts.jsonl\neval_prompts: eval.jsonl\nseed: 5\noutput_dir: out\n" + settings + "\n"
        try Data(config.utf8).write(to: dir.appendingPathComponent("ppo.yaml"))
        let train = try runRein(["train", "ppo", "--config", "ppo.yaml", "--store", "runs/train.sqlite", "--threads", "1"], in: dir)
        try #require(train.status == 0, "\(train.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/model/model.safetensors").path))
        #expect(Checkpointer.storedStep(try #require(Checkpointer.resolve(dir.appendingPathComponent("out/checkpoints/last")))) == 3)
        let trained = try stageRollouts(dir.appendingPathComponent("runs/train.sqlite").path)
        #expect(trained.count == 3 * 4)
        expectSameRollouts(trained, try stageRollouts(dir.appendingPathComponent("runs/rl.sqlite").path), "rein train ppo")
        expectSameMetrics(try stageMetrics(dir.appendingPathComponent("runs/train.sqlite").path),
                          try stageMetrics(dir.appendingPathComponent("runs/rl.sqlite").path), "rein train ppo")
    }
}
