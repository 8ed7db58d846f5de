import Foundation
import Testing
@testable import Report

// The chart kit: nice ticks (hand-computed with Heckbert's rules), scales, the escaping of
// hostile text in attributes and tooltips, and the geometry of the marks.

@Suite struct TicksTests {
    @Test func unitIntervalGetsFifths() {
        let t = Ticks(low: 0, high: 1, count: 5)
        #expect(t.step == 0.2)
        #expect(t.values == [0, 0.2, 0.4, 0.6, 0.8, 1])
        #expect(t.label(0.4) == "0.4")
        #expect(t.label(0.4, percent: true) == "40%")
    }

    @Test func extendsToWholeSteps() {
        // Span 2.54 -> nice 5; 5 / 4 = 1.25 rounds to 1: the axis is 0...3.
        let t = Ticks(low: 0.37, high: 2.91, count: 5)
        #expect((t.low, t.high, t.step) == (0, 3, 1))
        #expect(t.values == [0, 1, 2, 3])
        // Span 11.1 -> 20; 20 / 4 = 5: -5...10.
        let u = Ticks(low: -3.2, high: 7.9, count: 5)
        #expect((u.low, u.high, u.step) == (-5, 10, 5))
        #expect(u.values == [-5, 0, 5, 10])
        #expect(u.label(-5) == "-5")
    }

    @Test func withoutExtendTicksStayInside() {
        // Span 97 -> 100; 100 / 4 = 25 rounds to 20.
        let t = Ticks(low: 0, high: 97, count: 5, extend: false)
        #expect(t.values == [0, 20, 40, 60, 80])
        #expect((t.low, t.high) == (0, 97))
    }

    @Test func emptyIntervalIsWidenedWithoutBinaryNoise() {
        // 1 +- 10%: span 0.2 -> 0.2, step 0.05; 0.9 / 0.05 is 17.999999999999996 in binary.
        let t = Ticks(low: 1, high: 1, count: 5)
        #expect(t.step == 0.05)
        #expect(t.values == [0.9, 0.95, 1, 1.05, 1.1])
        #expect(t.values.map { t.label($0) } == ["0.90", "0.95", "1.00", "1.05", "1.10"])
        let zero = Ticks(low: 0, high: 0)
        #expect((zero.low, zero.high) == (-1, 1))
        let reversed = Ticks(low: 10, high: 0)
        #expect(reversed.values.first == 0 && reversed.values.last == 10)
    }

    @Test func scalesMapLinearlyBothWays() {
        let x = LinearScale(domain: (0, 1), range: (100, 300))
        #expect(x(0.25) == 150)
        #expect(x(1) == 300)
        let y = LinearScale(domain: (0, 10), range: (200, 0))
        #expect(y(2.5) == 150)
        #expect(LinearScale(domain: (3, 3), range: (0, 50))(3) == 25)
    }

    @Test func numbersAreFormattedDeterministically() {
        #expect(Format.coordinate(12.5) == "12.5")
        #expect(Format.coordinate(3.0) == "3")
        #expect(Format.coordinate(-0.001) == "0")
        #expect(Format.coordinate(.nan) == "0")
        #expect(Format.exact(0.625) == "0.625")
        #expect(Format.exact(1e-5) == "1e-05")
        #expect(Format.number(2.0 / 3.0) == "0.6667")
        #expect(Format.number(123456.7) == "123457")
        #expect(Format.number(0.00012) == "1.2e-04")
        #expect(Format.percent(0.625) == "62.5%")
        #expect(Format.duration(271) == "4m31s")
        #expect(Format.date(Date(timeIntervalSince1970: 1_764_609_900)) == "2025-12-01 17:25 UTC")
    }
}

@Suite struct SVGElementTests {
    @Test func hostileTextIsEscapedInAttributesTooltipsAndText() throws {
        let element = SVGElement("text", ["data-label": "a\"b<c>&'d"], tooltip: "<script>alert(1)</script>", text: "x & y < z 😀")
        #expect(try element.render()
                == "<text data-label=\"a&quot;b&lt;c&gt;&amp;&#39;d\"><title>&lt;script&gt;alert(1)&lt;/script&gt;</title>x &amp; y &lt; z 😀</text>")
        // An entity in the input is text too: it must come back as typed, not as the character it names.
        #expect(try SVGElement("text", text: "&amp; &lt;").render() == "<text>&amp;amp; &amp;lt;</text>")
    }

    @Test func childrenDoNotInheritTheirParentsTooltipOrText() throws {
        let element = SVGElement("g", ["class": "row"], tooltip: "parent", text: "", children: [
            SVGElement("rect", ["width": "3"]),
            SVGElement("g", children: [SVGElement("circle")]),
        ])
        #expect(try element.render() == "<g class=\"row\"><title>parent</title><rect width=\"3\"></rect><g><circle></circle></g></g>")
    }
}

