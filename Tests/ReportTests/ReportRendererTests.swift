import Foundation
import Testing
import Store
@testable import Report

// The HTML of the run and comparison reports, read as text: self-contained, escaped, and every
// number the store (or the comparison data) holds is on its mark.

/// The markup that would make a page fetch something or run code.
private let fetchingMarkup = ["<script", "<link", "<img", "<iframe", "src=", "url(", "@import", "http://", "https://"]

@Suite struct RunPageTests {
    @Test func runReportIsSelfContainedAndEscaped() throws {
        let tiny = try TinyRun()
        let html = try ReportRenderer.render(runId: tiny.run.id!, store: tiny.store)
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        for markup in fetchingMarkup { #expect(!html.contains(markup), "the report contains \(markup)") }
        #expect(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39; 😀"))
        #expect(html.contains(longResponse))
        #expect(html.contains("<h1>Run \(tiny.run.id!): tiny-ppo</h1>") && !html.contains("<h2>Run"))
        #expect(html.contains("took 1h06m"))
        #expect(html.contains("<td class=\"num\">4m31s</td>"))
        #expect(html.contains("name: tiny-ppo\nseed: 3"))
        // Rendering is deterministic.
        #expect(try ReportRenderer.render(runId: tiny.run.id!, store: tiny.store) == html)
    }

    @Test func everyStoredValueIsOnAMarker() throws {
        let tiny = try TinyRun()
        let html = try ReportRenderer.render(runId: tiny.run.id!, store: tiny.store)
        for stage in [tiny.sft, tiny.ppo] {
            let series = try tiny.chartedSeries(stage)
            #expect(!series.isEmpty)
            let charts = html.components(separatedBy: "<svg ").filter { $0.contains("data-stage=\"\(stage.stageKey)\"") }
            for (name, values) in series {
                let markers = charts.flatMap { startTags("<svg " + $0, tag: "circle", containing: "data-series=\"\(name)\"") }
                #expect(markers.map { Double($0["data-x"]!)! } == values.map { Double($0.step) }, "\(stage.stageKey) \(name)")
                #expect(markers.map { Double($0["data-value"]!)! } == values.map(\.value), "\(stage.stageKey) \(name)")
            }
        }
        // A metric logged once (none here) gets no chart; the constant learning rate gets one.
        #expect(html.contains("aria-label=\"learning_rate\""))
        // train/loss and eval/loss share one chart, the training series first.
        let lossChart = try #require(html.components(separatedBy: "<svg ").first { $0.contains("data-stage=\"sft\"") && $0.contains("aria-label=\"loss\"") })
        let trainAt = try #require(lossChart.range(of: "data-series=\"train/loss\""))
        let evalAt = try #require(lossChart.range(of: "data-series=\"eval/loss\""))
        #expect(trainAt.lowerBound < evalAt.lowerBound)
        // Final metrics carry their exact values.
        for (name, value) in try tiny.store.finalMetrics(stageId: tiny.ppo.id!) {
            #expect(html.contains("<td>\(name)</td><td class=\"num\" data-value=\"\(Format.exact(value))\">"))
        }
    }

    @Test func rolloutsOfTheLastStepHighestRewardFirst() throws {
        let tiny = try TinyRun()
        let html = try ReportRenderer.render(runId: tiny.run.id!, store: tiny.store)
        #expect(html.contains("Rollouts at step 12 (6 there)"))
        let table = try #require(html.components(separatedBy: "<table class=\"rollouts\">").last?.components(separatedBy: "</table>").first)
        let rows = table.components(separatedBy: "<tr><td>").dropFirst()
        let sorted = TinyRun.rewards.sorted(by: >)
        let expected = sorted.prefix(3).enumerated().map { ("highest \($0 + 1)", $1) } + sorted.suffix(3).enumerated().map { ("lowest \(3 - $0)", $1) }
        #expect(rows.count == expected.count)
        for (row, (rank, reward)) in zip(rows, expected) {
            #expect(row.hasPrefix(rank + "</td><td class=\"num\">" + Format.number(reward) + "</td>"), "\(row.prefix(80))")
        }
        #expect(!html.contains("early reply"))
    }

    @Test func unknownRunIsAClearError() throws {
        let tiny = try TinyRun()
        #expect(throws: ReportError.self) { try ReportRenderer.render(runId: 99, store: tiny.store) }
        do { _ = try ReportRenderer.render(runId: 99, store: tiny.store) } catch {
            #expect("\(error)" == "\(tiny.store.path) has no run 99")
        }
    }
}

@Suite struct ComparisonReportTests {
    @Test func fixtureRoundTripsThroughJSON() throws {
        let data = try comparisonFixture()
        #expect(data.policies.count == 3 && data.pairs.count == 4 && data.samples.count == 2)
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        #expect(try decoder.decode(ComparisonReportData.self, from: encoder.encode(data)) == data)
    }

