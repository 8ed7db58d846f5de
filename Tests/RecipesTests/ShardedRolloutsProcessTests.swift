import Foundation
import Store
import TensorCore
import Testing

// PPO, GRPO and RLOO under `mpirun -np 2`: each process samples and scores half of every
// update's prompts, trains its micro-batches and sums the gradients; the rollouts (tokens,
// scores, whitened advantages), the metrics and the trained policy are compared with one
// process on the same seeds. The measured differences are printed (docs/distributed.md quotes them).

/// The largest absolute and relative differences of two numbers' lists.
private func differences(_ pairs: [(Double, Double)]) -> (absolute: Double, relative: Double) {
    var absolute = 0.0, relative = 0.0
    for (a, b) in pairs {
        let d = abs(a - b)
        absolute = max(absolute, d)
        if d > 0 { relative = max(relative, d / max(abs(a), abs(b))) }
    }
    return (absolute, relative)
}

/// Runs the one-stage recipe of `kind` alone in `a` and on two processes in `b`, and compares
/// the stores and the exported policies.
private func compareOneAndTwoProcesses(kind: String, settings: String, steps: Int, rowsPerStep: Int) throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let a = dir.appendingPathComponent("a"), b = dir.appendingPathComponent("b")
    for d in [a, b] {
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        try writeRLInputs(in: d)
        try Data(rlRecipe(kind: kind, settings: settings).utf8).write(to: d.appendingPathComponent("rl.yaml"))
    }
    let arguments = ["run", "rl.yaml", "--threads", "1", "--quiet"]
    let alone = try runReinMPI(nil, arguments, in: a)
    try #require(alone.status == 0, "\(kind) alone: \(alone.stderr)")
    let two = try runReinMPI(2, arguments, in: b)
    try #require(two.status == 0, "\(kind) on 2 processes: \(two.stderr)")

    // Rank 0 alone records: one row per rollout, the same rows.
    let expected = try stageRollouts(a.appendingPathComponent("runs/rl.sqlite").path).filter { $0.phase == RolloutPhase.train }
    let actual = try stageRollouts(b.appendingPathComponent("runs/rl.sqlite").path).filter { $0.phase == RolloutPhase.train }
    #expect(expected.count == steps * rowsPerStep && actual.count == expected.count, "\(actual.count) rollouts, expected \(expected.count)")
    var firstUpdate: [(Double, Double)] = [], all: [(Double, Double)] = [], scores: [(Double, Double)] = []
    for (x, y) in zip(expected, actual) {
        #expect(x.step == y.step && x.idx == y.idx && x.prompt == y.prompt)
        #expect(x.responseTokenIds == y.responseTokenIds && x.response == y.response && x.stopReason == y.stopReason,
                "\(kind): update \(x.step) row \(x.idx): \(y.response) on 2 processes, \(x.response) alone")
        let advantages = (x.advantage ?? .nan, y.advantage ?? .nan)
        all.append(advantages)
        if x.step == 1 { firstUpdate.append(advantages) }
        scores.append((x.score ?? .nan, y.score ?? .nan))
    }
    let first = differences(firstUpdate), overall = differences(all), score = differences(scores)
    // The first update's rollout is sampled from the same weights: its advantages agree to 1e-6.
    #expect(first.absolute <= 1e-6, "\(kind): the first update's advantages differ by \(first.absolute)")
    #expect(overall.absolute <= 1e-4, "\(kind): advantages differ by up to \(overall.absolute)")

    let metricsA = try stageMetrics(a.appendingPathComponent("runs/rl.sqlite").path)
    let metricsB = try stageMetrics(b.appendingPathComponent("runs/rl.sqlite").path)
    #expect(Set(metricsA.keys) == Set(metricsB.keys), "\(kind): metric names differ")
    let losses = metricsA.keys.filter { $0.hasSuffix("/loss/policy_avg") || $0.hasSuffix("/loss/value_avg") || $0.hasSuffix("/loss") }
    #expect(losses.count >= steps)
    let loss = differences(losses.map { (metricsA[$0]!, metricsB[$0] ?? .nan) })
    #expect(loss.relative <= 1e-4, "\(kind): losses differ by up to \(loss.relative) relative")

    let pa = try Safetensors.readAll(url: a.appendingPathComponent("runs/rl/\(kind)/model/model.safetensors")).tensors
    let pb = try Safetensors.readAll(url: b.appendingPathComponent("runs/rl/\(kind)/model/model.safetensors")).tensors
    #expect(pa.keys.sorted() == pb.keys.sorted() && !pa.isEmpty)
    var parameters: Float = 0
    for (name, t) in pa { parameters = max(parameters, zip(t.values, pb[name]?.values ?? []).map { abs($0 - $1) }.max() ?? .nan) }
    #expect(parameters <= 1e-4, "\(kind): parameters differ by up to \(parameters)")
    print("sharded \(kind), 2 processes against 1 over \(steps) updates: tokens identical; advantages max |d| \(first.absolute) (update 1), "
          + "\(overall.absolute) (all); scores \(score.absolute); losses max relative \(loss.relative); parameters max |d| \(parameters)")
}

@Suite(.serialized, .enabled(if: mpiAvailable, Comment(rawValue: mpiSkipMessage)))
struct ShardedRolloutsProcessTests {
    /// PPO with the reward model on the policy's token ids, two micro-batches per step (one per
    /// process) and the adaptive KL controller.
    @Test func ppoOnTwoProcessesSamplesTheOneProcessRollouts() throws {
        let settings = ppoSettings.replacingOccurrences(of: "batch_size: 4", with: "batch_size: 2\ngradient_accumulation_steps: 2")
            .replacingOccurrences(of: "max_steps: 6", with: "max_steps: 4")
        try compareOneAndTwoProcesses(kind: "ppo", settings: settings, steps: 4, rowsPerStep: 4)
    }

    /// GRPO and RLOO: groups of 2 completions, 2 prompts per update (one per process).
    @Test(arguments: ["grpo", "rloo"])
    func criticFreeOnTwoProcessesMatchesOneProcess(kind: String) throws {
        let settings = grpoSettings.replacingOccurrences(of: "batch_size: 4", with: "batch_size: 2\ngradient_accumulation_steps: 2")
            .replacingOccurrences(of: "max_steps: 6", with: "max_steps: 4")
        try compareOneAndTwoProcesses(kind: kind, settings: settings, steps: 4, rowsPerStep: 4)
    }
}
