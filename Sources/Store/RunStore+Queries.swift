import Foundation
import GRDB

/// Read-only lookups for reporting on runs (`rein runs`).
extension RunStore {
    /// The newest run (highest id) named `name`, or nil.
    public func run(named name: String) throws -> Run? {
        try dbPool.read { db in
            try Run.filter(Column("name") == name).order(Column("id").desc).fetchOne(db)
        }
    }

    /// Each metric of stage `stageId` at its highest step: the values the stage ended with.
    public func finalMetrics(stageId: Int64) throws -> [String: Double] {
        try dbPool.read { db in
            let rows = try Row.fetchAll(db, sql: """
                SELECT m.name, m.value FROM metric m
                WHERE m.stageId = ?
                  AND m.step = (SELECT MAX(step) FROM metric WHERE stageId = m.stageId AND name = m.name)
                """, arguments: [stageId])
            var values: [String: Double] = [:]
            for row in rows { values[row["name"]] = row["value"] }
            return values
        }
    }

    /// The values of metric `name` of stage `stageId`, by step.
    public func series(stageId: Int64, name: String) throws -> [(step: Int, value: Double)] {
        try dbPool.read { db in
            try Row.fetchAll(db, sql: "SELECT step, value FROM metric WHERE stageId = ? AND name = ? ORDER BY step",
                             arguments: [stageId, name])
                .map { (step: $0["step"], value: $0["value"]) }
        }
    }

    // MARK: - Rollouts

    // Each lookup reads one phase of the rollouts, by default the training rollouts of an RL stage
    // (`RolloutPhase.train`); pass `RolloutPhase.eval` for the evaluation replies.

    /// Rollouts of stage `stageId` in `phase` with a step in `steps`, ordered by step then index.
    public func rollouts(stageId: Int64, steps: ClosedRange<Int>, phase: String = RolloutPhase.train) throws -> [Rollout] {
        try dbPool.read { db in
            try Rollout.filter(Column("stageId") == stageId && Column("phase") == phase
                               && Column("step") >= steps.lowerBound && Column("step") <= steps.upperBound)
                .order(Column("step"), Column("idx")).fetchAll(db)
        }
    }

    /// The highest step with a rollout in `phase` in stage `stageId`, or nil if it recorded none.
    public func lastRolloutStep(stageId: Int64, phase: String = RolloutPhase.train) throws -> Int? {
        try dbPool.read { db in
            try Int.fetchOne(db, sql: "SELECT MAX(step) FROM rollout WHERE stageId = ? AND phase = ?",
                             arguments: [stageId, phase])
        }
    }

    /// The aggregates of the rollouts in `phase` of stage `stageId`, one per step, in step order.
    public func rolloutStepAggregates(stageId: Int64, phase: String = RolloutPhase.train) throws -> [RolloutAggregate] {
        try dbPool.read { db in
            try Row.fetchAll(db, sql: "SELECT step AS firstStep, step AS lastStep, " + RolloutAggregate.columns
                                 + " FROM rollout WHERE stageId = ? AND phase = ? GROUP BY step ORDER BY step",
                             arguments: [stageId, phase])
                .map(RolloutAggregate.init(row:))
        }
    }

    /// The aggregate of the rollouts in `phase` of stage `stageId` with a step in `steps`, or nil
    /// when there are none.
    public func rolloutAggregate(stageId: Int64, steps: ClosedRange<Int>,
                                 phase: String = RolloutPhase.train) throws -> RolloutAggregate? {
        try dbPool.read { db in
            let row = try Row.fetchOne(db, sql: "SELECT MIN(step) AS firstStep, MAX(step) AS lastStep, " + RolloutAggregate.columns
                                           + " FROM rollout WHERE stageId = ? AND phase = ? AND step BETWEEN ? AND ?",
                                       arguments: [stageId, phase, steps.lowerBound, steps.upperBound])
            guard let row, (row["count"] as Int) > 0 else { return nil }
            return RolloutAggregate(row: row)
        }
    }

    /// Up to `limit` rollouts in `phase` of stage `stageId` at `step`, highest reward first (or
    /// lowest first when `lowest`). Rows without a reward come last, ranked by score; ties keep
    /// index order.
    public func rolloutsByReward(stageId: Int64, step: Int, limit: Int, lowest: Bool = false,
                                 phase: String = RolloutPhase.train) throws -> [Rollout] {
        let direction = lowest ? "ASC" : "DESC"
        return try dbPool.read { db in
            try Rollout.fetchAll(db, sql: """
                SELECT * FROM rollout WHERE stageId = ? AND phase = ? AND step = ?
                ORDER BY reward IS NULL, reward \(direction), score IS NULL, score \(direction), idx
                LIMIT ?
                """, arguments: [stageId, phase, step, max(0, limit)])
        }
    }
}

/// Means over a set of rollouts (one step, or a range of steps) of a stage.
public struct RolloutAggregate: Sendable, Equatable {
    /// The first and last step with a rollout in the set.
    public var firstStep: Int
    /// See `firstStep`.
    public var lastStep: Int
    /// How many rollouts.
    public var count: Int
    /// Mean score over the rollouts that have one; nil when none has.
    public var meanScore: Double?
    /// Mean KL over the rollouts that have one; nil when none has.
    public var meanKL: Double?
    /// Mean reward over the rollouts that have one; nil when none has.
    public var meanReward: Double?
    /// Mean number of generated tokens.
    public var meanResponseTokens: Double
    /// The fraction of rollouts that stopped at an EOS token (`stopReason = 'eos'`).
    public var eosShare: Double

    /// An aggregate row.
    public init(firstStep: Int, lastStep: Int, count: Int, meanScore: Double?, meanKL: Double?, meanReward: Double?,
                meanResponseTokens: Double, eosShare: Double) {
        self.firstStep = firstStep
        self.lastStep = lastStep
        self.count = count
        self.meanScore = meanScore
        self.meanKL = meanKL
        self.meanReward = meanReward
        self.meanResponseTokens = meanResponseTokens
        self.eosShare = eosShare
    }

    /// The aggregate columns of a `SELECT ... FROM rollout` (SQLite's AVG skips nulls).
    static let columns = """
        COUNT(*) AS count, AVG(score) AS meanScore, AVG(kl) AS meanKL, AVG(reward) AS meanReward,
        AVG(responseTokens) AS meanResponseTokens, AVG(stopReason = 'eos') AS eosShare
        """

    init(row: Row) {
        self.init(firstStep: row["firstStep"], lastStep: row["lastStep"], count: row["count"], meanScore: row["meanScore"],
                  meanKL: row["meanKL"], meanReward: row["meanReward"], meanResponseTokens: row["meanResponseTokens"],
                  eosShare: row["eosShare"])
    }
}
