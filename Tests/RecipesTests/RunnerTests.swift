import Foundation
import Recipes
import Store
import Testing

/// A tiny end-to-end recipe: synthetic data, tokenizer, a fresh 1-layer model, SFT, reward, DPO.
func tinyRecipe(name: String = "tiny", pretrainSteps: Int = 12) -> String {
    """
    name: \(name)
    seed: 3
    stages:
      - id: data
        kind: data
        task: arithmetic
        pretrain_examples: 300
        sft_examples: 48
        preference_pairs: 40
        validation_examples: 12
        eval_prompts: 12
      - id: tok
        kind: tokenizer
        data: stage:data/pretrain.txt
        vocab_size: 290
        pre_tokenizer: smollm2
      - id: pre
        kind: pretrain
        model:
          init: {model_type: gpt2, n_layer: 1, n_embd: 32, n_head: 2, n_positions: 48}
          tokenizer: stage:tok
        data: stage:data/pretrain.txt
        max_length: 48
        batch_size: 4
        max_steps: \(pretrainSteps)
        save_steps: 3
        learning_rate: 3.0e-3
        eval_on_start: true
      - id: sft
        kind: sft
        model: {from: stage:pre}
        data: stage:data/sft.jsonl
        validation_data: stage:data/sft_valid.jsonl
        eval_prompts: stage:data/eval.jsonl
        eval_max_new_tokens: 6
        batch_size: 4
        max_steps: 6
        learning_rate: 1.0e-3
        eval_on_start: true
      - id: rm
        kind: reward
        model: {from: stage:sft}
        data: stage:data/prefs.jsonl
        validation_data: stage:data/prefs_valid.jsonl
        batch_size: 4
        max_steps: 4
        learning_rate: 1.0e-3
      - id: dpo
        kind: dpo
        model: {from: stage:sft}
        data: stage:data/prefs.jsonl
        validation_data: stage:data/prefs_valid.jsonl
        batch_size: 4
        max_steps: 4
        learning_rate: 5.0e-4
    """
}

func tempDirectory() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rein-runner-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

private func runner(_ text: String, in dir: URL, overrides: [String] = []) throws -> RecipeRunner {
    let recipe = try Recipe.parse(yaml: text, fileName: "tiny.yaml", baseDirectory: dir, overrides: overrides)
    return RecipeRunner(recipe: recipe, recipeText: text + overrides.joined(separator: "\n"))
}

/// Every metric of a store except the timing ones, keyed "stage/step/name".
func metricRows(_ storePath: String) throws -> [String: Double] {
    let store = try RunStore(path: storePath)
    var rows: [String: Double] = [:]
    var count = 0
    for summary in try store.runs() {
        for stage in summary.stages where stage.reusedStageId == nil {
            for m in try store.metrics(stageId: stage.id!) where !m.name.hasSuffix("per_second") {
                rows["\(stage.stageKey)/\(m.step)/\(m.name)"] = m.value
                count += 1
            }
        }
    }
    #expect(rows.count == count, "a (stage, step, name) appears twice")
    return rows
}

