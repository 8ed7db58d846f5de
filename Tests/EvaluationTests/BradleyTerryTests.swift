import Evaluation
import Foundation
import TensorCore
import Testing

/// `compare-stats/bradley_terry.json`: a battle table of four policies and the ratings of an independent
/// gradient-ascent fit (`make_bradley_terry.py` beside it).
private struct BradleyTerryFixture: Decodable {
    struct Row: Decodable {
        let a: String, b: String, wins_a: Int, wins_b: Int, ties: Int
    }
    let l2: Double, anchor: String, tolerance: Double
    let policies: [String]
    let table: [Row]
    let ratings_mean_1000: [String: Double]
    let ratings_anchor_1000: [String: Double]

    var battles: [Battle] {
        table.flatMap { row in
            Array(repeating: Battle(row.a, row.b, .a), count: row.wins_a) + Array(repeating: Battle(row.a, row.b, .b), count: row.wins_b)
                + Array(repeating: Battle(row.a, row.b, .tie), count: row.ties)
        }
    }
}

private func record(_ a: String, _ b: String, wins: Int, losses: Int, ties: Int = 0) -> [Battle] {
    Array(repeating: Battle(a, b, .a), count: wins) + Array(repeating: Battle(a, b, .b), count: losses)
        + Array(repeating: Battle(a, b, .tie), count: ties)
}

@Suite struct BradleyTerryTests {
    @Test func aThreeToOneRecordIsFourHundredLogTenOfThree() throws {
        let battles = record("x", "y", wins: 3, losses: 1)
        // With a vanishing penalty the maximum-likelihood odds are exactly 3:1.
        let exact = try BradleyTerryRanking.fit(policies: ["x", "y"], battles: battles, bootstrap: 0, seed: 1, l2: 1e-12)
        #expect(exact.ratings.map(\.policy) == ["x", "y"])
        let gap = exact.ratings[0].rating - exact.ratings[1].rating
        #expect(abs(gap - 400 * log10(3.0)) < 1e-6)
        // Centered on 1000.
        #expect(abs(exact.ratings[0].rating + exact.ratings[1].rating - 2000) < 1e-9)
        // The default penalty moves it by about 127 * l2 Elo points.
        let penalized = try BradleyTerryRanking.fit(policies: ["x", "y"], battles: battles, bootstrap: 0, seed: 1)
        #expect(abs(penalized.ratings[0].rating - penalized.ratings[1].rating - 400 * log10(3.0)) < 0.5)
        // Two ties more are half a win each way each: (3 + 1) : (1 + 1) = 2:1.
        let tied = try BradleyTerryRanking.fit(policies: ["x", "y"], battles: battles + record("x", "y", wins: 0, losses: 0, ties: 2),
                                                bootstrap: 0, seed: 1, l2: 1e-12)
        #expect(abs(tied.ratings[0].rating - tied.ratings[1].rating - 400 * log10(2.0)) < 1e-6)
        #expect(tied.ratings[0].ties == 2 && tied.ratings[0].wins == 3 && tied.ratings[0].losses == 1)
    }

    @Test func fourPoliciesMatchTheReferenceFit() throws {
        let url = fixtureDirectory("compare-stats").appendingPathComponent("bradley_terry.json")
        let fixture = try JSONDecoder().decode(BradleyTerryFixture.self, from: Data(contentsOf: url))
        let mean = try BradleyTerryRanking.fit(policies: fixture.policies, battles: fixture.battles, bootstrap: 0, seed: 1, l2: fixture.l2)
        #expect(mean.battles == fixture.table.reduce(0) { $0 + $1.wins_a + $1.wins_b + $1.ties })
        for rating in mean.ratings {
            let expected = try #require(fixture.ratings_mean_1000[rating.policy])
            #expect(abs(rating.rating - expected) < fixture.tolerance, "\(rating.policy): \(rating.rating) vs \(expected)")
        }
        let anchored = try BradleyTerryRanking.fit(policies: fixture.policies, battles: fixture.battles, anchor: fixture.anchor,
                                                   bootstrap: 0, seed: 1, l2: fixture.l2)
        #expect(anchored.anchor == fixture.anchor)
        for rating in anchored.ratings {
            let expected = try #require(fixture.ratings_anchor_1000[rating.policy])
            #expect(abs(rating.rating - expected) < fixture.tolerance, "\(rating.policy): \(rating.rating) vs \(expected)")
        }
        // Best first, ranks from the point ratings.
        let order = fixture.policies.sorted { fixture.ratings_mean_1000[$0]! > fixture.ratings_mean_1000[$1]! }
        #expect(mean.ratings.map(\.policy) == order)
        #expect(mean.ratings.map(\.rank) == [1, 2, 3, 4])
    }

    @Test func seededBootstrapIsReproducibleAndGivesRankBounds() throws {
        let url = fixtureDirectory("compare-stats").appendingPathComponent("bradley_terry.json")
        let fixture = try JSONDecoder().decode(BradleyTerryFixture.self, from: Data(contentsOf: url))
        let one = try BradleyTerryRanking.fit(policies: fixture.policies, battles: fixture.battles, bootstrap: 300, seed: 42)
        let again = try BradleyTerryRanking.fit(policies: fixture.policies, battles: fixture.battles, bootstrap: 300, seed: 42)
        let other = try BradleyTerryRanking.fit(policies: fixture.policies, battles: fixture.battles, bootstrap: 300, seed: 43)
        #expect(one == again)
        #expect(one.ratings.map(\.interval) != other.ratings.map(\.interval))
        for rating in one.ratings {
            let interval = try #require(rating.interval)
            #expect(interval.low < rating.rating && rating.rating < interval.high)
            #expect(rating.rankBest <= rating.rank && rating.rank <= rating.rankWorst)
        }
        // From about 15 battles a pair, base is clearly last, and sft, dpo and ppo overlap: each could be
        // first to third.
        let base = try #require(one.ratings.first { $0.policy == "base" })
        #expect(base.rankWorst == 4 && base.rankBest == 4)
        for name in ["sft", "dpo", "ppo"] {
            let rating = try #require(one.ratings.first { $0.policy == name })
            #expect(rating.rankBest == 1 && rating.rankWorst == 3, "\(name): \(rating.rankBest)-\(rating.rankWorst)")
        }
        // The rank bounds, by their definition, from the intervals.
        for rating in one.ratings {
            let lowsAbove = one.ratings.filter { $0.interval!.low > rating.interval!.high }.count
            let highsBelow = one.ratings.filter { $0.interval!.high < rating.interval!.low }.count
            #expect(rating.rankBest == 1 + lowsAbove && rating.rankWorst == one.ratings.count - highsBelow)
        }
    }

