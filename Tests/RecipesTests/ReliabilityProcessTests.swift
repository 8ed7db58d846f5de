import Foundation
import GRDB
import Recipes
import Store
import TensorCore
import Testing
import Training

// Issue 14's second half, through the real `rein` binary: a write that fails (ENOSPC, EIO) at
// sampled write points of a recipe of every stage kind, kill -9 at random instants, SIGTERM, and
// one store under four runs and two rating sessions at once. docs/reliability.md quotes the figures.

/// The tiny recipe (data, tokenizer, pretrain, SFT, reward, DPO) with a PPO and a GRPO stage.
func everyKindRecipe(name: String = "tiny", seed: Int = 3) -> String {
    tinyRecipe(name: name).replacingOccurrences(of: "seed: 3", with: "seed: \(seed)") + """

      - id: ppo
        kind: ppo
        model: {from: stage:sft}
        reward_model: {from: stage:rm}
        data: stage:data/prefs.jsonl
        batch_size: 4
        max_steps: 4
        save_steps: 1
        export_steps: 2
        response_length: 6
        num_ppo_epochs: 1
        learning_rate: 1.0e-4
      - id: grpo
        kind: grpo
        model: {from: stage:sft}
        judge: length
        data: stage:data/prefs.jsonl
        num_generations: 2
        batch_size: 4
        max_steps: 4
        save_steps: 1
        response_length: 6
        learning_rate: 1.0e-4
    """
}

private let trainingStages = ["pre", "sft", "rm", "dpo", "ppo", "grpo"]
private let runArguments = ["run", "tiny.yaml", "--threads", "1", "--quiet"]

/// Metrics (timing ones left out) and rollouts of every stage of the only run in a store.
private struct StoreContents {
    var metrics: [String: [String: Double]] = [:]   // stage -> "step/name" -> value
    var rollouts: [String: [Rollout]] = [:]

    init(_ path: String) throws {
        let store = try RunStore(path: path)
        let runs = try store.runs()
        try #require(runs.count == 1, "\(runs.count) runs in \(path)")
        for stage in runs[0].stages {
            var rows: [String: Double] = [:], count = 0
            for m in try store.metrics(stageId: stage.id!) where !isTiming(m.name) {
                rows["\(m.step)/\(m.name)"] = m.value
                count += 1
            }
            #expect(rows.count == count, "stage \(stage.stageKey): a (step, name) metric appears twice")
            metrics[stage.stageKey] = rows
            rollouts[stage.stageKey] = try store.rollouts(stageId: stage.id!)
        }
    }

    var rowCount: Int { metrics.values.map(\.count).reduce(0, +) + rollouts.values.map(\.count).reduce(0, +) }

    /// Expects the same metrics and rollouts as `reference`, stage by stage.
    func expectSame(as reference: StoreContents, _ what: String) {
        #expect(Set(metrics.keys) == Set(reference.metrics.keys), "\(what): stages differ")
        for (stage, expected) in reference.metrics {
            expectSameMetrics(metrics[stage] ?? [:], expected, "\(what), stage \(stage)")
            expectSameRollouts(rollouts[stage] ?? [], reference.rollouts[stage] ?? [], "\(what), stage \(stage)")
        }
    }
}

/// `PRAGMA integrity_check` of the database at `path`.
func integrityCheck(_ path: String) throws -> String {
    let queue = try DatabaseQueue(path: path)
    defer { try? queue.close() }
    return try queue.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check").joined(separator: "; ") }
}

/// Problems with what a failed or killed run left under `dir/runs`: a checkpoint that resolves but
/// does not read whole, a temporary file left behind.
private func leftoverProblems(_ dir: URL) -> [String] {
    var problems: [String] = []
    let fm = FileManager.default
    let runs = dir.appendingPathComponent("runs")
    for stage in trainingStages {
        let last = runs.appendingPathComponent("tiny/\(stage)/checkpoints/last")
        guard let found = Checkpointer.resolve(last) else { continue }
        if Checkpointer.storedStep(found) == nil { problems.append("\(stage): an unreadable trainer_state.json") }
        for file in (try? fm.contentsOfDirectory(atPath: found.path)) ?? [] where file.hasSuffix(".safetensors") {
            if !readsWhole(found.appendingPathComponent(file)) { problems.append("\(stage): \(file) is torn") }
        }
    }
    for case let path as String in fm.enumerator(atPath: runs.path) ?? FileManager.DirectoryEnumerator()
    where path.hasSuffix(".tmp") && (path as NSString).lastPathComponent.hasPrefix(".") {
        problems.append("a temporary file is left: \(path)")
    }
    return problems
}

