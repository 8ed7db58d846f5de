import Foundation

// A small SVG chart kit: scales, nice ticks, axes, legends, and four charts (line, horizontal
// interval bars or points, scatter with a highlighted front). Every mark carries its number in
// `data-value` (intervals also `data-low`/`data-high`) and a `<title>` tooltip, so a test can read
// the numbers back from the rendered page.

/// A linear map from a data interval onto a pixel interval (reversed ranges allowed, as for y).
struct LinearScale: Sendable, Equatable {
    let domainLow: Double, domainHigh: Double
    let rangeLow: Double, rangeHigh: Double

    init(domain: (Double, Double), range: (Double, Double)) {
        (domainLow, domainHigh) = domain
        (rangeLow, rangeHigh) = range
    }

    /// The pixel position of `x`; the middle of the range for an empty domain.
    func callAsFunction(_ x: Double) -> Double {
        guard domainHigh != domainLow else { return (rangeLow + rangeHigh) / 2 }
        return rangeLow + (x - domainLow) / (domainHigh - domainLow) * (rangeHigh - rangeLow)
    }
}

/// Axis ticks at nice numbers, 1, 2 or 5 times a power of ten (Heckbert, "Nice numbers for graph
/// labels", Graphics Gems, 1990).
struct Ticks: Sendable, Equatable {
    /// The axis interval: the data's, widened to whole steps when `extend`.
    let low: Double, high: Double
    /// The distance between ticks.
    let step: Double
    /// The tick positions, low to high.
    let values: [Double]

    /// About `count` ticks for data in [`low`, `high`] (given in either order). An empty or
    /// non-finite interval is widened first, so there are always at least two ticks' worth.
    init(low: Double, high: Double, count: Int = 5, extend: Bool = true) {
        var lo = low.isFinite ? low : 0, hi = high.isFinite ? high : 1
        if hi < lo { swap(&lo, &hi) }
        if hi == lo {
            let pad = lo == 0 ? 1 : abs(lo) * 0.1
            lo -= pad
            hi += pad
        }
        let range = Ticks.nice(hi - lo, round: false)
        let step = Ticks.nice(range / Double(max(1, count - 1)), round: true)
        // Ticks are whole multiples of the step, computed one by one so that errors do not add up;
        // the slack keeps 0.9 / 0.05 = 17.999999999999996 at 18.
        let slack = 1e-9
        let first = (lo / step + slack).rounded(.down), last = (hi / step - slack).rounded(.up)
        let from = extend ? first : (lo / step - slack).rounded(.up), to = extend ? last : (hi / step + slack).rounded(.down)
        var values: [Double] = []
        if from <= to {
            for i in stride(from: from, through: to, by: 1) { values.append(Ticks.clean(i * step, step: step)) }
        }
        self.low = extend ? Ticks.clean(first * step, step: step) : lo
        self.high = extend ? Ticks.clean(last * step, step: step) : hi
        self.step = step
        self.values = values
    }

    /// The nice number near `x` (> 0): rounded to the nearest of 1, 2, 5, 10 times its power of ten,
    /// or the next one up when not `round`.
    static func nice(_ x: Double, round: Bool) -> Double {
        let exponent = log10(x).rounded(.down)
        let power = pow(10, exponent)
        // The slack keeps a span of 1.1 - 0.9 = 0.20000000000000007 at 2, not 5.
        let fraction = x / power * (1 - 1e-12)
        let nice: Double
        if round {
            nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10
        } else {
            nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10
        }
        return nice * power
    }

    /// `x` without the binary noise of `i * step` (0.30000000000000004 -> 0.3).
    private static func clean(_ x: Double, step: Double) -> Double {
        let digits = max(0, -Int((log10(step) + 1e-9).rounded(.down))) + 1
        let scale = pow(10, Double(min(digits, 12)))
        let cleaned = (x * scale).rounded() / scale
        return cleaned == 0 ? 0 : cleaned
    }

    /// The label of tick `x`: percentages for a share axis, else as many decimals as the step needs.
    func label(_ x: Double, percent: Bool = false) -> String {
        percent ? Format.tick(x * 100, step: step * 100) + "%" : Format.tick(x, step: step)
    }
}

