import Alignment
import Foundation
import Recipes
import Store
import Testing
import Yams

/// A directory with data files and a model directory, as `RecipeTests` uses.
private func kindsFixture() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rein-kinds-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir.appendingPathComponent("data"), withIntermediateDirectories: true)
    try FileManager.default.createDirectory(at: dir.appendingPathComponent("models/tiny"), withIntermediateDirectories: true)
    for name in ["chat.jsonl", "prefs.jsonl"] { try Data("{}\n".utf8).write(to: dir.appendingPathComponent("data/\(name)")) }
    return dir
}

@Test func keysOfAnotherKindAndMisplacedModelRolesAreReportedWithTheirLines() throws {
    let dir = try kindsFixture()
    defer { try? FileManager.default.removeItem(at: dir) }
    let yaml = """
    name: x
    stages:
      - id: sft
        kind: sft
        model: models/tiny
        data: data/chat.jsonl
        beta: 0.5
      - id: rm
        kind: reward
        model: {from: stage:sft}
        data: data/prefs.jsonl
      - id: dpo
        kind: dpo
        model: {from: stage:sft}
        ref_model: {from: stage:rm}
        data: data/prefs.jsonl
        cliprange: 0.2
        reward_model: stage:rm
    """
    let error = try #require(throws: RecipeError.self) { try Recipe.parse(yaml: yaml, fileName: "r.yaml", baseDirectory: dir) }
    let lines = error.problems.map(\.description)
    #expect(lines.contains("r.yaml:7: stages.sft.beta: `beta` is a dpo/rloo/grpo key; this stage is sft"), "\(lines)")
    #expect(lines.contains { $0.hasPrefix("r.yaml:15: stages.dpo.ref_model: 'stage:rm' is a reward stage; ref_model (the frozen reference policy) must be") },
            "\(lines)")
    #expect(lines.contains("r.yaml:17: stages.dpo.cliprange: `cliprange` is a ppo key; this stage is dpo"), "\(lines)")
    #expect(lines.contains("r.yaml:18: stages.dpo.reward_model: `reward_model` is a ppo/rloo/grpo/compare key; this stage is dpo"), "\(lines)")
    #expect(error.problems.count == 4, "\(lines)")
}

@Test func aStageNamesSeveralModelsByRole() throws {
    let dir = try kindsFixture()
    defer { try? FileManager.default.removeItem(at: dir) }
    try FileManager.default.createDirectory(at: dir.appendingPathComponent("models/ref"), withIntermediateDirectories: true)
    let yaml = """
    name: x
    stages:
      - id: sft
        kind: sft
        model: models/tiny
        data: data/chat.jsonl
      - id: dpo
        kind: dpo
        model: {from: stage:sft}
        ref_model: hf:models/ref
        data: data/prefs.jsonl
    """
    let recipe = try Recipe.parse(yaml: yaml, baseDirectory: dir)
    let dpo = recipe.stages[1]
    #expect(dpo.models == ["model": .stage("sft"), "ref_model": .hf("models/ref")])
    #expect(dpo.dependencies == ["sft"])
    #expect(dpo.inputFiles.contains("models/ref"))
    // The reference's role changes the stage's hash.
    let other = try Recipe.parse(yaml: yaml.replacingOccurrences(of: "    ref_model: hf:models/ref\n", with: ""), baseDirectory: dir)
    #expect(other.stages[1].configHash != dpo.configHash)
    #expect(other.stages[1].models["ref_model"] == nil)
    // A reward-model role on a path needs a reward model there (a score head).
    let ppo = "name: x\nstages:\n  - id: p\n    kind: ppo\n    model: models/tiny\n    reward_model: models/tiny\n"
    let error = try #require(throws: RecipeError.self) { try Recipe.parse(yaml: ppo, baseDirectory: dir) }
    #expect(error.problems.map(\.message).contains(
        "models/tiny is not a reward model (reward_model needs a reward stage or a directory whose weights have a score head)"),
            "\(error.problems.map(\.message))")
    #expect(StageKinds.definition(.ppo).roles.map(\.key) == ["model", "ref_model", "reward_model", "value_model"])
    #expect(StageKinds.definition(.ppo).role("reward_model")?.accepts == [.reward])
}

/// Two values of a declared key that must decode to different settings.
private func sampleValues(_ spec: KeySpec) -> (String, String) {
    switch spec.type {
    case .integer(let r): let low = Int(r.lower ?? 0) + (r.lowerInclusive ? 0 : 1); return ("\(low + 1)", "\(low + 2)")
    case .number(let r): let low = r.lower ?? 0; let high = r.upper ?? (low + 1); return ("\(low + (high - low) / 4)", "\(low + (high - low) / 2)")
    case .bool: return ("true", "false")
    case .string: return ("a", "b")
    case .choice(let words): return (words[0], words[1])
    case .strings: return ("[a]", "[b]")
    case .file: return ("a.jsonl", "b.jsonl")
    case .lora: return ("{r: 4}", "{r: 8}")
    }
}

