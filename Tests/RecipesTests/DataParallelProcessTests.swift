import Foundation
import Store
import TensorCore
import Testing
import Training

/// Open MPI's launcher on PATH (CI installs openmpi-bin); without it these tests skip.
let mpirun: URL? = {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
        let candidate = URL(fileURLWithPath: String(dir)).appendingPathComponent("mpirun")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    }
    return nil
}()
let mpiAvailable = reinBinary != nil && mpirun != nil
let mpiSkipMessage = "Open MPI is not installed (apt-get install openmpi-bin libopenmpi-dev), or rein is not built"

/// Runs `rein ARGS` in `directory`, alone (`processes` nil) or under `mpirun -np N`: exit
/// status, stdout and stderr.
func runReinMPI(_ processes: Int?, _ arguments: [String], in directory: URL) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = try startReinMPI(processes, arguments, in: directory)
    process.task.waitUntilExit()
    return (process.task.terminationStatus, try process.read(\.stdout), try process.read(\.stderr))
}

/// A started `rein` (under mpirun or alone) whose output goes to files.
struct StartedRein {
    let task: Process
    let stdout: URL
    let stderr: URL
    func read(_ which: KeyPath<StartedRein, URL>) throws -> String { try String(contentsOf: self[keyPath: which], encoding: .utf8) }
}

func startReinMPI(_ processes: Int?, _ arguments: [String], in directory: URL) throws -> StartedRein {
    let tag = UUID().uuidString
    let out = directory.appendingPathComponent("stdout-\(tag)"), err = directory.appendingPathComponent("stderr-\(tag)")
    _ = FileManager.default.createFile(atPath: out.path, contents: nil)
    _ = FileManager.default.createFile(atPath: err.path, contents: nil)
    let process = Process()
    var environment = ProcessInfo.processInfo.environment
    if let processes {
        process.executableURL = mpirun
        process.arguments = ["-np", String(processes), "--oversubscribe", reinBinary!.path] + arguments
        // A container's root user: Open MPI refuses root unless told twice.
        environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    } else {
        process.executableURL = reinBinary
        process.arguments = arguments
        for key in environment.keys where key.hasPrefix("OMPI_") || key.hasPrefix("PMIX_") { environment[key] = nil }
    }
    process.environment = environment
    process.currentDirectoryURL = directory
    process.standardOutput = try FileHandle(forWritingTo: out)
    process.standardError = try FileHandle(forWritingTo: err)
    try process.run()
    return StartedRein(task: process, stdout: out, stderr: err)
}

/// A directory with the tiny Llama fixture (`llama/`), 13 SFT examples, 11 preference pairs and
/// a small validation file of each.
func dataParallelInputs() throws -> URL {
    let dir = try tempDirectory()
    try copyFixtureModel(to: dir.appendingPathComponent("llama"))
    func line(_ object: [String: String]) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }
    let topics = fixturePromptTopics
    let sft = topics.prefix(13).map { line(["prompt": "Write about \($0):", "completion": " \($0) is near, and \($0) is far."]) }
    let sftValid = topics.suffix(3).map { line(["prompt": "Write about \($0):", "completion": " \($0) here"]) }
    let pairs = topics.prefix(11).enumerated().map { i, t in
        line(["prompt": "Write about \(t):", "chosen": " \(t) in the light of \(topics[(i + 3) % topics.count])", "rejected": " \(t)"])
    }
    let pairsValid = topics.suffix(3).map { line(["prompt": "Write about \($0):", "chosen": " a song of \($0)", "rejected": " no"]) }
    for (name, lines) in [("sft", sft), ("sft_valid", sftValid), ("pairs", pairs), ("pairs_valid", pairsValid)] {
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: dir.appendingPathComponent("\(name).jsonl"))
    }
    return dir
}

