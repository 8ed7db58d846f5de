import Alignment
import Foundation
import Recipes
import Testing

/// A temp directory with a few data files and a model directory.
private func fixture() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rein-recipes-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir.appendingPathComponent("data"), withIntermediateDirectories: true)
    try FileManager.default.createDirectory(at: dir.appendingPathComponent("models/tiny"), withIntermediateDirectories: true)
    for name in ["text.txt", "chat.jsonl", "prefs.jsonl"] {
        try Data("{}\n".utf8).write(to: dir.appendingPathComponent("data/\(name)"))
    }
    return dir
}

private let valid = """
name: quickstart
seed: 7
stages:
  - id: tok
    kind: tokenizer
    data: data/text.txt
    vocab_size: 300
  - id: pretrain
    kind: pretrain
    model: {from: hf:models/tiny}
    data: data/text.txt
  - id: sft
    kind: sft
    model: {from: stage:pretrain}
    data: data/chat.jsonl
    learning_rate: 2.0e-5
    lora: {r: 8, lora_alpha: 16, target_modules: [q_proj, v_proj]}
  - id: dpo
    kind: dpo
    model: {from: stage:sft}
    data: data/prefs.jsonl
    beta: 0.2
"""

@Test func validRecipeResolvesInOrderWithReferences() throws {
    let dir = try fixture()
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent("quickstart.yaml")
    try Data(valid.utf8).write(to: url)
    // `load` resolves paths against the current directory; here the fixture directory stands in for it.
    let recipe = try Recipe.parse(yaml: String(contentsOf: url, encoding: .utf8), fileName: "quickstart.yaml", baseDirectory: dir)
    #expect(recipe.name == "quickstart")
    #expect(recipe.store == "runs/quickstart.sqlite")
    #expect(recipe.outputDir == "runs/quickstart")
    #expect(recipe.stages.map(\.id) == ["tok", "pretrain", "sft", "dpo"])
    #expect(recipe.stages.map(\.kind) == [.tokenizer, .pretrain, .sft, .dpo])
    #expect(recipe.stages[0].tokenizer?.vocabSize == 300)
    #expect(recipe.stages[1].model == .hf("models/tiny"))
    #expect(recipe.stages[2].model == .stage("pretrain"))
    #expect(recipe.stages[2].dependencies == ["pretrain"])
    #expect(recipe.stages[3].dependencies == ["sft"])
    #expect(recipe.stages[2].training?.lora?.r == 8)
    #expect(recipe.stages[3].dpo?.beta == 0.2)
    #expect(recipe.stages[3].training?.seed == 7)
    #expect(recipe.stages[3].line == 18)
    #expect(Set(recipe.stages.map(\.configHash)).count == 4)
}

