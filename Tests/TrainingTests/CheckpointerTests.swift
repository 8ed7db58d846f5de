import Foundation
import Testing
import Optimizers
import TensorCore
import Training

/// A small arena with random values and gradients.
func randomArena(seed: UInt64, names: [String] = ["embed", "norm", "head"]) -> ParameterArena {
    var rng = RNG(seed: seed)
    let arena = ParameterArena()
    for (k, name) in names.enumerated() {
        arena.add(name: name, values: .randn(k == 1 ? [7] : [5, 6], std: 0.5, rng: &rng))
    }
    return arena
}

func setRandomGradients(_ arena: ParameterArena, seed: UInt64) {
    var rng = RNG(seed: seed)
    for t in arena.tensors {
        for i in 0..<t.count { t.grad!.data[i] = rng.normal() }
    }
}

/// A PPO-like set of parts: policy and value arenas with their optimizers.
struct Parts {
    let policy = randomArena(seed: 1), value = randomArena(seed: 2, names: ["body", "bias", "score"])
    let policyOptimizer: AdamW, valueOptimizer: SGD

    init(seed: UInt64) {
        let fresh = (randomArena(seed: seed), randomArena(seed: seed + 1, names: ["body", "bias", "score"]))
        policy.restoreValues(fresh.0.snapshotValues())
        value.restoreValues(fresh.1.snapshotValues())
        policyOptimizer = AdamW(arena: policy, learningRate: 1e-2)
        valueOptimizer = SGD(arena: value, learningRate: 0.1, momentum: 0.9)
    }

    /// `n` updates of both.
    func train(_ n: Int, from step: Int = 0) {
        for s in step..<(step + n) {
            setRandomGradients(policy, seed: 100 + UInt64(s))
            setRandomGradients(value, seed: 200 + UInt64(s))
            policyOptimizer.step()
            valueOptimizer.step()
        }
    }

    var checkpointer: Checkpointer {
        Checkpointer(arenas: [("policy", policy), ("value", value)],
                     optimizers: [("policy_optimizer", policyOptimizer), ("value_optimizer", valueOptimizer)])
    }

    var fingerprint: [[Float]] {
        [policy.snapshotValues(), value.snapshotValues(), policyOptimizer.state().expAvg, policyOptimizer.state().expAvgSq,
         valueOptimizer.state().momentumBuffer]
    }
}

func temporaryCheckpoints(_ label: String) -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("rein-\(label)-\(UUID().uuidString)")
}

func entries(_ dir: URL) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted()
}

func linkTarget(_ url: URL) -> String? { try? FileManager.default.destinationOfSymbolicLink(atPath: url.path) }

struct Position: Codable, Equatable { var epoch: Int; var index: Int }

