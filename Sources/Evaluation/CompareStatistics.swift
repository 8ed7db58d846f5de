import Foundation
import TensorCore

// The statistics of `rein compare`: pairwise win rates with intervals, the sign test, paired score
// differences, and the shared pieces (percentile bootstrap, normal quantile) of the length-controlled
// win rate (`LengthControlledWinRate.swift`) and the Bradley-Terry ranking (`BradleyTerry.swift`).
// Every result is a plain Codable value with no NaN or infinity in it: an undefined figure is nil.

/// One judge verdict on a pair of responses (A, B) to one prompt.
public enum Verdict: String, Codable, Sendable, Equatable, CaseIterable {
    /// A is better.
    case a
    /// B is better.
    case b
    /// Neither is better (or the two presentation orders disagreed).
    case tie
    /// The judge gave no verdict (it crashed, timed out or printed garbage): left out of every count
    /// and reported as a failure, never as a win.
    case failed

    /// The verdict with A and B exchanged: what a verdict given in the swapped presentation means for the
    /// original pair.
    public var swapped: Verdict {
        switch self {
        case .a: .b
        case .b: .a
        case .tie, .failed: self
        }
    }
}

/// The verdicts on one prompt's pair of responses (one per sample when several samples are drawn per prompt).
public struct PairwiseOutcome: Codable, Sendable, Equatable {
    public var verdicts: [Verdict]

    public init(_ verdicts: [Verdict]) { self.verdicts = verdicts }

    /// One verdict from a judge that saw the pair in both orders.
    ///
    /// Both arguments are given in the positions the judge saw: `forward` when A was shown first
    /// (`.a` = it picked A), `swapped` when B was shown first (`.a` = it picked the first shown, B).
    /// Orders that agree give that verdict; orders that disagree give a tie (a judge that always picks
    /// the first response ends up with ties only); a failure in either order is a failure.
    public static func combine(forward: Verdict, swapped: Verdict) -> Verdict {
        if forward == .failed || swapped == .failed { return .failed }
        let second = swapped.swapped
        return forward == second ? forward : .tie
    }
}

/// A two-sided interval, `low <= high`.
public struct ConfidenceInterval: Codable, Sendable, Equatable {
    public var low: Double
    public var high: Double

    public init(low: Double, high: Double) {
        self.low = low
        self.high = high
    }
}

/// How often a pairwise judge prefers whichever response it is shown first.
public struct PositionBias: Codable, Sendable, Equatable {
    /// Verdicts (over both presentation orders) that picked a side.
    public var decisive: Int
    /// Of those, the ones that picked the response shown first.
    public var pickedFirst: Int
    /// `pickedFirst / decisive` (0.5 for an unbiased judge); nil without decisive verdicts.
    public var share: Double?
    /// The Wilson interval of `share`; nil without decisive verdicts.
    public var interval: ConfidenceInterval?

    /// Position bias of verdicts given in the positions the judge saw (as for `PairwiseOutcome.combine`):
    /// every `.a` in either order picked the first-shown response, every `.b` the second; ties and
    /// failures are not decisive.
    public static func compute(_ pairs: [(forward: Verdict, swapped: Verdict)], confidence: Double = 0.95) throws -> PositionBias {
        let z = try CompareStatistics.zScore(confidence: confidence)
        var decisive = 0, first = 0
        for pair in pairs {
            for verdict in [pair.forward, pair.swapped] {
                if verdict == .a { first += 1; decisive += 1 } else if verdict == .b { decisive += 1 }
            }
        }
        let interval = Agreement.wilson(successes: Double(first), n: Double(decisive), z: z)
        return PositionBias(decisive: decisive, pickedFirst: first,
                            share: decisive > 0 ? Double(first) / Double(decisive) : nil,
                            interval: interval.map { ConfidenceInterval(low: $0.low, high: $0.high) })
    }
}

