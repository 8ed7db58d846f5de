import Foundation
import TensorCore

/// A verdict on a pair (A = the policy, B = the baseline) with the two responses' lengths (tokens or
/// characters: any unit, the same for both).
public struct VerdictWithLengths: Codable, Sendable, Equatable {
    public var verdict: Verdict
    public var lengthA: Double
    public var lengthB: Double

    public init(_ verdict: Verdict, lengthA: Double, lengthB: Double) {
        self.verdict = verdict
        self.lengthA = lengthA
        self.lengthB = lengthB
    }
}

/// The length-controlled win rate of a policy against a baseline: AlpacaEval 2's idea, reduced to one
/// model and one baseline. A logistic regression of the preference on the length difference estimates how
/// often A would win if its responses were as long as B's.
///
/// The model is P(A wins) = σ(θ₀ + θ₁ tanh(Δ / s)), Δ = lengthA - lengthB, s the standard deviation of Δ
/// over the counted verdicts, fitted by Newton's method on the log-likelihood with the target 1 for a win,
/// 0 for a loss and 1/2 for a tie (the same as half a win and half a loss), plus an L2 penalty `l2/2 (θ₀² + θ₁²)`
/// so that all-wins or perfectly length-separated verdicts still give finite coefficients. The
/// length-controlled win rate is σ(θ₀), the predicted win probability at Δ = 0. When every Δ is the same,
/// length cannot be told apart from quality and the feature is 0 (θ₁ = 0, the rate is the raw one).
public struct LengthControlledWinRate: Codable, Sendable, Equatable {
    /// Prompts with a counted verdict, counted verdicts, and judge failures (left out of the fit).
    public var prompts: Int
    public var n: Int
    public var failures: Int
    /// The raw win rate with ties as half, `mean(target)`.
    public var rawWinRate: Double
    /// σ(θ₀): the win rate at equal lengths.
    public var winRate: Double
    /// The percentile bootstrap interval of `winRate` over resampled prompts (the scale `s` kept); nil when
    /// `bootstrap` is 0.
    public var interval: ConfidenceInterval?
    /// θ₀ and θ₁ of the fit.
    public var intercept: Double
    public var slope: Double
    /// The mean and the standard deviation `s` of the length differences.
    public var meanLengthDifference: Double
    public var lengthScale: Double
    public var l2: Double
    public var bootstrap: Int
    public var seed: UInt64
    public var confidence: Double

