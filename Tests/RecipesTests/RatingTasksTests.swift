import Foundation
@testable import Recipes
import Store
import Testing

private func file(_ text: String, in dir: URL, _ name: String = "c.jsonl") throws -> URL {
    let url = dir.appendingPathComponent(name)
    try Data(text.utf8).write(to: url)
    return url
}

/// The message of the error `body` throws.
private func message(_ body: () throws -> Void) -> String {
    do { try body(); return "" } catch { return "\(error)" }
}

@Test func candidatesReadBothShapesAndNameTheirSources() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = try file("""
        {"prompt": "p1", "responses": ["x", "y", "z"]}

        {"prompt": "p2", "response_a": "u", "response_b": "v", "source_a": "sft", "source_b": "dpo"}
        """, in: dir)
    let candidates = try RatingTasks.readCandidates(url, display: "c.jsonl")
    #expect(candidates == [RatingCandidate(prompt: "p1", responses: ["x", "y", "z"], sources: ["responses[0]", "responses[1]", "responses[2]"]),
                           RatingCandidate(prompt: "p2", responses: ["u", "v"], sources: ["sft", "dpo"])])
}

@Test func aBadCandidateLineIsNamedWithItsFileLineAndField() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let cases: [(String, String)] = [
        ("{\"prompt\": \"p\", \"responses\": [\"a\", \"b\"]}\n{\"prompt\": \"q\", \"response_a\": \"x\"}\n",
         "c.jsonl:2: missing field 'response_b'"),
        ("{\"responses\": [\"a\"]}\n", "c.jsonl:1: missing field 'prompt'"),
        ("{\"prompt\": \"p\"}\n", "c.jsonl:1: missing field 'responses'"),
        ("{\"prompt\": \"p\", \"responses\": [\"a\", 3]}\n", "c.jsonl:1: field 'responses[1]' must be a string"),
        ("\n\n{\"prompt\": \"p\", \"responses\": [\"a\", \"b\"]\n", "c.jsonl:3: not valid JSON"),
    ]
    for (text, expected) in cases {
        let url = try file(text, in: dir)
        let got = message { _ = try RatingTasks.readCandidates(url, display: "c.jsonl") }
        #expect(got.hasPrefix(expected), "\(got)")
    }
    let gold = try file("{\"prompt\": \"p\", \"chosen\": \"a\"}\n", in: dir, "g.jsonl")
    #expect(message { _ = try RatingTasks.readGold(gold, display: "g.jsonl") }.hasPrefix("g.jsonl:1: missing field 'rejected'"))
}

@Test func itemsPairConsecutiveResponsesMarkIdenticalOnesAndMixInGold() throws {
    let candidates = [RatingCandidate(prompt: "p", responses: ["one", "two", "a  b\n", " a b", "odd"], sources: ["s0", "s1", "s2", "s3", "s4"])]
    let items = RatingTasks.items(candidates, mode: .pair, seed: 1)
    #expect(items.map(\.responses) == [["one", "two"], ["a  b\n", " a b"]])
    #expect(items.map(\.identical) == [false, true])
    #expect(items.map(\.idx) == [0, 1])
    #expect(RatingTasks.items(candidates, mode: .single, seed: 1).count == 5)
    #expect(RatingTasks.items(candidates, mode: .rank, seed: 1).map { $0.responses.count } == [5])

    // 9 pairs and a gold rate of 0.25: 3 gold items (9 * 0.25 / 0.75), spread through the list, each knowing its better side.
    let many = (0..<9).map { RatingCandidate(prompt: "p\($0)", responses: ["x\($0)", "y\($0)"], sources: ["A", "B"]) }
    let gold = (0..<5).map { GoldPair(prompt: "g\($0)", chosen: "good\($0)", rejected: "bad\($0)") }
    let mixed = RatingTasks.items(many, mode: .pair, gold: gold, goldRate: 0.25, seed: 3)
    let golds = mixed.filter { $0.gold != nil }
    #expect(mixed.count == 12 && golds.count == 3)
    #expect(golds.allSatisfy { $0.responses[$0.gold!].hasPrefix("good") })
    let positions = mixed.indices.filter { mixed[$0].gold != nil }
    #expect(positions.first! > 0 && positions.last! < 11 && positions[1] - positions[0] >= 2)
    #expect(mixed.map(\.idx) == Array(0..<12))
    // The same seed gives the same items.
    #expect(RatingTasks.items(many, mode: .pair, gold: gold, goldRate: 0.25, seed: 3) == mixed)
}

