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