@Suite struct CheckpointerTests {
    @Test func savesAndRestoresEveryPartAndTheState() throws {
        let dir = temporaryCheckpoints("ckpt")
        defer { try? FileManager.default.removeItem(at: dir) }
        let saved = Parts(seed: 10)
        saved.train(3)
        var rng = RNG(seed: 5)
        _ = rng.next()
        var state = CheckpointState(step: 3, rng: rng, values: ["kl_coef": 0.05, "best": .infinity, "odd": .nan])
        try state.setDataPosition(Position(epoch: 2, index: 17))
        try state.setJSON(["round": 4], forKey: "rollouts")
        let version = try saved.checkpointer.save(state, to: dir.appendingPathComponent("last"))
        #expect(version.lastPathComponent == "last-00000003")
        #expect(linkTarget(dir.appendingPathComponent("last")) == "last-00000003")
        #expect(entries(version) == ["policy.safetensors", "policy_optimizer.safetensors", "trainer_state.json",
                                     "value.safetensors", "value_optimizer.safetensors"])

        let restored = Parts(seed: 77)
        #expect(restored.fingerprint != saved.fingerprint)
        let back = try restored.checkpointer.restore(from: dir.appendingPathComponent("last"))
        #expect(restored.fingerprint == saved.fingerprint)
        #expect(restored.policyOptimizer.stepCount == 3 && restored.valueOptimizer.stepCount == 3)
        #expect(back.step == 3 && back.rng == rng && back.values["kl_coef"] == 0.05 && back.values["best"] == .infinity)
        #expect(back.values["odd"]!.isNaN)
        #expect(try back.dataPosition(as: Position.self) == Position(epoch: 2, index: 17))
        #expect(try back.json([String: Int].self, forKey: "rollouts") == ["round": 4])
        // Both continue identically.
        saved.train(2, from: 3)
        restored.train(2, from: 3)
        #expect(restored.fingerprint == saved.fingerprint)
    }

    @Test func aNewSaveFlipsTheLinkAndLeavesOneVersion() throws {
        let dir = temporaryCheckpoints("ckpt-flip")
        defer { try? FileManager.default.removeItem(at: dir) }
        let parts = Parts(seed: 11)
        let last = dir.appendingPathComponent("last"), best = dir.appendingPathComponent("best")
        try parts.checkpointer.save(CheckpointState(step: 2), to: last)
        try parts.checkpointer.save(CheckpointState(step: 2), to: best)
        try parts.checkpointer.save(CheckpointState(step: 9), to: last)
        #expect(entries(dir) == ["best", "best-00000002", "last", "last-00000009"])
        // Saved again at the same step: a second version name, the first removed after the flip.
        try parts.checkpointer.save(CheckpointState(step: 9, values: ["again": 1]), to: last)
        #expect(entries(dir) == ["best", "best-00000002", "last", "last-00000009.1"])
        #expect(linkTarget(last) == "last-00000009.1")
        #expect(try parts.checkpointer.restore(from: last).values["again"] == 1)
        #expect(Checkpointer.storedStep(last) == 9 && Checkpointer.storedStep(best) == 2)
        // The run store's reader still finds the step at checkpoints/last/trainer_state.json.
        let data = try Data(contentsOf: last.appendingPathComponent("trainer_state.json"))
        #expect((try JSONSerialization.jsonObject(with: data) as? [String: Any])?["step"] as? Int == 9)
    }

    @Test func aSaveInterruptedAtAnyWritePointLeavesTheOldOrTheNewCheckpoint() throws {
        // Count the write points of one save.
        var labels: [String] = []
        do {
            let dir = temporaryCheckpoints("ckpt-count")
            defer { try? FileManager.default.removeItem(at: dir) }
            let parts = Parts(seed: 12)
            try parts.checkpointer.save(CheckpointState(step: 1), to: dir.appendingPathComponent("last"))
            let counting = parts.checkpointer
            counting.faultHook = { _, label in labels.append(label) }
            try counting.save(CheckpointState(step: 2), to: dir.appendingPathComponent("last"))
        }
        #expect(labels.count >= 10, "\(labels)")
        #expect(labels.contains("switched last to last-00000002"))

        struct Crash: Error {}
        for point in 1...labels.count {
            let dir = temporaryCheckpoints("ckpt-crash")
            defer { try? FileManager.default.removeItem(at: dir) }
            let last = dir.appendingPathComponent("last")
            let parts = Parts(seed: 13)
            parts.train(1)
            try parts.checkpointer.save(CheckpointState(step: 1, values: ["v": 1]), to: last)
            let old = parts.fingerprint
            parts.train(1, from: 1)
            let new = parts.fingerprint
            let crashing = parts.checkpointer
            crashing.faultHook = { p, _ in if p == point { throw Crash() } }
            #expect(throws: Crash.self) { try crashing.save(CheckpointState(step: 2, values: ["v": 2]), to: last) }

            // Whatever the point, a complete checkpoint: the old one until the switch, then the new.
            let reader = Parts(seed: 99)
            let state = try reader.checkpointer.restore(from: last)
            let switched = labels[..<point].contains("switched last to last-00000002")
            #expect(state.step == (switched ? 2 : 1), "crash after \(labels[point - 1])")
            #expect(state.values["v"] == Double(state.step))
            let whole = reader.fingerprint == (switched ? new : old)   // compared apart: no float dump on failure
            #expect(whole, "crash after \(labels[point - 1]): the weights or moments are not those of step \(switched ? 2 : 1)")
            // The next save works and tidies up.
            try parts.checkpointer.save(CheckpointState(step: 3), to: last)
            #expect(entries(dir) == ["last", "last-00000003"], "crash after \(labels[point - 1])")
        }
    }

    @Test func withoutTheLinkTheNewestCompleteVersionIsFound() throws {
        let dir = temporaryCheckpoints("ckpt-nolink")
        defer { try? FileManager.default.removeItem(at: dir) }
        let parts = Parts(seed: 14)
        let last = dir.appendingPathComponent("last")
        try parts.checkpointer.save(CheckpointState(step: 4), to: last)
        try FileManager.default.removeItem(at: last)
        // An incomplete later version (no state file) is not a checkpoint.
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("last-00000008"), withIntermediateDirectories: true)
        #expect(Checkpointer.resolve(last)?.lastPathComponent == "last-00000004")
        #expect(try parts.checkpointer.restore(from: last).step == 4)
        #expect(Checkpointer.resolve(dir.appendingPathComponent("best")) == nil)
    }

    @Test func unfitCheckpointsAreClearErrorsAndChangeNothing() throws {
        let dir = temporaryCheckpoints("ckpt-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        let parts = Parts(seed: 15)
        parts.train(2)
        let last = dir.appendingPathComponent("last")
        try parts.checkpointer.save(CheckpointState(step: 2), to: last)

        // A part the checkpoint does not hold.
        let other = Parts(seed: 16)
        let before = other.fingerprint
        let extra = Checkpointer(arenas: [("policy", other.policy), ("critic", other.value)])
        #expect(throws: TrainingError.self) { try extra.restore(from: last) }
        do { _ = try extra.restore(from: last) } catch { #expect("\(error)".contains("'critic'")) }
        #expect(other.fingerprint == before)

        // An optimizer over another layout refuses its state; the arenas restored before are kept
        // unchanged and so is the other optimizer.
        let wrongLayout = Parts(seed: 17)
        let mismatched = SGD(arena: randomArena(seed: 3, names: ["a", "b", "c"]), momentum: 0.9)
        let beforeWrong = wrongLayout.fingerprint
        let checkpointer = Checkpointer(arenas: [("policy", wrongLayout.policy)],
                                        optimizers: [("policy_optimizer", wrongLayout.policyOptimizer), ("value_optimizer", mismatched)])
        do {
            _ = try checkpointer.restore(from: last)
            Issue.record("restored an optimizer over other parameters")
        } catch {
            #expect("\(error)".contains("value_optimizer"))
        }
        #expect(wrongLayout.fingerprint == beforeWrong)

        // A damaged state file.
        let stateFile = last.appendingPathComponent("trainer_state.json")
        try Data("{\"format\": 2, \"step\": ".utf8).write(to: stateFile)
        do {
            _ = try parts.checkpointer.restore(from: last)
            Issue.record("restored from a damaged state file")
        } catch {
            #expect("\(error)".contains("trainer_state.json is unreadable"))
        }
        try Data("{\"format\": 3, \"step\": 1}".utf8).write(to: stateFile)
        do {
            _ = try parts.checkpointer.restore(from: last)
            Issue.record("restored a checkpoint of a newer format")
        } catch {
            #expect("\(error)".contains("format 3"))
        }
        #expect(throws: TrainingError.self) {
            try parts.checkpointer.save(CheckpointState(step: 1), to: dir.appendingPathComponent("not-plain"))
        }
    }
}
