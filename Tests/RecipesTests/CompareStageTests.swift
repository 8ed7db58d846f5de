import Foundation
import Recipes
import Store
import TensorCore
import Testing

// `kind: compare` and the comparison engine, run in process on the tiny Llama fixture: two
// policies (the fixture and a DPO-tuned copy), a best-of-n baseline, score judges and pairwise
// command judges; every verdict checked against the stored responses.

/// `policy/` (the tiny Llama), `prompts.jsonl`, `eval.jsonl` (held-out prompts with answers) and
/// the judge scripts, in a fresh directory.
private func compareInputs() throws -> URL {
    let fm = FileManager.default
    let dir = fm.temporaryDirectory.appendingPathComponent("rein-compare-\(UUID().uuidString)")
    try copyFixtureModel(to: dir.appendingPathComponent("policy"))
    let lines = fixturePromptTopics.map { "{\"prompt\": \(JSONText.quoted("Write about \($0):"))}\n" }
    try Data(lines.joined().utf8).write(to: dir.appendingPathComponent("prompts.jsonl"))
    let held = ["a cat", "the wind", "glass", "a bridge", "snow", "a lamp"].map {
        "{\"prompt\": \(JSONText.quoted("Tell me of \($0):")), \"answer\": \"yes\"}\n"
    }
    try Data(held.joined().utf8).write(to: dir.appendingPathComponent("eval.jsonl"))
    // Pairwise judges: the longer response in bytes of its JSON text; always the first shown;
    // garbage on every fourth line; a crash.
    let scripts = [
        "longer.sh": #"LC_ALL=C exec awk -F '"response_a":"' '{ split($2, p, "\",\"response_b\":\""); a = length(p[1]); b = length(p[2]) - 2; if (a > b) print "a"; else if (b > a) print "b"; else print "tie" }'"#,
        "first.sh": #"exec awk '{ print "a" }'"#,
        "garbage.sh": #"exec awk '{ if (NR % 4 == 0) print "maybe"; else print "A" }'"#,
        "crash.sh": "cat > /dev/null; echo 'out of memory' >&2; exit 3",
    ]
    for (name, body) in scripts {
        let url = dir.appendingPathComponent(name)
        try Data(("#!/bin/sh\n" + body + "\n").utf8).write(to: url)
        try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path)
    }
    return dir
}

private func compareRecipe(judges: String, baselines: String = "[best_of_n:3]", extra: String = "") -> String {
    var text = """
    name: cmp
    seed: 9
    stages:
      - id: pairs
        kind: judge_pairs
        model: policy
        prompts: prompts.jsonl
        judge: length
        samples_per_prompt: 4
        response_length: 8
        temperature: 1.0
        validation_pairs: 2
      - id: rm
        kind: reward
        model: policy
        data: stage:pairs/prefs.jsonl
        validation_data: stage:pairs/prefs_valid.jsonl
        batch_size: 2
        max_steps: 2
        max_length: 48
      - id: tuned
        kind: dpo
        model: policy
        data: stage:pairs/prefs.jsonl
        batch_size: 4
        max_steps: 3
        learning_rate: 1.0e-2
        max_length: 48
      - id: compare
        kind: compare
        policies: [policy, stage:tuned]
        reward_model: stage:rm
        prompts: eval.jsonl
        judges: \(judges)
        baselines: \(baselines)
        response_length: 8
        samples_per_prompt: 2
        bootstrap: 200

    """
    for line in extra.split(separator: "\n") { text += "    \(line)\n" }
    return text
}

private func run(_ text: String, in dir: URL) throws -> RunReport {
    let recipe = try Recipe.parse(yaml: text, fileName: "cmp.yaml", baseDirectory: dir)
    let runner = RecipeRunner(recipe: recipe, recipeText: text)
    runner.shouldStop = { false }
    return try runner.run()
}

