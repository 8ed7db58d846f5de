import Foundation
import Recipes
import Store
import Testing

// `data: {ratings: TASK}` in a reward stage: a task of scripted answers (written through the store
// calls the rating screen makes) trains a reward model through the real stage, and the stage's hash
// covers the answers.

private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures")

/// `policy/`: the tiny GPT-2 fixture (absolute positions: the last token knows the text's length).
private func ratingsDirectory() throws -> URL {
    let fm = FileManager.default
    let dir = fm.temporaryDirectory.appendingPathComponent("rein-ratings-rm-\(UUID().uuidString)")
    let policy = dir.appendingPathComponent("policy")
    try fm.createDirectory(at: policy, withIntermediateDirectories: true)
    let gpt2 = fixtures.appendingPathComponent("hf-tiny-gpt2")
    for file in ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"] {
        try fm.copyItem(at: gpt2.appendingPathComponent(file), to: policy.appendingPathComponent(file))
    }
    return dir
}

private let words = ["sun", "tree", "blue", "cat", "rock", "milk", "ship", "door", "leaf", "snow", "bird", "fire", "lamp", "road"]

/// Prompt `i`'s short answer (1 or 2 words) and long one (6 or 7 words), deterministic in `i`.
private func answers(_ i: Int) -> (short: String, long: String) {
    func phrase(_ n: Int, _ offset: Int) -> String { (0..<n).map { words[(i * 5 + offset + $0 * 3) % words.count] }.joined(separator: " ") }
    return (phrase(1 + i % 2, 1), phrase(6 + (i / 2) % 2, 2))
}

/// The rater "bot" answers every item it is given as the screen would record it: the longer response,
/// by the side it is shown on; every tenth item "both bad" (left out of the pairs).
private func rateLonger(_ store: RunStore, _ task: RatingTask, rater: String = "bot", limit: Int = .max) throws -> Int {
    var answered = 0
    while answered < limit, let item = try store.nextRatingItem(taskId: task.id!, rater: rater, session: "script") {
        let order = RatingTasks.layout(task: task, item: item, rater: rater)
        let longer = item.responses[0].count > item.responses[1].count ? 0 : 1
        let side = order.firstIndex(of: longer)!
        let vote: RatingVote = item.idx % 10 == 9 ? .bad : (order[side] == 0 ? .a : .b)
        _ = try store.record(rating: Rating(itemId: item.id!, rater: rater, session: "script", swapped: order != [0, 1], vote: vote,
                                            shownAt: Date()))
        answered += 1
    }
    return answered
}

private func recipe(extra: String = "") -> String {
    """
    name: longer
    seed: 5
    store: s.sqlite
    stages:
      - id: rm
        kind: reward
        model: policy
        data: {ratings: longer\(extra)}
        validation_data: heldout.jsonl
        max_length: 48
        batch_size: 16
        num_train_epochs: 4
        learning_rate: 3.0e-3
        logging_steps: 0

    """
}

private func run(_ text: String, in dir: URL) throws -> RunReport {
    let recipe = try Recipe.parse(yaml: text, fileName: "longer.yaml", baseDirectory: dir)
    let runner = RecipeRunner(recipe: recipe, recipeText: text)
    runner.shouldStop = { false }
    return try runner.run()
}