/// The chart colours (Okabe and Ito's colour-blind safe set, black last), in series order.
enum Palette {
    static let colors = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#7a6a00", "#333333"]

    static func color(_ i: Int) -> String { colors[i % colors.count] }
}

/// The plot area of a chart inside its margins.
struct ChartFrame: Sendable {
    let width: Double, height: Double
    let left: Double, right: Double, top: Double, bottom: Double

    var plotLeft: Double { left }
    var plotRight: Double { width - right }
    var plotTop: Double { top }
    var plotBottom: Double { height - bottom }
}

/// Shared pieces of the charts.
enum ChartParts {
    static let fontSize = 11.0

    /// About how wide `text` is at `size` pixels (a glyph is ~0.6 em wide in a sans-serif face).
    static func textWidth(_ text: String, size: Double = fontSize) -> Double { Double(text.count) * size * 0.6 }

    /// `text` cut to `limit` characters, with an ellipsis when cut.
    static func truncated(_ text: String, _ limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(max(1, limit - 1))) + "…"
    }

    static func c(_ x: Double) -> String { Format.coordinate(x) }

    /// The `<svg>` element of a chart of `kind` with its title.
    static func root(kind: String, title: String, frame: ChartFrame, children: [SVGElement]) -> SVGElement {
        let w = c(frame.width), h = c(frame.height)
        let heading = SVGElement("text", ["class": "chart-title", "x": c(frame.plotLeft), "y": "16"], text: title)
        return SVGElement("svg", ["class": "chart", "data-chart": kind, "width": w, "height": h, "viewBox": "0 0 \(w) \(h)",
                                  "role": "img", "aria-label": title],
                          children: [SVGElement("title", text: title), heading] + children)
    }

    /// The left margin that fits the widest label of `ticks` and the turned axis name beside it.
    static func leftMargin(_ ticks: Ticks) -> Double {
        max(56, (ticks.values.map { textWidth(ticks.label($0)) }.max() ?? 0) + 34)
    }

    /// A horizontal axis at the plot's bottom: grid lines, tick marks and labels, and its name.
    static func xAxis(_ scale: LinearScale, _ ticks: Ticks, frame: ChartFrame, label: String, percent: Bool = false,
                      grid: Bool = true) -> [SVGElement] {
        var parts: [SVGElement] = []
        let y = frame.plotBottom
        for t in ticks.values {
            let x = c(scale(t))
            if grid { parts.append(SVGElement("line", ["class": "grid", "x1": x, "x2": x, "y1": c(frame.plotTop), "y2": c(y)])) }
            parts.append(SVGElement("line", ["class": "tick", "x1": x, "x2": x, "y1": c(y), "y2": c(y + 4)]))
            parts.append(SVGElement("text", ["class": "tick-label", "x": x, "y": c(y + 15), "text-anchor": "middle"],
                                    text: ticks.label(t, percent: percent)))
        }
        parts.append(SVGElement("line", ["class": "axis", "x1": c(frame.plotLeft), "x2": c(frame.plotRight), "y1": c(y), "y2": c(y)]))
        parts.append(SVGElement("text", ["class": "axis-label", "x": c((frame.plotLeft + frame.plotRight) / 2), "y": c(y + 30),
                                         "text-anchor": "middle"], text: label))
        return parts
    }

    /// A vertical axis at the plot's left: grid lines, tick marks and labels, and its name (turned).
    static func yAxis(_ scale: LinearScale, _ ticks: Ticks, frame: ChartFrame, label: String) -> [SVGElement] {
        var parts: [SVGElement] = []
        let x = frame.plotLeft
        for t in ticks.values {
            let y = c(scale(t))
            parts.append(SVGElement("line", ["class": "grid", "x1": c(x), "x2": c(frame.plotRight), "y1": y, "y2": y]))
            parts.append(SVGElement("line", ["class": "tick", "x1": c(x - 4), "x2": c(x), "y1": y, "y2": y]))
            parts.append(SVGElement("text", ["class": "tick-label", "x": c(x - 6), "y": c(scale(t) + 4), "text-anchor": "end"],
                                    text: ticks.label(t)))
        }
        parts.append(SVGElement("line", ["class": "axis", "x1": c(x), "x2": c(x), "y1": c(frame.plotTop), "y2": c(frame.plotBottom)]))
        let middle = (frame.plotTop + frame.plotBottom) / 2
        parts.append(SVGElement("text", ["class": "axis-label", "x": "12", "y": c(middle), "text-anchor": "middle",
                                         "transform": "rotate(-90 12 \(c(middle)))"], text: label))
        return parts
    }

    /// One legend entry: a name and its swatch (`line` for a line, else a square).
    struct LegendItem {
        let name: String
        let color: String
        var line = false
    }

    /// Legend entries in rows from (`x`, `y`) not wider than `width`; returns them and the height used.
    static func legend(_ items: [LegendItem], x: Double, y: Double, width: Double) -> (parts: [SVGElement], height: Double) {
        guard !items.isEmpty else { return ([], 0) }
        var parts: [SVGElement] = []
        var cx = x, cy = y
        for item in items {
            let name = truncated(item.name, 40)
            let itemWidth = 16 + textWidth(name) + 14
            if cx > x, cx + itemWidth > x + width {
                cx = x
                cy += 16
            }
            let swatch = item.line
                ? SVGElement("line", ["class": "swatch", "x1": c(cx), "x2": c(cx + 12), "y1": c(cy), "y2": c(cy),
                                      "stroke": item.color, "stroke-width": "2"])
                : SVGElement("rect", ["class": "swatch", "x": c(cx), "y": c(cy - 5), "width": "10", "height": "10", "fill": item.color])
            parts.append(SVGElement("g", ["class": "legend-item"], tooltip: item.name, children: [
                swatch, SVGElement("text", ["x": c(cx + 16), "y": c(cy + 4)], text: name),
            ]))
            cx += itemWidth
        }
        return (parts, cy - y + 16)
    }

    /// A note in the middle of an empty plot.
    static func empty(_ frame: ChartFrame, _ text: String) -> SVGElement {
        SVGElement("text", ["class": "empty", "x": c((frame.plotLeft + frame.plotRight) / 2), "y": c((frame.plotTop + frame.plotBottom) / 2),
                            "text-anchor": "middle"], text: text)
    }
}