/// A `rein train KIND` config on those inputs: odd batch sizes, so shares are uneven and the
/// last batch of an epoch (one item) leaves the second process's share empty.
func dataParallelConfig(_ kind: String, output: String, steps: Int = 20) -> String {
    let data = kind == "sft" ? "sft" : "pairs"
    // Adam moves every weight by about the learning rate whatever its gradient's size, so the
    // rounding differences of a summed gradient near zero become parameter differences of the
    // order of the learning rate: the pair losses, which fall fast on these easy pairs, get a small one.
    let rate = kind == "sft" ? "3.0e-3" : "1.0e-4"
    return """
    model: llama
    data: \(data).jsonl
    validation_data: \(data)_valid.jsonl
    output_dir: \(output)
    batch_size: 3
    gradient_accumulation_steps: 2
    max_steps: \(steps)
    max_length: 32
    learning_rate: \(rate)
    lr_scheduler_type: constant
    seed: 5
    logging_steps: 1
    eval_steps: 2

    """
}

/// Trains `kind` in `dir/NAME` (config `NAME.yaml`) and returns the store's train/loss by step and
/// the exported parameters.
func trainForComparison(_ kind: String, name: String, processes: Int?, in dir: URL, steps: Int = 20) throws
    -> (losses: [Int: Double], evals: [Int: Double], parameters: [String: Tensor], modelFile: Data) {
    try Data(dataParallelConfig(kind, output: name, steps: steps).utf8).write(to: dir.appendingPathComponent("\(name).yaml"))
    let result = try runReinMPI(processes, ["train", kind, "--config", "\(name).yaml", "--threads", "1", "--store", "\(name).sqlite"], in: dir)
    #expect(result.status == 0, "\(kind) on \(processes.map(String.init) ?? "no mpirun"): \(result.stderr)")
    let store = try RunStore(path: dir.appendingPathComponent("\(name).sqlite").path)
    let runs = try store.runs()
    #expect(runs.count == 1, "rank 0 alone records the run")
    var losses: [Int: Double] = [:], evals: [Int: Double] = [:]
    var rows = 0
    for m in try store.metrics(stageId: try #require(runs.first?.stages.first?.id)) {
        if m.name == "train/loss" { losses[m.step] = m.value; rows += 1 }
        if m.name == "eval/loss" { evals[m.step] = m.value }
    }
    #expect(rows == steps, "one train/loss row per step, written once")
    let file = dir.appendingPathComponent("\(name)/model/model.safetensors")
    let parameters = try Safetensors.readAll(url: file).tensors
    return (losses, evals, parameters, try Data(contentsOf: file))
}

