import Foundation
import Testing
import Store
@testable import Report

// The reports in a real browser: headless Chromium loads a test-only copy of each report with a
// script that writes every SVG mark's rendered box and data attributes into the DOM, dumps the
// DOM, and the test checks that the marks are drawn and that their numbers and sizes match the
// store's and the comparison data's. A screenshot at 1280x800 must be a PNG of that size.
// CI installs Chromium (`.ci/run`: `scripts/setup.sh tmux chromium`); without it these tests skip.

/// The Chromium binary, if one is on PATH (Debian's is `chromium`).
let chromiumPath: String? = {
    let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin"]
    for name in ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"] {
        for dir in dirs where FileManager.default.isExecutableFile(atPath: dir + "/" + name) { return dir + "/" + name }
    }
    return nil
}()

let chromiumMissing = "chromium is not installed (scripts/setup.sh chromium installs it; CI has it)"

/// Runs headless Chromium on `page` with `arguments` and returns what it printed on stdout.
func chromium(_ arguments: [String], page: URL, scratch: URL, timeout: TimeInterval = 180) throws -> String {
    let profile = scratch.appendingPathComponent("profile-\(UUID().uuidString)")
    let out = scratch.appendingPathComponent("stdout-\(UUID().uuidString)")
    _ = FileManager.default.createFile(atPath: out.path, contents: nil)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: chromiumPath!)
    process.arguments = ["--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage", "--no-first-run",
                         "--hide-scrollbars", "--allow-file-access-from-files", "--user-data-dir=\(profile.path)",
                         "--window-size=1280,800"] + arguments + [page.absoluteString]
    let handle = try FileHandle(forWritingTo: out)
    process.standardOutput = handle
    process.standardError = FileHandle.nullDevice
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(50_000) }
    if process.isRunning {
        process.terminate()
        process.waitUntilExit()
        throw ChromiumFailure(message: "chromium did not finish within \(Int(timeout)) s")
    }
    try handle.close()
    guard process.terminationStatus == 0 else { throw ChromiumFailure(message: "chromium exited with \(process.terminationStatus)") }
    return String(decoding: try Data(contentsOf: out), as: UTF8.self)
}

struct ChromiumFailure: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// What the injected script reports: each mark (an SVG element with `data-value`) and each chart.
struct Layout: Decodable {
    struct Mark: Decodable {
        let chart: String
        let title: String
        let stage: String?
        let tag: String
        let cls: String
        let x: Double
        let y: Double
        let width: Double
        let height: Double
        let bboxWidth: Double
        let bboxHeight: Double
        let data: [String: String]

        func number(_ key: String) -> Double? { data[key].flatMap(Double.init) }
        var value: Double { number("value") ?? .nan }
        var centerY: Double { y + height / 2 }
    }

    struct Chart: Decodable {
        let chart: String
        let title: String
        let width: Double
        let height: Double
    }

    let marks: [Mark]
    let charts: [Chart]
    let scrollWidth: Double
}

/// The script of the test-only copy. `<` is written as \u003c so no text can end the script early.
let layoutScript = """
    <script>
    (function () {
      const marks = [];
      for (const el of document.querySelectorAll('svg [data-value]')) {
        const svg = el.closest('svg');
        const r = el.getBoundingClientRect();
        const b = el.getBBox();
        const data = {};
        for (const a of el.attributes) if (a.name.startsWith('data-')) data[a.name.slice(5)] = a.value;
        marks.push({chart: svg.getAttribute('data-chart'), title: svg.getAttribute('aria-label'), stage: svg.getAttribute('data-stage'),
                    tag: el.tagName, cls: el.getAttribute('class') || '', x: r.x, y: r.y, width: r.width, height: r.height,
                    bboxWidth: b.width, bboxHeight: b.height, data: data});
      }
      const charts = [...document.querySelectorAll('svg.chart')].map(s => {
        const r = s.getBoundingClientRect();
        return {chart: s.getAttribute('data-chart'), title: s.getAttribute('aria-label'), width: r.width, height: r.height};
      });
      const out = document.createElement('script');
      out.type = 'application/json';
      out.id = 'layout';
      out.textContent = JSON.stringify({marks: marks, charts: charts, scrollWidth: document.documentElement.scrollWidth})
        .replace(/</g, '\\\\u003c');
      document.body.appendChild(out);
    })();
    </script>
    """

