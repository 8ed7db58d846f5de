import Evaluation
import Testing

@Test func wilsonIntervalMatchesTheTextbookValues() throws {
    // 8 of 10: 0.490 to 0.943 (Wilson 1927; the usual worked example); 0 of 5 starts at 0.
    let eight = try #require(Agreement.wilson(successes: 8, n: 10))
    #expect(abs(eight.low - 0.49016) < 1e-4 && abs(eight.high - 0.94332) < 1e-4)
    let none = try #require(Agreement.wilson(successes: 0, n: 5))
    #expect(none.low == 0 && abs(none.high - 0.43448) < 1e-4)
    #expect(Agreement.wilson(successes: 0, n: 0) == nil)
}

@Test func cohenKappaOfTheTwoByTwoExample() throws {
    // 50 items: both yes 20, A yes B no 5, A no B yes 10, both no 15. p_o = 0.7; A says yes 0.5, B 0.6, so
    // p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5 and kappa = (0.7 - 0.5) / 0.5 = 0.4.
    let pairs = Array(repeating: ("yes", "yes"), count: 20) + Array(repeating: ("yes", "no"), count: 5)
        + Array(repeating: ("no", "yes"), count: 10) + Array(repeating: ("no", "no"), count: 15)
    #expect(abs(try #require(Agreement.cohenKappa(pairs)) - 0.4) < 1e-12)
    // Perfect agreement is 1; both raters always saying one label leaves kappa undefined.
    #expect(Agreement.cohenKappa([("a", "a"), ("b", "b")]) == 1)
    #expect(Agreement.cohenKappa([("a", "a"), ("a", "a")]) == nil)
}

@Test func krippendorffAlphaNominalFromTheCoincidenceMatrix() throws {
    // Units [a,a] [a,b] [b,b] [b,b]: o_aa = 2, o_ab = o_ba = 1, o_bb = 4; n_a = 3, n_b = 5, n = 8.
    // alpha = 1 - (n - 1) * (o_ab + o_ba) / (2 n_a n_b) = 1 - 7 * 2 / 30 = 8/15.
    let two = try #require(Agreement.krippendorffAlphaNominal([["a", "a"], ["a", "b"], ["b", "b"], ["b", "b"]]))
    #expect(abs(two - 8.0 / 15) < 1e-12)
    // Three raters on one unit weigh its pairs by 1/(m-1): [a,a,b] gives o_aa = 1, o_ab = o_ba = 1; with [b,b]
    // n_a = 2, n_b = 3, n = 5 and alpha = 1 - 4 * 2 / 12 = 1/3. A unit of one label is not pairable.
    let three = try #require(Agreement.krippendorffAlphaNominal([["a", "a", "b"], ["b", "b"], ["a"]]))
    #expect(abs(three - 1.0 / 3) < 1e-12)
    #expect(Agreement.krippendorffAlphaNominal([["a", "a"], ["a", "a"]]) == nil)
    #expect(Agreement.krippendorffAlphaNominal([["a"]]) == nil)
}

@Test func medianOfOddAndEvenCounts() {
    #expect(Agreement.median([3, 1, 2]) == 2)
    #expect(Agreement.median([4, 1, 3, 2]) == 2.5)
    #expect(Agreement.median([]) == nil)
}