@Test func overlapSendsAboutItsShareToTwoRaters() {
    let many = (0..<400).map { RatingCandidate(prompt: "p\($0)", responses: ["x", "y"], sources: ["A", "B"]) }
    let items = RatingTasks.items(many, mode: .pair, overlap: 0.25, seed: 9)
    let two = items.filter { $0.raters == 2 }.count
    #expect(two > 70 && two < 130)
    #expect(RatingTasks.items(many, mode: .pair, seed: 9).allSatisfy { $0.raters == 1 })
}

@Test func theLayoutIsFixedPerItemAndRaterAndSwapsAboutHalf() {
    let task = RatingTask(name: "t", mode: .pair, source: "", seed: 5)
    let items = (0..<200).map { RatingItem(idx: $0, prompt: "", responses: ["a", "b"], sources: ["", ""]) }
    let ann = items.map { RatingTasks.layout(task: task, item: $0, rater: "ann") }
    #expect(ann == items.map { RatingTasks.layout(task: task, item: $0, rater: "ann") })
    let swapped = ann.filter { $0 == [1, 0] }.count
    #expect(swapped > 70 && swapped < 130)
    #expect(ann != items.map { RatingTasks.layout(task: task, item: $0, rater: "bob") })
    let rank = RatingItem(idx: 0, prompt: "", responses: ["a", "b", "c", "d"], sources: ["", "", "", ""])
    #expect(RatingTasks.layout(task: task, item: rank, rater: "ann").sorted() == [0, 1, 2, 3])
}

// MARK: - Statistics and export on fixed tables

private let t0 = Date(timeIntervalSince1970: 1_000_000)

private func rating(_ item: Int64, _ rater: String, _ vote: RatingVote, swapped: Bool = false, strength: Int? = nil,
                    seconds: Double = 1, undone: Bool = false, id: Int64, ranking: String? = nil) -> Rating {
    Rating(id: id, itemId: item, rater: rater, session: "s", swapped: swapped, vote: vote, strength: strength, ranking: ranking,
           shownAt: t0, answeredAt: t0.addingTimeInterval(seconds), undone: undone)
}

/// Items 1-4 (sources sft, dpo) and gold item 5 (its first response is right).
private let fixedItems = (1...4).map { RatingItem(id: Int64($0), ratingTaskId: 1, idx: $0 - 1, prompt: "p\($0)", responses: ["s\($0)", "d\($0)"],
                                                  sources: ["sft", "dpo"]) }
    + [RatingItem(id: 5, ratingTaskId: 1, idx: 4, prompt: "g", responses: ["good", "bad"], sources: ["gold", "gold"], gold: 0)]

@Test func statsOfAFixedTableEqualHandCountedValues() throws {
    var id: Int64 = 0
    func next() -> Int64 { id += 1; return id }
    let ratings = [
        rating(1, "ann", .b, swapped: true, seconds: 2, id: next()),   // dpo on the left wins
        rating(2, "ann", .b, seconds: 4, id: next()),                  // dpo on the right wins
        rating(3, "ann", .a, swapped: true, seconds: 6, id: next()),   // sft on the right wins
        rating(4, "ann", .tie, seconds: 8, id: next()),
        rating(5, "ann", .a, seconds: 10, id: next()),                 // gold right
        rating(1, "bob", .b, seconds: 1, id: next()),
        rating(2, "bob", .a, seconds: 3, id: next()),
        rating(3, "bob", .bad, seconds: 5, id: next()),
        rating(5, "bob", .b, seconds: 7, id: next()),                  // gold wrong
        rating(4, "bob", .a, seconds: 9, undone: true, id: next()),    // undone: counts nowhere
        rating(4, "bob", .skip, seconds: 9, id: next()),
    ]
    let stats = RatingStats.compute(items: fixedItems, ratings: ratings)
    #expect(stats.votes == ["a": 3, "b": 4, "tie": 1, "bad": 1, "skip": 1])
    #expect(stats.pairAnswers == 9 && stats.preferences == 7)
    // Left wins: item 1 ann (b, swapped: b on the left), item 5 ann (a, not swapped), item 2 bob (a), item 5 bob? no (b right),
    // item 1 bob (b, right): 3 of 7.
    #expect(stats.leftWins == 3)
    #expect(abs(stats.tieRate! - 1.0 / 9) < 1e-12 && abs(stats.bothBadRate! - 1.0 / 9) < 1e-12)
    #expect(stats.raters == [RatingStats.Rater(name: "ann", answered: 5, goldAnswered: 1, goldCorrect: 1, medianSeconds: 6),
                             RatingStats.Rater(name: "bob", answered: 4, goldAnswered: 1, goldCorrect: 0, medianSeconds: 4)])
    // Overlapped items 1, 2, 3, 5 (item 4: bob only skipped). Labels ann/bob: b/b, b/a, a/bad, a/b: raw 1/4.
    #expect(stats.overlapped == 4 && stats.rawAgreement == 0.25)
    // Kappa: p_o = 1/4; ann a 2/4 b 2/4; bob b 2/4 a 1/4 bad 1/4: p_e = 2/4*1/4 + 2/4*2/4 = 3/8; (1/4 - 3/8) / (5/8) = -0.2.
    #expect(abs(stats.cohenKappa! - -0.2) < 1e-12 && stats.krippendorffAlpha == nil)
    // Sources (gold left out): dpo wins items 1 (ann), 2 (ann), 1 (bob); sft wins 3 (ann), 2 (bob); the tie on 4 counts apart.
    #expect(stats.sources == [RatingStats.Source(name: "dpo", wins: 3, losses: 2, ties: 1), RatingStats.Source(name: "sft", wins: 2, losses: 3, ties: 1)])
    let dpo = try #require(stats.sources.first?.interval)
    // Wilson for 3 of 5: 0.2307 to 0.8824.
    #expect(abs(dpo.low - 0.23072) < 1e-4 && abs(dpo.high - 0.88237) < 1e-4)
    let text = stats.text(task: RatingTask(name: "t", mode: .pair, source: "", seed: 0))
    #expect(text.contains("Cohen's kappa -0.200") && text.contains("rater bob: 4 answered, gold 0.0% of 1, median 4.0 s"))
}