/// The head-to-head figures of policy A against policy B under one pairwise judge.
public struct PairwiseSummary: Codable, Sendable, Equatable {
    /// Prompts with at least one counted (non-failed) verdict.
    public var prompts: Int
    /// Counted verdicts: `wins + losses + ties`.
    public var n: Int
    /// Verdicts for A, for B, ties, and judge failures (which are in no other count).
    public var wins: Int
    public var losses: Int
    public var ties: Int
    public var failures: Int
    /// `(wins + ties / 2) / n`; nil when nothing was counted.
    public var winRate: Double?
    /// The paired percentile bootstrap interval of `winRate`: prompts are resampled with replacement (all of
    /// a prompt's verdicts go together) and the rate recomputed; nil when nothing was counted or `bootstrap` is 0.
    public var winRateInterval: ConfidenceInterval?
    /// `wins / (wins + losses)`, ties left out; nil without decisive verdicts.
    public var decisiveWinRate: Double?
    /// The Wilson interval of `decisiveWinRate`.
    public var decisiveWinRateInterval: ConfidenceInterval?
    /// The two-sided exact sign test of wins against losses (ties dropped; each verdict one trial); nil
    /// without decisive verdicts.
    public var signTestP: Double?
    /// Prompts the observed effect would need for the sign test to give p < 0.05, at the observed decisive
    /// win rate and the observed decisive verdicts per prompt (so the tie share and samples per prompt are
    /// kept); nil when the decisive win rate is exactly 0.5 or undefined.
    public var promptsNeeded: Int?
    /// The bootstrap resamples and the seed of the interval, and its confidence level.
    public var bootstrap: Int
    public var seed: UInt64
    public var confidence: Double

    /// The summary of `outcomes` (one entry per prompt). The same seed gives the same interval bit for bit.
    ///
    /// - Throws: `EvaluationError` when `bootstrap` is negative or `confidence` is not strictly between 0 and 1.
    public static func compute(outcomes: [PairwiseOutcome], bootstrap: Int = 2000, seed: UInt64,
                               confidence: Double = 0.95) throws -> PairwiseSummary {
        let z = try CompareStatistics.zScore(confidence: confidence)
        guard bootstrap >= 0 else { throw EvaluationError("bootstrap: expected 0 or more resamples, found \(bootstrap)") }
        var wins = 0, losses = 0, ties = 0, failures = 0
        // Per prompt: the points of A (1 a win, 1/2 a tie) and the counted verdicts, for the bootstrap.
        var points: [Double] = [], counts: [Double] = []
        for outcome in outcomes {
            var w = 0, l = 0, t = 0
            for verdict in outcome.verdicts {
                switch verdict {
                case .a: w += 1
                case .b: l += 1
                case .tie: t += 1
                case .failed: failures += 1
                }
            }
            wins += w; losses += l; ties += t
            if w + l + t > 0 {
                points.append(Double(w) + 0.5 * Double(t))
                counts.append(Double(w + l + t))
            }
        }
        let n = wins + losses + ties, decisive = wins + losses
        var summary = PairwiseSummary(prompts: points.count, n: n, wins: wins, losses: losses, ties: ties, failures: failures,
                                      bootstrap: bootstrap, seed: seed, confidence: confidence)
        guard n > 0 else { return summary }
        summary.winRate = (Double(wins) + 0.5 * Double(ties)) / Double(n)
        if bootstrap > 0 {
            let rates = CompareStatistics.bootstrapRatios(numerators: points, denominators: counts, resamples: bootstrap, seed: seed)
            summary.winRateInterval = CompareStatistics.percentileInterval(rates, confidence: confidence)
        }
        guard decisive > 0 else { return summary }
        let rate = Double(wins) / Double(decisive)
        summary.decisiveWinRate = rate
        summary.decisiveWinRateInterval = Agreement.wilson(successes: Double(wins), n: Double(decisive), z: z)
            .map { ConfidenceInterval(low: $0.low, high: $0.high) }
        summary.signTestP = CompareStatistics.signTest(wins: wins, losses: losses)
        if let needed = CompareStatistics.decisiveVerdictsNeeded(winRate: rate) {
            // ⌈needed / decisive verdicts per prompt⌉, in integers; an effect too small to count is nil.
            let (product, overflow) = needed.multipliedReportingOverflow(by: points.count)
            summary.promptsNeeded = overflow ? nil : (product + decisive - 1) / decisive
        }
        return summary
    }
}

/// A paired mean difference of a score judge's scores, `mean(a - b)` over prompts.
public struct ScoreDifference: Codable, Sendable, Equatable {
    /// Prompts (pairs of scores).
    public var n: Int
    public var meanA: Double
    public var meanB: Double
    /// `meanA - meanB`.
    public var mean: Double
    /// The percentile bootstrap interval of `mean` over resampled prompts; nil when `bootstrap` is 0.
    public var interval: ConfidenceInterval?
    public var bootstrap: Int
    public var seed: UInt64
    public var confidence: Double
}