    @Test func aPolicyThatNeverWonGetsAFiniteLowRating() throws {
        let battles = record("a", "b", wins: 6, losses: 4) + record("a", "c", wins: 8, losses: 0) + record("b", "c", wins: 5, losses: 0, ties: 0)
            + [Battle("c", "a", .failed)]
        let ranking = try BradleyTerryRanking.fit(policies: ["a", "b", "c"], battles: battles, bootstrap: 200, seed: 9)
        #expect(ranking.failures == 1 && ranking.battles == 23)
        let c = try #require(ranking.ratings.last)
        #expect(c.policy == "c" && c.wins == 0 && c.losses == 13)
        for rating in ranking.ratings {
            #expect(rating.rating.isFinite && rating.interval!.low.isFinite && rating.interval!.high.isFinite)
        }
        // Far below the others, yet finite, so the JSON is valid.
        #expect(c.rating < ranking.ratings[1].rating - 800)
        let decoded = try JSONDecoder().decode(BradleyTerryRanking.self, from: JSONEncoder().encode(ranking))
        #expect(decoded == ranking)
    }

    @Test func anAnchoredPolicyIsAlwaysAThousandAndOneWithoutBattlesSitsAtZero() throws {
        let battles = record("a", "b", wins: 7, losses: 3, ties: 2) + record("b", "c", wins: 4, losses: 4)
        let ranking = try BradleyTerryRanking.fit(policies: ["a", "b", "c", "idle"], battles: battles, anchor: "b", bootstrap: 100, seed: 2)
        let b = try #require(ranking.ratings.first { $0.policy == "b" })
        #expect(b.rating == 1000 && b.interval == ConfidenceInterval(low: 1000, high: 1000))
        // With the L2 penalty the mean θ is 0, so the idle policy sits at the mean rating, the anchor's 1000
        // shifted by the mean of the others.
        let idle = try #require(ranking.ratings.first { $0.policy == "idle" })
        #expect(idle.wins == 0 && idle.losses == 0 && idle.ties == 0)
        let mean = ranking.ratings.map(\.rating).reduce(0, +) / 4
        #expect(abs(idle.rating - mean) < 1e-6)
    }

    @Test func badBattlesNameTheBattle() throws {
        func message(_ body: () throws -> Void) -> String {
            do { try body() } catch { return "\(error)" }
            return ""
        }
        let unknown = message { _ = try BradleyTerryRanking.fit(policies: ["a", "b"], battles: [Battle("a", "b", .a), Battle("a", "zz", .b)], seed: 1) }
        #expect(unknown.contains("battle 2") && unknown.contains("\"zz\""))
        let itself = message { _ = try BradleyTerryRanking.fit(policies: ["a", "b"], battles: [Battle("b", "b", .a)], seed: 1) }
        #expect(itself.contains("battle 1") && itself.contains("itself"))
        let twice = message { _ = try BradleyTerryRanking.fit(policies: ["a", "a"], battles: [], seed: 1) }
        #expect(twice.contains("listed twice"))
        let anchor = message { _ = try BradleyTerryRanking.fit(policies: ["a", "b"], battles: [Battle("a", "b", .a)], anchor: "c", seed: 1) }
        #expect(anchor.contains("anchor \"c\""))
        let failed = message { _ = try BradleyTerryRanking.fit(policies: ["a", "b"], battles: [Battle("a", "b", .failed)], seed: 1) }
        #expect(failed.contains("no counted battles"))
    }

    @Test func tenThousandBattlesTimesTwoThousandResamples() throws {
        let policies = ["p0", "p1", "p2", "p3", "p4"]
        var rng = RNG(seed: 3)
        let strength: [Double] = [0, 0.3, 0.5, 0.9, 1.4]
        let battles = (0..<10_000).map { _ -> Battle in
            let i = rng.int(below: 5), j = (i + 1 + rng.int(below: 4)) % 5
            let p = 1 / (1 + exp(strength[j] - strength[i]))
            return Battle(policies[i], policies[j], Double(rng.uniform()) < p ? .a : .b)
        }
        let start = Date()
        let ranking = try BradleyTerryRanking.fit(policies: policies, battles: battles, bootstrap: 2000, seed: 1)
        let seconds = Date().timeIntervalSince(start)
        print("BradleyTerryRanking: 5 policies, 10,000 battles x 2,000 resamples in \(String(format: "%.3f", seconds)) s")
        // The generating strengths come back, 400 log10(e) apart per unit, within sampling error.
        #expect(ranking.ratings.map(\.policy) == ["p4", "p3", "p2", "p1", "p0"])
        let p0 = ranking.ratings[4].rating, p4 = ranking.ratings[0].rating
        #expect(abs((p4 - p0) - 1.4 * 400 / log(10.0)) < 25)
        #expect(seconds < 10)
    }
}
