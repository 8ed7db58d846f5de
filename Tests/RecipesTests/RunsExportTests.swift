import Foundation
import Store
import Testing
import Recipes
import Training

/// Runs `rein ARGS` in `directory` and returns its exit status.
private func runRein(_ arguments: [String], in directory: URL) throws -> Int32 {
    let process = try startRein(arguments, in: directory)
    process.waitUntilExit()
    return process.terminationStatus
}

@Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
func runsExportWritesOneSortedKeyJSONObjectPerMetricAndRollout() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let storePath = dir.appendingPathComponent("runs.sqlite").path
    let store = try RunStore(path: storePath)
    let runId = try #require(try store.createRun(name: "export", recipe: "", seed: 1).id)
    let stageId = try #require(try store.createStage(runId: runId, stageKey: "sft", kind: "sft", configJSON: "{}", configHash: "h").id)
    try store.record(metrics: [Metric(stageId: stageId, step: 1, name: "train/loss", value: 0.5),
                               Metric(stageId: stageId, step: 2, name: "train/loss", value: 1e-05)])
    let prompt = "Say \"hi\"\\n\nthen a/b"
    try store.record(rollouts: [Rollout(stageId: stageId, step: 2, idx: 0, prompt: prompt, response: "hi ✓", responseTokens: 2,
                                        stopReason: "eos", score: 1.5, kl: nil, reward: nil, policyVersion: 3)])

    #expect(try runRein(["runs", "export", "export", "--format", "jsonl", "--store", storePath, "--output", "out.jsonl"], in: dir) == 0)
    let text = try String(contentsOf: dir.appendingPathComponent("out.jsonl"), encoding: .utf8)
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    #expect(lines.count == 4 && lines.last == "")  // three lines, each ended by a line break
    #expect(lines.first == #"{"kind":"sft","name":"train/loss","run_id":\#(runId),"stage":"sft","step":1,"type":"metric","value":0.5}"#)
    let objects = try lines.dropLast().map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    #expect(objects[1]["value"] as? Double == 1e-05)
    let rollout = objects[2]
    #expect(Set(rollout.keys) == ["type", "run_id", "stage", "kind", "phase", "step", "idx", "group", "prompt", "response", "response_tokens",
                                  "response_token_ids", "stop_reason", "score", "kl", "reward", "advantage", "policy_version"])
    #expect(rollout["phase"] as? String == "eval")
    #expect(rollout["group"] is NSNull && rollout["response_token_ids"] is NSNull && rollout["advantage"] is NSNull)
    #expect(rollout["type"] as? String == "rollout" && rollout["prompt"] as? String == prompt && rollout["response"] as? String == "hi ✓")
    #expect(rollout["score"] as? Double == 1.5 && rollout["kl"] is NSNull && rollout["reward"] is NSNull)
    #expect(rollout["response_tokens"] as? Int == 2 && rollout["policy_version"] as? Int == 3 && rollout["stop_reason"] as? String == "eos")
    #expect(lines[2].contains(#""prompt":"Say \"hi\"\\n\nthen a/b""#))  // quotes and line breaks escaped, slashes not
}