@Suite struct ChartGeometryTests {
    @Test func barLengthsAreProportionalToTheValues() throws {
        let chart = IntervalChart(title: "win rates", axisLabel: "win rate",
                                  rows: [.init(label: "a vs b", value: 0.25, low: 0.1, high: 0.4),
                                         .init(label: "a vs c", value: 0.5),
                                         .init(label: "<b> & c", value: 1, low: 0.9, high: 1)],
                                  domain: (0, 1), reference: 0.5, percentAxis: true)
        let marks = chart.svg().descendants
        let bars = marks.filter { $0["class"] == "mark bar" }
        #expect(bars.map { $0["data-value"] } == ["0.25", "0.5", "1.0"])
        let widths = bars.compactMap { $0["width"].flatMap(Double.init) }
        #expect(widths.count == 3)
        #expect(abs(widths[0] * 2 - widths[1]) < 0.02 && abs(widths[0] * 4 - widths[2]) < 0.02)
        let starts = Set(bars.compactMap { $0["x"] })
        #expect(starts.count == 1)
        let whiskers = marks.filter { $0["class"] == "mark interval" }
        #expect(whiskers.map { $0["data-low"] } == ["0.1", "0.9"])
        #expect(whiskers.map { $0["data-high"] } == ["0.4", "1.0"])
        // The 50% line sits at the end of the 0.5 bar.
        let reference = try #require(marks.first { $0["class"] == "reference" })
        let start = try #require(starts.first.flatMap(Double.init))
        #expect(abs(Double(reference["x1"]!)! - (start + widths[1])) < 0.02)
        #expect(marks.contains { $0.tooltip.first?.contains("<b> & c") == true })
        let ticks = marks.filter { $0["class"] == "tick-label" }.map(\.text)
        #expect(ticks == ["0%", "20%", "40%", "60%", "80%", "100%"])
    }

    @Test func pointsAreOrderedAndCarryTheirIntervals() {
        let chart = IntervalChart(title: "ratings", axisLabel: "rating",
                                  rows: [.init(label: "p", value: 1.5, low: 1, high: 2), .init(label: "q", value: -0.5, low: -1, high: 0)],
                                  style: .points)
        let points = chart.svg().descendants.filter { $0["class"] == "mark point" }
        #expect(points.map { $0["data-value"] } == ["1.5", "-0.5"])
        let ys = points.compactMap { $0["cy"].flatMap(Double.init) }
        #expect(ys.count == 2 && ys[0] < ys[1])
        let xs = points.compactMap { $0["cx"].flatMap(Double.init) }
        #expect(xs[0] > xs[1])
    }

    @Test func longSeriesAreDrawnAsMeansOfConsecutivePoints() {
        let points = (1...10).map { ChartPoint(x: Double($0), y: Double($0 * $0)) }
        let reduced = LineChart.reduced(points, to: 4)
        // Runs of 3: (1,2,3), (4,5,6), (7,8,9), (10).
        #expect(reduced.map(\.count) == [3, 3, 3, 1])
        #expect(reduced.map(\.point.x) == [2, 5, 8, 10])
        let means: [Double] = [14.0 / 3, 77.0 / 3, 194.0 / 3, 100]
        #expect(reduced.map(\.point.y) == means)
        #expect(LineChart.reduced(points, to: 10).count == 10)
    }

    @Test func lineMarkersSitHigherForHigherValues() {
        let chart = LineChart(title: "loss", xLabel: "step", yLabel: "loss",
                              series: [.init(name: "train/loss", points: [.init(x: 1, y: 3), .init(x: 2, y: 1), .init(x: 3, y: .nan), .init(x: 4, y: 2)])])
        let marks = chart.svg().descendants.filter { $0["class"] == "mark point" }
        #expect(marks.map { $0["data-value"] } == ["3.0", "1.0", "2.0"])
        let ys = marks.compactMap { $0["cy"].flatMap(Double.init) }
        #expect(ys[0] < ys[2] && ys[2] < ys[1])
        let xs = marks.compactMap { $0["cx"].flatMap(Double.init) }
        #expect(xs == xs.sorted())
    }

    @Test func paretoPointsAreDrawnAsTheFront() {
        // The comparison marks the front (CompareStatistics.paretoFront); the chart draws what it is given.
        typealias F = ComparisonReportData.FrontierPoint
        let marked = [F(series: "s", label: "a", kl: 0, gold: 0.2, pareto: true), F(series: "s", label: "b", kl: 1, gold: 0.5, pareto: true),
                      F(series: "s", label: "c", kl: 2, gold: 0.4), F(series: "t", label: "d", kl: 3, gold: 0.7, pareto: true),
                      F(series: "t", label: "e", kl: 1, gold: 0.5, pareto: true), F(series: "t", label: "f", kl: 5, gold: 0.1)]
        let chart = ScatterChart(title: "frontier", xLabel: "KL", yLabel: "gold",
                                 points: marked.map { .init(series: $0.series, label: $0.label, x: $0.kl, y: $0.gold, highlighted: $0.pareto) })
        let elements = chart.svg().descendants
        #expect(elements.filter { $0["data-pareto"] == "true" }.count == 4)
        #expect(elements.first { $0["class"] == "front" }?["data-count"] == "4")
    }
}
