import Foundation
import Testing
import Store

// `rein report` as a user runs it: the file it writes, and its messages for an unknown run and an
// output directory that does not exist.

/// The `rein` executable next to the test binary (`swift test` builds every product).
private let rein: URL? = {
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = dir.appendingPathComponent("rein")
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    return nil
}()

/// Runs `rein ARGS` in `directory`: exit status, stdout, stderr.
private func runRein(_ arguments: [String], in directory: URL) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = rein
    process.arguments = arguments
    process.currentDirectoryURL = directory
    let out = directory.appendingPathComponent("out-\(UUID().uuidString)"), err = directory.appendingPathComponent("err-\(UUID().uuidString)")
    _ = FileManager.default.createFile(atPath: out.path, contents: nil)
    _ = FileManager.default.createFile(atPath: err.path, contents: nil)
    process.standardOutput = try FileHandle(forWritingTo: out)
    process.standardError = try FileHandle(forWritingTo: err)
    try process.run()
    process.waitUntilExit()
    return (process.terminationStatus, try String(contentsOf: out, encoding: .utf8), try String(contentsOf: err, encoding: .utf8))
}

@Suite struct ReportCommandTests {
    @Test(.enabled(if: rein != nil, "the rein executable is built by swift test"))
    func writesTheReportOfARunNamedOrById() throws {
        let tiny = try TinyRun()
        let dir = tiny.directory.url
        let byName = try runRein(["report", "tiny-ppo", "--store", tiny.store.path, "-o", "tiny.html"], in: dir)
        #expect(byName.status == 0, "\(byName.stderr)")
        #expect(byName.stdout.hasPrefix("wrote tiny.html: run \(tiny.run.id!) (tiny-ppo), 2 stages, "), "\(byName.stdout)")
        let html = try String(contentsOf: dir.appendingPathComponent("tiny.html"), encoding: .utf8)
        #expect(html.hasPrefix("<!DOCTYPE html>") && html.contains("data-stage=\"ppo\""))
        let byId = try runRein(["report", String(tiny.run.id!), "--store", tiny.store.path, "--output", "by-id.html"], in: dir)
        #expect(byId.status == 0, "\(byId.stderr)")
        #expect(try String(contentsOf: dir.appendingPathComponent("by-id.html"), encoding: .utf8) == html)
    }

