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
/// (`count` prompts) and `eval.jsonl` (three held-out prompts with answers) in `dir`.
func writeRLInputs(in dir: URL, prompts count: Int = 12) throws {
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
    // Held-out prompts with answers (exact match needs them; the judge ignores them).
    let held = ["a cat", "the wind", "glass"].map { "{\"prompt\": \(JSONText.quoted("Write about \($0):")), \"answer\": \"yes\"}\n" }
    try Data(held.joined().utf8).write(to: dir.appendingPathComponent("eval.jsonl"))
}

/// Ids of the tiny tokenizer whose bytes include NUL (byte-level BPE writes byte 0 as "Ā").
private func nulTokenIds() throws -> Set<Int32> {
    let data = try Data(contentsOf: fixtureRoot.appendingPathComponent("hf-tiny-llama/tokenizer.json"))
    let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    let vocab = try #require((json["model"] as? [String: Any])?["vocab"] as? [String: Int])
    return Set(vocab.filter { $0.key.contains("\u{100}") }.map { Int32($0.value) })
}

/// A one-stage recipe named `rl` of `kind` on the inputs of `writeRLInputs`.
func rlRecipe(kind: String, settings: String) -> String {
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

let ppoSettings = """
    reward_model: rm
    batch_size: 4
    max_steps: 6
    save_steps: 1
    response_length: 6
    num_ppo_epochs: 2
    learning_rate: 3.0e-4
    kl_target: 0.5
    """

let grpoSettings = """
    judge: length
    num_generations: 2
    batch_size: 4
    max_steps: 6
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
func isTiming(_ name: String) -> Bool {
    name == "eps" || name.hasSuffix("per_second") || name.hasPrefix("time/")
}

/// The one stage of the only run in the store at `path`.
func onlyStage(_ path: String) throws -> (store: RunStore, stageId: Int64) {
    let store = try RunStore(path: path)
    let runs = try store.runs()
    try #require(runs.count == 1 && runs[0].stages.count == 1, "expected one run of one stage in \(path)")
    return (store, runs[0].stages[0].id!)
}

/// Every metric but the timing ones, keyed "step/name", with a check that no key repeats.
func stageMetrics(_ path: String) throws -> [String: Double] {
    let (store, id) = try onlyStage(path)
    var out: [String: Double] = [:], count = 0
    for m in try store.metrics(stageId: id) where !isTiming(m.name) {
        out["\(m.step)/\(m.name)"] = m.value
        count += 1
    }
    #expect(out.count == count, "a (step, name) metric appears twice in \(path)")
    return out
}

func stageRollouts(_ path: String) throws -> [Rollout] {
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
func expectSameMetrics(_ actual: [String: Double], _ expected: [String: Double], _ what: String) {
    #expect(Set(actual.keys) == Set(expected.keys),
            "\(what): metric keys differ: missing \(Set(expected.keys).subtracting(actual.keys).sorted().prefix(8)), extra \(Set(actual.keys).subtracting(expected.keys).sorted().prefix(8))")
    let differing = expected.keys.sorted { a, b in
        let (sa, sb) = (Int(a.prefix { $0 != "/" }) ?? 0, Int(b.prefix { $0 != "/" }) ?? 0)
        return sa != sb ? sa < sb : a < b
    }.filter { actual[$0] != nil && !close(actual[$0], expected[$0]) }
    #expect(differing.isEmpty, "\(what): \(differing.count) metrics differ, first: \(differing.prefix(6).map { "\($0) \(actual[$0]!) vs \(expected[$0]!)" })")
}

/// Expects the same rollout rows, in the same order, nothing repeated.
func expectSameRollouts(_ actual: [Rollout], _ expected: [Rollout], _ what: String) {
    #expect(Set(actual.map { "\($0.phase) \($0.step) \($0.idx)" }).count == actual.count, "\(what): a (phase, step, idx) rollout appears twice")
    #expect(actual.count == expected.count, "\(what): \(actual.count) rollouts, expected \(expected.count)")
    for (a, e) in zip(actual, expected) {
        let same = a.phase == e.phase && a.step == e.step && a.idx == e.idx && a.prompt == e.prompt && a.response == e.response
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
    // What resume reads: the checkpoint on disk (its store row may lag it by the kill).
    let last = b.appendingPathComponent("runs/rl/\(stage)/checkpoints/last")
    let killedAt = try #require(Checkpointer.resolve(last).flatMap { Checkpointer.storedStep($0) })
    #expect(killedAt >= target && killedAt < steps, "killed with the checkpoint of step \(killedAt) on disk")

    let again = try runRein(["run", "rl.yaml", "--threads", "1"], in: b)   // not quiet: its notes say where it resumed
    try #require(again.status == 0, "the resumed run failed: \(again.stderr)")
    #expect(again.stderr.contains("resumed from update \(killedAt) of \(steps)"),
            "not resumed from the checkpoint's update \(killedAt): \(again.stderr)")

    let expectedMetrics = try stageMetrics(storeA)
    #expect(expectedMetrics.keys.contains("\(steps)/loss/policy_avg") || expectedMetrics.keys.contains("\(steps)/loss"),
            "the reference run logged no loss at its last step: \(expectedMetrics.keys.sorted().prefix(40))")
    expectSameMetrics(try stageMetrics(storeB), expectedMetrics, "killed after step \(killedAt)")
    let expectedRollouts = try stageRollouts(storeA)
    // The updates' rollouts (phase train) and the exact-match replies to the three held-out prompts
    // before and after (phase eval), which share the last update's step without replacing its rows.
    let updates = expectedRollouts.filter { $0.phase == RolloutPhase.train }, replies = expectedRollouts.filter { $0.phase == RolloutPhase.eval }
    #expect(updates.count == steps * rowsPerStep && Set(updates.map(\.step)) == Set(1...steps))
    #expect(updates.allSatisfy { $0.groupIndex != nil } && replies.allSatisfy { $0.groupIndex == nil })
    #expect(replies.map { [$0.step, $0.idx] } == [[0, 0], [0, 1], [0, 2], [steps, 0], [steps, 1], [steps, 2]],
            "\(replies.map { [$0.step, $0.idx] })")
    // Every prompt of the file is trained on (none held back as validation), each as often
    // (both stages draw 24 completions of the 12 prompts).
    let perPrompt = Dictionary(grouping: updates, by: \.prompt).mapValues(\.count)
    #expect(perPrompt.count == 12 && Set(perPrompt.values).count == 1, "\(perPrompt)")
    expectSameRollouts(try stageRollouts(storeB), expectedRollouts, "killed after step \(killedAt)")
}

@Suite(.serialized, .enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
struct OnlineRLStageTests {
    @Test func ppoKilledWithSIGKILLResumesToTheSameMetricsAndRollouts() throws {
        try expectResumeAfterKillMatches(recipe: rlRecipe(kind: "ppo", settings: ppoSettings), stage: "ppo", steps: 6,
                                         rowsPerStep: 4, killAfter: 2...4)
    }

    @Test func grpoKilledWithSIGKILLResumesToTheSameMetricsAndRollouts() throws {
        // 30 updates: GRPO on the tiny model runs 6 faster than the store can be polled for a checkpoint.
        try expectResumeAfterKillMatches(recipe: rlRecipe(kind: "grpo", settings: grpoSettings.replacingOccurrences(of: "max_steps: 6", with: "max_steps: 30")),
                                         stage: "grpo", steps: 30, rowsPerStep: 4, killAfter: 2...20)
    }

    @Test func aJudgePrintingNaNFailsTheStageNamingTheJudge() throws {
        let dir = try tempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeRLInputs(in: dir)
        // One line per response, as the protocol asks, but not a number a score can be.
        try Data("n=$(wc -l)\ni=0; while [ $i -lt $n ]; do echo nan; i=$((i+1)); done\n".utf8)
            .write(to: dir.appendingPathComponent("nan.sh"))
        let settings = ppoSettings.replacingOccurrences(of: "reward_model: rm", with: "judge: \"command:sh nan.sh\"")
        try Data(rlRecipe(kind: "ppo", settings: settings).utf8).write(to: dir.appendingPathComponent("rl.yaml"))
        let result = try runRein(["run", "rl.yaml", "--threads", "1", "--quiet"], in: dir)
        #expect(result.reason == .exit && result.status != 0, "status \(result.status) (\(result.reason))")
        #expect(result.stderr.contains("stage ppo (ppo) failed: command judge `") && result.stderr.contains("sh nan.sh`: line 1")
                && result.stderr.contains("is nan; scores must be finite numbers"), "\(result.stderr)")
        let (store, id) = try onlyStage(dir.appendingPathComponent("runs/rl.sqlite").path)
        #expect(try store.runs()[0].stages[0].status == .failed)
        #expect(try store.rollouts(stageId: id).filter { $0.step > 0 }.isEmpty)
        #expect(try store.checkpoints(stageId: id).isEmpty)
    }

    /// A judge whose scores turn huge at its fourth call (the held-out evaluation is its first):
    /// update 3's value loss overflows.
    @Test func aNonFiniteLossStopsTheStageAtItsUpdateKeepingTheLastGoodCheckpoint() throws {
        let dir = try tempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeRLInputs(in: dir)
        let script = """
            calls=$(cat calls 2>/dev/null || echo 0); calls=$((calls+1)); echo $calls > calls
            n=$(wc -l); v=0.5; [ $calls -ge 4 ] && v=1e30
            i=0; while [ $i -lt $n ]; do echo $v; i=$((i+1)); done

            """
        try Data(script.utf8).write(to: dir.appendingPathComponent("big.sh"))
        let settings = ppoSettings.replacingOccurrences(of: "reward_model: rm", with: "judge: \"command:sh big.sh\"")
        try Data(rlRecipe(kind: "ppo", settings: settings).utf8).write(to: dir.appendingPathComponent("rl.yaml"))
        let result = try runRein(["run", "rl.yaml", "--threads", "1", "--quiet"], in: dir)
        #expect(result.reason == .exit && result.status != 0, "status \(result.status) (\(result.reason)): \(result.stderr)")
        let match = try #require(result.stderr.firstMatch(of: /failed: (\S+) became NaN or infinite at update (\d+); the last checkpoint is kept/),
                                 "no update and quantity named: \(result.stderr)")
        #expect(match.1 == "loss/value" && match.2 == "3", "\(result.stderr)")

        let (store, id) = try onlyStage(dir.appendingPathComponent("runs/rl.sqlite").path)
        #expect(try store.runs()[0].stages[0].status == .failed)
        let last = try #require(try store.checkpoints(stageId: id).filter { $0.kind == "last" }.max { $0.step < $1.step })
        #expect(last.step == 2, "the last checkpoint holds step \(last.step)")
        let resolved = try #require(Checkpointer.resolve(dir.appendingPathComponent("runs/rl/ppo/checkpoints/last")))
        #expect(Checkpointer.storedStep(resolved) == 2)
        for part in ["policy", "value", "policy_optimizer", "value_optimizer"] {
            let file = resolved.appendingPathComponent("\(part).safetensors")
            #expect(readsWhole(file), "\(file.path)")
            let tensors = try SafetensorsFile(url: file)
            let bad = try tensors.names.filter { try tensors.tensor($0).values.contains { !$0.isFinite } }
            #expect(bad.isEmpty, "\(part): non-finite values in \(bad.prefix(4))")
        }
        // Nothing of the failed update was recorded.
        #expect(try store.rollouts(stageId: id).map(\.step).max() == 2)
        #expect(try store.metrics(stageId: id).map(\.step).max() == 2)
    }

    @Test func regexJudgeScoresAreWhatThePatternGivesForTheStoredResponses() throws {
        let dir = try tempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeRLInputs(in: dir)
        let settings = grpoSettings.replacingOccurrences(of: "judge: length", with: "judge: \"regex:e[a-z]\"")
            .replacingOccurrences(of: "max_steps: 6", with: "max_steps: 3")
        try Data(rlRecipe(kind: "grpo", settings: settings).utf8).write(to: dir.appendingPathComponent("rl.yaml"))
        let result = try runRein(["run", "rl.yaml", "--threads", "1", "--quiet"], in: dir)
        try #require(result.status == 0, "\(result.stderr)")
        // The updates' rollouts (the exact-match replies, without a group, score exact match).
        let rollouts = try stageRollouts(dir.appendingPathComponent("runs/rl.sqlite").path).filter { $0.groupIndex != nil }
        #expect(rollouts.count == 3 * 4)
        let pattern = try Regex("e[a-z]")
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
        let rollouts = try stageRollouts(dir.appendingPathComponent("runs/rl.sqlite").path).filter { $0.groupIndex != nil }
        #expect(rollouts.count == 2 * 4)
        let nul = try nulTokenIds()
        var clean = 0
        for r in rollouts {
            let message: Comment = "step \(r.step) idx \(r.idx): \(String(reflecting: r.response)) scored \(String(describing: r.score))"
            if r.responseTokenIds?.contains(where: nul.contains) == true {
                // Known store bug: GRDB binds text with sqlite3_bind_text(..., -1), so a response
                // holding a NUL byte is stored cut at it while the judge scored all of it.
                withKnownIssue("the store cuts text at a NUL byte") { #expect(r.score == Double(r.response.count), message) }
            } else {
                clean += 1
                #expect(r.score == Double(r.response.count), message)
            }
        }
        #expect(clean >= 4)
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
        // `rein run` also records the exact-match replies (rows without a group); the update's rollouts are the same.
        let recipeRollouts = try stageRollouts(dir.appendingPathComponent("runs/rl.sqlite").path)
        #expect(recipeRollouts.count == 3 * 4 + 2 * 3)
        expectSameRollouts(trained, recipeRollouts.filter { $0.groupIndex != nil }, "rein train ppo")
        expectSameMetrics(try stageMetrics(dir.appendingPathComponent("runs/train.sqlite").path),
                          try stageMetrics(dir.appendingPathComponent("runs/rl.sqlite").path), "rein train ppo")
    }

    /// `shared_value_head`: the values come from a head on the policy (no value model is saved, the
    /// exported policy carries `v_head.summary`), and kill -9 resumes to the same rows.
    @Test func ppoWithASharedValueHeadResumesExactlyAndSavesTheHeadWithThePolicy() throws {
        let settings = ppoSettings.replacingOccurrences(of: "reward_model: rm", with: "judge: length\nshared_value_head: true")
        try expectResumeAfterKillMatches(recipe: rlRecipe(kind: "ppo", settings: settings), stage: "ppo", steps: 6,
                                         rowsPerStep: 4, killAfter: 2...4)
        let dir = try tempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeRLInputs(in: dir)
        try Data(rlRecipe(kind: "ppo", settings: settings.replacingOccurrences(of: "max_steps: 6", with: "max_steps: 2")).utf8)
            .write(to: dir.appendingPathComponent("rl.yaml"))
        let run = try runRein(["run", "rl.yaml", "--threads", "1", "--quiet"], in: dir)
        try #require(run.status == 0, "\(run.stderr)")
        let stageDir = dir.appendingPathComponent("runs/rl/ppo")
        let model = try SafetensorsFile(url: stageDir.appendingPathComponent("model/model.safetensors"))
        #expect(model.contains("v_head.summary.weight") && model.contains("v_head.summary.bias"))
        #expect(!FileManager.default.fileExists(atPath: stageDir.appendingPathComponent("value_model").path))
        // With a separate value model named as well, the stage refuses before training.
        let both = settings + "\nvalue_model: rm"
        try Data(rlRecipe(kind: "ppo", settings: both).utf8).write(to: dir.appendingPathComponent("both.yaml"))
        let refused = try runRein(["run", "both.yaml", "--threads", "1", "--quiet"], in: dir)
        #expect(refused.status != 0 && refused.stderr.contains("shared_value_head") && refused.stderr.contains("value_model"),
                "\(refused.stderr)")
    }

    /// With `normalize_reward`, the critic starts as the reward model rescaled to the normalized
    /// scores' units: a value head `score / std` with bias `-mean / std` (checked on the saved
    /// value model after one update at a learning rate too small to move it).
    @Test func normalizedRewardsStartTheCriticInTheirUnits() throws {
        let dir = try tempDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeRLInputs(in: dir)
        let (mean, std) = (0.75, 2.5)
        try Data("{\"mean\": \(mean), \"std\": \(std), \"split\": \"validation\"}".utf8)
            .write(to: dir.appendingPathComponent("rm/reward_stats.json"))
        let settings = ppoSettings.replacingOccurrences(of: "max_steps: 6", with: "max_steps: 1")
            .replacingOccurrences(of: "learning_rate: 3.0e-4", with: "learning_rate: 1.0e-12") + "\nnormalize_reward: true"
        try Data(rlRecipe(kind: "ppo", settings: settings).utf8).write(to: dir.appendingPathComponent("rl.yaml"))
        let run = try runRein(["run", "rl.yaml", "--threads", "1", "--quiet"], in: dir)
        try #require(run.status == 0, "\(run.stderr)")
        let value = try SafetensorsFile(url: dir.appendingPathComponent("runs/rl/ppo/value_model/model.safetensors"))
        let reward = try SafetensorsFile(url: dir.appendingPathComponent("rm/model.safetensors"))
        let w = try value.tensor("v_head.summary.weight").values, b = try value.tensor("v_head.summary.bias").values
        let score = try reward.tensor("score.weight").values
        #expect(w.count == score.count)
        let worst = zip(w, score).map { abs(Double($0) - Double($1) / std) }.max() ?? 1
        #expect(worst < 1e-6, "v_head is not score / std: worst \(worst)")
        #expect(abs(Double(b[0]) + mean / std) < 1e-6, "bias \(b[0]), expected \(-mean / std)")
    }
}