@Test func threeRatersGetKrippendorffsAlpha() {
    let ratings = [rating(1, "ann", .a, id: 1), rating(1, "bob", .a, id: 2), rating(1, "cy", .b, id: 3),
                   rating(2, "ann", .b, id: 4), rating(2, "bob", .b, id: 5)]
    let stats = RatingStats.compute(items: fixedItems, ratings: ratings)
    // The units [a,a,b] and [b,b]: 1/3 (see AgreementTests); raw: 1 of 3 pairs on item 1, 1 of 1 on item 2.
    #expect(stats.cohenKappa == nil && abs(stats.krippendorffAlpha! - 1.0 / 3) < 1e-12)
    #expect(stats.rawAgreement == 0.5)
}

@Test func exportWritesChosenAsPickedWithMarginsMajorityAndGoldThreshold() throws {
    let ratings = [
        rating(1, "ann", .b, swapped: true, strength: 1, id: 1),
        rating(1, "bob", .b, strength: 3, id: 2),
        rating(1, "cy", .a, id: 3),
        rating(2, "ann", .tie, id: 4),
        rating(3, "ann", .bad, id: 5),
        rating(4, "ann", .a, id: 6), rating(4, "bob", .b, id: 7),   // a draw: no line
        rating(5, "ann", .a, id: 8), rating(5, "cy", .b, id: 9),    // gold: never exported; cy is wrong on it
    ]
    let majority = try RatingExport.trlLines(items: fixedItems, ratings: ratings, margin: .llamaLarge)
    #expect(majority == [#"{"chosen":"d1","margin":3,"prompt":"p1","rejected":"s1"}"#])
    let all = try RatingExport.trlLines(items: fixedItems, ratings: ratings, aggregate: .all)
    #expect(all == [#"{"chosen":"d1","prompt":"p1","rejected":"s1"}"#, #"{"chosen":"d1","prompt":"p1","rejected":"s1"}"#,
                    #"{"chosen":"s1","prompt":"p1","rejected":"d1"}"#, #"{"chosen":"s4","prompt":"p4","rejected":"d4"}"#,
                    #"{"chosen":"d4","prompt":"p4","rejected":"s4"}"#])
    // cy's gold accuracy is 0: with a threshold their answer goes; the small margin of strength 1 is 1, no strength 0.
    let trusted = try RatingExport.trlLines(items: fixedItems, ratings: ratings, margin: .llamaSmall, aggregate: .all, minGoldAccuracy: 0.5)
    #expect(trusted.count == 4 && trusted[0] == #"{"chosen":"d1","margin":1,"prompt":"p1","rejected":"s1"}"#)
    #expect(trusted.allSatisfy { !$0.contains("\"chosen\":\"s1\"") })
}

