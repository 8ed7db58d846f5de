import Foundation
import Report
import Store
#if canImport(Glibc)
import Glibc
#endif

/// One line of a `ReportText.chart`: a metric's values by step, drawn with `mark`.
public struct ChartSeries {
    /// The legend text, e.g. `train/loss`.
    public var name: String
    /// The character the points are drawn with.
    public var mark: Character
    /// The values by step (any order; non-finite values are left out).
    public var points: [(step: Int, value: Double)]

    /// A series named `name` drawn with `mark`.
    public init(name: String, mark: Character, points: [(step: Int, value: Double)]) {
        self.name = name
        self.mark = mark
        self.points = points
    }
}

/// Plain-text pieces of run reports (`rein runs`): durations, numbers, dates, tables, CSV fields
/// and a text chart of metric series. Pure functions, except `processIsGone`.
public enum ReportText {
    /// A short duration: `3.2s`, `42s`, `4m05s`, `2h03m`, `3d04h`; negative or non-finite is `0s`
    /// (the HTML report's own).
    public static func duration(_ seconds: Double) -> String { Report.Format.duration(seconds) }

    /// A metric value in few characters: whole numbers as integers, 4 significant digits between
    /// 0.001 and 1000, no decimals up to 1e6, scientific otherwise (`2e-04`, `1.5e+07`); the HTML
    /// report's own.
    public static func number(_ x: Double) -> String { Report.Format.number(x) }