/// A point of a chart.
struct ChartPoint: Sendable, Equatable {
    let x: Double
    let y: Double
}

/// Lines over a shared x axis (a stage's metrics over steps, gold reward over sqrt KL): a polyline
/// per series and a marker at each point (`data-x`, `data-value`).
struct LineChart: Sendable {
    struct Series: Sendable {
        let name: String
        let points: [ChartPoint]
    }

    var title: String
    var xLabel: String
    var yLabel: String
    var series: [Series]
    var width = 580.0
    var height = 300.0
    /// Series longer than this are drawn as that many means of consecutive points.
    var maxPoints = 400

    func svg() -> SVGElement {
        typealias P = ChartParts
        let drawn = series.map { s in (name: s.name, points: Self.reduced(s.points.filter { $0.x.isFinite && $0.y.isFinite }, to: maxPoints)) }
        let legendItems = series.count > 1 ? drawn.enumerated().map { P.LegendItem(name: $1.name, color: Palette.color($0), line: true) } : []
        let all = drawn.flatMap { $0.points.map(\.point) }
        let xs = all.map(\.x), ys = all.map(\.y)
        let yTicks = Ticks(low: ys.min() ?? 0, high: ys.max() ?? 1, count: 5)
        let left = P.leftMargin(yTicks)
        let legend = P.legend(legendItems, x: left, y: 30, width: width - left - 16)
        let frame = ChartFrame(width: width, height: height + legend.height, left: left, right: 16, top: 30 + legend.height + 4, bottom: 42)
        guard !all.isEmpty else {
            return P.root(kind: "line", title: title, frame: frame, children: legend.parts + [P.empty(frame, "no finite values")])
        }
        let xTicks = Ticks(low: xs.min()!, high: xs.max()!, count: 6, extend: xs.min()! == xs.max()!)
        let x = LinearScale(domain: (xTicks.low, xTicks.high), range: (frame.plotLeft, frame.plotRight))
        let y = LinearScale(domain: (yTicks.low, yTicks.high), range: (frame.plotBottom, frame.plotTop))
        var parts = legend.parts + P.yAxis(y, yTicks, frame: frame, label: yLabel) + P.xAxis(x, xTicks, frame: frame, label: xLabel)
        for (i, s) in drawn.enumerated() where !s.points.isEmpty {
            let color = Palette.color(i)
            let coordinates = s.points.map { "\(P.c(x($0.point.x))),\(P.c(y($0.point.y)))" }.joined(separator: " ")
            var marks = [SVGElement("polyline", ["class": "line", "points": coordinates, "fill": "none", "stroke": color,
                                                 "stroke-width": "1.6", "data-series": s.name, "data-count": String(s.points.count)])]
            let radius = s.points.count <= 80 ? "2.4" : "1.3"
            for p in s.points {
                let at = p.count == 1 ? "\(xLabel) \(Format.number(p.point.x))" : "\(xLabel) \(Format.number(p.first))–\(Format.number(p.last)) (mean of \(p.count))"
                var mark = SVGElement("circle", ["class": "mark point", "cx": P.c(x(p.point.x)), "cy": P.c(y(p.point.y)), "r": radius,
                                                 "fill": color, "data-series": s.name, "data-x": Format.exact(p.point.x),
                                                 "data-value": Format.exact(p.point.y)],
                                      tooltip: "\(s.name), \(at): \(Format.number(p.point.y))")
                if p.count > 1 { mark.set("data-count", String(p.count)) }
                marks.append(mark)
            }
            parts.append(SVGElement("g", ["class": "series", "data-series": s.name], children: marks))
        }
        return P.root(kind: "line", title: title, frame: frame, children: parts)
    }

