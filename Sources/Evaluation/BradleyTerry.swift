import Foundation
import TensorCore

/// One comparison of two policies' responses to a prompt: `.a` means policy `a` won.
public struct Battle: Codable, Sendable, Equatable {
    public var a: String
    public var b: String
    public var verdict: Verdict

    public init(_ a: String, _ b: String, _ verdict: Verdict) {
        self.a = a
        self.b = b
        self.verdict = verdict
    }
}

/// One policy's place in a Bradley-Terry ranking.
public struct BradleyTerryRating: Codable, Sendable, Equatable {
    public var policy: String
    /// The rating on the Elo scale: 400 log₁₀ of the odds, so a 400-point gap means 10:1 odds of winning.
    public var rating: Double
    /// The percentile bootstrap interval of `rating` (battles resampled, ratings refitted); nil when
    /// `bootstrap` is 0.
    public var interval: ConfidenceInterval?
    /// 1 + the number of policies rated higher.
    public var rank: Int
    /// The best and worst rank the intervals allow: 1 + the policies whose lower bound is above this one's
    /// upper bound, and the count of policies less those whose upper bound is below this one's lower bound
    /// (Chatbot Arena's rank bounds). From the point ratings when there are no intervals.
    public var rankBest: Int
    public var rankWorst: Int
    /// Battles this policy won, lost and tied (judge failures are in none).
    public var wins: Int
    public var losses: Int
    public var ties: Int
}

/// A Bradley-Terry ranking of several policies from their battles, the way Chatbot Arena computes it.
///
/// P(i beats j) = σ(θᵢ - θⱼ); θ maximizes the log-likelihood of the battles, a tie counting as half a win
/// for each side, minus a small L2 penalty `l2/2 Σ θ²` (a policy that never won or never lost otherwise has
/// no finite maximum; with the penalty it gets a very low or very high but finite rating, and its
/// `wins` or `losses` of 0 says why; a listed policy without battles sits at θ = 0). Fitted by Newton's
/// method, which converges in a handful of steps.
/// Ratings are `1000 + 400 log₁₀(e) (θᵢ - θ̄)`: the mean rating is 1000, or, with an `anchor`, that policy
/// is 1000.
public struct BradleyTerryRanking: Codable, Sendable, Equatable {
    /// The policies, best first (equal ratings keep the given order).
    public var ratings: [BradleyTerryRating]
    /// Counted battles and judge failures.
    public var battles: Int
    public var failures: Int
    /// The policy rated 1000, or nil when the mean rating is 1000.
    public var anchor: String?
    public var l2: Double
    public var bootstrap: Int
    public var seed: UInt64
    public var confidence: Double

