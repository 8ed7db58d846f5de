import Foundation
import Recipes
import Store
import TensorCore
import Testing

// `judge_pairs` (a policy's own samples, paired by a judge) and `eval_judge` (a gold judge on the
// held-out replies of the online RL stages), run in process on the tiny Llama fixture.

/// `policy/` (the tiny Llama), `prompts.jsonl` (`count` text prompts) and `eval.jsonl` (held-out
/// prompts with answers) in a fresh directory.
private func judgeInputs(prompts count: Int = 12) throws -> URL {
    let fm = FileManager.default
    let dir = fm.temporaryDirectory.appendingPathComponent("rein-judge-pairs-\(UUID().uuidString)")
    try copyFixtureModel(to: dir.appendingPathComponent("policy"))
    let lines = (0..<count).map { "{\"prompt\": \(JSONText.quoted("Write about \(fixturePromptTopics[$0 % fixturePromptTopics.count]):"))}\n" }
    try Data(lines.joined().utf8).write(to: dir.appendingPathComponent("prompts.jsonl"))
    let held = ["a cat", "the wind", "glass", "a bridge"].map {
        "{\"prompt\": \(JSONText.quoted("Write about \($0):")), \"answer\": \"yes\"}\n"
    }
    try Data(held.joined().utf8).write(to: dir.appendingPathComponent("eval.jsonl"))
    return dir
}

private func pairsRecipe(_ extra: String = "", reward: Bool = false) -> String {
    var text = """
    name: pairs
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

    """
    for line in extra.split(separator: "\n") { text += "    \(line)\n" }
    if reward {
        text += """
          - id: rm
            kind: reward
            model: policy
            data: stage:pairs/prefs.jsonl
            validation_data: stage:pairs/prefs_valid.jsonl
            batch_size: 2
            max_steps: 2
            max_length: 48

        """
    }
    return text
}

private func run(_ text: String, in dir: URL) throws -> RunReport {
    let recipe = try Recipe.parse(yaml: text, fileName: "pairs.yaml", baseDirectory: dir)
    let runner = RecipeRunner(recipe: recipe, recipeText: text)
    runner.shouldStop = { false }
    return try runner.run()
}

/// The lines of a JSONL file as objects.
private func objects(_ url: URL) throws -> [[String: Any]] {
    try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map {
        try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
    }
}

@Suite(.serialized) struct JudgePairsStageTests {
    @Test func pairsPreferTheResponseTheJudgeScoresHigherAndARewardStageReadsThem() throws {
        let dir = try judgeInputs()
        defer { try? FileManager.default.removeItem(at: dir) }
        let report = try run(pairsRecipe(reward: true), in: dir)
        #expect(report.status == .completed)
        let out = dir.appendingPathComponent("runs/pairs/pairs")
        let train = try objects(out.appendingPathComponent("prefs.jsonl"))
        let valid = try objects(out.appendingPathComponent("prefs_valid.jsonl"))
        #expect(valid.count == 2)
        #expect(train.count >= 4, "\(train.count) training pairs of 12 prompts")
        for pair in train + valid {
            let chosen = try #require(pair["chosen"] as? String), rejected = try #require(pair["rejected"] as? String)
            let prompt = try #require(pair["prompt"] as? String)
            #expect(prompt.hasPrefix("Write about "))
            // The length judge counts the reply's characters; the pair holds the reply without the
            // whitespace it began with (the chat template adds its own separator).
            let chosenScore = try #require(pair["chosen_score"] as? Double), rejectedScore = try #require(pair["rejected_score"] as? Double)
            #expect(chosenScore > rejectedScore, "\(chosen.debugDescription) vs \(rejected.debugDescription)")
            for (text, score) in [(chosen, chosenScore), (rejected, rejectedScore)] {
                #expect(text.unicodeScalars.first.map { !$0.properties.isWhitespace } ?? true, "\(text.debugDescription)")
                #expect(score >= Double(text.count), "\(text.debugDescription): \(score)")
            }
        }
        // Each prompt gives at most one pair, so validation and training prompts differ.
        let prompts = (train + valid).compactMap { $0["prompt"] as? String }
        #expect(Set(prompts).count == prompts.count)
        // The counts and the mean scores are the stage's metrics; the reward stage trained on the pairs.
        let stage = try #require(report.stages.first { $0.stage == "pairs" })
        #expect(stage.facts.contains("prefs.jsonl \(train.count) lines"), "\(stage.facts)")
        let rm = try #require(report.stages.first { $0.stage == "rm" })
        #expect(rm.status == .completed && rm.after["eval/accuracy"] != nil, "\(rm.after)")

        // A second run skips both stages: same settings, same inputs.
        let again = try run(pairsRecipe(reward: true), in: dir)
        #expect(again.stages.allSatisfy { $0.skipped })
    }

    @Test func theSameSeedGivesTheSameFileWhateverTheGenerationBatchAndAnotherSeedAnother() throws {
        var files: [Data] = []
        for extra in ["generation_batch_size: 8", "generation_batch_size: 3", "generation_batch_size: 8\nseed: 10"] {
            let dir = try judgeInputs()
            defer { try? FileManager.default.removeItem(at: dir) }
            _ = try run(pairsRecipe(extra), in: dir)
            let out = dir.appendingPathComponent("runs/pairs/pairs")
            files.append(try Data(contentsOf: out.appendingPathComponent("prefs.jsonl"))
                         + Data(contentsOf: out.appendingPathComponent("prefs_valid.jsonl")))
        }
        #expect(files[0] == files[1])
        #expect(files[0] != files[2])
    }