@Test func aRecipeRunsEndToEndAndASecondRunSkipsEveryStage() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let first = try runner(tinyRecipe(), in: dir)
    first.shouldStop = { false }
    let report = try first.run()
    #expect(report.status == .completed)
    #expect(report.stages.map(\.stage) == ["data", "tok", "pre", "sft", "rm", "dpo"])
    #expect(report.stages.allSatisfy { !$0.skipped })
    // What improved: pretraining lowers validation loss; exact match is measured before and after SFT.
    let pre = try #require(report.stages.first { $0.stage == "pre" })
    #expect(try #require(pre.after["eval/loss"]) < #require(pre.before["eval/loss"]))
    let sft = try #require(report.stages.first { $0.stage == "sft" })
    #expect(sft.before["eval/exact_match"] != nil && sft.after["eval/exact_match"] != nil)
    #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("runs/tiny/dpo/model/model.safetensors").path))
    #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("runs/tiny/tok/tokenizer.json").path))

    var events: [String] = []
    let second = try runner(tinyRecipe(), in: dir)
    second.shouldStop = { false }
    second.onEvent = { if case let .stageSkipped(stage, _, reason) = $0 { events.append("\(stage): \(reason)") } }
    let again = try second.run()
    #expect(again.status == .completed)
    #expect(again.stages.allSatisfy { $0.skipped })
    #expect(events.count == 6)
    #expect(events.first?.contains("of run \(report.runId)") == true)
    // The skipped stages still report the metrics of the stages they reuse.
    #expect(again.stages.first { $0.stage == "pre" }?.after["eval/loss"] == pre.after["eval/loss"])

    let store = try RunStore(path: dir.appendingPathComponent("runs/tiny.sqlite").path)
    let runs = try store.runs()
    #expect(runs.count == 2 && runs.allSatisfy { $0.run.status == .completed })
    let reused = try #require(runs.first { $0.run.id == again.runId })
    #expect(reused.stages.allSatisfy { $0.reusedStageId != nil && $0.status == .completed })
    // Checkpoint rows: periodic `last` saves of pretraining and the exported final model.
    let preStage = try #require(runs.first { $0.run.id == report.runId }?.stages.first { $0.stageKey == "pre" })
    let checkpoints = try store.checkpoints(stageId: preStage.id!)
    #expect(checkpoints.filter { $0.kind == "last" }.map(\.step) == [3, 6, 9, 12])
    #expect(checkpoints.contains { $0.kind == "final" && $0.step == 12 })
    // The exact-match replies are in the store: 12 prompts before SFT (step 0) and 12 after (step 6),
    // each scored 1 when right, agreeing with the recorded accuracy.
    let sftStage = try #require(runs.first { $0.run.id == report.runId }?.stages.first { $0.stageKey == "sft" })
    let rollouts = try store.rollouts(stageId: sftStage.id!)
    #expect(rollouts.filter { $0.step == 0 }.count == 12 && rollouts.filter { $0.step == 6 }.count == 12)
    let after = rollouts.filter { $0.step == 6 }
    #expect(after.map { $0.score ?? -1 }.reduce(0, +) / 12 == sft.after["eval/exact_match"])
    #expect(after.allSatisfy { ["eos", "length"].contains($0.stopReason) && $0.prompt.contains("What is") })
}

@Test func changedSettingsRerunTheStageAndEverythingAfterIt() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let first = try runner(tinyRecipe(), in: dir)
    first.shouldStop = { false }
    _ = try first.run()
    var skipped: [String] = []
    let changed = try runner(tinyRecipe(), in: dir, overrides: ["stages.sft.learning_rate=2e-3"])
    changed.shouldStop = { false }
    changed.onEvent = { if case let .stageSkipped(stage, _, _) = $0 { skipped.append(stage) } }
    let report = try changed.run()
    // sft changed; rm and dpo read its output, so their input hash changed too.
    #expect(skipped == ["data", "tok", "pre"])
    #expect(report.stages.filter { !$0.skipped }.map(\.stage) == ["sft", "rm", "dpo"])

    // --from reruns a stage whose config did not change, and every later one.
    skipped = []
    let rerun = try runner(tinyRecipe(), in: dir, overrides: ["stages.sft.learning_rate=2e-3"])
    rerun.shouldStop = { false }
    rerun.from = "rm"
    rerun.onEvent = { if case let .stageSkipped(stage, _, _) = $0 { skipped.append(stage) } }
    _ = try rerun.run()
    #expect(skipped == ["data", "tok", "pre", "sft"])
}

