import Foundation
import Recipes
import Store
import Testing

/// Ten prompts, each with a short response and a longer one ("long answer N ..."), plus an identical pair.
func writeRateCandidates(_ dir: URL, count: Int = 10) throws {
    var lines = (0..<count).map { i in
        #"{"prompt": "question \#(i)", "response_a": "short \#(i)", "response_b": "long answer \#(i) with more words", "source_a": "short", "source_b": "long"}"#
    }
    lines.append(#"{"prompt": "same", "responses": ["the  same\n", "the same"]}"#)
    try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: dir.appendingPathComponent("c.jsonl"))
}

/// Runs `rein ARGS` with `input` on stdin (a pipe, so no terminal): status, stdout, stderr.
func runRein(_ arguments: [String], input: String, in directory: URL) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = reinBinary
    process.arguments = arguments
    process.currentDirectoryURL = directory
    let stdin = Pipe(), out = directory.appendingPathComponent("out-\(UUID().uuidString)"), err = directory.appendingPathComponent("err-\(UUID().uuidString)")
    _ = FileManager.default.createFile(atPath: out.path, contents: nil)
    _ = FileManager.default.createFile(atPath: err.path, contents: nil)
    process.standardInput = stdin
    process.standardOutput = try FileHandle(forWritingTo: out)
    process.standardError = try FileHandle(forWritingTo: err)
    try process.run()
    stdin.fileHandleForWriting.write(Data(input.utf8))
    try stdin.fileHandleForWriting.close()
    process.waitUntilExit()
    defer { try? FileManager.default.removeItem(at: out); try? FileManager.default.removeItem(at: err) }
    return (process.terminationStatus, try String(contentsOf: out, encoding: .utf8), try String(contentsOf: err, encoding: .utf8))
}

/// The live answers of task `name` in `store`, each with its item.
func liveAnswers(_ path: String, task name: String) throws -> [(item: RatingItem, rating: Rating)] {
    let store = try RunStore(path: path)
    let task = try store.ratingTask(named: name)
    let items = Dictionary(uniqueKeysWithValues: try store.ratingItems(taskId: task.id!).map { ($0.id!, $0) })
    return try store.ratings(taskId: task.id!).map { (items[$0.itemId]!, $0) }
}

/// The response the answer chose (nil for a tie, both bad, a skip).
func chosenText(_ answer: (item: RatingItem, rating: Rating)) -> String? {
    switch answer.rating.vote {
    case .a: answer.item.responses[0]
    case .b: answer.item.responses[1]
    default: nil
    }
}

@Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
func rateNewThenLineModeRatesResumesAndExports() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    try writeRateCandidates(dir)
    let made = try runReinCapturing(["rate", "new", "--store", "s.sqlite", "--name", "t", "--candidates", "c.jsonl", "--seed", "4"], in: dir)
    #expect(made.status == 0, "\(made.stderr)")
    #expect(made.stdout.contains("task t: 11 items (pair), 1 identical recorded as ties"))

    // The rater always picks the longer response, by its side on the screen: the JSON item says which is left.
    var answersGiven = 0
    var input = ""
    let first = try runRein(["rate", "t", "--store", "s.sqlite", "--rater", "ann", "--json"], input: "q\n", in: dir)
    let item = try JSONSerialization.jsonObject(with: Data(first.stdout.split(separator: "\n")[0].utf8)) as! [String: Any]
    let responses = item["responses"] as! [String]
    input = responses[0].hasPrefix("long") ? "a2\n" : "b\n"
    answersGiven += 1
    let second = try runRein(["rate", "t", "--store", "s.sqlite", "--rater", "ann", "--json"], input: input + "s\nq\n", in: dir)
    #expect(second.status == 0, "\(second.stderr)")
    #expect(second.stderr.contains("1 answer saved this sitting; 1 done, 9 left"))
    var answers = try liveAnswers(dir.appendingPathComponent("s.sqlite").path, task: "t")
    #expect(answers.count == 2 && answers[1].rating.vote == .skip)
    #expect(chosenText(answers[0])?.hasPrefix("long") == true)
    #expect(answers[0].rating.strength == (input == "a2\n" ? 2 : nil))
    #expect(answers[0].rating.swapped == (responses[0].hasPrefix("long")))

    // Resume: the skipped item comes after the others; answer all in text mode by reading each screen's left label.
    let process = Process()
    process.executableURL = reinBinary
    process.arguments = ["rate", "t", "--store", "s.sqlite", "--rater", "ann", "--json"]
    process.currentDirectoryURL = dir
    let stdin = Pipe(), stdout = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    process.standardError = FileHandle.nullDevice
    try process.run()
    var buffer = Data()
    var shown: [Int] = []
    while true {
        while !buffer.contains(0x0A) {
            let chunk = stdout.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            buffer += chunk
        }
        guard let newline = buffer.firstIndex(of: 0x0A) else { break }
        let line = buffer[..<newline]
        buffer = Data(buffer[(newline + 1)...])
        guard let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any] else { break }
        shown.append(object["item"] as! Int)
        let texts = object["responses"] as! [String]
        stdin.fileHandleForWriting.write(Data((texts[0].hasPrefix("long") ? "a\n" : "b\n").utf8))
    }
    try stdin.fileHandleForWriting.close()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0)
    #expect(shown == [2, 3, 4, 5, 6, 7, 8, 9, 1])  // item 10 (identical) never shown; the skipped item 1 last
    answers = try liveAnswers(dir.appendingPathComponent("s.sqlite").path, task: "t")
    #expect(answers.filter { $0.rating.vote != .skip }.count == 10)
    #expect(answers.filter { $0.rating.vote != .skip }.allSatisfy { chosenText($0)?.hasPrefix("long") == true })

    let exported = try runReinCapturing(["rate", "export", "t", "--store", "s.sqlite", "--format", "trl"], in: dir)
    let lines = exported.stdout.split(separator: "\n")
    #expect(lines.count == 10 && lines.allSatisfy { $0.contains(#""chosen":"long answer"#) && $0.contains(#""rejected":"short"#) })
    let stats = try runReinCapturing(["rate", "stats", "t", "--store", "s.sqlite"], in: dir)
    #expect(stats.stdout.contains("source long: win rate 100.0%"), "\(stats.stdout)")
    #expect(stats.stdout.contains("1 identical pairs counted as ties"))
}

@Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
func badRateInputIsAClearMessageAndWritesNothing() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    try Data("{\"prompt\": \"p\", \"responses\": [\"a\", \"b\"]}\n{\"prompt\": \"q\", \"response_a\": \"x\"}\n".utf8)
        .write(to: dir.appendingPathComponent("bad.jsonl"))
    let missing = try runReinForErrors(["rate", "new", "--store", "s.sqlite", "--name", "t", "--candidates", "bad.jsonl"], in: dir)
    #expect(missing.status != 0 && missing.stderr.contains("bad.jsonl:2: missing field 'response_b'"), "\(missing.stderr)")
    #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("s.sqlite").path))

    try writeRateCandidates(dir, count: 2)
    #expect(try runReinForErrors(["rate", "new", "--store", "s.sqlite", "--name", "t", "--candidates", "c.jsonl"], in: dir).status == 0)
    let unknown = try runRein(["rate", "nope", "--store", "s.sqlite", "--rater", "ann"], input: "a\n", in: dir)
    #expect(unknown.status != 0 && unknown.stderr.contains("no rating task named 'nope' in this store (it has: t)"))
    let control = try runRein(["rate", "t", "--store", "s.sqlite", "--rater", "an\u{1B}n"], input: "a\n", in: dir)
    #expect(control.status != 0 && control.stderr.contains("--rater must not contain control characters"), "\(control.stderr)")
    let noStore = try runRein(["rate", "t", "--store", "other.sqlite", "--rater", "ann"], input: "a\n", in: dir)
    #expect(noStore.status != 0 && noStore.stderr.contains("no store at other.sqlite"))
    #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("other.sqlite").path))
    #expect(try liveAnswers(dir.appendingPathComponent("s.sqlite").path, task: "t").isEmpty)
    let again = try runReinForErrors(["rate", "new", "--store", "s.sqlite", "--name", "t", "--candidates", "c.jsonl"], in: dir)
    #expect(again.status != 0 && again.stderr.contains("a rating task named 't' exists already"))
}

@Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
func killMinusNineDuringASittingLosesNoCommittedAnswerAndTwoRatersShareATask() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    try writeRateCandidates(dir, count: 30)
    #expect(try runReinForErrors(["rate", "new", "--store", "s.sqlite", "--name", "t", "--candidates", "c.jsonl"], in: dir).status == 0)
    let path = dir.appendingPathComponent("s.sqlite").path
    // Two raters at once, each from its own process; ann is killed after 5 answers, bob answers 8 and quits.
    var processes: [String: (Process, Pipe)] = [:]
    for rater in ["ann", "bob"] {
        let process = Process()
        process.executableURL = reinBinary
        process.arguments = ["rate", "t", "--store", "s.sqlite", "--rater", rater]
        process.currentDirectoryURL = dir
        let stdin = Pipe()
        process.standardInput = stdin
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        processes[rater] = (process, stdin)
    }
    func count(_ rater: String) -> Int { ((try? liveAnswers(path, task: "t")) ?? []).filter { $0.rating.rater == rater }.count }
    for i in 0..<8 {
        for rater in ["ann", "bob"] where rater == "bob" || i < 5 {
            processes[rater]!.1.fileHandleForWriting.write(Data((i % 2 == 0 ? "a\n" : "t\n").utf8))
            let deadline = Date().addingTimeInterval(20)
            while count(rater) < i + 1 && Date() < deadline { usleep(10_000) }
        }
    }
    #expect(count("ann") == 5 && count("bob") == 8)
    kill(processes["ann"]!.0.processIdentifier, SIGKILL)
    processes["ann"]!.0.waitUntilExit()
    #expect(processes["ann"]!.0.terminationReason == .uncaughtSignal)
    processes["bob"]!.1.fileHandleForWriting.write(Data("q\n".utf8))
    processes["bob"]!.0.waitUntilExit()
    let answers = try liveAnswers(path, task: "t")
    #expect(answers.count == 13)
    // Nobody was given an item twice, and ann resumes at her next item with her five answers kept.
    #expect(Set(answers.map(\.item.id)).count == 13)
    let resumed = try runRein(["rate", "t", "--store", "s.sqlite", "--rater", "ann"], input: "b\nq\n", in: dir)
    #expect(resumed.status == 0 && resumed.stderr.contains("1 answer saved this sitting; 6 done"), "\(resumed.stderr)")
}
