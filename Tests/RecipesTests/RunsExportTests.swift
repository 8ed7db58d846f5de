import Foundation
import Store
import Testing

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
    #expect(Set(rollout.keys) == ["type", "run_id", "stage", "kind", "step", "idx", "prompt", "response", "response_tokens",
                                  "stop_reason", "score", "kl", "reward", "policy_version"])
    #expect(rollout["type"] as? String == "rollout" && rollout["prompt"] as? String == prompt && rollout["response"] as? String == "hi ✓")
    #expect(rollout["score"] as? Double == 1.5 && rollout["kl"] is NSNull && rollout["reward"] is NSNull)
    #expect(rollout["response_tokens"] as? Int == 2 && rollout["policy_version"] as? Int == 3 && rollout["stop_reason"] as? String == "eos")
    #expect(lines[2].contains(#""prompt":"Say \"hi\"\\n\nthen a/b""#))  // quotes and line breaks escaped, slashes not
}