    /// The ranking of `policies` (at least two, distinct names) from `battles` between them. The same seed
    /// gives the same intervals bit for bit.
    ///
    /// - Throws: `EvaluationError` naming the battle whose policy is not in `policies` or is the same on both
    ///   sides, a duplicate policy, an unknown `anchor`, no counted battle, a negative `bootstrap`, an `l2`
    ///   that is not positive, or a `confidence` not strictly between 0 and 1.
    public static func fit(policies: [String], battles: [Battle], anchor: String? = nil, bootstrap: Int = 2000,
                           seed: UInt64, confidence: Double = 0.95, l2: Double = 1e-3) throws -> BradleyTerryRanking {
        _ = try CompareStatistics.zScore(confidence: confidence)
        guard bootstrap >= 0 else { throw EvaluationError("bootstrap: expected 0 or more resamples, found \(bootstrap)") }
        guard l2 > 0, l2.isFinite else { throw EvaluationError("l2: expected a positive penalty (such as 1e-3), found \(l2)") }
        guard policies.count >= 2 else { throw EvaluationError("Bradley-Terry: expected two or more policies, found \(policies.count)") }
        var index: [String: Int] = [:]
        for (i, name) in policies.enumerated() {
            guard index[name] == nil else { throw EvaluationError("Bradley-Terry: policy \(String(reflecting: name)) is listed twice") }
            index[name] = i
        }
        var anchorIndex: Int?
        if let anchor {
            guard let i = index[anchor] else {
                throw EvaluationError("Bradley-Terry: anchor \(String(reflecting: anchor)) is not one of the policies (\(policies.joined(separator: ", ")))")
            }
            anchorIndex = i
        }
        let K = policies.count
        // Each counted battle as a cell of the outcome table, (a * K + b) * 3 + (0: a won, 1: b won, 2: tie), so
        // a bootstrap resample is a histogram of cells; and the per-policy records.
        var cells: [Int] = []
        var wins = [Int](repeating: 0, count: K), losses = wins, ties = wins
        var failures = 0
        for (k, battle) in battles.enumerated() {
            guard let i = index[battle.a], let j = index[battle.b] else {
                let missing = index[battle.a] == nil ? battle.a : battle.b
                throw EvaluationError("Bradley-Terry: battle \(k + 1): policy \(String(reflecting: missing)) is not one of the policies (\(policies.joined(separator: ", ")))")
            }
            guard i != j else { throw EvaluationError("Bradley-Terry: battle \(k + 1): \(String(reflecting: battle.a)) against itself") }
            let outcome: Int
            switch battle.verdict {
            case .a: outcome = 0; wins[i] += 1; losses[j] += 1
            case .b: outcome = 1; wins[j] += 1; losses[i] += 1
            case .tie: outcome = 2; ties[i] += 1; ties[j] += 1
            case .failed: failures += 1; continue
            }
            cells.append((i * K + j) * 3 + outcome)
        }
        let m = cells.count
        guard m > 0 else { throw EvaluationError("Bradley-Terry: no counted battles (\(failures) judge failures)") }

        let solver = BradleyTerrySolver(K: K, l2: l2)
        var histogram = [Double](repeating: 0, count: K * K * 3)
        for cell in cells { histogram[cell] += 1 }
        let theta = solver.solve(histogram: histogram, from: [Double](repeating: 0, count: K))
        let elo = eloScale(theta, anchor: anchorIndex)

        var intervals: [ConfidenceInterval]?
        if bootstrap > 0 {
            var rng = RNG(seed: seed)
            var samples = [Double](repeating: 0, count: bootstrap * K)  // [bootstrap, K]
            for r in 0..<bootstrap {
                for q in histogram.indices { histogram[q] = 0 }
                cells.withUnsafeBufferPointer { c in
                    histogram.withUnsafeMutableBufferPointer { h in
                        for _ in 0..<m { h[c[rng.int(below: m)]] += 1 }
                    }
                }
                let refit = eloScale(solver.solve(histogram: histogram, from: theta), anchor: anchorIndex)
                for i in 0..<K { samples[r * K + i] = refit[i] }
            }
            intervals = (0..<K).map { i in
                let column = (0..<bootstrap).map { samples[$0 * K + i] }
                return CompareStatistics.percentileInterval(column, confidence: confidence)!
            }
        }

        let lows = intervals?.map(\.low) ?? elo, highs = intervals?.map(\.high) ?? elo
        var ratings = (0..<K).map { i in
            BradleyTerryRating(
                policy: policies[i], rating: elo[i], interval: intervals?[i],
                rank: 1 + elo.filter { $0 > elo[i] }.count,
                rankBest: 1 + lows.filter { $0 > highs[i] }.count,
                rankWorst: K - highs.filter { $0 < lows[i] }.count,
                wins: wins[i], losses: losses[i], ties: ties[i])
        }
        let order = (0..<K).sorted { elo[$0] != elo[$1] ? elo[$0] > elo[$1] : $0 < $1 }
        ratings = order.map { ratings[$0] }
        return BradleyTerryRanking(ratings: ratings, battles: m, failures: failures, anchor: anchor, l2: l2,
                                   bootstrap: bootstrap, seed: seed, confidence: confidence)
    }

    /// θ (natural log odds) on the Elo scale, 1000 at the anchor or at the mean.
    static func eloScale(_ theta: [Double], anchor: Int?) -> [Double] {
        let reference = anchor.map { theta[$0] } ?? theta.reduce(0, +) / Double(theta.count)
        let perNat = 400 / Foundation.log(10.0)
        return theta.map { 1000 + perNat * ($0 - reference) }
    }
}

/// Newton's method for the penalized Bradley-Terry log-likelihood on a histogram of battle outcomes.
struct BradleyTerrySolver {
    let K: Int, l2: Double