/// Per-step losses to a relative 1e-5 and parameters to 1e-5 absolute.
func expectClose(_ a: (losses: [Int: Double], evals: [Int: Double], parameters: [String: Tensor], modelFile: Data),
                 _ b: (losses: [Int: Double], evals: [Int: Double], parameters: [String: Tensor], modelFile: Data), _ what: String) {
    #expect(a.losses.keys.sorted() == b.losses.keys.sorted() && !a.losses.isEmpty, "\(what): steps")
    for (step, loss) in a.losses {
        let other = b.losses[step] ?? .nan
        #expect(abs(loss - other) <= 1e-5 * abs(loss), "\(what): step \(step) loss \(loss) vs \(other)")
    }
    for (step, loss) in a.evals { #expect(abs(loss - (b.evals[step] ?? .nan)) <= 1e-5 * abs(loss), "\(what): eval at \(step)") }
    #expect(a.parameters.keys.sorted() == b.parameters.keys.sorted() && !a.parameters.isEmpty)
    var largest: Float = 0
    for (name, t) in a.parameters {
        guard let u = b.parameters[name], u.shape == t.shape else { Issue.record("\(what): \(name) differs in shape"); continue }
        largest = max(largest, zip(t.values, u.values).map { abs($0 - $1) }.max() ?? 0)
    }
    #expect(largest <= 1e-5, "\(what): parameters differ by up to \(largest)")
}

/// The acceptance: two processes, each on its share of every batch, give the one-process losses
/// and parameters after 20 steps for SFT, reward and DPO.
@Test(.enabled(if: mpiAvailable, Comment(rawValue: mpiSkipMessage)), arguments: ["sft", "reward", "dpo"])
func twoProcessesMatchOneProcess(kind: String) throws {
    let dir = try dataParallelInputs()
    defer { try? FileManager.default.removeItem(at: dir) }
    let alone = try trainForComparison(kind, name: "alone", processes: nil, in: dir)
    let two = try trainForComparison(kind, name: "two", processes: 2, in: dir)
    expectClose(alone, two, "\(kind), 2 processes against 1")
    // The run trained: the loss moved.
    #expect(alone.losses[1] != alone.losses[20])
}

/// `-np 1` is the run without MPI bit for bit, and the same `-np 2` run twice is bit-identical.
@Test(.enabled(if: mpiAvailable, Comment(rawValue: mpiSkipMessage)), arguments: ["sft", "reward", "dpo"])
func dataParallelRunsAreBitIdentical(kind: String) throws {
    let dir = try dataParallelInputs()
    defer { try? FileManager.default.removeItem(at: dir) }
    let alone = try trainForComparison(kind, name: "alone", processes: nil, in: dir)
    let one = try trainForComparison(kind, name: "one", processes: 1, in: dir)
    #expect(one.losses == alone.losses && one.evals == alone.evals)
    #expect(one.modelFile == alone.modelFile, "\(kind): -np 1 differs from the run without MPI")
    let first = try trainForComparison(kind, name: "first", processes: 2, in: dir)
    let second = try trainForComparison(kind, name: "second", processes: 2, in: dir)
    #expect(first.losses == second.losses && first.evals == second.evals)
    #expect(first.modelFile == second.modelFile, "\(kind): two -np 2 runs differ")
}

/// Only rank 0 prints progress; the other process trains silently.
@Test(.enabled(if: mpiAvailable, Comment(rawValue: mpiSkipMessage)))
func onlyRankZeroPrints() throws {
    let dir = try dataParallelInputs()
    defer { try? FileManager.default.removeItem(at: dir) }
    try Data(dataParallelConfig("sft", output: "out", steps: 2).utf8).write(to: dir.appendingPathComponent("sft.yaml"))
    let result = try runReinMPI(2, ["train", "sft", "--config", "sft.yaml", "--threads", "1"], in: dir)
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stderr.components(separatedBy: "data parallel: 2 processes").count == 2, "\(result.stderr)")
    #expect(result.stdout.components(separatedBy: "model written to").count == 2, "\(result.stdout)")
}

/// The pid of the process `parent` started with `OMPI_COMM_WORLD_RANK=rank`, if running.
func mpiRankProcess(parent: Int32, rank: Int) -> Int32? {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
    for entry in entries {
        guard let pid = Int32(entry),
              let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.range(of: ")", options: .backwards) else { continue }
        // "pid (comm) state ppid ...": the fields after the command name.
        let fields = stat[close.upperBound...].split(separator: " ")
        guard fields.count > 2, Int32(fields[1]) == parent,
              let environ = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { continue }
        let variables = environ.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        if variables.contains("OMPI_COMM_WORLD_RANK=\(rank)") { return pid }
    }
    return nil
}

