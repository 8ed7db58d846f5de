import Foundation
import Recipes
import Store
import Testing
import Training

/// A store with run `rl`: an `sft` stage with a loss and no rollouts, then a `grpo` stage that
/// recorded 20 updates of 2 prompts with 2 samples each, and evaluation replies to 2 prompts before
/// the first update and after the last (step 20, as the Runner records them).
private func showStore(_ path: String) throws {
    let store = try RunStore(path: path)
    let runId = try #require(try store.createRun(name: "rl", recipe: "", seed: 1).id)
    let sft = try #require(try store.createStage(runId: runId, stageKey: "sft", kind: "sft", configJSON: "{}", configHash: "s").id)
    try store.record(metrics: (1...3).map { Metric(stageId: sft, step: $0, name: "train/loss", value: 3 / Double($0)) })
    let grpo = try #require(try store.createStage(runId: runId, stageKey: "grpo", kind: "grpo", configJSON: "{}", configHash: "g").id)
    let sink = StoreRolloutSink(store: store, stageId: grpo)
    for step in 1...20 {
        try sink.record(rollouts: (0..<4).map { i in
            let score = Double(step) * 0.1 + Double(i) * 0.01, kl = Double(step) * 0.01
            return RolloutRow(step: step, index: i, prompt: "Question \(i / 2):\nwhat is it?",
                              response: i == 0 ? String(repeating: "long ", count: 60) : "answer \(step).\(i)",
                              responseTokenIds: (0...i).map(Int32.init), stopReason: i == 3 ? "length" : "eos",
                              score: score, kl: kl, reward: score - kl, advantage: 0, group: i / 2, policyVersion: step - 1)
        })
    }
    try store.record(rollouts: [0, 20].flatMap { step in
        (0..<2).map { i in
            Rollout(stageId: grpo, phase: RolloutPhase.eval, step: step, idx: i, prompt: "Question \(i):", response: "reply",
                    responseTokens: 50, stopReason: "length", score: step == 0 && i == 1 ? 0 : 1, policyVersion: step)
        }
    })
}

@Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
func runsShowReportsRolloutsByStepRangeWithExamplesAndCharts() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let storePath = dir.appendingPathComponent("runs.sqlite").path
    try showStore(storePath)

    let shown = try runReinCapturing(["runs", "show", "rl", "--store", storePath], in: dir)
    #expect(shown.status == 0, "\(shown.stderr)")
    let lines = shown.stdout.components(separatedBy: "\n")
    // Only the stage with rollouts has a rollout section.
    #expect(lines.filter { $0.hasPrefix("  rollouts") } == ["  rollouts    80 in 20 steps (steps 1-20)"])
    // The evaluation replies are counted apart, and the training views leave them out.
    #expect(lines.filter { $0.hasPrefix("  eval ") } == ["  eval        step 0: 2 replies, score 0.5; step 20: 2 replies, score 1"])
    let grpoAt = try #require(lines.firstIndex { $0.hasPrefix("stage grpo (grpo)") })
    #expect(lines.firstIndex { $0.hasPrefix("  rollouts") }! > grpoAt)

    // 20 steps in 8 ranges; each row: steps, n, mean score, KL, reward, tokens, EOS share.
    let cells = lines.map { $0.split(separator: " ").map(String.init) }
    let header = try #require(cells.first { $0.first == "STEPS" })
    #expect(header == ["STEPS", "N", "SCORE", "KL", "REWARD", "TOKENS", "EOS"])
    let rows = cells.filter { $0.count == 7 && $0[0].contains("-") && Int($0[1]) != nil }
    #expect(rows.map { $0[0] } == ["1-2", "3-5", "6-7", "8-10", "11-12", "13-15", "16-17", "18-20"])
    #expect(rows.map { $0[1] } == ["8", "12", "8", "12", "8", "12", "8", "12"])
    #expect(rows[0].dropFirst(2) == ["0.165", "0.015", "0.15", "2.5", "75%"])
    #expect(rows[7].dropFirst(2) == ["1.915", "0.19", "1.725", "2.5", "75%"])

    // Two examples per range at its last step: the highest reward (#3) and the lowest (#0).
    let examples = try #require(lines.firstIndex { $0.contains("examples (each range's last step") })
    let step20 = try #require(lines[examples...].firstIndex(of: "    step 20"))
    #expect(lines[step20 + 1] == "      #3  group 1  reward 1.83  score 2.03  kl 0.2  4 tokens, length")
    #expect(lines[step20 + 2] == "        prompt   Question 1:⏎what is it?")
    #expect(lines[step20 + 3] == "        response answer 20.3")
    #expect(lines[step20 + 4] == "      #0  group 0  reward 1.8  score 2  kl 0.2  1 token, eos")
    let long = lines[step20 + 6]
    #expect(long.hasPrefix("        response long long ") && long.hasSuffix("…") && long.count == 100)
    #expect(lines[examples...].filter { $0.hasPrefix("    step ") }.count == 8)

    // The per-step charts, labelled with their range.
    for name in ["* mean score", "* mean KL", "* mean reward"] { #expect(lines.contains("  " + name), "\(name)") }
    let scoreChart = try #require(lines.firstIndex(of: "  * mean score"))
    #expect(lines[scoreChart + 1].hasPrefix("  2.015 |") && lines[scoreChart + 4].hasPrefix("  0.115 |"))

    // --rollouts N: N examples per range; 0: none. --stage limits the report to one stage.
    let four = try runReinCapturing(["runs", "show", "rl", "--store", storePath, "--rollouts", "4", "--stage", "grpo"], in: dir)
    #expect(four.status == 0, "\(four.stderr)")
    #expect(!four.stdout.contains("stage sft"))
    #expect(four.stdout.components(separatedBy: "\n").filter { $0.hasPrefix("        prompt ") }.count == 32)
    let none = try runReinCapturing(["runs", "show", "rl", "--store", storePath, "--rollouts", "0"], in: dir)
    #expect(none.status == 0 && !none.stdout.contains("examples") && none.stdout.contains("  rollouts    80"))
    let missing = try runReinCapturing(["runs", "show", "rl", "--store", storePath, "--stage", "ppo"], in: dir)
    #expect(missing.status != 0)
    #expect(missing.stderr.contains("run 1 (rl) has no stage 'ppo'; its stages: sft, grpo"), "\(missing.stderr)")
    let negative = try runReinCapturing(["runs", "show", "rl", "--store", storePath, "--rollouts=-1"], in: dir)
    #expect(negative.status != 0 && negative.stderr.contains("--rollouts must be 0 or more"))

    // --json carries the same ranges and examples.
    let json = try runReinCapturing(["runs", "show", "rl", "--store", storePath, "--json", "--stage", "grpo"], in: dir)
    #expect(json.status == 0, "\(json.stderr)")
    let document = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
    let stages = try #require(document["stages"] as? [[String: Any]])
    #expect(stages.count == 1)
    let rollouts = try #require(stages[0]["rollouts"] as? [String: Any])
    #expect(rollouts["count"] as? Int == 80)
    let ranges = try #require(rollouts["ranges"] as? [[String: Any]])
    #expect(ranges.count == 8)
    let means = try #require(ranges[0]["means"] as? [String: Any])
    #expect(means["firstStep"] as? Int == 1 && means["lastStep"] as? Int == 2 && means["count"] as? Int == 8)
    #expect(means["eosShare"] as? Double == 0.75 && means["meanResponseTokens"] as? Double == 2.5)
    #expect((ranges[7]["examples"] as? [[String: Any]])?.map { $0["idx"] as? Int } == [3, 0])
    #expect((rollouts["steps"] as? [Any])?.count == 20)
    let replies = try #require(stages[0]["evalReplies"] as? [[String: Any]])
    #expect(replies.map { $0["firstStep"] as? Int } == [0, 20] && replies.map { $0["meanScore"] as? Double } == [0.5, 1])
}