/// A fresh directory holding `tiny.yaml`.
private func recipeDirectory(_ parent: URL, _ name: String, recipe: String = everyKindRecipe()) throws -> URL {
    let dir = parent.appendingPathComponent(name)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    try Data(recipe.utf8).write(to: dir.appendingPathComponent("tiny.yaml"))
    return dir
}

/// The write points of a run (`REIN_FAULT_AT=0`): number and what.
private func writePoints(_ stderr: String) -> [(n: Int, what: String)] {
    stderr.split(separator: "\n").compactMap { line in
        guard line.hasPrefix("rein-fault-point: ") else { return nil }
        let rest = line.dropFirst("rein-fault-point: ".count)
        guard let space = rest.firstIndex(of: " "), let n = Int(rest[..<space]) else { return nil }
        return (n, String(rest[rest.index(after: space)...]))
    }
}

/// The points to fail: every K-th with `REIN_FAULTS=K` (1: all), else the first of each kind of
/// operation (write, fsync, rename, mkdir, symlink, commit) in each stage, a store commit being
/// counted in the stage whose file was written last.
private func pointsToFail(_ points: [(n: Int, what: String)]) -> [Int] {
    if let k = ProcessInfo.processInfo.environment["REIN_FAULTS"].flatMap({ Int($0) }), k > 0 {
        return points.map(\.n).filter { $0 % k == 0 }
    }
    var seen = Set<String>(), chosen: [Int] = [], stage = "start"
    for point in points {
        let verb = String(point.what.prefix { $0 != " " })
        if let range = point.what.range(of: "/runs/tiny/") {
            stage = String(point.what[range.upperBound...].prefix { $0 != "/" })
        }
        if seen.insert("\(stage) \(verb)").inserted { chosen.append(point.n) }
    }
    return chosen
}

@Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
func aWriteFailingAtAnyPointLeavesStoreAndCheckpointsIntactAndARerunEndsTheSame() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let referenceDir = try recipeDirectory(dir, "reference")
    let reference = try runReinCapturing(runArguments, in: referenceDir, environment: ["REIN_FAULT_AT": "0"])
    try #require(reference.status == 0, "the uninterrupted run failed: \(reference.stderr.suffix(2000))")
    let expected = try StoreContents(referenceDir.appendingPathComponent("runs/tiny.sqlite").path)
    let points = writePoints(reference.stderr)
    let verbs = Set(points.map { String($0.what.prefix { $0 != " " }) })
    #expect(verbs == ["write", "fsync", "rename", "mkdir", "symlink", "commit"], "write points of \(verbs.sorted())")
    let chosen = pointsToFail(points)
    #expect(chosen.count >= 30, "only \(chosen.count) points to fail of \(points.count)")

    var failed = 0, absorbed = 0, rowsChecked = 0
    for (k, n) in chosen.enumerated() {
        let kind = k % 2 == 0 ? "ENOSPC" : "EIO"
        let reason = kind == "EIO" ? "Input/output error" : "No space left on device"
        let run = try recipeDirectory(dir, "fault-\(n)")
        let store = run.appendingPathComponent("runs/tiny.sqlite").path
        let faulted = try runReinCapturing(runArguments, in: run, environment: ["REIN_FAULT_AT": "\(n)", "REIN_FAULT_KIND": kind])
        let injected = faulted.stderr.split(separator: "\n").first { $0.hasPrefix("rein-fault: failing write point \(n) ") }
        guard let injected else {
            // The points of a run are fixed by its recipe; a run that never reaches N is a finding.
            Issue.record("point \(n): no fault was injected (status \(faulted.status)): \(faulted.stderr.suffix(800))")
            continue
        }
        failed += 1
        if faulted.status == 0 {
            // Absorbed: a failed metrics batch stays buffered and goes with the next one.
            absorbed += 1
            let contents = try StoreContents(store)
            contents.expectSame(as: expected, "point \(n) (\(injected)), absorbed")
            rowsChecked += contents.rowCount
            try? FileManager.default.removeItem(at: run)
            continue
        }
        // A clear error: exit status 1, the system's reason, and what was being written.
        let message = faulted.stderr.split(separator: "\n").filter { !$0.hasPrefix("rein-fault") }.joined(separator: "\n")
        #expect(faulted.status == 1, "point \(n) (\(injected)): status \(faulted.status)")
        #expect(message.contains(reason), "point \(n) (\(injected)): the message lacks '\(reason)': \(message)")
        #expect(message.contains("runs/tiny") || message.contains("tiny.sqlite"), "point \(n) (\(injected)): names no file: \(message)")
        #expect(!message.contains("Fatal error") && !message.contains("runtime failure"), "point \(n): \(message)")
        // The store and every checkpoint on disk are whole.
        if FileManager.default.fileExists(atPath: store) {
            #expect(try integrityCheck(store) == "ok", "point \(n) (\(injected))")
        }
        let problems = leftoverProblems(run)
        #expect(problems.isEmpty, "point \(n) (\(injected)): \(problems)")

        let again = try runReinCapturing(runArguments, in: run)
        #expect(again.status == 0, "point \(n) (\(injected)): the rerun failed: \(again.stderr.suffix(1500))")
        if again.status == 0 {
            let contents = try StoreContents(store)
            contents.expectSame(as: expected, "point \(n) (\(injected))")
            rowsChecked += contents.rowCount
        }
        try? FileManager.default.removeItem(at: run)
    }
    #expect(absorbed < failed, "no fault stopped a run")
    print("write faults: \(failed) injected of \(points.count) write points (\(absorbed) absorbed by a retry); \(rowsChecked) store rows compared")
}

@Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
func killMinusNineAtRandomInstantsOfEveryStageKindThenRerunsEndAsAnUninterruptedRun() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let referenceDir = try recipeDirectory(dir, "reference")
    let reference = try runReinCapturing(runArguments, in: referenceDir)
    try #require(reference.status == 0, "the uninterrupted run failed: \(reference.stderr.suffix(2000))")
    let expected = try StoreContents(referenceDir.appendingPathComponent("runs/tiny.sqlite").path)

    let wanted = ProcessInfo.processInfo.environment["REIN_KILLS"].flatMap { Int($0) } ?? 50
    var kills = 0, chains = 0, rowsChecked = 0, killedIn: [String: Int] = [:]
    while kills < wanted {
        chains += 1
        let run = try recipeDirectory(dir, "chain-\(chains)")
        let storePath = run.appendingPathComponent("runs/tiny.sqlite").path
        // Each process of a chain is killed at a random instant of the next training stage not
        // yet completed; the chain ends with a run that completes.
        for attempt in 0... {
            try #require(attempt < 40, "chain \(chains) did not complete")
            let done = Set(completedStages(storePath))
            let target = trainingStages.first { !done.contains($0) }
            let rowsBefore = target.map { metricCount(storePath, stage: $0) } ?? 0
            let process = try startRein(runArguments, in: run)
            if let target {
                // Until this process has logged something new in the target stage (a killed
                // stage stays `running` in the store), then a random instant.
                let deadline = Date().addingTimeInterval(60)
                while process.isRunning && Date() < deadline && metricCount(storePath, stage: target) <= rowsBefore
                        && !completedStages(storePath).contains(target) {
                    usleep(3_000)
                }
                usleep(UInt32.random(in: 0...250_000))
            }
            guard process.isRunning, target != nil else {
                process.waitUntilExit()
                try #require(process.terminationStatus == 0, "chain \(chains): a run failed (status \(process.terminationStatus))")
                break
            }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            guard process.terminationReason == .uncaughtSignal else {
                // It finished on its own before the kill (the last stage can end within the random
                // wait): the run is complete, and another `rein run` would start a second one.
                try #require(process.terminationStatus == 0, "chain \(chains): a run failed (status \(process.terminationStatus))")
                break
            }
            kills += 1
            // A killed run leaves its stage `running`: where the kill landed.
            for stage in runningStages(storePath) { killedIn[stage, default: 0] += 1 }
            #expect(try integrityCheck(storePath) == "ok", "chain \(chains), kill \(kills)")
            let problems = leftoverProblems(run).filter { !$0.hasPrefix("a temporary file") }   // a kill may leave one; the next save removes it
            #expect(problems.isEmpty, "chain \(chains), kill \(kills): \(problems)")
            // Killed after the run was recorded complete (printing its summary): nothing to resume.
            if (try? RunStore(path: storePath).runs().first?.run.status) == .completed { break }
        }
        let contents = try StoreContents(storePath)
        contents.expectSame(as: expected, "chain \(chains)")
        rowsChecked += contents.rowCount
        try? FileManager.default.removeItem(at: run)
    }
    #expect(Set(killedIn.keys).isSuperset(of: trainingStages), "kills landed in \(killedIn)")
    print("kill -9: \(kills) kills in \(chains) chains, landed in \(killedIn.sorted { $0.key < $1.key }); \(rowsChecked) store rows compared")
}