    /// A drawn point: the mean of `count` consecutive points from x `first` to `last`.
    struct Reduced {
        let point: ChartPoint
        let count: Int
        let first: Double
        let last: Double
    }

    /// `points` as at most `limit` means of runs of consecutive points (all of them when fewer).
    static func reduced(_ points: [ChartPoint], to limit: Int) -> [Reduced] {
        guard points.count > limit, limit > 0 else { return points.map { Reduced(point: $0, count: 1, first: $0.x, last: $0.x) } }
        let size = (points.count + limit - 1) / limit
        return stride(from: 0, to: points.count, by: size).map { start in
            let run = points[start..<min(points.count, start + size)]
            let n = Double(run.count)
            return Reduced(point: ChartPoint(x: run.map(\.x).reduce(0, +) / n, y: run.map(\.y).reduce(0, +) / n),
                           count: run.count, first: run.first!.x, last: run.last!.x)
        }
    }
}

/// Horizontal rows, each a value with an optional interval: bars from zero (win rates, KL,
/// lengths) or points (ratings), whiskers for the intervals, and an optional dashed reference line
/// (50% for win rates).
struct IntervalChart: Sendable {
    enum Style: Sendable { case bars, points }

    struct Row: Sendable {
        let label: String
        let value: Double
        var low: Double? = nil
        var high: Double? = nil
        /// The text at the row's right end (e.g. `62.5% [55.1%, 69.4%]`).
        var note: String = ""
        var tooltip: String = ""
        /// More `data-` attributes for the row's mark (name without the prefix).
        var data: [(String, String)] = []
    }

    var title: String
    var axisLabel: String
    var rows: [Row]
    var style: Style = .bars
    /// A fixed axis interval (win rates: 0...1); nil fits the data (and zero, for bars).
    var domain: (Double, Double)? = nil
    var reference: Double? = nil
    var percentAxis = false
    var width = 580.0

