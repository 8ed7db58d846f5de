import Foundation
import GRDB

/// How a single-mode task is scored.
public enum RatingScale: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
    /// 1 (worst) to 7 (best), in `rating.likert`.
    case likert
    /// Thumbs up or down, in `rating.thumb`.
    case thumbs
}

extension RunStore {
    /// `v6-ratings`: the scale of single-mode tasks and how a task's candidates were made
    /// (`ratingTask.scale`, `ratingTask.options`), thumbs answers (`rating.thumb`), and which sitting
    /// holds an assignment (`ratingAssignment.session`, `pid`, `host`) so that an item a rater left
    /// unanswered goes back to the pool. Columns only: no table is rebuilt, no row changes.
    static func registerRatingsV6(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v6-ratings") { db in
            try db.alter(table: "ratingTask") { t in
                t.add(column: "scale", .text).notNull().defaults(to: RatingScale.likert.rawValue)
                    .check { RatingScale.allCases.map(\.rawValue).contains($0) }
                t.add(column: "options", .text)
            }
            try db.alter(table: "rating") { t in t.add(column: "thumb", .boolean) }
            try db.alter(table: "ratingAssignment") { t in
                t.add(column: "session", .text)
                t.add(column: "pid", .integer)
                t.add(column: "host", .text)
            }
        }
    }

    /// Gives back to the pool the items of task `taskId` that other raters were given and left
    /// unanswered (a skip is not an answer) when they were given them before `cutoff`, or when the
    /// sitting that took them was a process on this host that has ended. Returns how many.
    /// Runs inside `nextRatingItem`'s transaction, so two raters never take one released item both.
    static func releaseAbandoned(_ db: Database, taskId: Int64, rater: String, cutoff: Date) throws -> Int {
        let open = """
            FROM ratingAssignment g JOIN ratingItem i ON i.id = g.itemId
            WHERE i.ratingTaskId = :task AND g.rater != :rater
              AND NOT EXISTS (SELECT 1 FROM rating r WHERE r.itemId = g.itemId AND r.rater = g.rater AND r.undone = 0 AND r.vote != 'skip')
            """
        var released = 0
        for row in try Row.fetchAll(db, sql: "SELECT g.itemId, g.rater \(open) AND g.assignedAt < :cutoff",
                                    arguments: ["task": taskId, "rater": rater, "cutoff": cutoff]) {
            try release(db, itemId: row["itemId"], rater: row["rater"])
            released += 1
        }
        for row in try Row.fetchAll(db, sql: "SELECT g.itemId, g.rater, g.pid \(open) AND g.host = :host AND g.pid IS NOT NULL",
                                    arguments: ["task": taskId, "rater": rater, "host": Self.host]) {
            let pid: Int64 = row["pid"]
            guard !Self.processIsAlive(pid) else { continue }
            try release(db, itemId: row["itemId"], rater: row["rater"])
            released += 1
        }
        return released
    }

    private static func release(_ db: Database, itemId: Int64, rater: String) throws {
        try db.execute(sql: "DELETE FROM ratingAssignment WHERE itemId = ? AND rater = ?", arguments: [itemId, rater])
    }

    /// How long an unanswered assignment holds its item for a rater whose process may still run
    /// (elsewhere, or here): 30 minutes.
    public static let assignmentTimeout: TimeInterval = 30 * 60

    /// This machine's name, recorded with an assignment so only processes here are checked for liveness.
    static let host = ProcessInfo.processInfo.hostName

    /// Whether process `pid` of this host still runs (`kill(pid, 0)` fails with ESRCH when it is gone).
    static func processIsAlive(_ pid: Int64) -> Bool {
        guard pid > 0, pid <= Int64(Int32.max) else { return false }
        return kill(pid_t(pid), 0) == 0 || errno != ESRCH
    }

    /// Records that the sitting `session` (this process) holds `rater`'s assignment of `itemId`, as of `date`.
    static func holdAssignment(_ db: Database, itemId: Int64, rater: String, session: String?, at date: Date) throws {
        try db.execute(sql: """
            UPDATE ratingAssignment SET assignedAt = ?, session = ?, pid = ?, host = ? WHERE itemId = ? AND rater = ?
            """, arguments: [date, session, Int64(ProcessInfo.processInfo.processIdentifier), Self.host, itemId, rater])
    }

    /// The options a task's candidates were made with (`ratingTask.options`), as stored JSON.
    public func setRatingTaskOptions(taskId: Int64, options: String) throws {
        try write { db in
            try db.execute(sql: "UPDATE ratingTask SET options = ? WHERE id = ?", arguments: [options, taskId])
        }
    }

    /// The output of the newest completed stage `stageKey` of any run (`stage:ID` on the command line).
    public func newestCompletedOutput(stageKey: String) throws -> String? {
        try dbPool.read { db in
            try String.fetchOne(db, sql: """
                SELECT outputPath FROM stage WHERE stageKey = ? AND status = 'completed' AND outputPath IS NOT NULL ORDER BY id DESC LIMIT 1
                """, arguments: [stageKey])
        }
    }

    /// Live answers (not undone, not skips) to task `taskId`.
    public func answerCount(taskId: Int64) throws -> Int {
        try dbPool.read { db in
            try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM rating r JOIN ratingItem i ON i.id = r.itemId
                WHERE i.ratingTaskId = ? AND r.undone = 0 AND r.vote != 'skip'
                """, arguments: [taskId]) ?? 0
        }
    }
}
