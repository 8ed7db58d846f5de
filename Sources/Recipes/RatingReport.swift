import Evaluation
import Foundation
import Store
import TensorCore
import Tokenizers

/// One judgement between two responses of an item, from one answer: a pair vote, or one pair of a ranking.
struct PairJudgement: Equatable {
    var itemId: Int64
    /// The two response indices, `first < second`.
    var first: Int, second: Int
    /// `first`, `second`, `tie` or `bad`.
    var label: String
    var strength: Int?
    var rater: String
}

/// Summary statistics of a rating task (`rein rate stats`).
public struct RatingStats: Sendable, Equatable {
    /// One rater's numbers.
    public struct Rater: Sendable, Equatable {
        public var name: String
        public var answered: Int
        public var goldAnswered: Int
        public var goldCorrect: Int
        /// Median seconds from an item shown to answered.
        public var medianSeconds: Double?
        public var goldAccuracy: Double? { goldAnswered > 0 ? Double(goldCorrect) / Double(goldAnswered) : nil }
    }

    /// One source's wins and losses against other sources (ties apart), with its 95% Wilson interval.
    public struct Source: Sendable, Equatable {
        public var name: String
        public var wins: Int, losses: Int, ties: Int
        public var winRate: Double? { wins + losses > 0 ? Double(wins) / Double(wins + losses) : nil }
        public var interval: (low: Double, high: Double)? { Agreement.wilson(successes: Double(wins), n: Double(wins + losses)) }
        public static func == (x: Source, y: Source) -> Bool { x.name == y.name && x.wins == y.wins && x.losses == y.losses && x.ties == y.ties }
    }

    public var items: Int
    /// Items whose responses are identical after whitespace normalization (ties, never shown).
    public var identical: Int
    /// Live answers by vote (`a`, `b`, `tie`, `bad`, `skip`, `likert`, `rank`).
    public var votes: [String: Int]
    /// Pair answers (skips left out), and how many of those chose the response on the left.
    public var pairAnswers: Int
    public var leftWins: Int
    public var preferences: Int
    public var raters: [Rater]
    /// Items answered by two or more raters.
    public var overlapped: Int
    /// The share of rater pairs on overlapped items that gave the same answer.
    public var rawAgreement: Double?
    /// Cohen's kappa when exactly two raters overlap, Krippendorff's alpha (nominal) for more.
    public var cohenKappa: Double?
    public var krippendorffAlpha: Double?
    public var sources: [Source]
    /// Thumbs-scale answers, up and down (their vote is `likert`).
    public var thumbsUp = 0, thumbsDown = 0

    public var tieRate: Double? { pairAnswers > 0 ? Double(votes["tie", default: 0]) / Double(pairAnswers) : nil }
    public var bothBadRate: Double? { pairAnswers > 0 ? Double(votes["bad", default: 0]) / Double(pairAnswers) : nil }
    /// Of answers that preferred one response, the share that preferred the one on the left (0.5: no position bias).
    public var leftWinShare: Double? { preferences > 0 ? Double(leftWins) / Double(preferences) : nil }