@Suite(.serialized) struct RatingsRewardStageTests {
    @Test func aRewardModelOnScriptedRatingsOfTheLongerAnswerScoresHeldOutPairsAndItsHashCoversTheAnswers() throws {
        let dir = try ratingsDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // 160 rated pairs; the longer answer is first or second at random (the task's layout hides it anyway).
        let candidates = (0..<160).map { i -> RatingCandidate in
            let (short, long) = answers(i)
            let longFirst = (i * 7919) % 3 == 0
            return RatingCandidate(prompt: "Say something \(i % 8):", responses: longFirst ? [long, short] : [short, long],
                                   sources: longFirst ? ["long", "short"] : ["short", "long"])
        }
        let store = try RunStore(path: dir.appendingPathComponent("s.sqlite").path)
        let task = try store.createRatingTask(RatingTask(name: "longer", mode: .pair, source: "test", seed: 3),
                                              items: RatingTasks.items(candidates, mode: .pair, seed: 3))
        #expect(try rateLonger(store, task) == 160)
        // Held out: 100 pairs of other word combinations and prompts the reward model never sees in training.
        let held = (1000..<1100).map { i -> String in
            let (short, long) = answers(i)
            return "{\"prompt\": \"Tell me \(i % 5):\", \"chosen\": \"\(long)\", \"rejected\": \"\(short)\"}\n"
        }
        try Data(held.joined().utf8).write(to: dir.appendingPathComponent("heldout.jsonl"))

        let started = Date()
        let report = try run(recipe(), in: dir)
        let seconds = Date().timeIntervalSince(started)
        let rm = try #require(report.stages.first)
        #expect(rm.status == .completed && !rm.skipped)
        let accuracy = try #require(rm.after["eval/accuracy"])
        #expect(accuracy >= 0.9, "held-out accuracy \(accuracy)")
        print("ratings -> reward model: held-out accuracy \(accuracy) in \(String(format: "%.1f", seconds)) s")
        // The pairs it trained on: 144 (every tenth answer was both bad), each preferring the longer answer.
        let lines = try String(contentsOf: dir.appendingPathComponent("runs/longer/rm/ratings.jsonl"), encoding: .utf8)
            .split(separator: "\n").map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String]) }
        #expect(lines.count == 144)
        #expect(lines.allSatisfy { ($0["chosen"]?.count ?? 0) > ($0["rejected"]?.count ?? 0) })

        // The same answers: skipped. A skip is no answer: still skipped.
        #expect(try run(recipe(), in: dir).stages.allSatisfy(\.skipped))
        let item = try #require(try store.ratingItems(taskId: task.id!).first)
        _ = try store.record(rating: Rating(itemId: item.id!, rater: "cy", session: "s", swapped: false, vote: .skip, shownAt: Date()))
        #expect(try run(recipe(), in: dir).stages.allSatisfy(\.skipped))
        // A new answer that agrees with the majority changes no pair, but it is a new rating: the stage reruns.
        _ = try store.record(rating: Rating(itemId: item.id!, rater: "cy", session: "s", swapped: false,
                                            vote: item.responses[0].count > item.responses[1].count ? .a : .b, shownAt: Date()))
        let again = try run(recipe(), in: dir)
        #expect(again.stages.first?.skipped == false && again.stages.first?.status == .completed)
        // Undo takes it back: the answers differ from the last run's again, so it reruns once, then is skipped.
        _ = try store.undoLastRating(taskId: task.id!, rater: "cy")
        _ = try run(recipe(), in: dir)
        #expect(try run(recipe(), in: dir).stages.allSatisfy(\.skipped))
    }

    @Test func theKeysOfTheRatingsMappingAreCheckedAndAnUnknownTaskNamesTheKeyTheTaskAndTheTasksThatExist() throws {
        let dir = try ratingsDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data().write(to: dir.appendingPathComponent("heldout.jsonl"))
        let store = try RunStore(path: dir.appendingPathComponent("s.sqlite").path)
        for name in ["helpful", "harmless"] {
            _ = try store.createRatingTask(RatingTask(name: name, mode: .pair, source: "test", seed: 0),
                                           items: [RatingItem(idx: 0, prompt: "p", responses: ["x", "y"], sources: ["a", "b"])])
        }
        func problems(_ text: String) -> [String] {
            do { _ = try Recipe.parse(yaml: text, fileName: "r.yaml", baseDirectory: dir); return [] } catch { return error.problems.map(\.description) }
        }
        let unknown = problems(recipe().replacingOccurrences(of: "{ratings: longer}", with: "{ratings: helpfull}"))
        #expect(unknown.count == 1)
        #expect(unknown.first?.contains("r.yaml:8: stages.rm.data.ratings: no rating task 'helpfull' in s.sqlite (did you mean 'helpful'?)") == true,
                "\(unknown)")
        #expect(unknown.first?.contains("it has: helpful, harmless") == true, "\(unknown)")

        let keys = problems(recipe(extra: ", margn: none, aggregate: most, min_gold_accuracy: 2").replacingOccurrences(of: "longer,", with: "helpful,"))
        #expect(keys.contains { $0.contains("stages.rm.data.margn: unknown key (did you mean 'margin'?)") }, "\(keys)")
        #expect(keys.contains { $0.contains("stages.rm.data.aggregate: expected one of majority, all, got 'most'") }, "\(keys)")
        #expect(keys.contains { $0.contains("stages.rm.data.min_gold_accuracy: expected a number in [0, 1], got '2'") }, "\(keys)")
        let noStore = problems(recipe(extra: ", store: other.sqlite"))
        #expect(noStore.contains { $0.contains("stages.rm.data.store: no store at other.sqlite") }, "\(noStore)")
        // Ratings feed pair-trained stages only.
        let sft = problems(recipe().replacingOccurrences(of: "kind: reward", with: "kind: sft"))
        #expect(sft.contains { $0.contains("stages.rm.data: wrong type: expected a file path or stage:ID/FILE (ratings feed reward and dpo stages)") },
                "\(sft)")
        // The task in place: it checks, and the config records the ratings source.
        let good = try Recipe.parse(yaml: recipe().replacingOccurrences(of: "longer}", with: "helpful, margin: llama-large}"),
                                    fileName: "r.yaml", baseDirectory: dir)
        #expect(good.stages.first?.ratings?.ratings == "helpful" && good.stages.first?.ratings?.margin == "llama-large")
    }
}