@Suite(.serialized) struct CompareStageTests {
    @Test func verdictsFollowTheJudgesAndTheStoreHoldsEveryItem() throws {
        let dir = try compareInputs()
        defer { try? FileManager.default.removeItem(at: dir) }
        let report = try run(compareRecipe(judges: "[length, reward_model, \"pairwise_command:\(dir.path)/longer.sh\", \"pairwise_command:\(dir.path)/first.sh\"]"), in: dir)
        #expect(report.status == .completed)
        let store = try RunStore(path: dir.appendingPathComponent("runs/cmp.sqlite").path)
        let session = try #require(try store.compareSessions().first)
        #expect(session.status == "completed")
        let policies = try store.comparePolicies(sessionId: session.id!)
        #expect(policies.map(\.name) == ["policy", "tuned", "best_of_3"])
        #expect(policies.map(\.kind) == ["model", "model", "best_of_n"])
        let summary = try JSONDecoder().decode(CompareSummary.self, from: Data((session.summaryJSON ?? "").utf8))
        #expect(summary.promptCount == 6)

        // The responses each policy gave, from the cache, in prompt order.
        let options = summary.options
        #expect(options.samplesPerPrompt == 2 && options.responseLength == 8)
        let verdicts = try store.compareVerdicts(sessionId: session.id!)
        let P = 3, N = 6, S = 2
        // Score rows: one per judge, policy, prompt and sample; all scored.
        for judge in ["length", "reward_model"] {
            let scores = verdicts.filter { $0.judge == judge && $0.policyB == nil }
            #expect(scores.count == P * N * S, "\(judge)")
            #expect(scores.allSatisfy { $0.score?.isFinite == true && $0.error == nil })
        }
        func score(_ judge: String, _ p: Int, _ i: Int, _ s: Int) -> Double? {
            verdicts.first { $0.judge == judge && $0.policyB == nil && $0.policyA == p && $0.promptIdx == i && $0.sampleIdx == s }?.score
        }
        // Score judges' verdicts are the sign of the score difference.
        for judge in ["length", "reward_model"] {
            let pairs = verdicts.filter { $0.judge == judge && $0.policyB != nil }
            #expect(pairs.count == 3 * N * S)
            for v in pairs {
                let x = try #require(score(judge, v.policyA, v.promptIdx, v.sampleIdx))
                let y = try #require(score(judge, v.policyB!, v.promptIdx, v.sampleIdx))
                #expect(v.verdict == (x > y ? "a" : (y > x ? "b" : "tie")), "\(judge) \(x) vs \(y): \(v.verdict ?? "nil")")
            }
        }
        // Best of 3 by the reward model: its pool for sample 0 holds the reference's own sample 0
        // (the same seed, from the cache), so it scores at least as high.
        for i in 0..<N {
            let best = try #require(score("reward_model", 2, i, 0)), own = try #require(score("reward_model", 0, i, 0))
            #expect(best >= own - 1e-4, "prompt \(i): best of 3 scores \(best), the reference's own sample \(own)")
        }
        let bestSummary = try #require(summary.judges.first { $0.name == "reward_model" })
        let meanPolicy = try #require(bestSummary.scores[0].mean), meanBest = try #require(bestSummary.scores[2].mean)
        #expect(meanBest >= meanPolicy - 1e-9, "best-of-3 \(meanBest) vs its reference \(meanPolicy)")
        // KL: the reference to itself 0, best-of-3 analytic.
        #expect(summary.policies[0].kl == 0)
        #expect(abs((summary.policies[2].kl ?? -1) - (log(3.0) - 2.0 / 3.0)) < 1e-12)
        #expect(summary.policies[1].kl?.isFinite == true)

        // The longer-response command judge, both orders: the verdict is the longer one, and the
        // two orders always agree, so the first-shown share is one half of decisive verdicts.
        let longer = verdicts.filter { $0.judge == "pairwise_command:\(dir.path)/longer.sh" }
        #expect(longer.count == 3 * N * S)
        for v in longer {
            #expect(v.forward == v.swapped, "\(v)")
        }
        // Always "first shown": the orders always disagree, so every item is a tie.
        let first = verdicts.filter { $0.judge == "pairwise_command:\(dir.path)/first.sh" }
        #expect(first.count == 3 * N * S && first.allSatisfy { $0.verdict == "tie" && $0.forward == "a" && $0.swapped == "b" })
        let firstSummary = try #require(summary.judges.first { $0.name == "pairwise_command:\(dir.path)/first.sh" })
        #expect(firstSummary.pairs.allSatisfy { $0.positionBias == 1 && $0.ties == N * S && $0.wins == 0 && $0.losses == 0 })

        // One comparison row per judge and pair, with the tallies of the verdict rows.
        let tallies = try store.comparisons(sessionId: session.id!)
        #expect(tallies.count == 4 * 3)
        for tally in tallies {
            let a = try #require(policies.first { $0.name == tally.policyA }).idx, b = try #require(policies.first { $0.name == tally.policyB }).idx
            let rows = verdicts.filter { $0.judge == tally.judge && $0.policyA == a && $0.policyB == b }
            #expect(tally.winsA == rows.filter { $0.verdict == "a" }.count)
            #expect(tally.winsB == rows.filter { $0.verdict == "b" }.count)
            #expect(tally.ties == rows.filter { $0.verdict == "tie" }.count)
        }
        let file = dir.appendingPathComponent("runs/cmp/compare/comparison.json")
        #expect(FileManager.default.fileExists(atPath: file.path))
    }