    /// The statistics of `items` and their live `ratings`.
    public static func compute(items: [RatingItem], ratings: [Rating]) -> RatingStats {
        let byId = Dictionary(uniqueKeysWithValues: items.map { ($0.id!, $0) })
        let live = ratings.filter { !$0.undone }
        var votes: [String: Int] = [:]
        for r in live { votes[r.vote.rawValue, default: 0] += 1 }
        let pairVotes = live.filter { [.a, .b, .tie, .bad].contains($0.vote) }
        let preferring = pairVotes.filter { $0.vote == .a || $0.vote == .b }
        let leftWins = preferring.filter { ($0.vote == .a) != $0.swapped }.count

        let answers = live.filter { $0.vote != .skip }
        let raters = Dictionary(grouping: answers, by: \.rater).map { name, rs in
            let gold = rs.filter { byId[$0.itemId]?.gold != nil && ($0.vote == .a || $0.vote == .b || $0.vote == .tie || $0.vote == .bad) }
            let correct = gold.filter { ($0.vote == .a ? 0 : $0.vote == .b ? 1 : -1) == byId[$0.itemId]!.gold }
            return Rater(name: name, answered: rs.count, goldAnswered: gold.count, goldCorrect: correct.count,
                         medianSeconds: Agreement.median(rs.map { $0.answeredAt.timeIntervalSince($0.shownAt) }))
        }.sorted { $0.name < $1.name }

        // Agreement: each item's label from each rater (the newest live answer of a rater counts).
        var labels: [Int64: [String: String]] = [:]
        for r in answers { labels[r.itemId, default: [:]][r.rater] = label(of: r) }
        let shared = labels.filter { $0.value.count >= 2 }
        var agreeing = 0.0, pairsCount = 0.0
        for (_, byRater) in shared {
            let values = Array(byRater.values)
            for i in values.indices { for j in values.indices where j > i { pairsCount += 1; if values[i] == values[j] { agreeing += 1 } } }
        }
        let sharedRaters = Set(shared.values.flatMap(\.keys))
        var kappa: Double?, alpha: Double?
        if sharedRaters.count == 2 {
            let names = sharedRaters.sorted()
            kappa = Agreement.cohenKappa(shared.values.compactMap { m in m[names[0]].flatMap { x in m[names[1]].map { (x, $0) } } })
        } else if sharedRaters.count > 2 {
            alpha = Agreement.krippendorffAlphaNominal(shared.values.map { Array($0.values) })
        }

        var tally: [String: (wins: Int, losses: Int, ties: Int)] = [:]
        for j in judgements(answers, items: byId) {
            let item = byId[j.itemId]!
            guard item.gold == nil else { continue }
            let s1 = item.sources[j.first], s2 = item.sources[j.second]
            switch j.label {
            case "first": tally[s1, default: (0, 0, 0)].wins += 1; tally[s2, default: (0, 0, 0)].losses += 1
            case "second": tally[s2, default: (0, 0, 0)].wins += 1; tally[s1, default: (0, 0, 0)].losses += 1
            case "tie": tally[s1, default: (0, 0, 0)].ties += 1; tally[s2, default: (0, 0, 0)].ties += 1
            default: break
            }
        }
        let sources = tally.map { Source(name: $0.key, wins: $0.value.wins, losses: $0.value.losses, ties: $0.value.ties) }
            .sorted { ($0.winRate ?? -1, $1.name) > ($1.winRate ?? -1, $0.name) }
        var stats = RatingStats(items: items.count, identical: items.filter(\.identical).count, votes: votes, pairAnswers: pairVotes.count,
                                leftWins: leftWins, preferences: preferring.count, raters: raters, overlapped: shared.count,
                                rawAgreement: pairsCount > 0 ? agreeing / pairsCount : nil, cohenKappa: kappa,
                                krippendorffAlpha: alpha, sources: sources)
        stats.thumbsUp = live.filter { $0.thumb == true }.count
        stats.thumbsDown = live.filter { $0.thumb == false }.count
        return stats
    }

    /// An answer as one nominal label for agreement: the vote, the score, or the ranking.
    static func label(of r: Rating) -> String {
        switch r.vote {
        case .likert: r.thumb.map { $0 ? "up" : "down" } ?? "\(r.likert ?? 0)"
        case .rank: r.ranking ?? ""
        default: r.vote.rawValue
        }
    }

