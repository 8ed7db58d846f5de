import Foundation

/// One policy (or checkpoint) on the reward-vs-KL plane: its KL to the reference policy and its reward.
public struct KLRewardPoint: Codable, Sendable, Equatable {
    /// What the point is, such as `stage:ppo@200` or `best-of-16`.
    public var label: String
    public var kl: Double
    public var reward: Double

    public init(_ label: String, kl: Double, reward: Double) {
        self.label = label
        self.kl = kl
        self.reward = reward
    }
}

/// A point of the reward over-optimization plot: x = √KL, y = reward.
public struct SqrtKLRewardPoint: Codable, Sendable, Equatable {
    public var label: String
    public var sqrtKL: Double
    public var reward: Double

    public init(label: String, sqrtKL: Double, reward: Double) {
        self.label = label
        self.sqrtKL = sqrtKL
        self.reward = reward
    }
}

extension CompareStatistics {
    /// The indices of the points no other point dominates, in increasing KL (equal KL: higher reward
    /// first). A point dominates another when its KL is no higher and its reward no lower, and one of the two
    /// strictly; equal points do not dominate each other, so both are on the front.
    ///
    /// - Throws: `EvaluationError` naming the point whose KL or reward is not a finite number.
    public static func paretoFront(_ points: [KLRewardPoint]) throws -> [Int] {
        try checkFinite(points)
        let order = points.indices.sorted {
            points[$0].kl != points[$1].kl ? points[$0].kl < points[$1].kl
                : points[$0].reward != points[$1].reward ? points[$0].reward > points[$1].reward : $0 < $1
        }
        // In that order a point is on the front when its reward beats every earlier (lower or equal KL) point's,
        // or equals the best so far at the same KL and reward as that best point.
        var front: [Int] = []
        for i in order {
            guard let last = front.last else { front.append(i); continue }
            let best = points[last]
            if points[i].reward > best.reward || (points[i].reward == best.reward && points[i].kl == best.kl) {
                front.append(i)
            }
        }
        return front
    }

    /// The points as √KL against reward, for the over-optimization plot (Gao et al. 2022). A KL estimated
    /// from samples can come out slightly negative; it is taken as 0.
    ///
    /// - Throws: `EvaluationError` naming the point whose KL or reward is not a finite number.
    public static func rewardVsSqrtKL(_ points: [KLRewardPoint]) throws -> [SqrtKLRewardPoint] {
        try checkFinite(points)
        return points.map { SqrtKLRewardPoint(label: $0.label, sqrtKL: max(0, $0.kl).squareRoot(), reward: $0.reward) }
    }

    private static func checkFinite(_ points: [KLRewardPoint]) throws {
        if let p = points.first(where: { !$0.kl.isFinite || !$0.reward.isFinite }) {
            throw EvaluationError("reward-vs-KL point \(String(reflecting: p.label)): KL \(p.kl), reward \(p.reward); expected finite numbers")
        }
    }
}
