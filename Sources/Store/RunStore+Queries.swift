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
}
