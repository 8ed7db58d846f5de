import Foundation

extension CompareSummary {
    /// The terminal tables: the policies, then per judge its scores, pairs and ranking.
    public func textLines() -> [String] {
        func num(_ x: Double?, _ decimals: Int = 3) -> String {
            guard let x else { return "-" }
            return String(format: "%.\(decimals)f", x)
        }
        func pct(_ x: Double?) -> String { x.map { String(format: "%.1f%%", $0 * 100) } ?? "-" }
        func interval(_ low: Double?, _ high: Double?, percent: Bool) -> String {
            guard let low, let high else { return "" }
            return percent ? String(format: "[%.1f, %.1f]", low * 100, high * 100) : "[\(num(low)), \(num(high))]"
        }
        func pValue(_ p: Double?) -> String {
            guard let p else { return "-" }
            return p < 0.001 ? "<0.001" : String(format: "%.3f", p)
        }
        let sampling = "T \(options.temperature)" + (options.topK.map { ", top-k \($0)" } ?? "") + (options.topP.map { ", top-p \($0)" } ?? "")
        var lines = ["comparison \(sessionId) (\(name)): \(promptCount) prompts from \(prompts) × \(options.samplesPerPrompt) "
                     + "sample\(options.samplesPerPrompt == 1 ? "" : "s"), \(sampling), up to \(options.responseLength) tokens, seed \(seed)", ""]
        var rows = [["POLICY", "KIND", "SPEC", "TOKENS", "ENDED", "KL", "PPL"]]
        for p in policies {
            rows.append([p.name, p.kind, p.spec, num(p.meanTokens, 1), pct(p.finishedShare), num(p.kl), num(p.perplexity)])
        }
        lines += ReportText.table(rows, rightAligned: [3, 4, 5, 6]).map { "  " + $0 }
        for judge in judges {
            lines += ["", "judge \(judge.name) (\(judge.kind))" + (judge.failures > 0 ? ": \(judge.failures) items failed" : "")]
            if let first = judge.firstFailure { lines.append("  first failure: \(first)") }
            if !judge.scores.isEmpty {
                var s = [["POLICY", "MEAN", "95% CI", "SCORED", "FAILED"]]
                for score in judge.scores {
                    s.append([score.policy, num(score.mean), interval(score.low, score.high, percent: false), "\(score.scored)", "\(score.failed)"])
                }
                lines += ReportText.table(s, rightAligned: [1, 3, 4]).map { "  " + $0 }
            }
            var t = [["A VS B", "N", "W-T-L", "WIN RATE", "95% CI", "NO TIES", "WILSON", "SIGN P", "PROMPTS FOR P<.05"]]
            let scored = judge.kind == "score"
            if scored { t[0] += ["MEAN DIFF", "95% CI"] } else { t[0] += ["FIRST-SHOWN WINS"] }
            for pair in judge.pairs {
                var row = ["\(pair.a) vs \(pair.b)", "\(pair.n)", "\(pair.wins)-\(pair.ties)-\(pair.losses)", pct(pair.winRate),
                           interval(pair.winRateLow, pair.winRateHigh, percent: true), pct(pair.noTieWinRate),
                           interval(pair.noTieLow, pair.noTieHigh, percent: true), pValue(pair.signTestP),
                           pair.promptsNeeded.map(String.init) ?? "-"]
                if scored {
                    row += [pair.meanDifference.map { String(format: "%+.3f", $0) } ?? "-",
                            interval(pair.meanDifferenceLow, pair.meanDifferenceHigh, percent: false)]
                } else {
                    row += [pct(pair.positionBias)]
                }
                t.append(row)
            }
            if judge.pairs.isEmpty == false { lines += [""] + ReportText.table(t, rightAligned: [1, 3, 5, 7, 8, 9]).map { "  " + $0 } }
            if !judge.ranking.isEmpty {
                var r = [["RANK", "POLICY", "RATING", "95% CI", "RANK RANGE"]]
                for (k, entry) in judge.ranking.enumerated() {
                    r.append(["\(k + 1)", entry.policy, String(format: "%.0f", entry.rating), String(format: "[%.0f, %.0f]", entry.low, entry.high),
                              entry.rankLow == entry.rankHigh ? "\(entry.rankLow)" : "\(entry.rankLow)-\(entry.rankHigh)"])
                }
                lines += ["", "  Bradley-Terry ranking (Elo scale)"] + ReportText.table(r, rightAligned: [0, 2]).map { "  " + $0 }
            }
        }
        if !frontier.isEmpty {
            lines += ["", "reward vs KL (gold judge on y; * on the Pareto front)"]
            var f = [["POINT", "KL", "GOLD", "PROXY", ""]]
            for point in frontier.sorted(by: { $0.kl < $1.kl }) {
                f.append([point.label, num(point.kl), num(point.gold), num(point.proxy), point.pareto ? "*" : ""])
            }
            lines += ReportText.table(f, rightAligned: [1, 2, 3]).map { "  " + $0 }
        }
        return lines
    }
}
