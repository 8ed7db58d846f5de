import Foundation
import Recipes
import Testing

/// The project's `recipes/` folder.
private let recipesFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../../recipes").standardizedFileURL

/// Every recipe shipped in `recipes/` passes `rein check` from the project root. On a machine
/// without the fetched assets the only problems allowed are the missing `assets/` files, each
/// with the hint to fetch them.
@Test func everyRecipeInTheRecipesFolderChecks() throws {
    let root = recipesFolder.deletingLastPathComponent()
    let names = try FileManager.default.contentsOfDirectory(atPath: recipesFolder.path).filter { $0.hasSuffix(".yaml") }.sorted()
    #expect(names.contains("quickstart.yaml") && names.contains("smollm2-ppo.yaml"), "\(names)")
    for name in names {
        let text = try String(contentsOf: recipesFolder.appendingPathComponent(name), encoding: .utf8)
        do {
            let recipe = try Recipe.parse(yaml: text, fileName: name, baseDirectory: root)
            #expect(!recipe.stages.isEmpty)
        } catch {
            let other = error.problems.filter { !($0.message.contains("assets/") && $0.message.contains("scripts/fetch-assets.sh")) }
            #expect(other.isEmpty, "\(name): \(other.map(\.description))")
        }
    }
}

/// The real-model PPO recipe chains its stages as its header says.
@Test func theSmolLM2PPORecipeSamplesPairsTrainsARewardModelAndRunsPPOWithTheLexiconAsGoldJudge() throws {
    let text = try String(contentsOf: recipesFolder.appendingPathComponent("smollm2-ppo.yaml"), encoding: .utf8)
    let root = recipesFolder.deletingLastPathComponent()
    guard FileManager.default.fileExists(atPath: root.appendingPathComponent("assets/smollm2").path) else {
        print("skipped: assets/ not fetched (scripts/fetch-assets.sh)")
        return
    }
    let recipe = try Recipe.parse(yaml: text, fileName: "smollm2-ppo.yaml", baseDirectory: root)
    #expect(recipe.stages.map(\.kind) == [.data, .judgePairs, .reward, .ppo, .compare])
    let ppo = try #require(recipe.stages.first { $0.kind == .ppo })
    #expect(ppo.models["reward_model"] == .stage("reward"))
    #expect(ppo.dependencies.contains("data") && ppo.dependencies.contains("reward"))
    #expect(recipe.stages[2].dependencies == ["pairs"])
    guard case .ppo(let config) = ppo.settings else { Issue.record("not a ppo stage"); return }
    #expect(config.rollout.evalJudge == "vader")
    #expect(config.args.lora != nil)
    #expect(config.rollout.exportSteps > 0)
    // The comparison: the base model against PPO, the lexicon and the reward model, PPO's steps on the frontier.
    let compare = try #require(recipe.stages.last)
    #expect(compare.models["checkpoints.0"] == .stage("ppo") && compare.models["policies.1"] == .stage("ppo"))
    #expect(compare.dependencies.contains("ppo") && compare.dependencies.contains("reward"))
}