@Test func everyMistakeIsReportedWithItsLine() throws {
    let dir = try fixture()
    defer { try? FileManager.default.removeItem(at: dir) }
    let yaml = """
    seed: 1
    stores: runs/x.sqlite
    stages:
      - id: sft
        kind: sft
        model: {from: hf:models/tiny}
        data: data/missing.jsonl
        learning_rat: 1.0e-5
        batch_size: eight
      - id: sft
        kind: reward
        model: {from: stage:nope}
        data: data/prefs.jsonl
        max_length: 1
      - id: dpo
        kind: dpo
        model: {from: stage:later}
      - id: later
        kind: sft
        model: {from: stage:dpo}
        data: data/chat.jsonl
      - id: Bad Id
        kind: ppo
    """
    do {
        _ = try Recipe.parse(yaml: yaml, fileName: "recipe.yaml", baseDirectory: dir)
        Issue.record("expected problems")
    } catch {
        let lines = error.problems.map(\.description)
        func has(_ line: Int, _ path: String, _ text: String) {
            #expect(error.problems.contains { $0.line == line && $0.keyPath == path && $0.message.contains(text) },
                    "missing \(line) \(path) \(text) in \(lines)")
        }
        has(1, "name", "required")                                        // missing name
        has(2, "stores", "did you mean 'store'")                          // unknown top-level key
        has(7, "stages.sft.data", "file not found")                       // missing data file
        has(8, "stages.sft.learning_rat", "did you mean 'learning_rate'") // unknown stage key
        has(9, "stages.sft.batch_size", "expected an integer")            // wrong type
        has(10, "stages[1].id", "duplicate stage id 'sft'")               // duplicate id
        has(12, "stages.sft.model", "unknown stage 'stage:nope'")         // unknown reference
        has(14, "stages.sft.max_length", "at least 2")                    // out of range
        has(15, "stages.dpo.data", "required")                            // kind's required field
        has(17, "stages.dpo.model", "later stage")                        // forward reference
        has(22, "stages[4].id", "[a-z0-9_-]+")                            // bad id
        // ppo is implemented: its stage is checked for what it needs.
        #expect(error.problems.contains { $0.keyPath == "stages[4].model" && $0.message.contains("required") }, "\(lines)")
        #expect(error.problems.contains { $0.keyPath == "stages[4].data" && $0.message.contains("required") }, "\(lines)")
        #expect(lines.contains("recipe.yaml:8: stages.sft.learning_rat: unknown key (did you mean 'learning_rate'?)"))
        #expect(error.problems.map { $0.line ?? 0 } == error.problems.map { $0.line ?? 0 }.sorted())
    }
}

@Test func emptyStagesAndMissingModelFile() throws {
    let dir = try fixture()
    defer { try? FileManager.default.removeItem(at: dir) }
    do {
        _ = try Recipe.parse(yaml: "name: x\nstages: []\n", baseDirectory: dir)
        Issue.record("expected problems")
    } catch {
        #expect(error.problems.map(\.keyPath) == ["stages"])
        #expect(error.problems.first?.line == 2)
    }
    let yaml = "name: x\nstages:\n  - id: a\n    kind: sft\n    model: models/none\n    data: data/chat.jsonl\n    validation_data: data/nope.jsonl\n"
    do {
        _ = try Recipe.parse(yaml: yaml, baseDirectory: dir)
        Issue.record("expected problems")
    } catch {
        #expect(error.problems.map(\.line) == [5, 7])
        #expect(error.problems[0].message.contains("model not found"))
    }
}

@Test func configHashIsStableAcrossKeyOrderAndChangesWithValues() throws {
    let dir = try fixture()
    defer { try? FileManager.default.removeItem(at: dir) }
    func hash(_ body: String) throws -> String {
        try Recipe.parse(yaml: "name: h\nstages:\n  - id: a\n    kind: sft\n" + body, baseDirectory: dir).stages[0].configHash
    }
    let a = try hash("    model: models/tiny\n    data: data/chat.jsonl\n    learning_rate: 1.0e-4\n    batch_size: 4\n")
    let b = try hash("    batch_size: 4\n    learning_rate: 0.0001\n    data: data/chat.jsonl\n    model: models/tiny\n")
    let c = try hash("    model: models/tiny\n    data: data/chat.jsonl\n    learning_rate: 2.0e-4\n    batch_size: 4\n")
    #expect(a == b)
    #expect(a != c)
    #expect(Recipe.configHash(SFTConfig()) == Recipe.configHash(SFTConfig()))
    #expect(a.count == 64 && a.allSatisfy(\.isHexDigit))   // SHA-256
}

@Test func nestedLoRAKeysAreCheckedWithSuggestions() throws {
    let dir = try fixture()
    defer { try? FileManager.default.removeItem(at: dir) }
    let yaml = "name: x\nstages:\n  - id: a\n    kind: sft\n    model: models/tiny\n    data: data/chat.jsonl\n    lora: {r: 8, alpha: 16}\n"
    do {
        _ = try Recipe.parse(yaml: yaml, baseDirectory: dir)
        Issue.record("expected problems")
    } catch {
        #expect(error.description == "recipe.yaml:7: stages.a.lora.alpha: unknown key (did you mean 'lora_alpha'?)")
    }
}