@Test func aRankingExportsItsKChooseTwoPairs() throws {
    let item = RatingItem(id: 1, ratingTaskId: 1, idx: 0, prompt: "p", responses: ["r0", "r1", "r2", "r3"], sources: ["", "", "", ""])
    // 2 best, then 0 and 3 tied, then 1: five ordered pairs (the tie gives none).
    let lines = try RatingExport.trlLines(items: [item], ratings: [rating(1, "ann", .rank, id: 1, ranking: "2>0=3>1")])
    let pairs = Set(lines.map { line -> String in
        let o = try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: String]
        return o["chosen"]! + ">" + o["rejected"]!
    })
    #expect(pairs == ["r2>r0", "r2>r3", "r2>r1", "r0>r1", "r3>r1"])
    #expect(RatingStats.parseRanking("2>0=3>1")! == [[2], [0, 3], [1]] && RatingStats.parseRanking("2>>1") == nil)
}

// MARK: - Screen layout

@Test func wrappingKeepsEveryLineWithinTheWidthCountingEmojiAsTwoCells() {
    let text = String(repeating: "word 😀 ", count: 300) + String(repeating: "x", count: 130) + "\u{1B}[31mred\u{7}"
    for cells in [38, 76, 98] {
        let lines = RatingScreen.wrap(text, cells: cells)
        #expect(lines.allSatisfy { RatingScreen.width($0) <= cells })
        #expect(!lines.joined().contains("\u{1B}") && !lines.joined().contains("\u{7}"))
        #expect(lines.joined(separator: " ").filter { $0 == "😀" }.count == 300)
    }
    #expect(RatingScreen.width("é😀中a") == 6)
    #expect(RatingScreen.pad("😀😀", to: 3) == "😀 ")
}

@Test func twoResponsesSitSideBySideOnlyWhenTheScreenIsWide() {
    let item = RatingItem(idx: 0, prompt: "Say hi", responses: [String(repeating: "long ", count: 400), "short 👋"], sources: ["", ""])
    let wide = RatingScreen.body(item: item, order: [1, 0], labels: ["LEFT (a)", "RIGHT (b)"], cells: 200)
    #expect(wide.allSatisfy { RatingScreen.width($0) == 200 })
    #expect(wide.contains { $0.hasPrefix("LEFT (a)") && $0.contains("│ RIGHT (b)") })
    #expect(wide.contains { $0.hasPrefix("short 👋") })
    let narrow = RatingScreen.body(item: item, order: [1, 0], labels: ["LEFT (a)", "RIGHT (b)"], cells: 80)
    #expect(narrow.allSatisfy { RatingScreen.width($0) == 80 })
    #expect(!narrow.contains { $0.contains("│") })
    let left = narrow.firstIndex { $0.hasPrefix("LEFT (a)") }!, right = narrow.firstIndex { $0.hasPrefix("RIGHT (b)") }!
    #expect(left < right && narrow[left + 1].contains("short 👋"))
}

@Test func rolloutCandidatesGroupAStagesResponsesByPrompt() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let store = try RunStore(path: dir.appendingPathComponent("s.sqlite").path)
    let runId = try store.createRun(name: "rl", recipe: "", seed: 0).id!
    let ppo = try store.createStage(runId: runId, stageKey: "ppo", kind: "ppo", configJSON: "{}", configHash: "h").id!
    try store.record(rollouts: (0..<6).map { i in
        Rollout(stageId: ppo, phase: "train", step: 1 + i / 4, idx: i % 4, prompt: "p\(i % 2)", response: "r\(i)", responseTokens: 1,
                stopReason: "eos", policyVersion: i / 4)
    })
    let candidates = try RatingTasks.candidates(fromRollouts: store, run: "rl:ppo")
    #expect(candidates.map(\.prompt) == ["p0", "p1"])
    #expect(candidates.map(\.responses) == [["r0", "r2", "r4"], ["r1", "r3", "r5"]])
    #expect(candidates[0].sources == ["ppo@v0", "ppo@v0", "ppo@v1"])
    #expect(try RatingTasks.candidates(fromRollouts: store, run: "\(runId)").count == 2)
    #expect(message { _ = try RatingTasks.candidates(fromRollouts: store, run: "rl:sft") } == "run \(runId) (rl) has no stage 'sft'")
    #expect(message { _ = try RatingTasks.candidates(fromRollouts: store, run: "nope") }.hasPrefix("no run 'nope'"))
}