/// Stage keys of the only run in a store (read while a process writes it) with `status`.
private func stages(_ path: String, _ status: Status) -> [String] {
    guard FileManager.default.fileExists(atPath: path), let store = try? RunStore(path: path),
          let runs = try? store.runs() else { return [] }
    return runs.flatMap(\.stages).filter { $0.status == status }.map(\.stageKey)
}

private func runningStages(_ path: String) -> [String] { stages(path, .running) }

/// How many metric rows stage `key` of the only run has.
private func metricCount(_ path: String, stage key: String) -> Int {
    guard FileManager.default.fileExists(atPath: path), let store = try? RunStore(path: path), let runs = try? store.runs(),
          let stage = runs.first?.stages.first(where: { $0.stageKey == key }) else { return 0 }
    return (try? store.metrics(stageId: stage.id!).count) ?? 0
}
private func completedStages(_ path: String) -> [String] { stages(path, .completed) }

@Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
func sigtermStopsAfterTheStepWritesACheckpointAndTheRerunResumesToTheSameMetrics() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let recipe = tinyRecipe(pretrainSteps: 300).replacingOccurrences(of: "save_steps: 3\n", with: "save_steps: 3\n    logging_steps: 1\n")
    let referenceDir = try recipeDirectory(dir, "reference", recipe: recipe)
    let reference = try runReinCapturing(runArguments, in: referenceDir)
    try #require(reference.status == 0, "\(reference.stderr.suffix(2000))")
    let run = try recipeDirectory(dir, "term", recipe: recipe)
    let storePath = run.appendingPathComponent("runs/tiny.sqlite").path

    let process = Process()
    process.executableURL = reinBinary
    process.arguments = runArguments
    process.currentDirectoryURL = run
    let errors = Pipe()
    process.standardError = errors
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    let deadline = Date().addingTimeInterval(120)
    while (lastCheckpointStep(store: storePath, stage: "pre") ?? 0) < 9 && process.isRunning && Date() < deadline {
        usleep(5_000)
    }
    try #require(process.isRunning, "pretraining ended before SIGTERM")
    kill(process.processIdentifier, SIGTERM)
    let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    #expect(process.terminationReason == .exit && process.terminationStatus == 130, "status \(process.terminationStatus)")
    #expect(stderr.contains("SIGTERM: finishing the current step and writing a checkpoint"), "\(stderr)")
    #expect(stderr.contains("interrupted; `rein run tiny.yaml` resumes it from the last checkpoint"), "\(stderr)")
    let store = try RunStore(path: storePath)
    let summary = try #require(try store.runs().first)
    #expect(summary.run.status == .interrupted)
    let pre = try #require(summary.stages.first { $0.stageKey == "pre" })
    #expect(pre.status == .interrupted)
    // The checkpoint is the step it stopped at: the last step it logged a training loss for (every step).
    let lossSteps = try store.metrics(stageId: pre.id!).filter { $0.name == "train/loss" }.map(\.step)
    let onDisk = try #require(Checkpointer.resolve(run.appendingPathComponent("runs/tiny/pre/checkpoints/last")).flatMap(Checkpointer.storedStep))
    #expect(onDisk >= 9 && onDisk < 300 && onDisk == lossSteps.max(), "checkpoint at \(onDisk), losses up to \(lossSteps.max() ?? -1)")

    let again = try runReinCapturing(runArguments, in: run)
    #expect(again.status == 0, "\(again.stderr.suffix(1500))")
    let actual = try metricRows(storePath), wanted = try metricRows(referenceDir.appendingPathComponent("runs/tiny.sqlite").path)
    expectSameMetrics(actual, wanted, "after SIGTERM")
}

@Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
func fourRunsAndTwoRatersShareOneStoreThroughAKill() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let storePath = dir.appendingPathComponent("shared.sqlite").path
    for i in 0..<4 {
        let recipe = "store: shared.sqlite\n" + tinyRecipe(name: "load\(i)", pretrainSteps: 120).replacingOccurrences(of: "seed: 3", with: "seed: \(10 + i)")
        try Data(recipe.utf8).write(to: dir.appendingPathComponent("load\(i).yaml"))
    }
    try writeRateCandidates(dir, count: 40)
    let made = try runReinCapturing(["rate", "new", "--store", "shared.sqlite", "--name", "t", "--candidates", "c.jsonl", "--seed", "4"], in: dir)
    try #require(made.status == 0, "\(made.stderr)")

    let runs = try (0..<4).map { try startRein(["run", "load\($0).yaml", "--threads", "1", "--quiet"], in: dir) }
    // Two raters answering one item every 20 ms, in line mode on a pipe.
    var raters: [(process: Process, input: FileHandle, output: URL)] = []
    for name in ["ann", "bob"] {
        let p = Process()
        p.executableURL = reinBinary
        p.arguments = ["rate", "t", "--store", "shared.sqlite", "--rater", name]
        p.currentDirectoryURL = dir
        let input = Pipe(), output = dir.appendingPathComponent("\(name).err")
        _ = FileManager.default.createFile(atPath: output.path, contents: nil)
        p.standardInput = input
        p.standardOutput = FileHandle.nullDevice
        p.standardError = try FileHandle(forWritingTo: output)
        try p.run()
        raters.append((p, input.fileHandleForWriting, output))
    }
    var maxWAL = 0
    func sampleWAL() {
        let size = ((try? FileManager.default.attributesOfItem(atPath: storePath + "-wal"))?[.size] as? Int) ?? 0
        maxWAL = max(maxWAL, size)
    }
    // Each rater answers an item every 200 ms (12 each, of 40), then quits; run 2 is killed once
    // its pretraining has a checkpoint past step 30, and what it had committed is kept.
    let answersEach = 12
    var killedRows: [String: Double]?
    for tick in 0..<6000 {
        if tick % 10 == 0 && tick / 10 < answersEach {
            for r in raters { r.input.write(Data((tick % 30 == 0 ? "b\n" : "a\n").utf8)) }
        }
        if tick == answersEach * 10 { for r in raters { r.input.write(Data("q\n".utf8)) } }
        sampleWAL()
        if killedRows == nil, runs[2].isRunning, (lastStep(storePath, run: "load2", stage: "pre") ?? 0) >= 30 {
            kill(runs[2].processIdentifier, SIGKILL)
            runs[2].waitUntilExit()
            killedRows = try rowsOfRun(storePath, "load2")
        }
        if tick > answersEach * 10 && !runs.contains(where: \.isRunning) && !raters.contains(where: { $0.process.isRunning }) { break }
        usleep(20_000)
    }
    for r in raters { r.process.waitUntilExit() }
    for (i, p) in runs.enumerated() {
        p.waitUntilExit()
        if i != 2 { #expect(p.terminationStatus == 0, "run load\(i): status \(p.terminationStatus)") }
    }
    let victimRows = try #require(killedRows, "run load2 ended before it was killed")
    #expect(runs[2].terminationReason == .uncaughtSignal)
    #expect(try integrityCheck(storePath) == "ok")
    let rerun = try runReinCapturing(["run", "load2.yaml", "--threads", "1", "--quiet"], in: dir)
    #expect(rerun.status == 0, "\(rerun.stderr.suffix(1500))")

    // Every run complete once; what the killed run had committed is still there, once, unchanged.
    let store = try RunStore(path: storePath)
    let summaries = try store.runs()
    #expect(summaries.map(\.run.name).sorted() == ["load0", "load1", "load2", "load3"])
    #expect(summaries.allSatisfy { $0.run.status == .completed && $0.stages.count == 6 && $0.stages.allSatisfy { $0.status == .completed } })
    let after = try rowsOfRun(storePath, "load2")
    let lost = victimRows.keys.filter { after[$0] == nil }
    #expect(lost.isEmpty, "rows the killed run committed are gone: \(lost.prefix(5))")
    let changed = victimRows.keys.filter { after[$0] != nil && after[$0] != victimRows[$0] }
    #expect(changed.isEmpty, "rows the killed run committed changed on rerun: \(changed.prefix(5))")
    // Each rater's answers: as many as the session says it saved, one per item.
    for (name, r) in zip(["ann", "bob"], raters) {
        let said = try String(contentsOf: r.output, encoding: .utf8)
        let answers = try liveAnswers(storePath, task: "t").filter { $0.rating.rater == name }
        #expect(said.contains("\(answers.count) answers saved this sitting"), "\(name): \(answers.count) in the store; it said: \(said.suffix(300))")
        #expect(answers.count == answersEach, "\(name): \(answers.count) answers")
        #expect(Set(answers.map(\.item.id)).count == answers.count, "\(name) answered an item twice")
    }
    // WAL checkpointing: the log stayed bounded and checkpoints fully now.
    #expect(maxWAL > 0 && maxWAL < 64 << 20, "the WAL reached \(maxWAL) bytes")
    let queue = try DatabaseQueue(path: storePath)
    let busy = try queue.writeWithoutTransaction { db in try Int.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    #expect(busy == 0, "the checkpoint was blocked")
    let walSize = ((try? FileManager.default.attributesOfItem(atPath: storePath + "-wal"))?[.size] as? Int) ?? 0
    try queue.close()
    #expect(walSize == 0)
    #expect(try integrityCheck(storePath) == "ok")
    print("store under load: 4 runs, 2 raters, 1 kill; WAL peaked at \(maxWAL) bytes; \(victimRows.count) rows of the killed run kept")
}

/// The highest `last` checkpoint step of `stage` in run `name`.
private func lastStep(_ path: String, run name: String, stage key: String) -> Int? {
    guard let store = try? RunStore(path: path), let runs = try? store.runs(),
          let stage = runs.first(where: { $0.run.name == name })?.stages.first(where: { $0.stageKey == key }),
          let checkpoints = try? store.checkpoints(stageId: stage.id!) else { return nil }
    return checkpoints.filter { $0.kind == "last" }.map(\.step).max()
}

/// Metrics and rollouts of run `name`, keyed "stage/step/name" and "stage/phase/step/idx".
private func rowsOfRun(_ path: String, _ name: String) throws -> [String: Double] {
    let store = try RunStore(path: path)
    var rows: [String: Double] = [:]
    for stage in try store.runs().first(where: { $0.run.name == name })?.stages ?? [] {
        for m in try store.metrics(stageId: stage.id!) where !isTiming(m.name) && !m.name.hasSuffix("per_second") {
            rows["\(stage.stageKey)/\(m.step)/\(m.name)"] = m.value
        }
        for r in try store.rollouts(stageId: stage.id!) { rows["\(stage.stageKey)/\(r.phase)/\(r.step)/\(r.idx)"] = Double(r.responseTokens) }
    }
    return rows
}

@Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
func aStoreThatIsNotReinsOrIsNewerIsRefusedAndLeftUnchanged() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let text = dir.appendingPathComponent("notes.sqlite")
    try Data("these are my notes, not a database\n".utf8).write(to: text)
    let foreign = dir.appendingPathComponent("other.sqlite")
    do {
        let queue = try DatabaseQueue(path: foreign.path)
        try queue.write { db in try db.execute(sql: "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('x')") }
        try queue.close()
    }
    let foreignWAL = dir.appendingPathComponent("other-wal.sqlite")
    do {
        let pool = try DatabasePool(path: foreignWAL.path)
        try pool.write { db in try db.execute(sql: "CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)") }
        try pool.close()
    }
    let newer = dir.appendingPathComponent("newer.sqlite")
    do {
        let store = try RunStore(path: newer.path)
        _ = try store.createRun(name: "old", recipe: "", seed: 1)
        try store.dbPool.write { db in try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-future')") }
        try store.dbPool.close()
    }
    let cases: [(URL, String)] = [
        (text, "is not a Rein run store: not an SQLite database; it was not changed"),
        (foreign, "is not a Rein run store: an SQLite database with other tables (notes); it was not changed"),
        (foreignWAL, "is not a Rein run store: an SQLite database with other tables (photos); it was not changed"),
        (newer, "was written by a newer Rein (schema v99-future, unknown to this build); it was not changed"),
    ]
    for (file, expected) in cases {
        let before = try Data(contentsOf: file)
        try Data(("store: \(file.lastPathComponent)\n" + tinyRecipe()).utf8).write(to: dir.appendingPathComponent("tiny.yaml"))
        let commands = [["runs", "--store", file.lastPathComponent],
                        ["rate", "t", "--store", file.lastPathComponent, "--rater", "ann"],
                        ["run", "tiny.yaml", "--quiet"]]
        for arguments in commands {
            let result = try runReinCapturing(arguments, in: dir)
            #expect(result.status != 0, "\(file.lastPathComponent), \(arguments[0]): status 0")
            #expect(result.stderr.contains(file.lastPathComponent) && result.stderr.contains(expected),
                    "\(file.lastPathComponent), \(arguments[0]): \(result.stderr)")
            #expect(try Data(contentsOf: file) == before, "\(file.lastPathComponent) was changed by \(arguments[0])")
        }
    }
}
