import Foundation
import Store
import Training

/// A `MetricsSink` that writes one stage's metrics to the store in batched transactions.
///
/// Rows are buffered and written every `batchSize` rows, on `flush()`, and on deinit. Writes are
/// upserts on (stageId, step, name), so a resumed stage that re-logs steps replaces values
/// instead of duplicating them. Not thread-safe: one trainer records into one sink.
public final class StoreMetricsSink: MetricsSink {
    /// The store written to.
    public let store: RunStore
    /// The stage the metrics belong to.
    public let stageId: Int64
    /// Rows buffered before a write.
    public let batchSize: Int
    /// The last error of a write triggered by `record` or deinit (which cannot throw); the rows of
    /// a failed batch stay buffered and are retried on the next write.
    public private(set) var lastError: Error?
    private var buffer: [Metric] = []

    /// A sink for stage `stageId` writing every `batchSize` rows (at least 1).
    public init(store: RunStore, stageId: Int64, batchSize: Int = 256) {
        self.store = store
        self.stageId = stageId
        self.batchSize = max(1, batchSize)
        buffer.reserveCapacity(self.batchSize)
    }

    deinit {
        try? flush()
    }

    /// Rows recorded but not yet written.
    public var pendingCount: Int { buffer.count }

    /// Buffers one value; writes the buffer when it holds `batchSize` rows.
    public func record(step: Int, name: String, value: Double) {
        buffer.append(Metric(stageId: stageId, step: step, name: name, value: value))
        if buffer.count >= batchSize {
            do {
                try flush()
            } catch {
                lastError = error
            }
        }
    }

    /// Writes the buffered rows in one transaction.
    public func flush() throws {
        guard !buffer.isEmpty else { return }
        try store.record(metrics: buffer)
        buffer.removeAll(keepingCapacity: true)
        lastError = nil
    }
}

/// A `RolloutSink` that writes one stage's rollouts to the store's `rollout` table.
///
/// `record` buffers a batch and writes the buffer in one transaction once it holds `batchSize`
/// rows (by default every batch is written at once); `flush()` writes what is left, and deinit
/// tries to. Every row is a training rollout (phase `train`), apart from the evaluation replies a
/// stage records at its first and last step (phase `eval`). Writes are upserts on (stageId, phase,
/// step, idx), so a resumed stage that regenerates a step replaces its rows instead of duplicating them. A failed write throws and keeps the rows
/// buffered for the next one. Not thread-safe: one trainer records into one sink.
public final class StoreRolloutSink: RolloutSink {
    /// The store written to.
    public let store: RunStore
    /// The stage the rollouts belong to.
    public let stageId: Int64
    /// Rows buffered before a write.
    public let batchSize: Int
    private var buffer: [Rollout] = []

    /// A sink for stage `stageId` writing once `batchSize` rows (at least 1) are buffered.
    public init(store: RunStore, stageId: Int64, batchSize: Int = 1) {
        self.store = store
        self.stageId = stageId
        self.batchSize = max(1, batchSize)
    }

    deinit {
        try? flush()
    }

    /// Rows recorded but not yet written.
    public var pendingCount: Int { buffer.count }

    /// Buffers `rollouts`; writes the buffer in one transaction when it holds `batchSize` rows.
    public func record(rollouts: [RolloutRow]) throws {
        buffer += rollouts.map { Self.rollout($0, stageId: stageId) }
        if buffer.count >= batchSize { try flush() }
    }

    /// Writes the buffered rows in one transaction.
    public func flush() throws {
        guard !buffer.isEmpty else { return }
        do {
            try store.record(rollouts: buffer)
        } catch {
            throw StoreRolloutSinkError(stageId: stageId, storePath: store.path, rows: buffer.count, underlying: error)
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// The store row of `row` for stage `stageId`: phase `train`, `responseTokens` is the token
    /// count, and NaN values (unmeasured) are null.
    public static func rollout(_ row: RolloutRow, stageId: Int64) -> Rollout {
        func measured(_ x: Double?) -> Double? { x.flatMap { $0.isNaN ? nil : $0 } }
        return Rollout(stageId: stageId, phase: RolloutPhase.train, step: row.step, idx: row.index, prompt: row.prompt, response: row.response,
                       responseTokens: row.responseTokenIds.count, stopReason: row.stopReason, score: measured(row.score),
                       kl: measured(row.kl), reward: measured(row.reward), policyVersion: row.policyVersion,
                       responseTokenIds: row.responseTokenIds, advantage: measured(row.advantage), groupIndex: row.group)
    }
}

/// A failed write of buffered rollouts, naming the stage and the store.
public struct StoreRolloutSinkError: Error, CustomStringConvertible {
    /// The stage the rows belong to.
    public let stageId: Int64
    /// The store file.
    public let storePath: String
    /// How many rows stay buffered.
    public let rows: Int
    /// The store's error.
    public let underlying: Error

    public var description: String {
        "cannot record \(rows) rollout\(rows == 1 ? "" : "s") of stage \(stageId) in \(storePath): \(underlying)"
    }
}