@Test func everyDeclaredKeyReachesTheKindsConfig() throws {
    // Every kind has exactly one declaration.
    #expect(StageKinds.all.map(\.kind).sorted { $0.rawValue < $1.rawValue } == RecipeStageKind.allCases.sorted { $0.rawValue < $1.rawValue })
    for definition in StageKinds.all {
        for spec in definition.keys {
            let (a, b) = sampleValues(spec)
            func decoded(_ value: String) throws -> StageSettings {
                try definition.decode(try #require(try Yams.compose(yaml: "\(spec.name): \(value)")))
            }
            let first = try decoded(a), second = try decoded(b)
            #expect(first != second, "\(definition.kind.rawValue).\(spec.name) does not reach the config")
        }
    }
    // The shared arguments are declared once, with the names of TrainingArguments.
    let training = Set(StageKinds.definition(.sft).keys.map(\.name))
    #expect(training == Set(TrainingArguments.keys))
    #expect(Set(StageKinds.definition(.dpo).keys.map(\.name)) == Set(DPOConfig.keys))
    #expect(Set(StageKinds.definition(.ppo).keys.map(\.name)) == Set(PPOConfig.keys))
}

@Test func aTrainConfigIsCheckedAsAOneStageRecipe() throws {
    let dir = try kindsFixture()
    defer { try? FileManager.default.removeItem(at: dir) }
    let yaml = "model: models/tiny\ndata: data/chat.jsonl\nlearning_rat: 1.0e-4\nbeta: 0.1\nbatch_size: eight\nmax_length: 1\n"
    let error = try #require(throws: RecipeError.self) {
        try Recipe.stage(kind: .sft, yaml: yaml, fileName: "sft.yaml", baseDirectory: dir)
    }
    #expect(error.problems.map(\.description) == [
        "sft.yaml:3: learning_rat: unknown key (did you mean 'learning_rate'?)",
        "sft.yaml:4: beta: `beta` is a dpo/rloo/grpo key; this stage is sft",
        "sft.yaml:5: batch_size: wrong type: expected an integer, got 'eight'",
        "sft.yaml:6: max_length: must be at least 2, got 1",
    ])
    // Flags apply over the file, and are checked like it.
    let stage = try Recipe.stage(kind: .dpo, yaml: "model: models/tiny\nbeta: 0.3\n", fileName: "dpo.yaml", baseDirectory: dir,
                                 settings: [("data", "data/prefs.jsonl"), ("beta", "0.4")])
    #expect(stage.dpo?.beta == 0.4)
    #expect(stage.training?.data == "data/prefs.jsonl")
    #expect(stage.model == .path("models/tiny"))
    // The same settings hash the same in a recipe and in `rein train`.
    let recipe = try Recipe.parse(yaml: "name: x\nstages:\n  - id: dpo\n    kind: dpo\n    model: models/tiny\n    beta: 0.4\n    data: data/prefs.jsonl\n",
                                  baseDirectory: dir)
    #expect(recipe.stages[0].configHash == stage.configHash)
    let flagError = try #require(throws: RecipeError.self) {
        try Recipe.stage(kind: .sft, yaml: nil, fileName: "flags", baseDirectory: dir, settings: [("model", "models/none")])
    }
    #expect(flagError.problems.map(\.description).contains("flags: data: required (a .jsonl or .txt file)"))
    #expect(flagError.problems.map(\.description).contains("flags: model: model not found: models/none"))
}

@Test func contentHashesAreSHA256StreamedOverTheFile() throws {
    let dir = try kindsFixture()
    defer { try? FileManager.default.removeItem(at: dir) }
    let abc = dir.appendingPathComponent("abc.txt")
    try Data("abc".utf8).write(to: abc)
    #expect(try ContentHash.of(path: abc.path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    // Larger than one 4 MiB slice of the map: the streamed hash equals the one-shot hash.
    var bytes = [UInt8](repeating: 0, count: 9 << 20)
    for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 2654435761 >> 13) }
    let big = dir.appendingPathComponent("big.bin")
    try Data(bytes).write(to: big)
    #expect(try ContentHash.of(path: big.path) == ContentHash.hex(of: Data(bytes)))
    // A directory hashes names and contents: renaming a file changes it.
    let before = try ContentHash.of(path: dir.appendingPathComponent("data").path)
    try FileManager.default.moveItem(at: dir.appendingPathComponent("data/chat.jsonl"), to: dir.appendingPathComponent("data/chat2.jsonl"))
    #expect(try ContentHash.of(path: dir.appendingPathComponent("data").path) != before)
}

@Test func dpoTrainsAgainstTheReferenceItsRoleNames() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    /// DPO's final validation metrics for a dpo stage with `extra` lines.
    func dpoMetrics(_ extra: String) throws -> [String: Double] {
        let text = tinyRecipe().replacingOccurrences(of: "    kind: dpo\n    model: {from: stage:sft}\n",
                                                      with: "    kind: dpo\n    model: {from: stage:sft}\n" + extra)
        let recipe = try Recipe.parse(yaml: text, fileName: "tiny.yaml", baseDirectory: dir)
        let runner = RecipeRunner(recipe: recipe, recipeText: text)
        runner.shouldStop = { false }
        let report = try runner.run()
        return try #require(report.stages.last).after
    }
    let implicit = try dpoMetrics("")
    let explicit = try dpoMetrics("    ref_model: {from: stage:sft}\n")
    let pretrained = try dpoMetrics("    ref_model: stage:pre\n")
    #expect(!implicit.isEmpty)
    // The default reference is the starting policy, so naming it changes nothing; another one does.
    #expect(implicit == explicit)
    #expect(implicit["eval/rewards/chosen"] != pretrained["eval/rewards/chosen"])
}
