import Foundation
import Recipes
import Store
import Testing

/// tmux, if installed (CI installs it: `.ci/run` passes it to `scripts/setup.sh`).
let tmuxPath: String? = ["/usr/bin/tmux", "/usr/local/bin/tmux", "/opt/homebrew/bin/tmux"].first { FileManager.default.isExecutableFile(atPath: $0) }

/// A tmux server of its own (`-L`), so tests never touch a user's sessions.
final class TmuxScreen {
    let socket = "rein-test-\(UUID().uuidString.prefix(8))"
    let session = "rate"

    /// Starts `command` in `directory` in a detached session of `columns` x `rows`.
    init(_ command: String, in directory: URL, columns: Int, rows: Int) throws {
        // Not waited for: the server this starts keeps the descriptor Foundation watches for the client's
        // exit, so waitUntilExit would never return. Poll for the session instead.
        let start = Process()
        start.executableURL = URL(fileURLWithPath: tmuxPath!)
        start.arguments = ["-L", socket, "-f", "/dev/null", "new-session", "-d", "-s", session, "-x", "\(columns)", "-y", "\(rows)",
                           "-c", directory.path, command]
        start.standardInput = FileHandle.nullDevice
        start.standardOutput = FileHandle.nullDevice
        start.standardError = FileHandle.nullDevice
        try start.run()
        let deadline = Date().addingTimeInterval(20)
        while try !tmux(["list-sessions", "-F", "#{session_name}"]).contains(session) && Date() < deadline { usleep(20_000) }
    }

    deinit { _ = try? tmux(["kill-server"]) }

    @discardableResult
    func tmux(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tmuxPath!)
        process.arguments = ["-L", socket, "-f", "/dev/null"] + arguments
        // Through a file, not a pipe: the server `new-session` starts would keep a pipe open forever.
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("tmux-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out) }
        let handle = try FileHandle(forWritingTo: out)
        process.standardOutput = handle
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        try handle.close()
        return try String(contentsOf: out, encoding: .utf8)
    }

    /// Sends keys as tmux names them (`a`, `Enter`, `Left`) or literally with `literal`.
    func send(_ keys: String..., literal: Bool = false) throws {
        try tmux(["send-keys", "-t", session] + (literal ? ["-l"] : []) + keys)
    }

    /// The screen's text, one string a row (`joined`: lines the terminal wrapped joined again).
    func capture(joined: Bool = false) throws -> [String] {
        try tmux(["capture-pane", "-p"] + (joined ? ["-J"] : []) + ["-t", session]).components(separatedBy: "\n")
    }

    /// Waits (up to 20 s) until `condition` holds for the screen, and returns it.
    func wait(_ what: String, _ condition: ([String]) -> Bool) throws -> [String] {
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let screen = try capture()
            if condition(screen) { return screen }
            usleep(20_000)
        }
        let screen = try capture()
        Issue.record("timed out waiting for \(what); the screen:\n\(screen.joined(separator: "\n"))")
        return screen
    }
}