/// Killing one process of a data-parallel run ends the other within seconds, with mpirun's
/// message naming the rank that died; nothing waits in a collective forever.
@Test(.enabled(if: mpiAvailable, Comment(rawValue: mpiSkipMessage)))
func killingOneProcessEndsTheJob() throws {
    let dir = try dataParallelInputs()
    defer { try? FileManager.default.removeItem(at: dir) }
    try Data(dataParallelConfig("sft", output: "out", steps: 100_000).utf8).write(to: dir.appendingPathComponent("long.yaml"))
    let job = try startReinMPI(2, ["train", "sft", "--config", "long.yaml", "--threads", "1"], in: dir)
    defer { if job.task.isRunning { job.task.terminate() } }
    // Wait until rank 1 runs and rank 0 has trained a few steps (its checkpoints are off; the
    // progress lines on stderr show the steps).
    var victim: Int32?
    let deadline = Date().addingTimeInterval(120)
    while Date() < deadline && job.task.isRunning {
        victim = victim ?? mpiRankProcess(parent: job.task.processIdentifier, rank: 1)
        if victim != nil, (try? job.read(\.stderr))?.contains("step 3") == true { break }
        usleep(50_000)
    }
    let early = (try? job.read(\.stderr)) ?? ""
    let pid = try #require(victim, "rank 1 never started: \(early)")
    #expect(job.task.isRunning, "the job ended before a process could be killed: \(early)")
    kill(pid, SIGKILL)
    let killed = Date()
    while job.task.isRunning && Date().timeIntervalSince(killed) < 30 { usleep(50_000) }
    #expect(!job.task.isRunning, "rank 0 still runs 30 s after rank 1 was killed")
    guard !job.task.isRunning else { return }
    #expect(Date().timeIntervalSince(killed) < 15)
    #expect(job.task.terminationStatus != 0)
    let stderr = try job.read(\.stderr)
    #expect(stderr.contains("rank 1") && stderr.contains("signal 9"), "\(stderr)")
}

/// `mpirun -np 2 rein run`: rank 0 runs the recipe (store, skips, the data and tokenizer stages)
/// and the other process trains its share of each training stage; the losses are one process's,
/// and running it again skips every stage on both.
@Test(.enabled(if: mpiAvailable, Comment(rawValue: mpiSkipMessage)))
func aRecipeRunsDataParallel() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    for name in ["a", "b"] {
        try FileManager.default.createDirectory(at: dir.appendingPathComponent(name), withIntermediateDirectories: true)
        try Data(tinyRecipe().utf8).write(to: dir.appendingPathComponent("\(name)/tiny.yaml"))
    }
    let arguments = ["run", "tiny.yaml", "--threads", "1", "--quiet"]
    let alone = try runReinMPI(nil, arguments, in: dir.appendingPathComponent("a"))
    #expect(alone.status == 0, "\(alone.stderr)")
    let two = try runReinMPI(2, arguments, in: dir.appendingPathComponent("b"))
    #expect(two.status == 0, "\(two.stderr)")
    let expected = try metricRows(dir.appendingPathComponent("a/runs/tiny.sqlite").path)
    let actual = try metricRows(dir.appendingPathComponent("b/runs/tiny.sqlite").path)
    #expect(Set(actual.keys) == Set(expected.keys))
    var compared = 0
    for (key, value) in expected where key.hasSuffix("/train/loss") || key.hasSuffix("/eval/loss") {
        let other = actual[key] ?? .nan
        #expect(abs(value - other) <= 1e-4 * abs(value), "\(key): \(value) alone, \(other) on 2 processes")
        compared += 1
    }
    #expect(compared >= 10)
    let again = try runReinMPI(2, arguments, in: dir.appendingPathComponent("b"))
    #expect(again.status == 0, "\(again.stderr)")
    let runs = try RunStore(path: dir.appendingPathComponent("b/runs/tiny.sqlite").path).runs()
    #expect(runs.count == 2 && runs.allSatisfy { $0.run.status == .completed })
    #expect(runs.contains { $0.stages.allSatisfy { $0.reusedStageId != nil } })
}

/// A one-stage SFT recipe on `dataParallelInputs`, a checkpoint after every step.
private func killableRecipe(steps: Int) -> String {
    """
    name: dp
    seed: 5
    stages:
      - id: sft
        kind: sft
        model: llama
        data: sft.jsonl
        validation_data: sft_valid.jsonl
        batch_size: 3
        gradient_accumulation_steps: 2
        max_steps: \(steps)
        max_length: 32
        learning_rate: 3.0e-3
        lr_scheduler_type: constant
        logging_steps: 1
        eval_steps: 20
        save_steps: 1
    """
}