    @Test(.enabled(if: rein != nil, "the rein executable is built by swift test"))
    func unknownRunsAndMissingDirectoriesAreClearErrors() throws {
        let tiny = try TinyRun()
        let dir = tiny.directory.url
        let unknown = try runRein(["report", "nope", "--store", tiny.store.path, "-o", "r.html"], in: dir)
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("no run with id or name 'nope'") && unknown.stderr.contains("tiny-ppo"), "\(unknown.stderr)")
        let missing = try runRein(["report", "tiny-ppo", "--store", tiny.store.path, "-o", "no/such/dir/r.html"], in: dir)
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("-o no/such/dir/r.html: the directory no/such/dir does not exist"), "\(missing.stderr)")
        let directory = try runRein(["report", "tiny-ppo", "--store", tiny.store.path, "-o", "."], in: dir)
        #expect(directory.status != 0 && directory.stderr.contains("is a directory"), "\(directory.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("r.html").path))
    }

    /// `rein compare` on a run's policies, as a user runs it: the terminal tables, then `rein report
    /// comparison:ID`, loaded in Chromium at 1280x800. The drawn win-rate bars, ranking and
    /// frontier points carry the numbers of the comparison the store holds; the page does not
    /// scroll sideways; the screenshot is kept to be looked at.
    @Test(.enabled(if: rein != nil && chromiumPath != nil, "needs the rein executable and chromium (\(chromiumMissing))"))
    func compareOnARunsPoliciesDrawsTheStoresNumbers() throws {
        let scratch = try TemporaryDirectory()
        let dir = scratch.url
        let fm = FileManager.default
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures/hf-tiny-llama")
        try fm.createDirectory(at: dir.appendingPathComponent("policy"), withIntermediateDirectories: true)
        for file in ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"] {
            try fm.copyItem(at: fixture.appendingPathComponent(file), to: dir.appendingPathComponent("policy/\(file)"))
        }
        let topics = ["the sea", "a red fox", "rain", "old books", "the moon", "bread", "winter", "music"]
        try topics.map { "{\"prompt\": \"Write about \($0):\", \"completion\": \" It is \($0).\"}\n" }.joined()
            .write(to: dir.appendingPathComponent("sft.jsonl"), atomically: true, encoding: .utf8)
        try ["a cat", "the wind", "glass", "a bridge", "snow", "a lamp"].map { "{\"prompt\": \"Tell me of \($0):\", \"answer\": \"yes\"}\n" }
            .joined().write(to: dir.appendingPathComponent("eval.jsonl"), atomically: true, encoding: .utf8)
        try """
            name: t
            seed: 3
            stages:
              - id: sft
                kind: sft
                model: policy
                data: sft.jsonl
                validation_split: 0
                batch_size: 4
                max_steps: 3
                learning_rate: 1.0e-2
                max_length: 48

            """.write(to: dir.appendingPathComponent("t.yaml"), atomically: true, encoding: .utf8)
        let trained = try runRein(["run", "t.yaml"], in: dir)
        #expect(trained.status == 0, "\(trained.stderr)")
        let compared = try runRein(["compare", "--store", "runs/t.sqlite", "--run", "t", "--policy", "stage:sft", "--policy", "base=policy",
                                    "--policy", "in_context:2", "--reference", "policy", "--judge", "length", "--judge", "regex:e",
                                    "--prompts", "eval.jsonl", "--response-length", "8", "--samples-per-prompt", "2", "--bootstrap", "200"],
                                   in: dir)
        #expect(compared.status == 0, "\(compared.stderr)")
        #expect(compared.stdout.contains("judge length (score)") && compared.stdout.contains("W-T-L"), "\(compared.stdout)")
        #expect(compared.stdout.contains("sft vs base") || compared.stdout.contains("base vs sft"), "\(compared.stdout)")
        let store = try RunStore(path: dir.appendingPathComponent("runs/t.sqlite").path)
        let session = try #require(try store.compareSessions().first)
        let made = try runRein(["report", "comparison:\(session.id!)", "--store", "runs/t.sqlite", "-o", "c.html"], in: dir)
        #expect(made.status == 0, "\(made.stderr)")
        let html = try String(contentsOf: dir.appendingPathComponent("c.html"), encoding: .utf8)

        // The stored summary: every pair's win rate, the ranking, the frontier.
        let summary = try #require(try JSONSerialization.jsonObject(with: Data((session.summaryJSON ?? "").utf8)) as? [String: Any])
        let judges = try #require(summary["judges"] as? [[String: Any]])
        let layout = try renderedLayout(of: html, in: dir)
        #expect(layout.scrollWidth <= 1280, "the page is \(layout.scrollWidth) px wide at 1280")
        for chart in layout.charts { #expect(chart.width > 100 && chart.height > 50, "\(chart.title) drawn \(chart.width)x\(chart.height)") }
        var barsChecked = 0
        for judge in judges {
            let name = try #require(judge["name"] as? String)
            for pair in try #require(judge["pairs"] as? [[String: Any]]) {
                guard let rate = pair["winRate"] as? Double else { continue }
                let bar = try #require(layout.marks.first { $0.cls == "mark bar" && $0.data["judge"] == name
                    && $0.data["a"] == pair["a"] as? String && $0.data["b"] == pair["b"] as? String }, "\(name) \(pair)")
                #expect(bar.value == rate)
                #expect(bar.width > 0 || rate == 0)
                barsChecked += 1
            }
            let ranking = (judge["ranking"] as? [[String: Any]]) ?? []
            let drawn = layout.marks.filter { $0.data["rank-low"] != nil && $0.cls == "mark point" && $0.title.contains(name) }
            #expect(Set(drawn.map(\.value)) == Set(ranking.compactMap { $0["rating"] as? Double }), "\(name) ranking")
        }
        #expect(barsChecked == 2 * 3, "two judges, three pairs")
        let frontier = try #require(summary["frontier"] as? [[String: Any]])
        let points = layout.marks.filter { $0.data["pareto"] != nil }
        #expect(!frontier.isEmpty && points.count == frontier.count)
        #expect(Set(points.map(\.value)) == Set(frontier.compactMap { $0["gold"] as? Double }))

        try fm.createDirectory(at: screenshotDirectory, withIntermediateDirectories: true)
        let png = screenshotDirectory.appendingPathComponent("compare-store.png")
        try? fm.removeItem(at: png)
        _ = try chromium(["--screenshot=\(png.path)"], page: dir.appendingPathComponent("c.html"), scratch: dir)
        let size = try #require(pngSize(try Data(contentsOf: png)))
        #expect(size.width == 1280 && size.height == 800)
    }
}