    func svg() -> SVGElement {
        typealias P = ChartParts
        let rowHeight = 24.0
        let labelWidth = min(210, max(60, (rows.map { P.textWidth(P.truncated($0.label, 32)) }.max() ?? 0) + 10))
        let noteWidth = min(190, max(0, (rows.map { P.textWidth($0.note) }.max() ?? 0) + 10))
        let frame = ChartFrame(width: width, height: 30 + rowHeight * Double(max(1, rows.count)) + 44, left: labelWidth,
                               right: noteWidth + 8, top: 30, bottom: 44)
        let finite = rows.filter { $0.value.isFinite }
        var extent = finite.flatMap { [$0.value, $0.low ?? $0.value, $0.high ?? $0.value].filter(\.isFinite) }
        if style == .bars { extent.append(0) }
        if let reference { extent.append(reference) }
        let ticks: Ticks
        if let domain {
            ticks = Ticks(low: domain.0, high: domain.1, count: 5, extend: false)
        } else {
            ticks = Ticks(low: extent.min() ?? 0, high: extent.max() ?? 1, count: 5)
        }
        let lo = domain?.0 ?? ticks.low, hi = domain?.1 ?? ticks.high
        let x = LinearScale(domain: (lo, hi), range: (frame.plotLeft, frame.plotRight))
        let clamp = { (v: Double) in min(max(v, lo), hi) }
        var parts = P.xAxis(x, ticks, frame: frame, label: axisLabel, percent: percentAxis)
        parts.append(SVGElement("line", ["class": "axis", "x1": P.c(frame.plotLeft), "x2": P.c(frame.plotLeft),
                                         "y1": P.c(frame.plotTop), "y2": P.c(frame.plotBottom)]))
        if rows.isEmpty { parts.append(P.empty(frame, "no rows")) }
        for (i, row) in rows.enumerated() {
            let mid = frame.plotTop + rowHeight * (Double(i) + 0.5)
            var data: [(String, String)] = [("data-value", Format.exact(row.value))]
            if let low = row.low { data.append(("data-low", Format.exact(low))) }
            if let high = row.high { data.append(("data-high", Format.exact(high))) }
            data += row.data.map { ("data-" + $0.0, $0.1) }
            let tooltip = row.tooltip.isEmpty ? "\(row.label): \(row.note)" : row.tooltip
            var children = [SVGElement("text", ["class": "row-label", "x": P.c(frame.plotLeft - 6), "y": P.c(mid + 4), "text-anchor": "end"],
                                       tooltip: row.label, text: P.truncated(row.label, 32))]
            if row.value.isFinite {
                var mark: SVGElement
                switch style {
                case .bars:
                    let base = x(clamp(0)), end = x(clamp(row.value))
                    mark = SVGElement("rect", ["class": "mark bar", "x": P.c(min(base, end)), "y": P.c(mid - 7),
                                               "width": P.c(abs(end - base)), "height": "14", "fill": Palette.color(0)],
                                      tooltip: tooltip)
                case .points:
                    mark = SVGElement("circle", ["class": "mark point", "cx": P.c(x(clamp(row.value))), "cy": P.c(mid), "r": "4.5",
                                                 "fill": Palette.color(0)], tooltip: tooltip)
                }
                for (name, value) in data { mark.set(name, value) }
                if let low = row.low, let high = row.high, low.isFinite, high.isFinite {
                    let l = P.c(x(clamp(low))), h = P.c(x(clamp(high)))
                    var whisker = SVGElement("path", ["class": "mark interval",
                                                      "d": "M\(l) \(P.c(mid))H\(h)M\(l) \(P.c(mid - 5))V\(P.c(mid + 5))M\(h) \(P.c(mid - 5))V\(P.c(mid + 5))",
                                                      "stroke": "#222", "stroke-width": "1.3", "fill": "none"],
                                             tooltip: "\(row.label): interval \(Format.number(low)) to \(Format.number(high))")
                    for (name, value) in data { whisker.set(name, value) }
                    // Points sit on top of their whiskers; bars below them.
                    children += style == .bars ? [mark, whisker] : [whisker, mark]
                } else {
                    children.append(mark)
                }
            }
            if !row.note.isEmpty {
                children.append(SVGElement("text", ["class": "row-note", "x": P.c(frame.plotRight + 8), "y": P.c(mid + 4)], text: row.note))
            }
            parts.append(SVGElement("g", ["class": "row"], children: children))
        }
        if let reference, reference >= lo, reference <= hi {
            let rx = P.c(x(reference))
            parts.append(SVGElement("line", ["class": "reference", "x1": rx, "x2": rx, "y1": P.c(frame.plotTop - 4),
                                             "y2": P.c(frame.plotBottom), "data-value": Format.exact(reference)],
                                    tooltip: "reference \(percentAxis ? Format.percent(reference) : Format.number(reference))"))
        }
        return P.root(kind: style == .bars ? "bars" : "points", title: title, frame: frame, children: parts)
    }
}