/// `mpirun -np 2 rein run` with rank 1 killed by SIGKILL once a few checkpoints are written: the
/// job ends within seconds with mpirun's message naming the rank, and `rein run` again resumes
/// from the last checkpoint: on 2 processes to the uninterrupted 2-process run's metrics bit for
/// bit; on 1 process with a warning that the last bits will differ, to a relative 1e-5.
@Test(.enabled(if: mpiAvailable, Comment(rawValue: mpiSkipMessage)), arguments: [2, 1])
func killingOneRankOfARecipeResumes(processes: Int) throws {
    let steps = 80
    let dir = try dataParallelInputs()
    defer { try? FileManager.default.removeItem(at: dir) }
    let reference = dir.appendingPathComponent("reference"), killed = dir.appendingPathComponent("killed")
    for d in [reference, killed] {
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        for file in ["llama", "sft.jsonl", "sft_valid.jsonl"] {
            try FileManager.default.createSymbolicLink(at: d.appendingPathComponent(file), withDestinationURL: dir.appendingPathComponent(file))
        }
        try Data(killableRecipe(steps: steps).utf8).write(to: d.appendingPathComponent("dp.yaml"))
    }
    let arguments = ["run", "dp.yaml", "--threads", "1"]
    let uninterrupted = try runReinMPI(2, arguments, in: reference)
    try #require(uninterrupted.status == 0, "\(uninterrupted.stderr)")

    let job = try startReinMPI(2, arguments, in: killed)
    defer { if job.task.isRunning { job.task.terminate() } }
    let last = killed.appendingPathComponent("runs/dp/sft/checkpoints/last")
    var victim: Int32?
    let deadline = Date().addingTimeInterval(120)
    while Date() < deadline && job.task.isRunning {
        victim = victim ?? mpiRankProcess(parent: job.task.processIdentifier, rank: 1)
        if victim != nil, (Checkpointer.resolve(last).flatMap { Checkpointer.storedStep($0) } ?? 0) >= 3 { break }
        usleep(20_000)
    }
    let pid = try #require(victim, "rank 1 never started: \((try? job.read(\.stderr)) ?? "")")
    try #require(job.task.isRunning, "the job ended before a process could be killed: \((try? job.read(\.stderr)) ?? "")")
    kill(pid, SIGKILL)
    let killedAt = Date()
    while job.task.isRunning && Date().timeIntervalSince(killedAt) < 30 { usleep(50_000) }
    try #require(!job.task.isRunning, "rank 0 still runs 30 s after rank 1 was killed")
    #expect(Date().timeIntervalSince(killedAt) < 15)
    #expect(job.task.terminationStatus != 0)
    let message = try job.read(\.stderr)
    #expect(message.contains("rank 1") && message.contains("signal 9"), "\(message)")
    let checkpoint = try #require(Checkpointer.resolve(last).flatMap { Checkpointer.storedStep($0) })
    try #require(checkpoint < steps, "the run finished before the kill")

    let again = try runReinMPI(processes == 1 ? nil : processes, arguments, in: killed)
    try #require(again.status == 0, "\(again.stderr)")
    #expect(again.stderr.contains("resuming from the checkpoint at step"), "\(again.stderr)")
    let warned = again.stderr.contains("was written by a run on 2 process(es) and resumes on 1")
    #expect(warned == (processes == 1), "\(again.stderr)")
    let expected = try metricRows(reference.appendingPathComponent("runs/dp.sqlite").path)
    let actual = try metricRows(killed.appendingPathComponent("runs/dp.sqlite").path)
    let losses = expected.keys.filter { $0.hasSuffix("/train/loss") || $0.hasSuffix("/eval/loss") }
    #expect(losses.count >= steps + steps / 20)
    for key in losses {
        let (x, y) = (expected[key]!, actual[key] ?? .nan)
        if processes == 2 {
            #expect(x == y, "\(key): \(y) after the resume, \(x) uninterrupted")
        } else {
            #expect(abs(x - y) <= 1e-5 * abs(x), "\(key): \(y) after the resume on 1 process, \(x) uninterrupted on 2")
        }
    }
}
