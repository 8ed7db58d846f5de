import Foundation
import Recipes
import Store
import Testing

@Test func chartOfADecreasingSeries() {
    let lines = ReportText.chart([ChartSeries(name: "train/loss", mark: "*", points: [(1, 4), (2, 3), (3, 2), (4, 1)])],
                                height: 4)
    #expect(lines == [
        "* train/loss",
        "4 |*",
        "  | *",
        "  |  *",
        "1 |   *",
        "  +----",
        "   1  4",
    ])
}

@Test func chartOfAConstantSeriesIsOneRow() {
    let lines = ReportText.chart([ChartSeries(name: "eval/loss", mark: "o", points: [(1, 0.5), (2, 0.5), (3, 0.5)])])
    #expect(lines == [
        "o eval/loss",
        "0.5 |ooo",
        "    +---",
        "     1 3",
    ])
}

@Test func chartOfOnePointAndOfNothing() {
    #expect(ReportText.chart([ChartSeries(name: "train/loss", mark: "*", points: [(7, 2.25)])]) == [
        "* train/loss",
        "2.25 |*",
        "     +-",
        "      7",
    ])
    #expect(ReportText.chart([]) == [])
    #expect(ReportText.chart([ChartSeries(name: "train/loss", mark: "*", points: [])]) == [])
    #expect(ReportText.chart([ChartSeries(name: "train/loss", mark: "*", points: [(1, .nan), (2, .infinity)])]) == [])
}

@Test func chartDrawsTwoSeriesOnOneScaleLaterOnTop() {
    let train = ChartSeries(name: "train/loss", mark: "*", points: [(0, 3), (10, 1), (5, 2)])
    let eval = ChartSeries(name: "eval/loss", mark: "o", points: [(5, 2)])
    #expect(ReportText.chart([train, eval], height: 3) == [
        "* train/loss  o eval/loss",
        "3 |*",
        "  |     o",
        "1 |          *",
        "  +-----------",
        "   0        10",
    ])
    // Steps 10, 20, 30 (logged every 10 steps) spread over a column per step.
    let sparse = ChartSeries(name: "train/loss", mark: "*", points: [(10, 3), (20, 2), (30, 1)])
    #expect(ReportText.chart([sparse], height: 3)[1...3] == ["3 |*", "  |          *", "1 |                    *"])
    // A series without finite points is left out of the legend; NaN points are skipped.
    let broken = ChartSeries(name: "eval/loss", mark: "o", points: [(3, .nan)])
    let lossWithNaN = ChartSeries(name: "train/loss", mark: "*", points: [(1, .nan), (2, 1), (3, 2)])
    #expect(ReportText.chart([lossWithNaN, broken], height: 2) == [
        "* train/loss",
        "2 | *",
        "1 |*",
        "  +--",
        "   2 3",
    ])
}

@Test func chartOfManyStepsIsAtMostMaxWidthColumnsAveragingEachColumn() {
    // 120 steps of a rising line, with alternating noise that averages out within a column.
    let points = (0..<120).map { (step: $0, value: Double($0) + ($0 % 2 == 0 ? 0.25 : -0.25)) }
    let lines = ReportText.chart([ChartSeries(name: "train/loss", mark: "*", points: points)], height: 8, maxWidth: 60)
    #expect(lines.count == 1 + 8 + 2)
    let rows = lines[1...8]
    let prefix = rows.first!.prefix { $0 != "|" }.count + 1
    let columns = rows.map { Array($0.dropFirst(prefix)) }
    #expect(columns.allSatisfy { $0.count <= 60 })
    // Every column holds exactly one point, and the line never goes down.
    var lastRow = Int.max
    for c in 0..<60 {
        let hits = columns.indices.filter { c < columns[$0].count && columns[$0][c] == "*" }
        #expect(hits.count == 1)
        if let r = hits.first {
            #expect(r <= lastRow)
            lastRow = r
        }
    }
    #expect(columns.last!.first == "*" && columns.first!.count == 60 && columns.first!.last == "*")
    #expect(lines[9].hasSuffix("+" + String(repeating: "-", count: 60)))
    #expect(lines[10].trimmingCharacters(in: .whitespaces).split(separator: " ") == ["0", "119"])
    #expect(lines[10].count == lines[9].count)
}

@Test func durationsAreShort() {
    #expect(ReportText.duration(0) == "0s")
    #expect(ReportText.duration(-5) == "0s")
    #expect(ReportText.duration(.nan) == "0s")
    #expect(ReportText.duration(3.24) == "3.2s")
    #expect(ReportText.duration(42) == "42s")
    #expect(ReportText.duration(59.6) == "1m00s")
    #expect(ReportText.duration(245) == "4m05s")
    #expect(ReportText.duration(7380) == "2h03m")
    #expect(ReportText.duration(3 * 86400 + 4 * 3600 + 59) == "3d04h")
}

@Test func numbersAreCompact() {
    #expect(ReportText.number(2) == "2")
    #expect(ReportText.number(-3) == "-3")
    #expect(ReportText.number(0) == "0")
    #expect(ReportText.number(2.31415) == "2.314")
    #expect(ReportText.number(0.5) == "0.5")
    #expect(ReportText.number(0.0125) == "0.0125")
    #expect(ReportText.number(812.44) == "812.4")
    #expect(ReportText.number(1234.56) == "1235")
    #expect(ReportText.number(0.0002) == "2e-04")
    #expect(ReportText.number(-0.000125) == "-1.25e-04")
    #expect(ReportText.number(12_500_000.5) == "1.25e+07")
    #expect(ReportText.number(.nan) == "nan")
    #expect(ReportText.number(-.infinity) == "-inf")
}