    @Test func failingJudgesRecordFailuresNeverWinsAndResponsesAreReused() throws {
        let dir = try compareInputs()
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try run(compareRecipe(judges: "[length]", baselines: "[best_of_n:3, in_context:2]"), in: dir)
        let store = try RunStore(path: dir.appendingPathComponent("runs/cmp.sqlite").path)
        let generations = try store.dbPool.read { db in try CompareGeneration.fetchAll(db) }
        #expect(!generations.isEmpty)
        // In context: two solved examples from the prompts file (never the prompt itself) before each prompt.
        let first = try #require(try store.compareSessions().first)
        #expect(try store.comparePolicies(sessionId: first.id!).map(\.name) == ["policy", "tuned", "best_of_3", "in_context_2"])
        let shots = generations.filter { $0.prompt.components(separatedBy: "Tell me of").count - 1 == 3 }
        #expect(shots.count == 6 * 2, "\(generations.map(\.prompt).prefix(3))")
        for g in shots {
            let asked = try #require(g.prompt.components(separatedBy: "Tell me of").last)
            #expect(g.prompt.components(separatedBy: "Tell me of" + asked).count == 2, "the prompt is not among its own examples")
            #expect(g.prompt.components(separatedBy: "yes").count - 1 >= 2, "the examples' answers are shown")
        }

        // Other judges: the stage reruns (its settings changed) but samples nothing new.
        _ = try run(compareRecipe(judges: "[length, \"pairwise_command:\(dir.path)/garbage.sh\", \"pairwise_command:\(dir.path)/crash.sh\"]",
                                  baselines: "[best_of_n:3, in_context:2]"), in: dir)
        let again = try store.dbPool.read { db in try CompareGeneration.fetchAll(db) }
        #expect(again == generations)
        let session = try #require(try store.compareSessions().first)
        let summary = try JSONDecoder().decode(CompareSummary.self, from: Data((session.summaryJSON ?? "").utf8))
        let verdicts = try store.compareVerdicts(sessionId: session.id!)
        // Garbage on every fourth line: the items whose swapped order fell on one fail; the rest are
        // "A" both ways, i.e. disagreeing orders, a tie. Never a win.
        let garbage = verdicts.filter { $0.judge == "pairwise_command:\(dir.path)/garbage.sh" }
        #expect(garbage.contains { $0.verdict == "failed" } && garbage.contains { $0.verdict == "tie" })
        #expect(!garbage.contains { $0.verdict == "a" || $0.verdict == "b" })
        #expect(garbage.filter { $0.verdict == "failed" }.allSatisfy { ($0.error ?? "").contains("not a verdict") })
        // A crash fails every item, with its stderr in the reason.
        let crash = verdicts.filter { $0.judge == "pairwise_command:\(dir.path)/crash.sh" }
        #expect(!crash.isEmpty && crash.allSatisfy { $0.verdict == "failed" && ($0.error ?? "").contains("out of memory") })
        let crashSummary = try #require(summary.judges.first { $0.name == "pairwise_command:\(dir.path)/crash.sh" })
        #expect(crashSummary.failures == crash.count)
        #expect(crashSummary.pairs.allSatisfy { $0.n == 0 && $0.wins == 0 && $0.winRate == nil })
        #expect(crashSummary.firstFailure?.contains("exited with status 3") == true)
    }

