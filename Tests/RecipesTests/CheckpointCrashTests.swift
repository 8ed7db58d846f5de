import Foundation
import Recipes
import TensorCore
import Testing
import Training

/// Starts `rein ARGS` in `directory`, output discarded, with `REIN_FAULT_CHECKPOINT=faultAt` when
/// given (the process exits at that checkpoint write point).
func startRein(_ arguments: [String], in directory: URL, faultAt: Int?) throws -> Process {
    let process = Process()
    process.executableURL = reinBinary
    process.arguments = arguments
    process.currentDirectoryURL = directory
    var environment = ProcessInfo.processInfo.environment
    environment["REIN_FAULT_CHECKPOINT"] = faultAt.map(String.init)
    process.environment = environment
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    return process
}

/// Opens every tensor of a safetensors file (a torn file fails here).
func readsWhole(_ url: URL) -> Bool {
    guard let file = try? SafetensorsFile(url: url), !file.names.isEmpty else { return false }
    return file.names.allSatisfy { (try? file.tensor($0)) != nil }
}

@Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
func aKillAtEveryCheckpointWritePointResumesFromACompleteCheckpoint() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    try writeTinyTokenizerAndInitConfig(in: dir)
    // Checkpoints at steps 2 (last) and 4 (best, then last): three saves to kill inside.
    let stage = """
        data: runs/tiny/data/pretrain.txt
        max_steps: 4
        save_steps: 2
        batch_size: 4
        max_length: 48
        learning_rate: 3.0e-3
        """
    try Data(stage.utf8).write(to: dir.appendingPathComponent("stage.yaml"))
    func train(_ output: String, faultAt: Int?) throws -> Process {
        let p = try startRein(["train", "pretrain", "--config", "stage.yaml", "--init-config", "init.json", "--tokenizer", "runs/tiny/tok",
                               "--output-dir", output, "--threads", "1"], in: dir, faultAt: faultAt)
        p.waitUntilExit()
        return p
    }
    let reference = try train("reference", faultAt: nil)
    try #require(reference.terminationStatus == 0)
    let expected = try Data(contentsOf: dir.appendingPathComponent("reference/model/model.safetensors"))

    var point = 0, stepsSeen: [Int] = [], everHadCheckpoint = false, everHadLink = false
    while point < 200 {
        point += 1
        let output = "killed-\(point)"
        let killed = try train(output, faultAt: point)
        if killed.terminationStatus == 0 { break }   // the run has fewer write points
        #expect(killed.terminationStatus == 86, "write point \(point): exit status \(killed.terminationStatus)")

        // What resume will find: a whole checkpoint (or none before the first one was switched in).
        let last = dir.appendingPathComponent("\(output)/checkpoints/last")
        // The name every reader uses (the run store reads checkpoints/last/trainer_state.json) is
        // switched in one step: once there, it never goes missing.
        if FileManager.default.fileExists(atPath: last.appendingPathComponent("trainer_state.json").path) {
            everHadLink = true
        } else {
            #expect(!everHadLink, "write point \(point): checkpoints/last is missing, though an earlier kill point left it")
        }
        if let found = Checkpointer.resolve(last) {
            let step = Checkpointer.storedStep(found)
            #expect(step == 2 || step == 4, "write point \(point): step \(String(describing: step))")
            #expect(readsWhole(found.appendingPathComponent("weights.safetensors")), "write point \(point)")
            #expect(readsWhole(found.appendingPathComponent("optimizer.safetensors")), "write point \(point)")
            // Later kill points never find an older checkpoint than earlier ones.
            #expect(step ?? 0 >= stepsSeen.max() ?? 0, "write point \(point)")
            stepsSeen.append(step ?? 0)
            everHadCheckpoint = true
        } else {
            #expect(!everHadCheckpoint, "write point \(point): no checkpoint, though an earlier kill point left one")
        }

        // The same command resumes and ends with the uninterrupted run's weights.
        let again = try train(output, faultAt: nil)
        #expect(again.terminationStatus == 0, "write point \(point): resume failed")
        let got = try? Data(contentsOf: dir.appendingPathComponent("\(output)/model/model.safetensors"))
        #expect(got == expected, "write point \(point): resumed weights differ")
        try? FileManager.default.removeItem(at: dir.appendingPathComponent(output))
    }
    // Every write point of the three saves (last at 2, best and last at 4: nine points each) was killed in.
    #expect(point - 1 >= 27, "only \(point - 1) write points")
    #expect(Set(stepsSeen) == [2, 4] && everHadLink)
}