@Test func anInterruptedRunResumesToTheSameMetricsWithoutDuplicateRows() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    // Reference: uninterrupted.
    let reference = try runner(tinyRecipe(), in: dir.appendingPathComponent("a"))
    reference.shouldStop = { false }
    _ = try reference.run()

    // Stop during pretraining after step 7 (checkpoint at 6 and at the stop), then resume.
    let b = dir.appendingPathComponent("b")
    try FileManager.default.createDirectory(at: b, withIntermediateDirectories: true)
    let interrupted = try runner(tinyRecipe(), in: b)
    var stopAt7 = false
    interrupted.onEvent = { if case let .step("pre", p, _) = $0, p.step == 7 { stopAt7 = true } }
    interrupted.shouldStop = { stopAt7 }
    let partial = try interrupted.run()
    #expect(partial.status == .interrupted)
    #expect(partial.stages.last?.stage == "pre" && partial.stages.last?.status == .interrupted)
    let store = try RunStore(path: b.appendingPathComponent("runs/tiny.sqlite").path)
    #expect(try store.run(partial.runId)?.status == .interrupted)

    var resumedFrom: Int?
    let resumed = try runner(tinyRecipe(), in: b)
    resumed.shouldStop = { false }
    resumed.onEvent = { if case let .stageStarted("pre", _, step) = $0 { resumedFrom = step } }
    let report = try resumed.run()
    #expect(report.status == .completed)
    #expect(report.runId == partial.runId)     // the same run row is continued
    #expect(resumedFrom == 7)
    #expect(try store.runs().count == 1)

    let expected = try metricRows(dir.appendingPathComponent("a/runs/tiny.sqlite").path)
    let actual = try metricRows(b.appendingPathComponent("runs/tiny.sqlite").path)
    #expect(actual.count == expected.count)
    #expect(actual == expected)
}

@Test func overridesApplyBeforeValidationAndBadOnesAreReported() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let recipe = try Recipe.parse(yaml: tinyRecipe(), baseDirectory: dir,
                                  overrides: ["stages.sft.learning_rate=1e-5", "seed=11", "stages.dpo.lora.r=4"])
    let sft = try #require(recipe.stages.first { $0.id == "sft" })
    #expect(sft.training?.learningRate == 1e-5)
    #expect(recipe.seed == 11)
    #expect(recipe.stages.first { $0.id == "dpo" }?.training?.lora?.r == 4)
    let plain = try Recipe.parse(yaml: tinyRecipe(), baseDirectory: dir)
    #expect(plain.stages.first { $0.id == "sft" }?.configHash != sft.configHash)

    #expect {
        try Recipe.parse(yaml: tinyRecipe(), baseDirectory: dir, overrides: ["stages.sfx.learning_rate=1", "stages.sft.learning_rat=1", "oops"])
    } throws: { error in
        let text = "\(error)"
        return text.contains("no stage with id 'sfx'") && text.contains("learning_rat: unknown key (did you mean 'learning_rate'?)")
            && text.contains("expected KEY.PATH=VALUE")
    }
}

@Test func referencesToStageOutputsAreChecked() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let bad = tinyRecipe()
        .replacingOccurrences(of: "data: stage:data/sft.jsonl", with: "data: stage:data/nope.jsonl")
        .replacingOccurrences(of: "tokenizer: stage:tok", with: "tokenizer: stage:data")
        .replacingOccurrences(of: "model: {from: stage:pre}", with: "model: {from: stage:tok}")
        .replacingOccurrences(of: "validation_data: stage:data/prefs_valid.jsonl\n    batch_size: 4\n    max_steps: 4\n    learning_rate: 1.0e-3",
                              with: "validation_data: stage:rm/prefs_valid.jsonl\n    batch_size: 4\n    max_steps: 4\n    learning_rate: 1.0e-3")
        .replacingOccurrences(of: "n_head: 2", with: "n_head: 3")
    #expect {
        try Recipe.parse(yaml: bad, fileName: "bad.yaml", baseDirectory: dir)
    } throws: { error in
        let problems = (error as? RecipeError)?.problems.map(\.description) ?? []
        let wanted = ["a data stage writes no 'nope.jsonl'", "'stage:data' has no tokenizer", "'stage:tok' is a tokenizer stage, not a model",
                      "refers to itself", "init"]
        return problems.count >= 5 && wanted.allSatisfy { w in problems.contains { $0.contains(w) } }
            && problems.allSatisfy { $0.hasPrefix("bad.yaml:") }
    }
}