    /// The pair judgements of answers: a pair vote as one, a ranking as its K-choose-2 pairs.
    static func judgements(_ answers: [Rating], items: [Int64: RatingItem]) -> [PairJudgement] {
        var result: [PairJudgement] = []
        for r in answers {
            switch r.vote {
            case .a: result.append(PairJudgement(itemId: r.itemId, first: 0, second: 1, label: "first", strength: r.strength, rater: r.rater))
            case .b: result.append(PairJudgement(itemId: r.itemId, first: 0, second: 1, label: "second", strength: r.strength, rater: r.rater))
            case .tie: result.append(PairJudgement(itemId: r.itemId, first: 0, second: 1, label: "tie", rater: r.rater))
            case .bad: result.append(PairJudgement(itemId: r.itemId, first: 0, second: 1, label: "bad", rater: r.rater))
            case .rank:
                guard let ranks = parseRanking(r.ranking ?? "") else { continue }
                for (ri, upper) in ranks.enumerated() {
                    for (i, x) in upper.enumerated() {
                        for y in upper[(i + 1)...] {
                            result.append(PairJudgement(itemId: r.itemId, first: min(x, y), second: max(x, y), label: "tie", rater: r.rater))
                        }
                        for lower in ranks[(ri + 1)...] {
                            for y in lower {
                                result.append(PairJudgement(itemId: r.itemId, first: min(x, y), second: max(x, y),
                                                            label: x < y ? "first" : "second", rater: r.rater))
                            }
                        }
                    }
                }
            case .skip, .likert: continue
            }
        }
        return result
    }

    /// `2>0=1` as `[[2], [0, 1]]`; nil when it is not a ranking.
    public static func parseRanking(_ text: String) -> [[Int]]? {
        let parts = text.split(separator: ">", omittingEmptySubsequences: false)
            .map { $0.split(separator: "=", omittingEmptySubsequences: false).map { Int($0) } }
        guard !parts.isEmpty, parts.allSatisfy({ !$0.isEmpty && !$0.contains(nil) }) else { return nil }
        return parts.map { $0.compactMap { $0 } }
    }

    /// `ranks` as stored: `[[2], [0, 1]]` -> `2>0=1`.
    public static func rankingText(_ ranks: [[Int]]) -> String {
        ranks.map { $0.map(String.init).joined(separator: "=") }.joined(separator: ">")
    }

