import Foundation
import Recipes
import Store
import Testing

// The `rate` recipe step (the run waits for ratings with status 3, then goes on), `rein rate new
// --policies` (candidates sampled, options and seed recorded) and the thumbs scale, through the real
// executable; the step's bad settings through the checker.

private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures")

/// `llama/` and `gpt2/` (the tiny fixtures), `prompts.jsonl` (six text prompts), `held.jsonl` (two pairs).
private func rateStepInputs() throws -> URL {
    let fm = FileManager.default
    let dir = fm.temporaryDirectory.appendingPathComponent("rein-rate-step-\(UUID().uuidString)")
    for (name, fixture) in [("llama", "hf-tiny-llama"), ("gpt2", "hf-tiny-gpt2")] {
        let target = dir.appendingPathComponent(name)
        try fm.createDirectory(at: target, withIntermediateDirectories: true)
        for file in ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"] {
            try fm.copyItem(at: fixtures.appendingPathComponent(fixture).appendingPathComponent(file), to: target.appendingPathComponent(file))
        }
    }
    let prompts = ["the sea", "a red fox", "rain", "old books", "the moon", "bread"].map { "{\"prompt\": \"Write about \($0):\"}\n" }
    try Data(prompts.joined().utf8).write(to: dir.appendingPathComponent("prompts.jsonl"))
    try Data(#"""
        {"prompt": "Write about tea:", "chosen": "hot tea in a cup", "rejected": "tea"}
        {"prompt": "Write about a dog:", "chosen": "a dog runs on the grass", "rejected": "dog"}

        """#.utf8).write(to: dir.appendingPathComponent("held.jsonl"))
    return dir
}

private let rateRecipe = """
    name: rated
    seed: 9
    store: s.sqlite
    stages:
      - id: human
        kind: rate
        policies: [llama]
        prompts: prompts.jsonl
        num_candidates: 2
        response_length: 6
        temperature: 0.9
        min_ratings: 3
        rater: ann
      - id: rm
        kind: reward
        model: llama
        data: {ratings: human}
        validation_data: held.jsonl
        batch_size: 2
        max_steps: 2
        max_length: 48

    """

@Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
func aRateStepMakesItsTaskOnceWaitsForRatingsWithStatus3AndGoesOnOnceThereAreEnough() throws {
    let dir = try rateStepInputs()
    defer { try? FileManager.default.removeItem(at: dir) }
    try Data(rateRecipe.utf8).write(to: dir.appendingPathComponent("r.yaml"))
    let first = try runReinCapturing(["run", "r.yaml"], in: dir)
    #expect(first.status == RatingsPending.exitStatus, "\(first.stderr)")
    #expect(first.stdout.contains("rate: rein rate human --store s.sqlite --rater ann\nthen: rein run r.yaml\n"), "\(first.stdout)")
    #expect(first.stderr.contains("waits for ratings: task human has 0 of the 3 answers stage human needs (exit status 3)"), "\(first.stderr)")

    // The task: one pair per prompt, the two samples of the policy, with how they were sampled.
    let store = try RunStore(path: dir.appendingPathComponent("s.sqlite").path)
    let task = try store.ratingTask(named: "human")
    let items = try store.ratingItems(taskId: task.id!)
    #expect(task.mode == .pair && items.count == 6 && items.allSatisfy { $0.sources == ["llama#0", "llama#1"] })
    #expect(items.map(\.prompt) == ["the sea", "a red fox", "rain", "old books", "the moon", "bread"].map { "Write about \($0):" })
    let optionsText = try #require(task.options)
    let options = try #require(try JSONSerialization.jsonObject(with: Data(optionsText.utf8)) as? [String: Any])
    #expect(options["policies"] as? [String] == ["llama"] && options["temperature"] as? Double == 0.9)
    #expect(options["seed"] as? Int == 9 && options["max_new_tokens"] as? Int == 6 && options["num_candidates"] as? Int == 2)
    #expect(options["stage_hash"] is String)
    let candidates = try String(contentsOf: dir.appendingPathComponent("runs/rated/human/candidates.jsonl"), encoding: .utf8)
    #expect(candidates.split(separator: "\n").count == 6)

    // Again, before anyone rated: the same task (no second one, the same items), the same status; JSON says so too.
    let second = try runReinCapturing(["run", "r.yaml", "--json"], in: dir)
    #expect(second.status == 3, "\(second.stderr)")
    let waiting = try #require(second.stdout.split(separator: "\n").last.flatMap { try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
    #expect(waiting["event"] as? String == "waiting_for_ratings" && waiting["answers"] as? Int == 0 && waiting["min_ratings"] as? Int == 3)
    #expect(waiting["command"] as? String == "rein rate human --store s.sqlite --rater ann")
    #expect(try store.ratingTasks().count == 1 && store.ratingItems(taskId: task.id!).map(\.id) == items.map(\.id))

    // Two answers and a skip are not enough; a third answer (a tie) is.
    let rated = try runRein(["rate", "human", "--store", "s.sqlite", "--rater", "ann"], input: "a\nb\ns\nq\n", in: dir)
    #expect(rated.status == 0, "\(rated.stderr)")
    #expect(try runReinCapturing(["run", "r.yaml"], in: dir).stderr.contains("task human has 2 of the 3 answers"))
    _ = try runRein(["rate", "human", "--store", "s.sqlite", "--rater", "ann"], input: "t\nq\n", in: dir)
    let third = try runReinCapturing(["run", "r.yaml"], in: dir)
    #expect(third.status == 0, "\(third.stderr)")
    #expect(third.stdout.contains("rm (reward)"), "\(third.stdout)")
    // The reward stage trained on the two preferences (the tie left out), then everything is skipped.
    let pairs = try String(contentsOf: dir.appendingPathComponent("runs/rated/rm/ratings.jsonl"), encoding: .utf8)
    #expect(pairs.split(separator: "\n").count == 2)
    let fourth = try runReinCapturing(["run", "r.yaml"], in: dir)
    #expect(fourth.status == 0 && fourth.stderr.contains("[human] rate: skipped") && fourth.stderr.contains("[rm] reward: skipped"), "\(fourth.stderr)")
    // Waiting for fewer answers (or naming another rater) keeps the task and its candidates: no new task, no error.
    try Data(rateRecipe.replacingOccurrences(of: "min_ratings: 3", with: "min_ratings: 2")
        .replacingOccurrences(of: "rater: ann", with: "rater: bob").utf8).write(to: dir.appendingPathComponent("r.yaml"))
    let fifth = try runReinCapturing(["run", "r.yaml"], in: dir)
    #expect(fifth.status == 0 && fifth.stderr.contains("task human: made earlier, candidates kept"), "\(fifth.stderr)")
    #expect(try store.ratingTasks().count == 1 && store.ratingItems(taskId: task.id!).map(\.responses) == items.map(\.responses))
    // More answers than the task can ever get (six items, one rater each): an error, not a wait forever.
    try Data(rateRecipe.replacingOccurrences(of: "min_ratings: 3", with: "min_ratings: 50").utf8).write(to: dir.appendingPathComponent("r.yaml"))
    let never = try runReinCapturing(["run", "r.yaml"], in: dir)
    #expect(never.status == 1 && never.stderr.contains("min_ratings: 50 is more answers than task human can get"), "\(never.stderr)")
}

@Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
func rateNewWithPoliciesSamplesTheCandidatesSeededAndRecordsHowAndTheThumbsScaleTakesPlusAndMinus() throws {
    let dir = try rateStepInputs()
    defer { try? FileManager.default.removeItem(at: dir) }
    func make(_ store: String, seed: Int) throws -> [RatingItem] {
        let made = try runReinCapturing(["rate", "new", "--store", store, "--name", "gen", "--policies", "llama,hf:gpt2", "--prompts", "prompts.jsonl",
                                         "--max-prompts", "4", "--temperature", "0.8", "--max-new-tokens", "5", "--seed", "\(seed)"], in: dir)
        #expect(made.status == 0, "\(made.stderr)")
        #expect(made.stdout.contains("task gen: 4 items (pair)"), "\(made.stdout)")
        let db = try RunStore(path: dir.appendingPathComponent(store).path)
        let task = try db.ratingTask(named: "gen")
        #expect(task.source == "policies:llama,hf:gpt2")
        let optionsText = try #require(task.options)
        let options = try #require(try JSONSerialization.jsonObject(with: Data(optionsText.utf8)) as? [String: Any])
        #expect(options["policies"] as? [String] == ["llama", "hf:gpt2"] && options["policy_paths"] as? [String] == ["llama", "gpt2"])
        #expect(options["temperature"] as? Double == 0.8 && options["max_new_tokens"] as? Int == 5 && options["seed"] as? Int == seed)
        #expect(options["num_candidates"] as? Int == 2 && options["prompts"] as? String == "prompts.jsonl")
        return try db.ratingItems(taskId: task.id!)
    }
    let items = try make("a.sqlite", seed: 7)
    #expect(items.allSatisfy { $0.sources == ["llama#0", "hf:gpt2#0"] })
    #expect(try make("b.sqlite", seed: 7).map(\.responses) == items.map(\.responses))   // seeded
    #expect(try make("c.sqlite", seed: 8).map(\.responses) != items.map(\.responses))
    let missing = try runReinCapturing(["rate", "new", "--store", "d.sqlite", "--name", "gen", "--policies", "llama,nowhere",
                                        "--prompts", "prompts.jsonl"], in: dir)
    #expect(missing.status != 0 && missing.stderr.contains("--policies: no model at nowhere"), "\(missing.stderr)")
    #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("d.sqlite").path))

    // Thumbs: + or y up, - or n down; a number is no answer on this scale.
    try writeRateCandidates(dir, count: 2)
    let wrong = try runReinCapturing(["rate", "new", "--store", "t.sqlite", "--name", "th", "--candidates", "c.jsonl", "--scale", "thumbs"], in: dir)
    #expect(wrong.status != 0 && wrong.stderr.contains("--scale thumbs needs --mode single"), "\(wrong.stderr)")
    let made = try runReinCapturing(["rate", "new", "--store", "t.sqlite", "--name", "th", "--candidates", "c.jsonl", "--mode", "single",
                                     "--scale", "thumbs"], in: dir)
    #expect(made.status == 0, "\(made.stderr)")
    let session = try runRein(["rate", "th", "--store", "t.sqlite", "--rater", "ann"], input: "+\nn\n5\ny\n-\nq\n", in: dir)
    #expect(session.status == 0, "\(session.stderr)")
    #expect(session.stderr.contains("not an answer: 5"), "\(session.stderr)")
    #expect(session.stdout.contains("+ or y thumbs up  - or n thumbs down"), "\(session.stdout)")
    let answers = try liveAnswers(dir.appendingPathComponent("t.sqlite").path, task: "th")
    #expect(answers.map(\.rating.thumb) == [true, false, true, false])
    #expect(answers.allSatisfy { $0.rating.vote == .likert && $0.rating.likert == nil })
    #expect(answers.map(\.item.idx) == [0, 1, 2, 3])
    let stats = try runReinCapturing(["rate", "stats", "th", "--store", "t.sqlite"], in: dir)
    #expect(stats.stdout.contains("thumbs up 2, thumbs down 2"), "\(stats.stdout)")
}

@Test func aRateStepsBadSettingsNameTheirKeys() throws {
    let dir = try rateStepInputs()
    defer { try? FileManager.default.removeItem(at: dir) }
    func problems(_ text: String) -> [String] {
        do { _ = try Recipe.parse(yaml: text, fileName: "r.yaml", baseDirectory: dir); return [] } catch { return error.problems.map(\.description) }
    }
    #expect(problems(rateRecipe).isEmpty)
    #expect(problems(rateRecipe.replacingOccurrences(of: "min_ratings: 3", with: "min_ratings: 0"))
        == ["r.yaml:12: stages.human.min_ratings: must be at least 1, got 0"])
    #expect(problems(rateRecipe.replacingOccurrences(of: "min_ratings: 3", with: "min_ratings: lots"))
        == ["r.yaml:12: stages.human.min_ratings: wrong type: expected an integer, got 'lots'"])
    #expect(problems(rateRecipe.replacingOccurrences(of: "    min_ratings: 3\n", with: ""))
        == ["r.yaml:5: stages.human.min_ratings: required (how many answers the run waits for)"])
    #expect(problems(rateRecipe.replacingOccurrences(of: "num_candidates: 2", with: "num_candidates: 3")).first?
        .contains("stages.human.num_candidates: pair mode rates responses two at a time: expected an even number, got 3") == true)
    // The reward stage names a task no earlier rate stage makes (and the store does not exist yet).
    let unknown = problems(rateRecipe.replacingOccurrences(of: "{ratings: human}", with: "{ratings: humans}"))
    #expect(unknown.count == 1 && unknown[0].hasPrefix("r.yaml:17: stages.rm.data.ratings: no rating task 'humans'"), "\(unknown)")
    #expect(unknown.first?.contains("(did you mean 'human'?)") == true, "\(unknown)")
    // The rate stage's task is named after it; the reward stage depends on it.
    let recipe = try Recipe.parse(yaml: rateRecipe, fileName: "r.yaml", baseDirectory: dir)
    #expect(recipe.stages[1].dependencies == ["human"])
    guard case .rate(let config) = recipe.stages[0].settings else { Issue.record("not a rate stage"); return }
    #expect(config.task == "human" && config.seed == 9)
}

@Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
func reinTrainRewardReadsARatingTaskFromTheStoreItsConfigNames() throws {
    let dir = try rateStepInputs()
    defer { try? FileManager.default.removeItem(at: dir) }
    try writeRateCandidates(dir, count: 4)
    #expect(try runReinCapturing(["rate", "new", "--store", "s.sqlite", "--name", "t", "--candidates", "c.jsonl"], in: dir).status == 0)
    let rated = try runRein(["rate", "t", "--store", "s.sqlite", "--rater", "ann"], input: "a\nb\nx\nb\nq\n", in: dir)
    #expect(rated.status == 0, "\(rated.stderr)")
    let config = "model: llama\ndata: {ratings: t, store: s.sqlite}\nvalidation_data: held.jsonl\noutput_dir: out\nbatch_size: 2\nmax_steps: 2\nmax_length: 48\n"
    try Data(config.utf8).write(to: dir.appendingPathComponent("rm.yaml"))
    let trained = try runReinCapturing(["train", "reward", "--config", "rm.yaml"], in: dir)
    #expect(trained.status == 0, "\(trained.stderr)")
    // Three preferences (the both-bad answer left out), as rein rate export writes them.
    let pairs = try String(contentsOf: dir.appendingPathComponent("out/ratings.jsonl"), encoding: .utf8)
    let exported = try runReinCapturing(["rate", "export", "t", "--store", "s.sqlite"], in: dir)
    #expect(pairs.split(separator: "\n").count == 3 && pairs == exported.stdout, "\(pairs)")
    #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out/model/config.json").path))

    try Data(config.replacingOccurrences(of: "ratings: t,", with: "ratings: tt,").utf8).write(to: dir.appendingPathComponent("rm.yaml"))
    let unknown = try runReinCapturing(["train", "reward", "--config", "rm.yaml"], in: dir)
    #expect(unknown.status != 0 && unknown.stderr.contains("data.ratings: no rating task 'tt' in s.sqlite (did you mean 't'?); it has: t"),
            "\(unknown.stderr)")
}