/// Points in the plane coloured by series, the highlighted ones (a Pareto front) drawn larger and
/// joined in x order (the reward-vs-KL frontier).
struct ScatterChart: Sendable {
    struct Point: Sendable {
        let series: String
        let label: String
        let x: Double
        let y: Double
        let highlighted: Bool
    }

    var title: String
    var xLabel: String
    var yLabel: String
    var points: [Point]
    var highlightName = "Pareto front"
    var width = 580.0
    var height = 340.0

    func svg() -> SVGElement {
        typealias P = ChartParts
        var seriesNames: [String] = []
        for p in points where !seriesNames.contains(p.series) { seriesNames.append(p.series) }
        let drawn = points.filter { $0.x.isFinite && $0.y.isFinite }
        let yTicks = Ticks(low: drawn.map(\.y).min() ?? 0, high: drawn.map(\.y).max() ?? 1, count: 5)
        let left = P.leftMargin(yTicks)
        let items = seriesNames.enumerated().map { P.LegendItem(name: $1, color: Palette.color($0)) }
            + [P.LegendItem(name: highlightName, color: "#222", line: true)]
        let legend = P.legend(items, x: left, y: 30, width: width - left - 16)
        let frame = ChartFrame(width: width, height: height + legend.height, left: left, right: 24, top: 30 + legend.height + 4, bottom: 42)
        guard !drawn.isEmpty else {
            return P.root(kind: "scatter", title: title, frame: frame, children: legend.parts + [P.empty(frame, "no finite points")])
        }
        let xTicks = Ticks(low: drawn.map(\.x).min()!, high: drawn.map(\.x).max()!, count: 6)
        let x = LinearScale(domain: (xTicks.low, xTicks.high), range: (frame.plotLeft, frame.plotRight))
        let y = LinearScale(domain: (yTicks.low, yTicks.high), range: (frame.plotBottom, frame.plotTop))
        var parts = legend.parts + P.yAxis(y, yTicks, frame: frame, label: yLabel) + P.xAxis(x, xTicks, frame: frame, label: xLabel)
        let front = drawn.filter(\.highlighted).sorted { ($0.x, $0.y) < ($1.x, $1.y) }
        if front.count > 1 {
            parts.append(SVGElement("polyline", ["class": "front", "points": front.map { "\(P.c(x($0.x))),\(P.c(y($0.y)))" }.joined(separator: " "),
                                                 "fill": "none", "stroke": "#222", "stroke-width": "1.5", "stroke-dasharray": "5 3",
                                                 "data-count": String(front.count)], tooltip: "\(highlightName): \(front.count) points"))
        }
        let labelled = drawn.count <= 12 ? drawn : front
        for p in drawn.sorted(by: { !$0.highlighted && $1.highlighted }) {
            let color = Palette.color(seriesNames.firstIndex(of: p.series) ?? 0)
            parts.append(SVGElement("circle", ["class": p.highlighted ? "mark point pareto" : "mark point", "cx": P.c(x(p.x)),
                                               "cy": P.c(y(p.y)), "r": p.highlighted ? "5.5" : "3.8", "fill": color,
                                               "stroke": p.highlighted ? "#111" : "none", "stroke-width": "1.5",
                                               "data-series": p.series, "data-label": p.label, "data-x": Format.exact(p.x),
                                               "data-value": Format.exact(p.y), "data-pareto": p.highlighted ? "true" : "false"],
                                    tooltip: "\(p.series) \(p.label): \(xLabel) \(Format.number(p.x)), \(yLabel) \(Format.number(p.y))"
                                        + (p.highlighted ? " (\(highlightName))" : "")))
        }
        for p in labelled where !p.label.isEmpty {
            parts.append(SVGElement("text", ["class": "point-label", "x": P.c(x(p.x) + 7), "y": P.c(y(p.y) - 6)],
                                    text: P.truncated(p.label, 24)))
        }
        return P.root(kind: "scatter", title: title, frame: frame, children: parts)
    }
}