private func shellQuoted(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

/// The rater's key for the response starting with `prefix` on this (stacked) screen: the label above it.
private func key(for prefix: String, on screen: [String]) -> String? {
    guard let left = screen.firstIndex(where: { $0.hasPrefix("LEFT (a)") }), left + 1 < screen.count else { return nil }
    return screen[left + 1].trimmingCharacters(in: .whitespaces).hasPrefix(prefix) ? "a" : "b"
}

private func itemNumber(_ screen: [String]) -> Int? {
    guard let first = screen.first, let range = first.range(of: "· item ") else { return nil }
    return Int(first[range.upperBound...].prefix { $0.isNumber })
}

@Test(.enabled(if: tmuxPath != nil, "tmux is not installed: apt-get install tmux (CI installs it)"),
      .enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
func theRealScreenRatesUndoesSkipsKeepsAReasonQuitsAndResumes() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    try writeRateCandidates(dir)
    #expect(try runReinForErrors(["rate", "new", "--store", "s.sqlite", "--name", "t", "--candidates", "c.jsonl", "--seed", "11"], in: dir).status == 0)
    let command = "\(shellQuoted(reinBinary!.path)) rate t --store s.sqlite --rater ann"
    // What the rater means to choose, by prompt: the longer response, except a short one on question 4 (then a tie).
    var expected: [String: String] = [:]

    var screen = try TmuxScreen(command, in: dir, columns: 80, rows: 30)
    func waitItem(_ n: Int) throws -> [String] { try screen.wait("item \(n)") { itemNumber($0) == n && $0.contains { $0.hasPrefix("LEFT (a)") } } }
    var shown = try waitItem(1)
    #expect(shown[0].contains("0 done / 10 left"))
    // Item 1: the long one, with strength 2.
    try screen.send(key(for: "long", on: shown)!)
    shown = try waitItem(2)
    try screen.send("2")
    _ = try screen.wait("strength saved") { $0.contains { $0.contains("strength 2 added") } }
    expected["question 0"] = "long answer 0 with more words"
    // Item 2: a reason, then the long one.
    try screen.send("r")
    _ = try screen.wait("reason prompt") { $0.contains { $0.contains("reason (Enter keeps") } }
    try screen.send("longer is better ✓", literal: true)
    try screen.send("Enter")
    _ = try screen.wait("reason kept") { $0.contains { $0.contains("reason: longer is better ✓") } }
    try screen.send(key(for: "long", on: shown)!)
    shown = try waitItem(3)
    expected["question 1"] = "long answer 1 with more words"
    // Item 3: the short one by mistake, undo, then the long one.
    try screen.send(key(for: "short", on: shown)!)
    _ = try waitItem(4)
    try screen.send("u")
    shown = try waitItem(3)
    try screen.send(key(for: "long", on: shown)!)
    shown = try waitItem(4)
    expected["question 2"] = "long answer 2 with more words"
    // Item 4: skipped. Item 5: the long one. Then quit in the middle.
    try screen.send("s")
    shown = try waitItem(5)
    try screen.send(key(for: "long", on: shown)!)
    expected["question 4"] = "long answer 4 with more words"
    _ = try waitItem(6)
    try screen.send("q")
    _ = try screen.wait("the command to end") { !$0.contains { $0.hasPrefix("LEFT (a)") } }

    let path = dir.appendingPathComponent("s.sqlite").path
    var answers = try liveAnswers(path, task: "t")
    #expect(answers.map(\.item.prompt) == ["question 0", "question 1", "question 2", "question 3", "question 4"])
    #expect(answers[3].rating.vote == .skip)
    #expect(answers[0].rating.strength == 2 && answers[1].rating.reason == "longer is better ✓")
    let store = try RunStore(path: path)
    let all = try store.ratings(taskId: try store.ratingTask(named: "t").id!, includeUndone: true)
    #expect(all.filter(\.undone).count == 1 && all.count == 6)
    #expect(chosenText((try store.ratingItem(all.first(where: \.undone)!.itemId)!, all.first(where: \.undone)!))?.hasPrefix("short") == true)

    // Resume: items 6-10, then the skipped item 4 (answered short then tie... it is given a tie).
    screen = try TmuxScreen(command, in: dir, columns: 80, rows: 30)
    for n in [6, 7, 8, 9, 10] {
        shown = try waitItem(n)
        #expect(shown[0].contains("\(n - 2) done"))
        try screen.send(key(for: "long", on: shown)!)
        expected["question \(n - 1)"] = "long answer \(n - 1) with more words"
    }
    shown = try waitItem(4)
    try screen.send("t")
    _ = try screen.wait("the end") { !$0.contains { $0.hasPrefix("LEFT (a)") } }

    answers = try liveAnswers(path, task: "t").filter { $0.rating.vote != .skip }
    #expect(answers.count == 10)
    for answer in answers where answer.item.prompt != "question 3" {
        #expect(chosenText(answer) == expected[answer.item.prompt], "\(answer.item.prompt)")
        // swapped: the item's second response was on the left; the vote names the response, whatever its side.
        let chosenIndex = answer.rating.vote == .a ? 0 : 1
        #expect(answer.item.responses[chosenIndex].hasPrefix("long"))
    }
    #expect(answers.first { $0.item.prompt == "question 3" }?.rating.vote == .tie)
    #expect(Set(answers.map(\.rating.swapped)).count == 2, "the seed should put the long answer on both sides")
}

@Test(.enabled(if: tmuxPath != nil, "tmux is not installed: apt-get install tmux (CI installs it)"),
      .enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
func theScreenIsReadableAt80And200ColumnsWithLongAndEmojiText() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let long = (0..<250).map { "w\($0 % 10)rd" }.joined(separator: " ")  // 2,249 characters
    let emoji = "Bonjour 👋 — 你好世界 — naïve café 🎉 \u{1B}[31m not red"
    let line = try JSONSerialization.data(withJSONObject: ["prompt": "Greet me 😀", "response_a": long, "response_b": emoji])
    try (line + Data("\n".utf8)).write(to: dir.appendingPathComponent("c.jsonl"))
    #expect(try runReinForErrors(["rate", "new", "--store", "s.sqlite", "--name", "t", "--candidates", "c.jsonl"], in: dir).status == 0)
    let command = "\(shellQuoted(reinBinary!.path)) rate t --store s.sqlite --rater ann"

    for columns in [80, 200] {
        let screen = try TmuxScreen(command, in: dir, columns: columns, rows: 24)
        let shown = try screen.wait("the item at \(columns)") { $0.contains { $0.contains("LEFT (a)") } }
        #expect(shown.count >= 24)
        #expect(shown.allSatisfy { RatingScreen.width($0) <= columns }, "a line wider than the screen")
        #expect(!shown.joined().contains("\u{1B}"))
        #expect(shown[0].contains("t · ann · item 1 · 0 done / 1 left"))
        // Nothing wrapped: the progress line first, the keys on the last row.
        #expect(shown[23].hasPrefix("? help") && shown[1].hasPrefix("───"))
        if columns == 200 {
            #expect(shown.contains { $0.contains("LEFT (a)") && $0.contains("│ RIGHT (b)") })
            #expect(shown.contains { $0.contains("Bonjour 👋 — 你好世界") && $0.contains("│") })
        } else {
            #expect(!shown.contains { $0.contains("│") })
        }
        if columns == 80 {
            // Stacked, the long response does not fit: the screen says so and scrolls.
            #expect(shown.contains { $0.contains("lines 1-20 of") })
            try screen.send("j")
            _ = try screen.wait("a scrolled screen") { $0.contains { $0.contains("lines 2-21 of") } }
        } else {
            // Side by side it fits, to its last word.
            #expect(!shown.contains { $0.contains("lines 1-") })
            #expect(shown.contains { $0.contains("w8rd w9rd") && $0.hasPrefix("  ") == false })
        }
        try screen.send("q")
    }
}

@Test(.enabled(if: tmuxPath != nil, "tmux is not installed: apt-get install tmux (CI installs it)"),
      .enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
func aTerminalNarrowerThan40ColumnsIsRefused() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    try writeRateCandidates(dir, count: 2)
    #expect(try runReinForErrors(["rate", "new", "--store", "s.sqlite", "--name", "t", "--candidates", "c.jsonl"], in: dir).status == 0)
    let command = "\(shellQuoted(reinBinary!.path)) rate t --store s.sqlite --rater ann; echo status $?; sleep 30"
    let screen = try TmuxScreen(command, in: dir, columns: 30, rows: 12)
    _ = try screen.wait("the refusal") { $0.contains { $0.contains("status 1") } }
    #expect(try screen.capture(joined: true).joined().contains("needs at least 40"))
    #expect(try liveAnswers(dir.appendingPathComponent("s.sqlite").path, task: "t").isEmpty)
}