/// Loads a copy of `html` with the layout script in Chromium and reads the layout back.
func renderedLayout(of html: String, in scratch: URL) throws -> Layout {
    #expect(!html.contains("<script"), "the report itself must not contain a script")
    let page = scratch.appendingPathComponent("layout-\(UUID().uuidString).html")
    try html.replacingOccurrences(of: "</body>", with: layoutScript + "\n</body>").write(to: page, atomically: true, encoding: .utf8)
    let dom = try chromium(["--dump-dom"], page: page, scratch: scratch)
    let open = "<script type=\"application/json\" id=\"layout\">"
    guard let start = dom.range(of: open), let end = dom[start.upperBound...].range(of: "</script>") else {
        throw ChromiumFailure(message: "the dumped DOM has no layout element (\(dom.count) characters)")
    }
    return try JSONDecoder().decode(Layout.self, from: Data(dom[start.upperBound..<end.lowerBound].utf8))
}

/// The width and height in the IHDR chunk of a PNG file, or nil when it is not a PNG.
func pngSize(_ data: Data) -> (width: Int, height: Int)? {
    let bytes = [UInt8](data.prefix(24))
    guard bytes.count == 24, bytes[0..<8] == [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], bytes[12..<16] == [0x49, 0x48, 0x44, 0x52] else {
        return nil
    }
    let int = { (i: Int) in bytes[i..<i + 4].reduce(0) { $0 << 8 | Int($1) } }
    return (int(16), int(20))
}

/// Where the screenshots are kept after the test, to be looked at.
let screenshotDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("rein-report-screenshots")