    /// The fit of `prompts` (one list of verdicts per prompt). The same seed gives the same interval bit for bit.
    ///
    /// - Throws: `EvaluationError` when no verdict is counted, a length is not finite, `bootstrap` is negative,
    ///   `l2` is not positive, or `confidence` is not strictly between 0 and 1.
    public static func compute(prompts: [[VerdictWithLengths]], bootstrap: Int = 2000, seed: UInt64,
                               confidence: Double = 0.95, l2: Double = 1e-3) throws -> LengthControlledWinRate {
        _ = try CompareStatistics.zScore(confidence: confidence)
        guard bootstrap >= 0 else { throw EvaluationError("bootstrap: expected 0 or more resamples, found \(bootstrap)") }
        guard l2 > 0, l2.isFinite else { throw EvaluationError("l2: expected a positive penalty (such as 1e-3), found \(l2)") }
        // Counted verdicts flattened prompt by prompt: `starts[k]..<starts[k + 1]` are prompt k's.
        var deltas: [Double] = [], targets: [Double] = [], starts: [Int] = [0]
        var failures = 0
        for (k, verdicts) in prompts.enumerated() {
            for (j, item) in verdicts.enumerated() {
                guard item.lengthA.isFinite, item.lengthB.isFinite, (item.lengthA - item.lengthB).isFinite else {
                    throw EvaluationError("length-controlled win rate: prompt \(k + 1), verdict \(j + 1): lengths \(item.lengthA) and \(item.lengthB); expected finite numbers")
                }
                let target: Double
                switch item.verdict {
                case .a: target = 1
                case .b: target = 0
                case .tie: target = 0.5
                case .failed: failures += 1; continue
                }
                deltas.append(item.lengthA - item.lengthB)
                targets.append(target)
            }
            if deltas.count > starts[starts.count - 1] { starts.append(deltas.count) }
        }
        let n = deltas.count, promptCount = starts.count - 1
        guard n > 0 else {
            throw EvaluationError("length-controlled win rate: no counted verdicts (\(failures) judge failures)")
        }
        let mean = deltas.reduce(0, +) / Double(n)
        let scale = (deltas.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(n)).squareRoot()
        guard scale.isFinite else {
            throw EvaluationError("length-controlled win rate: the length differences are too large to square (spread \(scale)); expected lengths in tokens or characters")
        }
        let features = deltas.map { scale > 0 ? Foundation.tanh($0 / scale) : 0 }
        let fit = LogisticFit(features: features, targets: targets, starts: starts, l2: l2)
        let ones = [Double](repeating: 1, count: promptCount)
        let theta = fit.solve(weights: ones, from: (0, 0))
        var result = LengthControlledWinRate(
            prompts: promptCount, n: n, failures: failures, rawWinRate: targets.reduce(0, +) / Double(n),
            winRate: logistic(theta.0), intercept: theta.0, slope: theta.1, meanLengthDifference: mean, lengthScale: scale,
            l2: l2, bootstrap: bootstrap, seed: seed, confidence: confidence)
        guard bootstrap > 0 else { return result }
        var rng = RNG(seed: seed)
        var weights = [Double](repeating: 0, count: promptCount)
        var rates = [Double](repeating: 0, count: bootstrap)
        for r in 0..<bootstrap {
            for k in 0..<promptCount { weights[k] = 0 }
            for _ in 0..<promptCount { weights[rng.int(below: promptCount)] += 1 }
            rates[r] = logistic(fit.refit(weights: weights, from: theta).0)
        }
        result.interval = CompareStatistics.percentileInterval(rates, confidence: confidence)
        return result
    }
}

/// The logistic function, written so that neither tail overflows.
@inline(__always)
func logistic(_ x: Double) -> Double {
    x >= 0 ? 1 / (1 + Foundation.exp(-x)) : Foundation.exp(x) / (1 + Foundation.exp(x))
}

/// Penalized two-parameter logistic regression, η = θ₀ + θ₁ x, on verdicts grouped by prompt with a weight
/// per prompt (the bootstrap's multiplicities).
struct LogisticFit {
    let features: [Double], targets: [Double], starts: [Int], l2: Double

    /// The maximizer of Σ w [y log σ(η) + (1 - y) log σ(-η)] - l2/2 |θ|², by Newton's method from `start`;
    /// a step that lowers the objective is halved until it does not (the objective is concave, so this
    /// always ends).
    func solve(weights: [Double], from start: (Double, Double)) -> (Double, Double) {
        var theta = start
        var current = evaluate(theta, weights, objective: true)
        for _ in 0..<100 {
            guard let step = newtonStep(current) else { break }
            var scale = 1.0, accepted = false
            for _ in 0..<40 {
                let candidate = (theta.0 + scale * step.0, theta.1 + scale * step.1)
                let next = evaluate(candidate, weights, objective: true)
                if next.objective >= current.objective - 1e-12 * abs(current.objective) {
                    theta = candidate
                    current = next
                    accepted = true
                    break
                }
                scale /= 2
            }
            if !accepted || max(abs(scale * step.0), abs(scale * step.1)) < 1e-10 { break }
        }
        return theta
    }