    /// `2026-11-22 13:27` in `timeZone` (default: the local one).
    public static func shortDate(_ date: Date, timeZone: TimeZone = .current) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = timeZone
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        return formatter.string(from: date)
    }

    /// Rows as aligned lines: columns padded to their widest cell and separated by two spaces,
    /// columns in `rightAligned` padded on the left; no trailing spaces.
    public static func table(_ rows: [[String]], rightAligned: Set<Int> = []) -> [String] {
        let columns = rows.map(\.count).max() ?? 0
        var widths = Array(repeating: 0, count: columns)
        for row in rows {
            for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) }
        }
        return rows.map { row in
            let cells = row.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                return rightAligned.contains(i) ? pad + cell : cell + pad
            }
            return trimmingTrailingSpaces(cells.joined(separator: "  "))
        }
    }

    /// `items` joined by two spaces into lines of at most `width` characters (an item longer than
    /// that gets a line of its own), each line starting with `indent`.
    public static func wrap(_ items: [String], width: Int, indent: String = "") -> [String] {
        var lines: [String] = []
        var line = ""
        for item in items {
            if line.isEmpty {
                line = indent + item
            } else if line.count + 2 + item.count <= width {
                line += "  " + item
            } else {
                lines.append(line)
                line = indent + item
            }
        }
        if !line.isEmpty { lines.append(line) }
        return lines
    }

    /// Metric names for display: `eval/*` first, then the rest, each group sorted.
    public static func metricOrder(_ names: some Sequence<String>) -> [String] {
        names.sorted { a, b in
            let evalA = a.hasPrefix("eval/"), evalB = b.hasPrefix("eval/")
            return evalA == evalB ? a < b : evalA
        }
    }

    /// Completed of all stages, e.g. `3/4` or `3/4 (1 skipped)`; stages reusing another's output
    /// count as completed and skipped. `planned` (the recipe's stage count) raises the total when
    /// the run has not reached every stage yet.
    public static func stageProgress(_ stages: [Stage], planned: Int? = nil) -> String {
        let completed = stages.filter { $0.status == .completed }.count
        let skipped = stages.filter { $0.status == .completed && $0.reusedStageId != nil }.count
        let total = max(stages.count, planned ?? 0)
        return "\(completed)/\(total)" + (skipped > 0 ? " (\(skipped) skipped)" : "")
    }

    /// Whether the process that marked a run `running` is known to have exited: `pid` is on this
    /// host (or the host is unrecorded) and `kill(pid, 0)` fails with ESRCH. A reused pid or
    /// another host reads as alive.
    public static func processIsGone(pid: Int64?, host: String?,
                                     currentHost: String = ProcessInfo.processInfo.hostName) -> Bool {
        guard let pid, pid > 0, pid <= Int64(Int32.max) else { return false }
        if let host, host != currentHost { return false }
        return kill(pid_t(pid), 0) != 0 && errno == ESRCH
    }

    // MARK: - CSV

    /// One CSV field (RFC 4180): quoted when it holds a comma, quote, line break or edge space,
    /// with quotes doubled.
    public static func csvField(_ field: String) -> String {
        let needsQuotes = field.unicodeScalars.contains { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }
            || field.hasPrefix(" ") || field.hasSuffix(" ")
        guard needsQuotes else { return field }
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// One CSV record, without the line ending.
    public static func csvRow(_ fields: [String]) -> String {
        fields.map(csvField).joined(separator: ",")
    }

    // MARK: - Rollouts

    /// `steps` (ascending, distinct) split into at most `maxRanges` ranges of consecutive entries,
    /// as equal in size as they can be, each as its first and last step; empty for no steps.
    public static func stepRanges(_ steps: [Int], maxRanges: Int = 8) -> [ClosedRange<Int>] {
        let n = steps.count, k = min(max(1, maxRanges), n)
        guard k > 0 else { return [] }
        return (0..<k).map { i in steps[i * n / k]...steps[(i + 1) * n / k - 1] }
    }

    /// `text` on one line of at most `width` characters: line breaks shown as `⏎`, tabs and other
    /// control characters as spaces, and an ellipsis (`…`) in the last place when it is cut.
    public static func oneLine(_ text: String, width: Int) -> String {
        var line = ""
        var count = 0
        var cut = false
        for character in text.replacingOccurrences(of: "\r\n", with: "\n") {
            let shown: Character
            if character == "\n" || character == "\r" {
                shown = "⏎"
            } else if character.unicodeScalars.allSatisfy({ $0.properties.generalCategory == .control }) {
                shown = " "
            } else {
                shown = character
            }
            if count == max(0, width) {
                cut = true
                break
            }
            line.append(shown)
            count += 1
        }
        if cut, width > 0 {
            line.removeLast()
            line.append("…")
        }
        return line
    }

    /// A share in [0, 1] as a whole percentage: `62%`; `-` when not finite.
    public static func percent(_ share: Double) -> String {
        share.isFinite ? String(format: "%.0f%%", share * 100) : "-"
    }

    // MARK: - Chart

    /// A text chart of `series` over steps, in plain ASCII: a legend line, `height` rows (one when
    /// every value is equal) labelled with the top and bottom values, an axis, and the first and
    /// last step. Columns are steps, one per step up to `maxWidth` columns; points sharing a
    /// column are averaged, so the labels give the range drawn. Later series draw over earlier
    /// ones. No lines when there is no finite point.
    public static func chart(_ series: [ChartSeries], height: Int = 8, maxWidth: Int = 60) -> [String] {
        let finite = series.map { s in s.points.filter { $0.value.isFinite } }
        let all = finite.flatMap { $0 }
        guard let minStep = all.map(\.step).min(), let maxStep = all.map(\.step).max() else { return [] }
        let width = max(1, min(maxWidth, maxStep - minStep + 1))
        func column(_ step: Int) -> Int {
            maxStep == minStep ? 0 : Int((Double(step - minStep) / Double(maxStep - minStep) * Double(width - 1)).rounded())
        }
        // The mean value of each series in each column it has points in.
        let columns: [[Int: Double]] = finite.map { points in
            var sums: [Int: (sum: Double, count: Int)] = [:]
            for p in points {
                let c = column(p.step), old = sums[c] ?? (0, 0)
                sums[c] = (old.sum + p.value, old.count + 1)
            }
            return sums.mapValues { $0.sum / Double($0.count) }
        }
        let values = columns.flatMap(\.values)
        let lo = values.min()!, hi = values.max()!
        let rows = hi > lo ? max(1, height) : 1
        func row(_ value: Double) -> Int {
            rows == 1 ? 0 : Int(((value - lo) / (hi - lo) * Double(rows - 1)).rounded())
        }
        var grid = Array(repeating: Array(repeating: Character(" "), count: width), count: rows)
        for (s, byColumn) in zip(series, columns) {
            for (c, v) in byColumn { grid[rows - 1 - row(v)][c] = s.mark }
        }
        let top = number(hi), bottom = number(lo)
        let labelWidth = max(top.count, bottom.count)
        func label(_ text: String) -> String { String(repeating: " ", count: labelWidth - text.count) + text }

        let legend = zip(series, finite).filter { !$0.1.isEmpty }.map { s, _ in "\(s.mark) \(s.name)" }
        var lines = [legend.joined(separator: "  ")]
        for (i, cells) in grid.enumerated() {
            let text = i == 0 ? label(top) : i == rows - 1 ? label(bottom) : label("")
            lines.append(trimmingTrailingSpaces(text + " |" + String(cells)))
        }
        lines.append(label("") + " +" + String(repeating: "-", count: width))
        var steps = label("") + "  " + String(minStep)
        if maxStep != minStep {
            let last = String(maxStep)
            steps += String(repeating: " ", count: max(1, width - String(minStep).count - last.count)) + last
        }
        lines.append(steps)
        return lines
    }

    private static func trimmingTrailingSpaces(_ text: String) -> String {
        var text = Substring(text)
        while text.hasSuffix(" ") { text.removeLast() }
        return String(text)
    }
}