/// Tests, intervals and sample sizes used by `rein compare`.
public enum CompareStatistics {
    /// The two-sided exact sign test: `min(1, 2 P(X <= min(wins, losses)))` for X ~ Binomial(wins + losses, 1/2).
    /// Summed in log space, so tens of thousands of trials neither underflow nor lose precision; 1 when there
    /// are no trials. 60 wins to 40 losses give 0.0569.
    public static func signTest(wins: Int, losses: Int) -> Double {
        guard wins >= 0, losses >= 0, wins + losses > 0 else { return 1 }
        let d = wins + losses, k = min(wins, losses)
        // log C(d, i) - d log 2, accumulated by the ratio C(d, i+1) / C(d, i) = (d - i) / (i + 1).
        let log2 = Foundation.log(2.0)
        var term = -Double(d) * log2, maxTerm = term
        var terms = [Double](repeating: 0, count: k + 1)
        terms[0] = term
        if k > 0 {
            for i in 0..<k {
                term += Foundation.log(Double(d - i)) - Foundation.log(Double(i + 1))
                terms[i + 1] = term
                maxTerm = max(maxTerm, term)
            }
        }
        var sum = 0.0
        for t in terms { sum += Foundation.exp(t - maxTerm) }
        let logTail = maxTerm + Foundation.log(sum)
        return min(1, 2 * Foundation.exp(logTail))
    }

    /// The decisive verdicts `d` a decisive win rate of `winRate` needs for the two-sided sign test to give
    /// p < `alpha`; nil for a rate of exactly 0.5 or one outside [0, 1].
    ///
    /// The normal approximation with continuity correction, |2p - 1| d - 1 >= z sqrt(d), solved for d and
    /// rounded up, then raised until the exact test on `round(winRate * d)` wins rejects (the exact p-value is
    /// jagged in d because wins are whole: at 0.6 it first drops below 0.05 at d = 101 but is back above it at
    /// 102; the approximation gives 106, where it stays mostly below). Beyond a million verdicts the
    /// approximation is returned unchecked.
    public static func decisiveVerdictsNeeded(winRate p: Double, alpha: Double = 0.05) -> Int? {
        guard p.isFinite, p >= 0, p <= 1, p != 0.5, alpha > 0, alpha < 1 else { return nil }
        let effect = abs(2 * p - 1), z = normalQuantile(1 - alpha / 2)
        let root = (z + (z * z + 4 * effect).squareRoot()) / (2 * effect)
        let approximate = (root * root).rounded(.up)
        guard approximate <= 1e6 else { return approximate < 1e15 ? Int(approximate) : nil }
        var d = max(1, Int(approximate))
        while d < 2_000_000 {
            let wins = Int((p * Double(d)).rounded())
            if signTest(wins: wins, losses: d - wins) < alpha { break }
            d += 1
        }
        return d
    }

    /// The paired mean difference of `a` and `b`, two score lists of the same prompts in the same order (one
    /// score per prompt and policy: average several samples first), with a percentile bootstrap interval over
    /// resampled prompts. The same seed gives the same interval bit for bit.
    ///
    /// - Throws: `EvaluationError` when the lists differ in length or are empty, a score is not finite,
    ///   `bootstrap` is negative, or `confidence` is not strictly between 0 and 1.
    public static func meanDifference(a: [Double], b: [Double], bootstrap: Int = 2000, seed: UInt64,
                                      confidence: Double = 0.95) throws -> ScoreDifference {
        _ = try zScore(confidence: confidence)
        guard bootstrap >= 0 else { throw EvaluationError("bootstrap: expected 0 or more resamples, found \(bootstrap)") }
        guard a.count == b.count else {
            throw EvaluationError("mean difference: \(a.count) scores for A but \(b.count) for B; expected one of each per prompt")
        }
        guard !a.isEmpty else { throw EvaluationError("mean difference: no scores") }
        if let i = a.firstIndex(where: { !$0.isFinite }) { throw EvaluationError("mean difference: A's score of prompt \(i + 1) is \(a[i]), not a finite number") }
        if let i = b.firstIndex(where: { !$0.isFinite }) { throw EvaluationError("mean difference: B's score of prompt \(i + 1) is \(b[i]), not a finite number") }
        let n = Double(a.count)
        let meanA = a.reduce(0, +) / n, meanB = b.reduce(0, +) / n
        let differences = zip(a, b).map { $0 - $1 }
        var result = ScoreDifference(n: a.count, meanA: meanA, meanB: meanB, mean: differences.reduce(0, +) / n,
                                     bootstrap: bootstrap, seed: seed, confidence: confidence)
        if bootstrap > 0 {
            let ones = [Double](repeating: 1, count: differences.count)
            let means = bootstrapRatios(numerators: differences, denominators: ones, resamples: bootstrap, seed: seed)
            result.interval = percentileInterval(means, confidence: confidence)
        }
        return result
    }