@Test func shortDatesInAGivenTimeZone() throws {
    let epoch = Date(timeIntervalSince1970: 0)
    #expect(ReportText.shortDate(epoch, timeZone: try #require(TimeZone(identifier: "UTC"))) == "1970-01-01 00:00")
    #expect(ReportText.shortDate(epoch, timeZone: try #require(TimeZone(secondsFromGMT: 5400))) == "1970-01-01 01:30")
}

@Test func csvQuotesCommasQuotesLineBreaksAndEdgeSpaces() {
    #expect(ReportText.csvField("train/loss") == "train/loss")
    #expect(ReportText.csvField("") == "")
    #expect(ReportText.csvField("a,b") == "\"a,b\"")
    #expect(ReportText.csvField("say \"hi\"") == "\"say \"\"hi\"\"\"")
    #expect(ReportText.csvField("one\ntwo") == "\"one\ntwo\"")
    #expect(ReportText.csvField("one\r\ntwo") == "\"one\r\ntwo\"")
    #expect(ReportText.csvField(" padded") == "\" padded\"")
    #expect(ReportText.csvRow(["1", "sft", "x, \"y\""]) == "1,sft,\"x, \"\"y\"\"\"")
}

@Test func tablesWrapAndMetricOrder() {
    #expect(ReportText.table([["ID", "NAME", "STATUS"], ["3", "quickstart", "running"], ["12", "chat", ""]],
                            rightAligned: [0]) == [
        "ID  NAME        STATUS",
        " 3  quickstart  running",
        "12  chat",
    ])
    #expect(ReportText.wrap(["aaaa", "bbbb", "cccc"], width: 12, indent: "  ") == ["  aaaa  bbbb", "  cccc"])
    #expect(ReportText.wrap(["a-very-long-item", "b"], width: 8) == ["a-very-long-item", "b"])
    #expect(ReportText.wrap([], width: 8) == [])
    #expect(ReportText.metricOrder(["train/loss", "eval/loss", "lr", "eval/accuracy"])
        == ["eval/accuracy", "eval/loss", "lr", "train/loss"])
}

@Test func stageProgressCountsSkippedStagesAsCompleted() {
    func stage(_ key: String, _ status: Status, reuses: Int64? = nil) -> Stage {
        Stage(runId: 1, stageKey: key, kind: key, configJSON: "{}", configHash: "h", status: status, reusedStageId: reuses)
    }
    #expect(ReportText.stageProgress([]) == "0/0")
    #expect(ReportText.stageProgress([stage("tok", .completed, reuses: 1), stage("sft", .completed), stage("dpo", .running)])
        == "2/3 (1 skipped)")
    #expect(ReportText.stageProgress([stage("sft", .failed)], planned: 3) == "0/3")
    #expect(ReportText.stageProgress([stage("a", .completed), stage("b", .completed)], planned: 1) == "2/2")
}

@Test func processIsGoneOnlyForAnExitedProcessOnThisHost() throws {
    let me = Int64(ProcessInfo.processInfo.processIdentifier)
    #expect(!ReportText.processIsGone(pid: me, host: nil))
    #expect(!ReportText.processIsGone(pid: me, host: "this-host", currentHost: "this-host"))
    #expect(!ReportText.processIsGone(pid: nil, host: nil))

    let child = Process()
    child.executableURL = URL(fileURLWithPath: "/bin/sh")
    child.arguments = ["-c", "exit 0"]
    try child.run()
    child.waitUntilExit()
    let gone = Int64(child.processIdentifier)
    #expect(ReportText.processIsGone(pid: gone, host: "this-host", currentHost: "this-host"))
    #expect(ReportText.processIsGone(pid: gone, host: nil))
    // On another host the pid means nothing here.
    #expect(!ReportText.processIsGone(pid: gone, host: "other-host", currentHost: "this-host"))
}

@Test func stepRangesSplitStepsIntoAtMostEightEvenRanges() {
    #expect(ReportText.stepRanges([]) == [])
    #expect(ReportText.stepRanges([5]) == [5...5])
    #expect(ReportText.stepRanges([1, 2, 3]) == [1...1, 2...2, 3...3])
    #expect(ReportText.stepRanges(Array(1...16)) == [1...2, 3...4, 5...6, 7...8, 9...10, 11...12, 13...14, 15...16])
    let ranges = ReportText.stepRanges(Array(1...100))
    #expect(ranges.count == 8 && ranges.first == 1...12 && ranges.last == 88...100)
    #expect(ranges.map(\.count).reduce(0, +) == 100)
    // Gaps in the steps stay inside the ranges; the ranges never overlap.
    #expect(ReportText.stepRanges([0, 10, 20, 30], maxRanges: 2) == [0...10, 20...30])
    #expect(ReportText.stepRanges([1, 2, 3], maxRanges: 0) == [1...3])
}

@Test func oneLineShowsLineBreaksAndCutsWithAnEllipsis() {
    #expect(ReportText.oneLine("What is 2 + 2?\nAnswer:", width: 40) == "What is 2 + 2?⏎Answer:")
    #expect(ReportText.oneLine("a\r\nb\rc\td", width: 40) == "a⏎b⏎c d")
    #expect(ReportText.oneLine("abcdefghij", width: 10) == "abcdefghij")
    #expect(ReportText.oneLine("abcdefghijk", width: 10) == "abcdefghi…")
    #expect(ReportText.oneLine("héllo ✓ wörld", width: 8) == "héllo ✓…")
    #expect(ReportText.oneLine("", width: 5) == "")
    #expect(ReportText.oneLine("abc", width: 0) == "")
    #expect(ReportText.percent(0.625) == "62%" || ReportText.percent(0.625) == "63%")
    #expect(ReportText.percent(1) == "100%" && ReportText.percent(.nan) == "-")
}