    /// The same maximizer from a start close to it (a bootstrap refit from the full-data estimate): plain
    /// Newton steps, which need no objective and so no logarithms, until a step is below 1e-5 (quadratic
    /// convergence leaves an error near its square); `solve` takes over if a step fails to shrink.
    func refit(weights: [Double], from start: (Double, Double)) -> (Double, Double) {
        var theta = start, last = Double.infinity
        for _ in 0..<30 {
            guard let step = newtonStep(evaluate(theta, weights, objective: false)) else { break }
            let size = max(abs(step.0), abs(step.1))
            guard size < last else { break }
            theta = (theta.0 + step.0, theta.1 + step.1)
            if size < 1e-5 { return theta }
            last = size
        }
        return solve(weights: weights, from: start)
    }

    /// The Newton step H⁻¹ g for the negated 2x2 Hessian of the penalized objective; nil if it is singular.
    private func newtonStep(_ e: (objective: Double, g0: Double, g1: Double, h00: Double, h01: Double, h11: Double))
        -> (Double, Double)? {
        let (a, b, c) = (e.h00 + l2, e.h01, e.h11 + l2)
        let det = a * c - b * b
        guard det > 0 else { return nil }
        return ((c * e.g0 - b * e.g1) / det, (a * e.g1 - b * e.g0) / det)
    }

    /// The penalized objective (0 unless `objective`), its gradient and the negated Hessian of the likelihood
    /// part at θ.
    private func evaluate(_ theta: (Double, Double), _ weights: [Double], objective withObjective: Bool)
        -> (objective: Double, g0: Double, g1: Double, h00: Double, h01: Double, h11: Double) {
        var sums = features.withUnsafeBufferPointer { x in
            targets.withUnsafeBufferPointer { y in
                starts.withUnsafeBufferPointer { s in
                    weights.withUnsafeBufferPointer { w in
                        LogisticFit.sums(theta, x, y, s, w, withObjective)
                    }
                }
            }
        }
        if withObjective { sums.0 -= l2 / 2 * (theta.0 * theta.0 + theta.1 * theta.1) }
        return (sums.0, sums.1 - l2 * theta.0, sums.2 - l2 * theta.1, sums.3, sums.4, sums.5)
    }

    /// The weighted log-likelihood, its gradient and negated Hessian over all verdicts (a function of its own
    /// over raw buffers, so the accumulators stay in registers).
    private static func sums(_ theta: (Double, Double), _ x: UnsafeBufferPointer<Double>, _ y: UnsafeBufferPointer<Double>,
                             _ s: UnsafeBufferPointer<Int>, _ w: UnsafeBufferPointer<Double>, _ withObjective: Bool)
        -> (Double, Double, Double, Double, Double, Double) {
        var objective = 0.0, g0 = 0.0, g1 = 0.0, h00 = 0.0, h01 = 0.0, h11 = 0.0
        for k in 0..<w.count where w[k] > 0 {
            var o = 0.0, a0 = 0.0, a1 = 0.0, b00 = 0.0, b01 = 0.0, b11 = 0.0
            for i in s[k]..<s[k + 1] {
                let eta = theta.0 + theta.1 * x[i]
                let e = Foundation.exp(-abs(eta))
                let p = eta >= 0 ? 1 / (1 + e) : e / (1 + e)
                if withObjective {
                    // log σ(η) = -(max(-η, 0) + log1p(e^-|η|)), log σ(-η) = -(max(η, 0) + log1p(e^-|η|)).
                    let log1pe = Foundation.log1p(e)
                    o -= y[i] * (max(-eta, 0) + log1pe) + (1 - y[i]) * (max(eta, 0) + log1pe)
                }
                let r = y[i] - p, v = p * (1 - p)
                a0 += r; a1 += r * x[i]
                b00 += v; b01 += v * x[i]; b11 += v * x[i] * x[i]
            }
            objective += w[k] * o; g0 += w[k] * a0; g1 += w[k] * a1
            h00 += w[k] * b00; h01 += w[k] * b01; h11 += w[k] * b11
        }
        return (objective, g0, g1, h00, h01, h11)
    }
}