    @Test func badPoliciesAndJudgesAreNamed() throws {
        let dir = try compareInputs()
        defer { try? FileManager.default.removeItem(at: dir) }
        let text = compareRecipe(judges: "[lenght]")
        #expect {
            _ = try Recipe.parse(yaml: text, fileName: "cmp.yaml", baseDirectory: dir)
        } throws: { "\($0)".contains("unknown judge 'lenght'") && "\($0)".contains("length") }
        let store = try RunStore(path: dir.appendingPathComponent("s.sqlite").path)
        let lookup = ComparePolicies.StageLookup(runName: "r", stages: [])
        #expect { _ = try ComparePolicies.resolve("stage:ppo", stages: lookup, reference: nil) } throws: {
            "\($0)".contains("run r has no stage 'ppo'")
        }
        #expect { _ = try ComparePolicies.resolve("no/such/dir", stages: nil, reference: nil) } throws: {
            "\($0)".contains("no such model directory or .gguf file: no/such/dir")
        }
        #expect { _ = try ComparePolicies.resolve("best_of_n:0", stages: nil, reference: "policy") } throws: {
            "\($0)".contains("best_of_n:N with N from 1 to 256")
        }
        #expect(try ComparePolicies.resolve("best_of_n", stages: nil, reference: "p").map(\.name) == ["best_of_1", "best_of_4", "best_of_16"])
        _ = store
    }

    /// A GRPO stage with LoRA that exports its policy every update, then a comparison whose frontier
    /// takes the exported steps (measured on the comparison's prompts) instead of the stage's own
    /// evaluations; `stage:rl@STEP` names one step's model.
    private func checkpointRecipe(exportSteps: Int, compare: Bool) -> String {
        var text = """
        name: ckpt
        seed: 5
        stages:
          - id: rl
            kind: grpo
            model: policy
            data: prompts.jsonl
            eval_prompts: eval.jsonl
            judge: length
            eval_judge: "regex:e"
            num_generations: 2
            batch_size: 4
            max_steps: 4
            eval_steps: 2
            response_length: 6
            learning_rate: 1.0e-3
            export_steps: \(exportSteps)
            lora: {r: 2, lora_alpha: 4, target_modules: [q_proj, v_proj]}

        """
        if compare {
            text += """
              - id: compare
                kind: compare
                policies: [policy, stage:rl]
                checkpoints: [stage:rl]
                prompts: eval.jsonl
                judges: ["regex:e", length]
                response_length: 6
                samples_per_prompt: 2
                bootstrap: 200

            """
        }
        return text
    }

    @Test func exportedStepsAreModelsOnTheFrontierAndLeaveTheRunUnchanged() throws {
        let dir = try compareInputs()
        defer { try? FileManager.default.removeItem(at: dir) }
        // The same stage without exports, in its own directory: the final policy is the same bytes
        // (merging the adapters for a snapshot puts the weights back exactly).
        let plain = dir.appendingPathComponent("plain")
        try FileManager.default.createDirectory(at: plain, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: dir.appendingPathComponent("policy"), to: plain.appendingPathComponent("policy"))
        for file in ["prompts.jsonl", "eval.jsonl"] {
            try FileManager.default.copyItem(at: dir.appendingPathComponent(file), to: plain.appendingPathComponent(file))
        }
        _ = try run(checkpointRecipe(exportSteps: 0, compare: false), in: plain)
        let report = try run(checkpointRecipe(exportSteps: 1, compare: true), in: dir)
        #expect(report.status == .completed)
        let weights = "runs/ckpt/rl/model/model.safetensors"
        #expect(try Data(contentsOf: dir.appendingPathComponent(weights)) == Data(contentsOf: plain.appendingPathComponent(weights)))
        #expect(!FileManager.default.fileExists(atPath: plain.appendingPathComponent("runs/ckpt/rl/steps").path))

        // Steps 1-3 exported (4 is the stage's own model), each a loadable model in the store.
        let store = try RunStore(path: dir.appendingPathComponent("runs/ckpt.sqlite").path)
        let run = try #require(try store.run(named: "ckpt"))
        let stages = try store.stages(runId: run.id!)
        let rl = try #require(stages.first { $0.stageKey == "rl" })
        let exported = try store.checkpoints(stageId: rl.id!).filter { $0.kind == "model" }
        #expect(exported.map(\.step) == [1, 2, 3])
        for row in exported {
            #expect(row.path.hasSuffix("runs/ckpt/rl/steps/\(row.step)"))
            #expect(FileManager.default.fileExists(atPath: row.path + "/model.safetensors"))
            #expect(FileManager.default.fileExists(atPath: row.path + "/tokenizer.json"))
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: exported[2].path + "/model.safetensors")) != Data(contentsOf: dir.appendingPathComponent(weights)))

        // stage:rl@STEP: an exported step, the final one, and a step never kept.
        let lookup = ComparePolicies.StageLookup(runName: "ckpt", stages: stages, checkpoints: { try store.checkpoints(stageId: $0) })
        #expect(try ComparePolicies.resolve("stage:rl@2", stages: lookup, reference: nil).map(\.modelPath) == [exported[1].path])
        #expect(try ComparePolicies.resolve("stage:rl@4", stages: lookup, reference: nil).map(\.modelPath) == [rl.outputPath!])
        #expect { _ = try ComparePolicies.resolve("stage:rl@7", stages: lookup, reference: nil) } throws: {
            "\($0)".contains("stage 'rl' kept no model at step 7") && "\($0)".contains("its steps: 1, 2, 3, 4 (final)")
        }
        #expect { _ = try ComparePolicies.checkpoints(["stage:compare"], stages: lookup) } throws: {
            "\($0)".contains("exported no models during training (set export_steps: N on it)")
        }

        // The frontier: the two policies and the three steps, all on the comparison's prompts (the
        // stage's own evaluations are left out); each step's gold score is the mean of its stored
        // verdict rows, and the front is marked among them.
        let session = try #require(try store.compareSessions().first)
        let summary = try JSONDecoder().decode(CompareSummary.self, from: Data((session.summaryJSON ?? "").utf8))
        #expect(summary.frontier.map(\.label) == ["policy", "rl", "rl@1", "rl@2", "rl@3"])
        #expect(summary.frontier.map(\.series) == ["compared", "rl", "rl", "rl", "rl"])
        #expect(!summary.frontier.contains { $0.series.contains("stage eval") })
        let policies = try store.comparePolicies(sessionId: session.id!)
        #expect(policies.map(\.kind) == ["model", "model", "checkpoint", "checkpoint", "checkpoint"])
        let verdicts = try store.compareVerdicts(sessionId: session.id!)
        for (k, point) in summary.frontier.enumerated() where point.label.hasPrefix("rl@") {
            let rows = verdicts.filter { $0.judge == "regex:e" && $0.policyA == k && $0.policyB == nil }
            #expect(rows.count == 6 * 2)
            let mean = rows.compactMap(\.score).reduce(0, +) / Double(rows.count)
            #expect(abs(mean - point.gold) < 1e-12, "\(point.label)")
            #expect(point.kl.isFinite)
        }
        // No checkpoint is a compared policy: the pairs are policy vs rl only.
        #expect(summary.judges.allSatisfy { $0.pairs.count == 1 })
        for point in summary.frontier {
            let dominated = summary.frontier.contains { q in
                q.kl <= point.kl && q.gold >= point.gold && (q.kl < point.kl || q.gold > point.gold)
            }
            #expect(point.pareto == !dominated, "\(point.label)")
        }
    }

    @Test func peoplesRatingsJudgeThePairsTheTaskWasMadeFor() throws {
        let dir = try compareInputs()
        defer { try? FileManager.default.removeItem(at: dir) }
        let judges = "[length, \"ratings:people\"]"
        _ = try run(compareRecipe(judges: judges, baselines: "[]"), in: dir)
        let store = try RunStore(path: dir.appendingPathComponent("runs/cmp.sqlite").path)
        // The comparison made the task: one pair item per pair of policies, prompt and sample.
        let task = try store.ratingTask(named: "people")
        #expect(task.mode == .pair && task.source.hasPrefix("compare:"))
        let items = try store.ratingItems(taskId: task.id!)
        #expect(items.count == 1 * 6 * 2)
        #expect(items.allSatisfy { Set($0.sources) == ["policy", "tuned"] })
        let first = try #require(try store.compareSessions().first)
        let unrated = try store.compareVerdicts(sessionId: first.id!).filter { $0.judge == "ratings:people" }
        #expect(unrated.count == 12)
        #expect(unrated.filter { $0.verdict == "failed" }.count == items.filter { !$0.identical }.count)
        #expect(unrated.filter { $0.verdict == "failed" }.allSatisfy { $0.error == "not rated yet in task 'people'" })
        #expect(unrated.filter { $0.verdict == "tie" }.count == items.filter(\.identical).count)

        // Two raters answer: ann prefers the first response of every item, bob the second on odd
        // items (so those are split: ties) and nothing on the rest; one item gets "both bad".
        let shown = items.filter { !$0.identical }
        for (k, item) in shown.enumerated() {
            let vote: RatingVote = k == 0 ? .bad : .a
            _ = try store.record(rating: Rating(itemId: item.id!, rater: "ann", session: "s1", swapped: k % 3 == 0, vote: vote, shownAt: Date()))
            if k % 2 == 1 {
                _ = try store.record(rating: Rating(itemId: item.id!, rater: "bob", session: "s2", swapped: false, vote: .b, shownAt: Date()))
            }
        }
        // The same comparison again (another bootstrap count, the same samples from the cache).
        _ = try run(compareRecipe(judges: judges, baselines: "[]").replacingOccurrences(of: "bootstrap: 200", with: "bootstrap: 300"), in: dir)
        let session = try #require(try store.compareSessions().first { $0.id != first.id })
        let verdicts = try store.compareVerdicts(sessionId: session.id!).filter { $0.judge == "ratings:people" }
        #expect(verdicts.count == 12)
        // Expected from the votes: item k of the shown ones; its responses[0] is policy's (the
        // comparison made it in policy order), so "a" is a win for policy.
        var expected: [String] = []
        for item in items {
            let k = shown.firstIndex { $0.id == item.id }
            let outcome: String
            if item.identical { outcome = "tie" } else if k! == 0 { outcome = "tie" } else if k! % 2 == 1 { outcome = "tie" } else { outcome = "a" }
            expected.append(outcome)
        }
        let summary = try JSONDecoder().decode(CompareSummary.self, from: Data((session.summaryJSON ?? "").utf8))
        let human = try #require(summary.judges.first { $0.name == "ratings:people" })
        let pair = try #require(human.pairs.first)
        let wins = expected.filter { $0 == "a" }.count, ties = expected.filter { $0 == "tie" }.count
        #expect(wins > 0 && ties > 0)
        #expect(pair.wins == wins && pair.losses == 0 && pair.ties == ties && human.failures == 0)
        #expect(verdicts.filter { $0.verdict == "a" }.count == wins)
        #expect(verdicts.filter { $0.verdict == "tie" }.count == ties)
        #expect(!verdicts.contains { $0.verdict == "b" || $0.verdict == "failed" })
        // Item by item: the task holds the pairs in prompt order, then sample order.
        for v in verdicts { #expect(v.verdict == expected[v.promptIdx * 2 + v.sampleIdx], "prompt \(v.promptIdx) sample \(v.sampleIdx): \(v.error ?? "")") }
    }
}
