import Foundation
import Recipes
import Store
import Testing

/// The `rein` executable next to the test binary (`swift test` builds every product).
let reinBinary: URL? = {
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = dir.appendingPathComponent("rein")
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    return nil
}()

/// Starts `rein ARGS` in `directory`, output discarded.
func startRein(_ arguments: [String], in directory: URL) throws -> Process {
    let process = Process()
    process.executableURL = reinBinary
    process.arguments = arguments
    process.currentDirectoryURL = directory
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    return process
}

/// Runs `rein ARGS` in `directory` to the end: its exit status and what it wrote to stderr.
func runReinForErrors(_ arguments: [String], in directory: URL) throws -> (status: Int32, stderr: String) {
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
    return (process.terminationStatus, message)
}

/// The highest `last` checkpoint step of stage `key`, read while another process writes.
func lastCheckpointStep(store path: String, stage key: String) -> Int? {
    guard FileManager.default.fileExists(atPath: path), let store = try? RunStore(path: path),
          let runs = try? store.runs(), let stage = runs.first?.stages.first(where: { $0.stageKey == key }),
          let checkpoints = try? store.checkpoints(stageId: stage.id!) else { return nil }
    return checkpoints.filter { $0.kind == "last" }.map(\.step).max()
}

@Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
func killMinusNineThenRunAgainResumesToTheSameMetrics() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let recipe = tinyRecipe(pretrainSteps: 400)
    for name in ["a", "b"] {
        try FileManager.default.createDirectory(at: dir.appendingPathComponent(name), withIntermediateDirectories: true)
        try Data(recipe.utf8).write(to: dir.appendingPathComponent("\(name)/tiny.yaml"))
    }
    let arguments = ["run", "tiny.yaml", "--threads", "1", "--quiet"]
    // Reference: one uninterrupted process.
    let reference = try startRein(arguments, in: dir.appendingPathComponent("a"))
    reference.waitUntilExit()
    #expect(reference.terminationStatus == 0)

    // kill -9 once pretraining has written a checkpoint past step 30.
    let b = dir.appendingPathComponent("b")
    let storePath = b.appendingPathComponent("runs/tiny.sqlite").path
    let victim = try startRein(arguments, in: b)
    let deadline = Date().addingTimeInterval(120)
    while (lastCheckpointStep(store: storePath, stage: "pre") ?? 0) < 30 && victim.isRunning && Date() < deadline {
        usleep(5_000)
    }
    #expect(victim.isRunning, "the run ended before it could be killed")
    kill(victim.processIdentifier, SIGKILL)
    victim.waitUntilExit()
    #expect(victim.terminationReason == .uncaughtSignal)
    let killedAt = try #require(lastCheckpointStep(store: storePath, stage: "pre"))
    #expect(killedAt < 400)

    let again = try startRein(arguments, in: b)
    again.waitUntilExit()
    #expect(again.terminationStatus == 0)
    let store = try RunStore(path: storePath)
    let runs = try store.runs()
    #expect(runs.count == 1 && runs[0].run.status == .completed)
    #expect(runs[0].stages.allSatisfy { $0.status == .completed })
    // Same values at every (stage, step, name), nothing duplicated (metricRows checks) or missing.
    let expected = try metricRows(dir.appendingPathComponent("a/runs/tiny.sqlite").path)
    let actual = try metricRows(storePath)
    #expect(actual.count == expected.count)
    #expect(actual == expected)
}

@Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
func twoProcessesShareOneStore() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    // Two recipes writing to one store, and the first recipe started twice (the second waits for
    // the output directory's lock, then finds its stages done).
    let shared = "store: shared.sqlite\n"
    try Data((shared + tinyRecipe(name: "one")).utf8).write(to: dir.appendingPathComponent("one.yaml"))
    try Data((shared + tinyRecipe(name: "two").replacingOccurrences(of: "seed: 3", with: "seed: 4")).utf8)
        .write(to: dir.appendingPathComponent("two.yaml"))
    let processes = try [("one.yaml"), ("two.yaml"), ("one.yaml")].map {
        try startRein(["run", $0, "--threads", "1", "--quiet"], in: dir)
    }
    for process in processes {
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }
    let store = try RunStore(path: dir.appendingPathComponent("shared.sqlite").path)
    let runs = try store.runs()
    #expect(runs.count == 3)
    #expect(runs.allSatisfy { $0.run.status == .completed && $0.stages.count == 6 && $0.stages.allSatisfy { $0.status == .completed } })
    #expect(runs.filter { $0.run.name == "one" }.contains { $0.stages.allSatisfy { $0.reusedStageId != nil } })
    // Every stage that trained logged its final step's loss.
    for run in runs {
        for stage in run.stages where stage.reusedStageId == nil && ["pre", "sft", "rm", "dpo"].contains(stage.stageKey) {
            let names = Set(try store.metrics(stageId: stage.id!).map(\.name))
            #expect(names.contains("train/loss") && names.contains("eval/loss"), "\(run.run.name)/\(stage.stageKey)")
        }
    }
}

@Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
func anInvalidRecipeWritesNothing() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let bad = tinyRecipe().replacingOccurrences(of: "learning_rate: 1.0e-3", with: "learning_rat: 1.0e-3")
        .replacingOccurrences(of: "kind: dpo", with: "kind: dpoo")
    try Data(bad.utf8).write(to: dir.appendingPathComponent("bad.yaml"))
    let (status, message) = try runReinForErrors(["run", "bad.yaml"], in: dir)
    #expect(status != 0)
    #expect(message.contains("bad.yaml:") && message.contains("did you mean 'learning_rate'?") && message.contains("unknown kind"))
    #expect(message.contains("nothing was run"))
    // No store, no output directory.
    #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("runs").path))
}

@Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
func trainPretrainFromAFreshConfigOnTheCommandLine() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    try writeTinyTokenizerAndInitConfig(in: dir)
    let process = try startRein(["train", "pretrain", "--init-config", "init.json", "--tokenizer", "runs/tiny/tok",
                                 "--data", "runs/tiny/data/pretrain.txt", "--max-steps", "3", "--output-dir", "fresh", "--threads", "1"], in: dir)
    process.waitUntilExit()
    #expect(process.terminationStatus == 0)
    let saved = try String(contentsOf: dir.appendingPathComponent("fresh/model/config.json"), encoding: .utf8)
    let object = try #require(try JSONSerialization.jsonObject(with: Data(saved.utf8)) as? [String: Any])
    #expect(object["model_type"] as? String == "llama" && object["num_hidden_layers"] as? Int == 1)
    #expect((object["vocab_size"] as? Int ?? 0) > 256)   // from the trained tokenizer
    #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("fresh/model/tokenizer.json").path))

    let missing = try startRein(["train", "pretrain", "--init-config", "init.json", "--data", "runs/tiny/data/pretrain.txt"], in: dir)
    missing.waitUntilExit()
    #expect(missing.terminationStatus != 0)
}

/// A tokenizer and text from a tiny recipe's first two stages (`runs/tiny/tok`, `runs/tiny/data`),
/// and `init.json`: a 1-layer Llama config for `rein train pretrain --init-config`.
func writeTinyTokenizerAndInitConfig(in dir: URL) throws {
    let text = tinyRecipe().components(separatedBy: "  - id: pre")[0]
    let runner = RecipeRunner(recipe: try Recipe.parse(yaml: text, baseDirectory: dir), recipeText: text)
    runner.shouldStop = { false }
    _ = try runner.run()
    let config = #"{"model_type": "llama", "num_hidden_layers": 1, "hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2, "num_key_value_heads": 1, "max_position_embeddings": 48}"#
    try Data(config.utf8).write(to: dir.appendingPathComponent("init.json"))
}

@Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
func trainReportsABadConfigAsTheRecipeCheckerDoesAndWritesNothing() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    try Data("{}\n".utf8).write(to: dir.appendingPathComponent("chat.jsonl"))
    try FileManager.default.createDirectory(at: dir.appendingPathComponent("model"), withIntermediateDirectories: true)
    let config = "model: model\ndata: chat.jsonl\nlearning_rat: 1.0e-4\nbeta: 0.1\noutput_dir: out\n"
    try Data(config.utf8).write(to: dir.appendingPathComponent("sft.yaml"))
    let (status, message) = try runReinForErrors(["train", "sft", "--config", "sft.yaml", "--batch-size", "0", "--store", "runs/x.sqlite"], in: dir)
    #expect(status != 0)
    #expect(message.contains("sft.yaml:3: learning_rat: unknown key (did you mean 'learning_rate'?)"), "\(message)")
    #expect(message.contains("sft.yaml:4: beta: `beta` is a dpo/rloo/grpo key; this stage is sft"), "\(message)")
    #expect(message.contains("sft.yaml: batch_size: must be at least 1, got 0"), "\(message)")
    #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("runs").path))
    #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("out").path))
}