    @Test func everyPairRankingAndFrontierNumberIsOnItsMark() throws {
        let data = try comparisonFixture()
        let html = try ReportRenderer.render(comparison: data, store: nil)
        for markup in fetchingMarkup { #expect(!html.contains(markup), "the report contains \(markup)") }
        #expect(html.contains("<title>SFT against PPO &lt;b&gt;&amp;&lt;/b&gt; &quot;best-of-4&quot;</title>"))
        #expect(html.contains("Run 1 is left out: no store was given."))

        let bars = startTags(html, tag: "rect", containing: "class=\"mark bar\"").filter { $0["data-judge"] != nil }
        #expect(bars.count == data.pairs.count)
        for pair in data.pairs {
            let bar = try #require(bars.first { $0["data-judge"] == pair.judge && $0["data-a"] == pair.a && $0["data-b"] == pair.b })
            #expect(Double(bar["data-value"]!) == pair.winRate)
            #expect(Double(bar["data-low"]!) == pair.winRateLow)
            #expect(Double(bar["data-high"]!) == pair.winRateHigh)
            #expect(bar["data-n"] == String(pair.n))
        }
        // Ratings are drawn best first.
        let points = startTags(html, tag: "circle", containing: "data-rank-low=")
        let ranking = data.ranking.sorted { $0.rating > $1.rating }
        #expect(points.map { $0["data-policy"]! } == ranking.map(\.policy))
        #expect(points.map { Double($0["data-value"]!)! } == ranking.map(\.rating))
        #expect(points.map { $0["data-rank-high"]! } == ranking.map { String($0.rankHigh) })

        let frontier = startTags(html, tag: "circle", containing: "data-pareto=")
        #expect(frontier.count == data.frontier.count)
        #expect(frontier.filter { $0["data-pareto"] == "true" }.count == data.frontier.filter(\.pareto).count)
        for p in data.frontier {
            #expect(frontier.contains { $0["data-label"] == p.label && Double($0["data-x"]!) == p.kl && Double($0["data-value"]!) == p.gold })
        }
        // The over-optimization view: gold and proxy against the square root of KL.
        let proxyChart = try #require(html.components(separatedBy: "<svg ").first { $0.contains("aria-label=\"proxy reward against √KL\"") })
        let proxied = data.frontier.filter { $0.proxy != nil }
        let proxyMarks = startTags("<svg " + proxyChart, tag: "circle", containing: "class=\"mark point\"")
        #expect(proxyMarks.map { Double($0["data-value"]!)! } == proxied.sorted { $0.kl < $1.kl }.map { $0.proxy! })
        #expect(proxyMarks.map { Double($0["data-x"]!)! } == proxied.sorted { $0.kl < $1.kl }.map { $0.kl.squareRoot() })

        let kl = startTags(html, tag: "rect", containing: "class=\"mark bar\"").filter { $0["data-policy"] != nil }
        #expect(kl.map { Double($0["data-value"]!)! } == data.policies.compactMap(\.kl) + data.policies.map(\.meanLength))
    }

    @Test func samplesAreSideBySideAndEscaped() throws {
        let data = try comparisonFixture()
        let html = try ReportRenderer.render(comparison: data, store: nil)
        let table = try #require(html.components(separatedBy: "<table class=\"samples\">").last?.components(separatedBy: "</table>").first)
        #expect(table.contains("<thead><tr><th>prompt</th><th>sft</th><th>ppo</th><th>bon4</th></tr></thead>"))
        #expect(table.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quotes&#39; 😀"))
        #expect(table.contains("I think &lt;it&gt; is fine &amp; good."))
        #expect(table.contains("Line one.\nLine two &amp;amp; three.\n\n\tIndented."))
        let long = data.samples[0].responses[1].text
        #expect(long.count == 2000 && table.contains(long))
        // The second prompt has no bon4 response: its cell says so, in the bon4 column.
        #expect(table.contains("<td><div class=\"text\">Hi.</div></td><td><div class=\"text\">Hello!</div></td><td><div class=\"text\">–</div></td>"))
    }

    @Test func comparisonIncludesTheRunsOfTheStore() throws {
        let tiny = try TinyRun()
        var data = try comparisonFixture()
        data.runIds = [tiny.run.id!, 42]
        let html = try ReportRenderer.render(comparison: data, store: tiny.store)
        #expect(html.contains("<h2>Run \(tiny.run.id!): tiny-ppo</h2>"))
        #expect(html.contains("data-stage=\"ppo\""))
        #expect(html.contains("Run 42 is not in \(tiny.store.path)."))
    }
}