    @Test func aMarginDropsPairsWhoseScoresAreClose() throws {
        let dir = try judgeInputs()
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try run(pairsRecipe("min_margin: 6"), in: dir)
        let out = dir.appendingPathComponent("runs/pairs/pairs")
        let pairs = try objects(out.appendingPathComponent("prefs.jsonl")) + objects(out.appendingPathComponent("prefs_valid.jsonl"))
        #expect(!pairs.isEmpty)
        for pair in pairs {
            let margin = try #require(pair["chosen_score"] as? Double) - #require(pair["rejected_score"] as? Double)
            #expect(margin > 6)
        }
        let store = try RunStore(path: dir.appendingPathComponent("runs/pairs.sqlite").path)
        let stage = try #require(try store.runs().first?.stages.first)
        let metrics = Dictionary(try store.metrics(stageId: stage.id!).map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
        #expect(metrics["judge_pairs/dropped"] == Double(12 - pairs.count))
        #expect(metrics["judge_pairs/prompts"] == 12)
    }

    @Test func badKeysAreReportedWithTheirLineAndKey() throws {
        let dir = try judgeInputs()
        defer { try? FileManager.default.removeItem(at: dir) }
        let text = """
        name: pairs
        stages:
          - id: pairs
            kind: judge_pairs
            model: policy
            prompts: prompts.jsonl
            judge: vadr
            samples_per_promt: 4
            temperature: warm
            response_length: 0
          - id: rm
            kind: reward
            model: policy
            data: stage:pairs/sft.jsonl
          - id: nojudge
            kind: judge_pairs
            model: policy
            prompts: prompts.jsonl
            samples_per_prompt: 1
        """
        let error = try #require(throws: RecipeError.self) { try Recipe.parse(yaml: text, fileName: "pairs.yaml", baseDirectory: dir) }
        let lines = error.problems.map(\.description)
        for wanted in [
            "pairs.yaml:7: stages.pairs.judge: unknown judge 'vadr' (did you mean 'vader'?)",
            "pairs.yaml:8: stages.pairs.samples_per_promt: unknown key (did you mean 'samples_per_prompt'?)",
            "pairs.yaml:9: stages.pairs.temperature: wrong type: expected a number, got 'warm'",
            "pairs.yaml:10: stages.pairs.response_length: must be at least 1, got 0",
            "pairs.yaml:14: stages.rm.data: a judge_pairs stage writes no 'sft.jsonl' (it writes prefs.jsonl, prefs_valid.jsonl)",
            "stages.nojudge.judge: required",
            "pairs.yaml:19: stages.nojudge.samples_per_prompt: must be at least 2, got 1",
        ] {
            #expect(lines.contains { $0.contains(wanted) }, "missing \(wanted) in \(lines)")
        }
    }

    @Test func evalJudgeLogsTheGoldJudgesScoreOfTheHeldOutRepliesAtStartEvalStepsAndEnd() throws {
        let dir = try judgeInputs()
        defer { try? FileManager.default.removeItem(at: dir) }
        // The reward is the length judge, and so is the gold judge: on the same replies the two
        // scores are equal at every evaluation; the regex gold judge scores the share of replies with an "e".
        for (kind, extra) in [("ppo", ""), ("grpo", "num_generations: 2")] {
            for (gold, same) in [("length", true), ("regex:e", false)] {
                let text = """
                name: gold
                seed: 4
                stages:
                  - id: rl
                    kind: \(kind)
                    model: policy
                    data: prompts.jsonl
                    eval_prompts: eval.jsonl
                    judge: length
                    eval_judge: "\(gold)"
                    batch_size: 4
                    max_steps: 4
                    eval_steps: 2
                    response_length: 6
                    learning_rate: 1.0e-4
                \(extra.isEmpty ? "" : "    " + extra)
                """
                let store = dir.appendingPathComponent("runs/gold.sqlite")
                try? FileManager.default.removeItem(at: store)
                try? FileManager.default.removeItem(at: dir.appendingPathComponent("runs/gold"))
                let report = try run(text, in: dir)
                #expect(report.status == .completed)
                let rows = try metricRows(store.path)
                for step in [0, 2, 4] {
                    let score = try #require(rows["rl/\(step)/eval/score"], "\(kind) step \(step)")
                    let judged = try #require(rows["rl/\(step)/eval/judge_score"], "\(kind) \(gold) step \(step)")
                    if same { #expect(judged == score) } else { #expect(judged >= 0 && judged <= 1) }
                }
                #expect(rows["rl/1/eval/judge_score"] == nil && rows["rl/3/eval/judge_score"] == nil)
                let rl = try #require(report.stages.first)
                #expect(rl.before["eval/judge_score"] != nil && rl.after["eval/judge_score"] != nil)
            }
        }
        // An unknown gold judge is a check error naming the key.
        let bad = "name: gold\nstages:\n  - id: rl\n    kind: ppo\n    model: policy\n    data: prompts.jsonl\n    judge: length\n    eval_judge: lenght\n"
        let error = try #require(throws: RecipeError.self) { try Recipe.parse(yaml: bad, fileName: "gold.yaml", baseDirectory: dir) }
        #expect(error.problems.map(\.description).contains { $0.hasPrefix("gold.yaml:8: stages.rl.eval_judge: unknown judge 'lenght' (did you mean 'length'?)") },
                "\(error.problems.map(\.description))")
    }
}