@Suite(.serialized) struct ChromiumReportTests {
    @Test(.enabled(if: chromiumPath != nil, Comment(rawValue: chromiumMissing)))
    func runReportCurvesAreDrawnWithTheStoresNumbers() throws {
        let tiny = try TinyRun()
        let html = try ReportRenderer.render(runId: tiny.run.id!, store: tiny.store)
        let layout = try renderedLayout(of: html, in: tiny.directory.url)
        #expect(!layout.charts.isEmpty)
        for chart in layout.charts { #expect(chart.width > 100 && chart.height > 100, "\(chart.title) drawn \(chart.width)x\(chart.height)") }
        #expect(layout.scrollWidth <= 1280, "the page is \(layout.scrollWidth) px wide")
        for stage in [tiny.sft, tiny.ppo] {
            let marks = layout.marks.filter { $0.stage == stage.stageKey && $0.cls == "mark point" }
            for (name, values) in try tiny.chartedSeries(stage) {
                let series = marks.filter { $0.data["series"] == name }
                #expect(series.map(\.value) == values.map(\.value), "\(stage.stageKey) \(name)")
                #expect(series.map { $0.number("x") } == values.map { Double($0.step) })
                for m in series { #expect(m.bboxWidth > 0 && m.bboxHeight > 0 && m.width > 0) }
                // Later steps further right.
                #expect(zip(series, series.dropFirst()).allSatisfy { $0.x < $1.x })
            }
            // Within a chart, a higher value is drawn higher up (the same value at the same height).
            for title in Set(marks.map(\.title)) {
                let inChart = marks.filter { $0.title == title }
                for a in inChart { for b in inChart where a.value > b.value {
                    #expect(a.centerY < b.centerY + 0.01, "\(stage.stageKey) \(title): \(a.value) at \(a.centerY), \(b.value) at \(b.centerY)")
                } }
            }
        }
        #expect(layout.marks.filter { $0.stage == "ppo" && $0.data["series"] == "objective/kl" }.count == 12)
    }

    @Test(.enabled(if: chromiumPath != nil, Comment(rawValue: chromiumMissing)))
    func winRateBarsAreProportionalToTheWinRates() throws {
        let data = try comparisonFixture()
        let scratch = try TemporaryDirectory()
        let layout = try renderedLayout(of: try ReportRenderer.render(comparison: data, store: nil), in: scratch.url)
        #expect(layout.scrollWidth <= 1280, "the page is \(layout.scrollWidth) px wide")
        for chart in layout.charts { #expect(chart.width > 100 && chart.height > 50, "\(chart.title) drawn \(chart.width)x\(chart.height)") }
        for judge in Set(data.pairs.map(\.judge)) {
            let pairs = data.pairs.filter { $0.judge == judge }
            let bars = layout.marks.filter { $0.cls == "mark bar" && $0.data["judge"] == judge }
            #expect(bars.count == pairs.count)
            // Pixels per unit of win rate: the same for every bar, and the 50% line half of it from 0.
            let scale = try #require(bars.map { $0.width / $0.value }.max())
            #expect(scale > 200, "a 100% bar would be \(scale) px")
            let zero = try #require(bars.first?.x)
            for pair in pairs {
                let bar = try #require(bars.first { $0.data["a"] == pair.a && $0.data["b"] == pair.b })
                #expect(bar.value == pair.winRate)
                #expect(abs(bar.width - pair.winRate * scale) < 0.75, "\(pair.a) vs \(pair.b): \(bar.width) px")
                #expect(abs(bar.x - zero) < 0.5 && bar.height > 5)
                let whisker = try #require(layout.marks.first { $0.cls == "mark interval" && $0.data["judge"] == judge && $0.data["a"] == pair.a
                    && $0.data["b"] == pair.b })
                #expect(whisker.number("low") == pair.winRateLow && whisker.number("high") == pair.winRateHigh)
                #expect(abs(whisker.width - (pair.winRateHigh - pair.winRateLow) * scale) < 1, "whisker \(whisker.width) px")
                #expect(abs(whisker.x - (zero + pair.winRateLow * scale)) < 1)
            }
            let title = bars[0].title
            let reference = try #require(layout.marks.first { $0.cls == "reference" && $0.title == title })
            #expect(reference.value == 0.5)
            #expect(abs(reference.x - (zero + 0.5 * scale)) < 1 && reference.height > Double(20 * pairs.count))
        }
        // Ratings: best on top, further right.
        let points = layout.marks.filter { $0.data["rank-low"] != nil && $0.cls == "mark point" }
        let ranking = data.ranking.sorted { $0.rating > $1.rating }
        #expect(points.map(\.value) == ranking.map(\.rating))
        #expect(zip(points, points.dropFirst()).allSatisfy { $0.centerY < $1.centerY && $0.x > $1.x })
        // The frontier: every point drawn, the Pareto ones larger.
        let frontier = layout.marks.filter { $0.data["pareto"] != nil }
        #expect(frontier.count == data.frontier.count)
        let pareto = frontier.filter { $0.data["pareto"] == "true" }, other = frontier.filter { $0.data["pareto"] == "false" }
        #expect(pareto.count == data.frontier.filter(\.pareto).count)
        #expect(pareto.allSatisfy { p in other.allSatisfy { p.bboxWidth > $0.bboxWidth } })
        // Mean lengths: bars proportional to the lengths.
        let lengths = layout.marks.filter { $0.cls == "mark bar" && $0.title == "Mean response length per policy" }
        #expect(lengths.map(\.value) == data.policies.map(\.meanLength))
        let perToken = lengths[0].width / lengths[0].value
        for bar in lengths { #expect(abs(bar.width - bar.value * perToken) < 0.75) }
    }

    @Test(.enabled(if: chromiumPath != nil, Comment(rawValue: chromiumMissing)))
    func screenshotsAre1280By800PNGs() throws {
        let tiny = try TinyRun()
        var data = try comparisonFixture()
        data.runIds = [tiny.run.id!]
        try FileManager.default.createDirectory(at: screenshotDirectory, withIntermediateDirectories: true)
        let pages = [("run", try ReportRenderer.render(runId: tiny.run.id!, store: tiny.store)),
                     ("comparison", try ReportRenderer.render(comparison: data, store: tiny.store))]
        for (name, html) in pages {
            let page = tiny.directory.url.appendingPathComponent("\(name).html")
            try html.write(to: page, atomically: true, encoding: .utf8)
            try html.write(to: screenshotDirectory.appendingPathComponent("\(name).html"), atomically: true, encoding: .utf8)
            let png = screenshotDirectory.appendingPathComponent("\(name).png")
            try? FileManager.default.removeItem(at: png)
            _ = try chromium(["--screenshot=\(png.path)"], page: page, scratch: tiny.directory.url)
            let size = try #require(pngSize(try Data(contentsOf: png)), "\(png.path) is not a PNG")
            #expect(size.width == 1280 && size.height == 800, "\(name): \(size.width)x\(size.height)")
        }
    }
}