    /// The maximizer θ of Σ_{i<j} [Sᵢⱼ log σ(θᵢ - θⱼ) + Sⱼᵢ log σ(θⱼ - θᵢ)] - l2/2 |θ|², from `start`; a step that
    /// lowers the (strictly concave) objective is halved until it does not.
    func solve(histogram: [Double], from start: [Double]) -> [Double] {
        // scores[i*K + j]: i's points against j (a tie half a point each); counts[i*K + j]: their battles, i < j.
        var scores = [Double](repeating: 0, count: K * K), counts = scores
        for i in 0..<K {
            for j in 0..<K where i != j {
                let cell = (i * K + j) * 3, (won, lost, tied) = (histogram[cell], histogram[cell + 1], histogram[cell + 2])
                scores[i * K + j] += won + tied / 2
                scores[j * K + i] += lost + tied / 2
                counts[min(i, j) * K + max(i, j)] += won + lost + tied
            }
        }
        var theta = start
        var current = evaluate(theta, scores, counts)
        var step = [Double](repeating: 0, count: K)
        for _ in 0..<100 {
            guard choleskySolve(current.hessian, current.gradient, into: &step) else { break }
            var scale = 1.0, accepted = false
            for _ in 0..<40 {
                let candidate = (0..<K).map { theta[$0] + scale * step[$0] }
                let next = evaluate(candidate, scores, counts)
                if next.objective >= current.objective - 1e-12 * abs(current.objective) {
                    theta = candidate
                    current = next
                    accepted = true
                    break
                }
                scale /= 2
            }
            if !accepted || step.reduce(0, { max($0, abs(scale * $1)) }) < 1e-10 { break }
        }
        return theta
    }

    /// The objective, its gradient, and its negated Hessian (positive definite, row-major K x K) at θ.
    private func evaluate(_ theta: [Double], _ scores: [Double], _ counts: [Double])
        -> (objective: Double, gradient: [Double], hessian: [Double]) {
        var objective = 0.0
        var gradient = theta.map { -l2 * $0 }
        var hessian = [Double](repeating: 0, count: K * K)
        for i in 0..<K {
            objective -= l2 / 2 * theta[i] * theta[i]
            hessian[i * K + i] = l2
        }
        for i in 0..<K {
            for j in (i + 1)..<K where counts[i * K + j] > 0 {
                let d = theta[i] - theta[j], n = counts[i * K + j]
                let sij = scores[i * K + j], sji = scores[j * K + i]
                let e = Foundation.exp(-abs(d)), log1pe = Foundation.log1p(e)
                let p = d >= 0 ? 1 / (1 + e) : e / (1 + e)  // σ(d)
                // log σ(d) = -(max(-d, 0) + log1p(e^-|d|)), log σ(-d) = -(max(d, 0) + log1p(e^-|d|)).
                objective -= sij * (max(-d, 0) + log1pe) + sji * (max(d, 0) + log1pe)
                let g = sij - n * p, v = n * p * (1 - p)
                gradient[i] += g
                gradient[j] -= g
                hessian[i * K + i] += v
                hessian[j * K + j] += v
                hessian[i * K + j] -= v
                hessian[j * K + i] -= v
            }
        }
        return (objective, gradient, hessian)
    }
}

/// Solves A x = b for symmetric positive-definite `a` (row-major n x n) by Cholesky; false when `a` is not
/// positive definite.
func choleskySolve(_ a: [Double], _ b: [Double], into x: inout [Double]) -> Bool {
    let n = b.count
    var l = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
        for j in 0...i {
            var sum = a[i * n + j]
            for k in 0..<j { sum -= l[i * n + k] * l[j * n + k] }
            if i == j {
                guard sum > 0 else { return false }
                l[i * n + i] = sum.squareRoot()
            } else {
                l[i * n + j] = sum / l[j * n + j]
            }
        }
    }
    for i in 0..<n {  // L y = b
        var sum = b[i]
        for k in 0..<i { sum -= l[i * n + k] * x[k] }
        x[i] = sum / l[i * n + i]
    }
    for i in stride(from: n - 1, through: 0, by: -1) {  // Lᵀ x = y
        var sum = x[i]
        for k in (i + 1)..<n { sum -= l[k * n + i] * x[k] }
        x[i] = sum / l[i * n + i]
    }
    return true
}