    /// The report `rein rate stats` prints.
    public func text(task: RatingTask) -> String {
        func pct(_ x: Double?) -> String { x.map { String(format: "%.1f%%", $0 * 100) } ?? "-" }
        var lines = ["task \(task.name) (\(task.mode.rawValue), \(items) items\(identical > 0 ? ", \(identical) identical pairs counted as ties, not shown" : ""))"]
        let order = ["a", "b", "tie", "bad", "likert", "rank", "skip"]
        let counts = order.compactMap { v in votes[v].map { "\(v == "a" ? "first response" : v == "b" ? "second response" : v == "bad" ? "both bad" : v) \($0)" } }
        lines.append("answers: " + (counts.isEmpty ? "none" : counts.joined(separator: ", ")))
        if thumbsUp + thumbsDown > 0 { lines.append("thumbs up \(thumbsUp), thumbs down \(thumbsDown)") }
        if pairAnswers > 0 {
            lines.append("tie rate \(pct(tieRate)), both-bad rate \(pct(bothBadRate)), left-position wins \(pct(leftWinShare)) of \(preferences) preferences")
        }
        for r in raters {
            let gold = r.goldAnswered > 0 ? "gold \(pct(r.goldAccuracy)) of \(r.goldAnswered)" : "no gold answered"
            lines.append("rater \(r.name): \(r.answered) answered, \(gold), median \(r.medianSeconds.map { String(format: "%.1f s", $0) } ?? "-")")
        }
        if overlapped > 0 {
            var agreement = "agreement on \(overlapped) overlapped items: raw \(pct(rawAgreement))"
            if let cohenKappa { agreement += String(format: ", Cohen's kappa %.3f", cohenKappa) }
            if let krippendorffAlpha { agreement += String(format: ", Krippendorff's alpha (nominal) %.3f", krippendorffAlpha) }
            lines.append(agreement)
        } else {
            lines.append("agreement: no item answered by two raters")
        }
        for s in sources {
            let interval = s.interval.map { String(format: " [%.1f%%, %.1f%%]", $0.low * 100, $0.high * 100) } ?? ""
            lines.append("source \(s.name): win rate \(pct(s.winRate))\(interval) (\(s.wins) wins, \(s.losses) losses, \(s.ties) ties)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// `rein rate export --format trl`: TRL preference lines.
public enum RatingExport {
    /// How a rater's strength becomes TRL's `margin`: not at all, or Llama 2's small or large margins
    /// (significantly better, better, slightly better, negligibly better: 1, 2/3, 1/3, 0 or 3, 2, 1, 0).
    public enum Margin: String, Sendable, CaseIterable { case none, llamaSmall = "llama-small", llamaLarge = "llama-large" }
    /// One line per item by majority of its raters, or one per answer.
    public enum Aggregate: String, Sendable, CaseIterable { case majority, all }

    static func marginValue(_ strength: Int?, _ kind: Margin) -> Double? {
        switch kind {
        case .none: nil
        case .llamaSmall: [1.0, 2.0 / 3, 1.0 / 3, 0][(strength ?? 4) - 1]
        case .llamaLarge: [3.0, 2, 1, 0][(strength ?? 4) - 1]
        }
    }

    /// The JSON lines (without line breaks): gold items, identical pairs, ties and both-bad left out, answers of
    /// raters whose gold accuracy is below `minGoldAccuracy` left out (a rater with no gold answered is kept).
    /// Majority: per item and response pair the most common label; a draw gives no line.
    /// `conversational`: the prompt as one user message and the responses as assistant messages (a task
    /// whose policies were given chat prompts).
    public static func trlLines(items: [RatingItem], ratings: [Rating], margin: Margin = .none, aggregate: Aggregate = .majority,
                                minGoldAccuracy: Double = 0, conversational: Bool = false) throws -> [String] {
        let stats = RatingStats.compute(items: items, ratings: ratings)
        let excluded = Set(stats.raters.filter { ($0.goldAccuracy ?? 1) < minGoldAccuracy }.map(\.name))
        let byId = Dictionary(uniqueKeysWithValues: items.map { ($0.id!, $0) })
        // The newest live answer of each rater to each item.
        var newest: [String: Rating] = [:]
        for r in ratings where !r.undone && r.vote != .skip && !excluded.contains(r.rater) { newest["\(r.itemId) \(r.rater)"] = r }
        let answers = newest.values.sorted { $0.id! < $1.id! }
        let judgements = RatingStats.judgements(answers, items: byId).filter { byId[$0.itemId]!.gold == nil && !byId[$0.itemId]!.identical }
        var chosen: [PairJudgement] = []
        switch aggregate {
        case .all:
            chosen = judgements
        case .majority:
            var groups: [String: [PairJudgement]] = [:], order: [String] = []
            for j in judgements {
                let key = "\(j.itemId) \(j.first) \(j.second)"
                if groups[key] == nil { order.append(key) }
                groups[key, default: []].append(j)
            }
            for key in order {
                let group = groups[key]!
                let counts = Dictionary(grouping: group, by: \.label).mapValues(\.count)
                let top = counts.values.max()!
                let winners = counts.filter { $0.value == top }
                guard winners.count == 1, let label = winners.first?.key else { continue }
                // The strength of the earliest answer with the winning label.
                chosen.append(group.first { $0.label == label }!)
            }
        }
        let encoder = JSONLinesEncoder()
        return try chosen.compactMap { j in
            guard j.label == "first" || j.label == "second" else { return nil }
            let item = byId[j.itemId]!
            let (win, lose) = j.label == "first" ? (j.first, j.second) : (j.second, j.first)
            if conversational {
                return try encoder.line(TRLChatPair(prompt: [ChatMessage(role: "user", content: item.prompt)],
                                                    chosen: [ChatMessage(role: "assistant", content: item.responses[win])],
                                                    rejected: [ChatMessage(role: "assistant", content: item.responses[lose])],
                                                    margin: marginValue(j.strength, margin)))
            }
            return try encoder.line(TRLPair(prompt: item.prompt, chosen: item.responses[win], rejected: item.responses[lose],
                                            margin: marginValue(j.strength, margin)))
        }
    }

    private struct TRLPair: Encodable {
        var prompt: String, chosen: String, rejected: String
        var margin: Double?
    }

    private struct TRLChatPair: Encodable {
        var prompt: [ChatMessage], chosen: [ChatMessage], rejected: [ChatMessage]
        var margin: Double?
    }
}