/// Runs `rein ARGS` in `directory`, with `environment` added to the test's: its exit status, stdout
/// and stderr (through files, so no pipe fills up).
func runReinCapturing(_ arguments: [String], in directory: URL, environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("rein-out-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    let outURL = scratch.appendingPathComponent("stdout"), errURL = scratch.appendingPathComponent("stderr")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
    let process = Process()
    process.executableURL = reinBinary
    process.arguments = arguments
    process.currentDirectoryURL = directory
    if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    process.standardOutput = out
    process.standardError = err
    try process.run()
    process.waitUntilExit()
    try out.close()
    try err.close()
    return (process.terminationStatus, try String(contentsOf: outURL, encoding: .utf8), try String(contentsOf: errURL, encoding: .utf8))
}

/// A store with run `rl` whose `grpo` stage recorded two updates of two prompts with two samples each.
private func rlStore(_ path: String) throws -> (runId: Int64, rows: [RolloutRow]) {
    let store = try RunStore(path: path)
    let runId = try #require(try store.createRun(name: "rl", recipe: "", seed: 1).id)
    let stageId = try #require(try store.createStage(runId: runId, stageKey: "grpo", kind: "grpo", configJSON: "{}", configHash: "h").id)
    let rows: [RolloutRow] = (1...2).flatMap { (step: Int) -> [RolloutRow] in
        (0..<4).map { (i: Int) -> RolloutRow in
            let prompt = "<|user|>Q\(i / 2)\n<|assistant|>", response = "A \"\(step).\(i)\""
            let ids: [Int32] = [Int32(10 + i), Int32(step), 0]
            let stop = i == 3 ? "length" : "eos"
            let score = Double(i)
            let advantage: Double = i % 2 == 0 ? -1 : 1
            return RolloutRow(step: step, index: i, prompt: prompt, response: response, responseTokenIds: ids, stopReason: stop,
                              score: score, kl: 0.5, reward: score - 0.5, advantage: advantage, group: i / 2,
                              policyVersion: step - 1)
        }
    }
    let sink = StoreRolloutSink(store: store, stageId: stageId)
    for step in 1...2 { try sink.record(rollouts: rows.filter { $0.step == step }) }
    try store.record(metrics: [Metric(stageId: stageId, step: 1, name: "train/loss", value: 0.5)])
    return (runId, rows)
}

@Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
func runsExportRolloutsWritesEveryRLFieldAsJSONLines() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let storePath = dir.appendingPathComponent("runs.sqlite").path
    let (runId, rows) = try rlStore(storePath)

    // To stdout without --format: JSON Lines of the rollouts only.
    let printed = try runReinCapturing(["runs", "export", "rl", "--rollouts", "--store", storePath], in: dir)
    #expect(printed.status == 0, "\(printed.stderr)")
    let lines = printed.stdout.split(separator: "\n")
    #expect(lines.count == 8 && printed.stdout.hasSuffix("\n"))
    let objects = try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
    for (object, row) in zip(objects, rows) {
        #expect(object["type"] as? String == "rollout" && object["run_id"] as? Int == Int(runId))
        #expect(object["stage"] as? String == "grpo" && object["kind"] as? String == "grpo" && object["phase"] as? String == "train")
        #expect(object["step"] as? Int == row.step && object["idx"] as? Int == row.index && object["group"] as? Int == row.group)
        #expect(object["prompt"] as? String == row.prompt && object["response"] as? String == row.response)
        #expect(object["response_token_ids"] as? [Int] == row.responseTokenIds.map(Int.init))
        #expect(object["response_tokens"] as? Int == 3 && object["stop_reason"] as? String == row.stopReason)
        #expect(object["score"] as? Double == row.score && object["kl"] as? Double == row.kl)
        #expect(object["reward"] as? Double == row.reward && object["advantage"] as? Double == row.advantage)
        #expect(object["policy_version"] as? Int == row.policyVersion)
    }
    #expect(lines[0] == #"{"advantage":-1,"group":0,"idx":0,"kind":"grpo","kl":0.5,"phase":"train","policy_version":0,"prompt":"<|user|>Q0\n<|assistant|>","#
        + #""response":"A \"1.0\"","response_token_ids":[10,1,0],"response_tokens":3,"reward":-0.5,"run_id":\#(runId),"#
        + #""score":0,"stage":"grpo","step":1,"stop_reason":"eos","type":"rollout"}"#)

    // To a file: the same bytes, replacing what was there.
    let file = dir.appendingPathComponent("rollouts.jsonl")
    try Data("old contents\n".utf8).write(to: file)
    let written = try runReinCapturing(["runs", "export", "rl", "--rollouts", "--store", storePath, "--output", "rollouts.jsonl"], in: dir)
    #expect(written.status == 0 && written.stdout.isEmpty)
    #expect(try String(contentsOf: file, encoding: .utf8) == printed.stdout)
    #expect(written.stderr.contains("wrote 8 rollouts of run \(runId) (rl) to rollouts.jsonl"))
    // Only the file is left behind: no temporary.
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains("rollouts") } == ["rollouts.jsonl"])

    // CSV: the token ids are one quoted field.
    let csv = try runReinCapturing(["runs", "export", "rl", "--rollouts", "--format", "csv", "--store", storePath], in: dir)
    let csvLines = csv.stdout.split(separator: "\n", omittingEmptySubsequences: false)
    #expect(csvLines.first == "run_id,stage,kind,phase,step,idx,group,prompt,response,response_tokens,response_token_ids,stop_reason,score,kl,reward,advantage,policy_version")
    #expect(csvLines[1] == #"1,grpo,grpo,train,1,0,0,"<|user|>Q0"#)
    #expect(csv.stdout.contains(#"<|assistant|>","A ""1.0""",3,"[10,1,0]",eos,0.0,0.5,-0.5,-1.0,0"# + "\n"))
}

@Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
func runsExportToAnUnwritablePlaceNamesTheFileAndLeavesNothing() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let storePath = dir.appendingPathComponent("runs.sqlite").path
    _ = try rlStore(storePath)
    let missing = try runReinCapturing(["runs", "export", "rl", "--rollouts", "--store", storePath, "--output", "no/such/dir/r.jsonl"],
                                       in: dir)
    #expect(missing.status != 0)
    #expect(missing.stderr.contains("no/such/dir/r.jsonl"), "\(missing.stderr)")
    let directory = try runReinCapturing(["runs", "export", "rl", "--rollouts", "--store", storePath, "--output", "."], in: dir)
    #expect(directory.status != 0 && directory.stderr.contains(".: is a directory"), "\(directory.stderr)")
    let unknown = try runReinCapturing(["runs", "export", "nope", "--rollouts", "--store", storePath], in: dir)
    #expect(unknown.status != 0 && unknown.stderr.contains("no run with id or name 'nope'"), "\(unknown.stderr)")
}

@Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
func runsExportKeepsATrainingRolloutAndAnEvaluationReplyOfOneStepApartByPhase() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let storePath = dir.appendingPathComponent("runs.sqlite").path
    let (runId, rows) = try rlStore(storePath)
    // The final evaluation at the last update's step (2), index 0 like its first rollout.
    let store = try RunStore(path: storePath)
    let stageId = try #require(try store.runs().first?.stages.first?.id)
    try store.record(rollouts: [Rollout(stageId: stageId, phase: RolloutPhase.eval, step: 2, idx: 0, prompt: "Q", response: "A",
                                        responseTokens: 1, stopReason: "eos", score: 1, policyVersion: 2)])
    #expect(try store.rollouts(stageId: stageId).count == rows.count + 1)

    let printed = try runReinCapturing(["runs", "export", "rl", "--rollouts", "--store", storePath], in: dir)
    #expect(printed.status == 0, "\(printed.stderr)")
    let objects = try printed.stdout.split(separator: "\n").map {
        try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
    }
    // Step order; at step 2 the update's rollouts, then the evaluation reply.
    #expect(objects.map { "\($0["phase"] as? String ?? "?") \($0["step"] as? Int ?? -1).\($0["idx"] as? Int ?? -1)" }
        == ["train 1.0", "train 1.1", "train 1.2", "train 1.3", "train 2.0", "train 2.1", "train 2.2", "train 2.3", "eval 2.0"])
    #expect(objects.last?["group"] is NSNull && objects.last?["score"] as? Double == 1 && objects.last?["run_id"] as? Int == Int(runId))

    let csv = try runReinCapturing(["runs", "export", "rl", "--rollouts", "--format", "csv", "--store", storePath], in: dir)
    #expect(csv.status == 0, "\(csv.stderr)")
    let csvLines = csv.stdout.split(separator: "\n")
    #expect(csvLines.last == "\(runId),grpo,grpo,eval,2,0,,Q,A,1,,eos,1.0,,,,2")
}