    /// The analytic KL of best-of-n sampling to its base policy, `log n - (n - 1) / n` (0 for n = 1).
    ///
    /// - Throws: `EvaluationError` when `n` is below 1.
    public static func bestOfNKL(n: Int) throws -> Double {
        guard n >= 1 else { throw EvaluationError("best-of-n: expected n of 1 or more, found \(n)") }
        return Foundation.log(Double(n)) - Double(n - 1) / Double(n)
    }

    /// The z with P(|Z| <= z) = `confidence` (1.959964 for 0.95).
    ///
    /// - Throws: `EvaluationError` when `confidence` is not strictly between 0 and 1.
    public static func zScore(confidence: Double) throws -> Double {
        guard confidence > 0, confidence < 1 else {
            throw EvaluationError("confidence: expected a level strictly between 0 and 1 (such as 0.95), found \(confidence)")
        }
        return normalQuantile(0.5 + confidence / 2)
    }

    /// The standard normal quantile Φ⁻¹(p) for 0 < p < 1: Acklam's rational approximation polished by one
    /// Halley step on `erfc`, accurate to about 1e-15.
    public static func normalQuantile(_ p: Double) -> Double {
        precondition(p > 0 && p < 1, "normalQuantile(\(p))")
        let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                 6.680131188771972e+01, -1.328068155288572e+01]
        let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                 -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        let low = 0.02425
        var x: Double
        if p < low {
            let q = (-2 * Foundation.log(p)).squareRoot()
            x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        } else if p <= 1 - low {
            let q = p - 0.5, r = q * q
            x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
                / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        } else {
            let q = (-2 * Foundation.log(1 - p)).squareRoot()
            x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        let e = 0.5 * erfc(-x / 2.0.squareRoot()) - p
        let u = e * (2 * Double.pi).squareRoot() * Foundation.exp(x * x / 2)
        x -= u / (1 + x * u / 2)
        return x
    }

    /// `resamples` bootstrap values of `Σ numerators[i] / Σ denominators[i]` over indices drawn with replacement
    /// (as many as there are entries), from `RNG(seed:)`. Denominators must be positive.
    static func bootstrapRatios(numerators: [Double], denominators: [Double], resamples: Int, seed: UInt64) -> [Double] {
        let m = numerators.count
        precondition(m > 0 && denominators.count == m)
        var rng = RNG(seed: seed)
        var out = [Double](repeating: 0, count: resamples)
        numerators.withUnsafeBufferPointer { num in
            denominators.withUnsafeBufferPointer { den in
                for r in 0..<resamples {
                    var top = 0.0, bottom = 0.0
                    for _ in 0..<m {
                        let i = rng.int(below: m)
                        top += num[i]
                        bottom += den[i]
                    }
                    out[r] = top / bottom
                }
            }
        }
        return out
    }

    /// The percentile interval of bootstrap `values` at `confidence`, with linear interpolation between order
    /// statistics (numpy's default quantile); nil when empty.
    static func percentileInterval(_ values: [Double], confidence: Double) -> ConfidenceInterval? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        return ConfidenceInterval(low: quantile(sorted, (1 - confidence) / 2), high: quantile(sorted, (1 + confidence) / 2))
    }

    /// The `q` quantile of ascending `sorted` values, interpolating linearly at position q (n - 1).
    static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        let position = q * Double(sorted.count - 1)
        let i = Int(position.rounded(.down)), fraction = position - Double(i)
        guard i + 1 < sorted.count else { return sorted[sorted.count - 1] }
        return sorted[i] + fraction * (sorted[i + 1] - sorted[i])
    }
}
