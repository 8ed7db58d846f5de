import Foundation
import GRDB
import TensorCore

/// Errors of the run store a user can act on.
public enum StoreError: Error, CustomStringConvertible {
    /// No `table` row with this id.
    case notFound(table: String, id: Int64)
    /// A status change the lifecycle does not allow (e.g. finishing a completed stage).
    case invalidTransition(table: String, id: Int64, from: Status, to: Status)
    /// The file at `path` is not a Rein store; it was left as it was.
    case notAStore(path: String, reason: String)
    /// The store was written by a newer Rein (migrations this build does not know); left as it was.
    case newerSchema(path: String, unknownMigrations: [String])
    /// A write transaction failed to commit (and was rolled back).
    case writeFailed(path: String, reason: String)

    /// A message naming the row and what went wrong.
    public var description: String {
        switch self {
        case let .notFound(table, id):
            "no \(table) with id \(id) in the store"
        case let .invalidTransition(table, id, from, to):
            "\(table) \(id) is \(from.rawValue) and cannot become \(to.rawValue)"
        case let .notAStore(path, reason):
            "\(path) is not a Rein run store: \(reason); it was not changed"
        case let .newerSchema(path, unknown):
            "\(path) was written by a newer Rein (schema \(unknown.joined(separator: ", ")), unknown to this build); "
                + "it was not changed: use a newer rein or another store"
        case let .writeFailed(path, reason):
            "cannot write the run store \(path): \(reason); the transaction was rolled back"
        }
    }
}

/// The SQLite store of runs, stages, metrics, rollouts, ratings and comparisons.
///
/// The database is opened through a `DatabasePool` (WAL mode) with a busy timeout, so several
/// processes can read and write one file: a writer waits for another's transaction instead of
/// failing. The schema is in `docs/store.md`.
public final class RunStore: Sendable {
    /// The database file.
    public let path: String
    /// The underlying pool, for queries this type does not wrap.
    public let dbPool: DatabasePool

    /// Opens (creating parent directories and the file if needed) and migrates the store at `path`.
    /// - Parameter busyTimeout: how long a write waits for another connection's lock, in seconds.
    public init(path: String, busyTimeout: TimeInterval = 10) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        var config = Configuration()
        config.busyMode = .timeout(busyTimeout)
        config.foreignKeysEnabled = true
        self.path = path
        try Self.refuseForeignFile(path, busyTimeout: busyTimeout)
        dbPool = try DatabasePool(path: path, configuration: config)
        try Self.migrate(dbPool, path: path)
    }

    /// A write transaction. Its commit is a fault point (``IOFaults``): an injected fault rolls the
    /// transaction back and throws, as a failed commit does.
    func write<T>(_ updates: (Database) throws -> T) throws -> T {
        try dbPool.write { db in
            let result = try updates(db)
            if IOFaults.inject("commit \(path)") { throw StoreError.writeFailed(path: path, reason: IOFaults.injectedReason) }
            return result
        }
    }

    /// Refuses, before the pool opens it (which writes to it: GRDB makes the WAL non-empty), a file
    /// that is not an SQLite database, holds tables but not Rein's migrations, or was migrated by a
    /// newer Rein. It is inspected through a read-only connection, so it is left as it was.
    static func refuseForeignFile(_ path: String, busyTimeout: TimeInterval) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { return }   // a new store
        let header = (try? handle.read(upToCount: 100)) ?? Data()
        try? handle.close()
        guard !header.isEmpty else { return }
        guard header.count == 100, header.prefix(16) == Data("SQLite format 3\0".utf8) else {
            throw StoreError.notAStore(path: path, reason: "not an SQLite database")
        }
        var config = Configuration()
        config.readonly = true
        config.busyMode = .timeout(busyTimeout)   // another process may be writing it
        let queue = try DatabaseQueue(path: path, configuration: config)
        defer { try? queue.close() }
        try queue.read { db in try refuseForeignSchema(db, path: path) }
    }

    /// Refuses a database with tables but no record of Rein's migrations, or with migrations this
    /// build does not know.
    static func refuseForeignSchema(_ db: Database, path: String) throws {
        guard try !db.tableExists("grdb_migrations") else {
            guard try migrator.hasBeenSuperseded(db) else { return }
            let known = Set(migrator.migrations)
            let unknown = try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations").filter { !known.contains($0) }
            throw StoreError.newerSchema(path: path, unknownMigrations: unknown.sorted())
        }
        let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        guard tables.isEmpty else {
            let shown = tables.prefix(5).joined(separator: ", ") + (tables.count > 5 ? ", ..." : "")
            throw StoreError.notAStore(path: path, reason: "an SQLite database with other tables (\(shown))")
        }
    }

    // MARK: - Schema

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            let statuses = Status.allCases.map(\.rawValue)
            try db.create(table: "run") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("name", .text).notNull()
                t.column("recipe", .text).notNull()
                t.column("seed", .integer).notNull()
                t.column("status", .text).notNull().check { statuses.contains($0) }
                t.column("startedAt", .datetime).notNull()
                t.column("finishedAt", .datetime)
            }
            try db.create(table: "stage") { t in
                t.autoIncrementedPrimaryKey("id")
                t.belongsTo("run", onDelete: .cascade).notNull()
                t.column("stageKey", .text).notNull()
                t.column("kind", .text).notNull()
                t.column("configJSON", .text).notNull()
                t.column("configHash", .text).notNull()
                t.column("status", .text).notNull().check { statuses.contains($0) }
                t.column("checkpointPath", .text)
                t.column("startedAt", .datetime).notNull()
                t.column("finishedAt", .datetime)
                t.uniqueKey(["runId", "stageKey"])
            }
            // The skip lookup: a completed stage with this key and config hash.
            try db.create(index: "stage_on_stageKey_configHash", on: "stage", columns: ["stageKey", "configHash"])
            try db.create(table: "metric") { t in
                t.column("stageId", .integer).notNull().references("stage", onDelete: .cascade)
                t.column("step", .integer).notNull()
                t.column("name", .text).notNull()
                t.column("value", .double).notNull()
                // Also the index for "metrics of a stage"; a re-logged step replaces its row.
                t.primaryKey(["stageId", "step", "name"])
            }
            try db.create(table: "rollout") { t in
                t.column("stageId", .integer).notNull().references("stage", onDelete: .cascade)
                t.column("step", .integer).notNull()
                t.column("idx", .integer).notNull()
                t.column("prompt", .text).notNull()
                t.column("response", .text).notNull()
                t.column("responseTokens", .integer).notNull()
                t.column("stopReason", .text).notNull()
                t.column("score", .double)
                t.column("kl", .double)
                t.column("reward", .double)
                t.column("policyVersion", .integer).notNull()
                t.primaryKey(["stageId", "step", "idx"])
            }
            try db.create(table: "rating") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("prompt", .text).notNull()
                t.column("responseA", .text).notNull()
                t.column("responseB", .text).notNull()
                t.column("sourceA", .text).notNull()
                t.column("sourceB", .text).notNull()
                t.column("choice", .text).notNull().check { ["a", "b", "tie"].contains($0) }
                t.column("rater", .text).notNull()
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "comparison") { t in
                t.autoIncrementedPrimaryKey("id")
                t.belongsTo("run", onDelete: .cascade).notNull()
                t.column("policyA", .text).notNull()
                t.column("policyB", .text).notNull()
                t.column("judge", .text).notNull()
                t.column("winsA", .integer).notNull().check { $0 >= 0 }
                t.column("winsB", .integer).notNull().check { $0 >= 0 }
                t.column("ties", .integer).notNull().check { $0 >= 0 }
            }
        }
        migrator.registerMigration("v2") { db in
            // Recipe runs: where they write, which process ran them; what each stage produced or reused.
            try db.alter(table: "run") { t in
                t.add(column: "outputDir", .text)
                t.add(column: "pid", .integer)
                t.add(column: "host", .text)
            }
            try db.alter(table: "stage") { t in
                t.add(column: "outputPath", .text)
                t.add(column: "reusedStageId", .integer).references("stage", onDelete: .setNull)
            }
            try db.create(index: "run_on_name", on: "run", columns: ["name"])
            try db.create(table: "checkpoint") { t in
                t.column("stageId", .integer).notNull().references("stage", onDelete: .cascade)
                t.column("kind", .text).notNull()
                t.column("step", .integer).notNull()
                t.column("path", .text).notNull()
                t.column("createdAt", .datetime).notNull()
                t.primaryKey(["stageId", "kind", "step"])
            }
        }
        migrator.registerMigration("v3") { db in
            // Online RL rollouts (PPO, RLOO, GRPO): the tokens, the advantage, the prompt group.
            try db.alter(table: "rollout") { t in
                t.add(column: "responseTokenIds", .text)
                t.add(column: "advantage", .double)
                t.add(column: "groupIndex", .integer)
            }
            // "Rollouts of a stage by step" is the primary key's prefix; this serves "top k by reward
            // at a step" (and by step, the step's rewards in order without a sort).
            try db.create(index: "rollout_on_stageId_step_reward", on: "rollout", columns: ["stageId", "step", "reward"])
        }
        migrator.registerMigration("v4") { db in
            // Training rollouts and evaluation replies apart: a `phase` column in the primary key, so
            // an RL stage's last update and its final evaluation (same step) no longer collide.
            // SQLite cannot change a primary key in place: create the new table, copy, drop, rename.
            try db.create(table: "new_rollout") { t in
                t.column("stageId", .integer).notNull().references("stage", onDelete: .cascade)
                t.column("phase", .text).notNull().check { ["train", "eval"].contains($0) }
                t.column("step", .integer).notNull()
                t.column("idx", .integer).notNull()
                t.column("prompt", .text).notNull()
                t.column("response", .text).notNull()
                t.column("responseTokens", .integer).notNull()
                t.column("stopReason", .text).notNull()
                t.column("score", .double)
                t.column("kl", .double)
                t.column("reward", .double)
                t.column("policyVersion", .integer).notNull()
                t.column("responseTokenIds", .text)
                t.column("advantage", .double)
                t.column("groupIndex", .integer)
                t.primaryKey(["stageId", "phase", "step", "idx"])
            }
            // Before v4 only evaluation replies and (v3) the rollout sink wrote here; only the sink
            // sets a prompt group.
            try db.execute(sql: """
                INSERT INTO new_rollout (stageId, phase, step, idx, prompt, response, responseTokens, stopReason, score, kl,
                                         reward, policyVersion, responseTokenIds, advantage, groupIndex)
                SELECT stageId, CASE WHEN groupIndex IS NULL THEN 'eval' ELSE 'train' END, step, idx, prompt, response,
                       responseTokens, stopReason, score, kl, reward, policyVersion, responseTokenIds, advantage, groupIndex
                FROM rollout
                """)
            try db.drop(table: "rollout")
            try db.rename(table: "new_rollout", to: "rollout")
            try db.create(index: "rollout_on_stageId_phase_step_reward", on: "rollout",
                          columns: ["stageId", "phase", "step", "reward"])
        }
        migrator.registerMigration("v5") { db in
            // Human rating tasks (`rein rate`): a task, its items, who was given which item, and every
            // answer with its layout and times. The v1 `rating` table (one row per judgement, texts
            // inline) is rebuilt as answers to items; its rows move into a task named `v4-ratings`.
            try db.create(table: "ratingTask") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("name", .text).notNull().unique()
                t.column("mode", .text).notNull().check { RatingMode.allCases.map(\.rawValue).contains($0) }
                t.column("source", .text).notNull()
                t.column("seed", .integer).notNull()
                t.column("overlap", .double).notNull().defaults(to: 0)
                t.column("createdAt", .datetime).notNull()
            }
            try db.create(table: "ratingItem") { t in
                t.autoIncrementedPrimaryKey("id")
                t.belongsTo("ratingTask", onDelete: .cascade).notNull()
                t.column("idx", .integer).notNull()
                t.column("prompt", .text).notNull()
                t.column("responses", .text).notNull()
                t.column("sources", .text).notNull()
                t.column("gold", .integer)
                t.column("identical", .boolean).notNull().defaults(to: false)
                t.column("raters", .integer).notNull().defaults(to: 1).check { $0 >= 1 }
                t.uniqueKey(["ratingTaskId", "idx"])
            }
            try db.create(table: "ratingAssignment") { t in
                t.column("itemId", .integer).notNull().references("ratingItem", onDelete: .cascade)
                t.column("rater", .text).notNull()
                t.column("assignedAt", .datetime).notNull()
                t.primaryKey(["itemId", "rater"])
            }
            try db.create(table: "new_rating") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("itemId", .integer).notNull().references("ratingItem", onDelete: .cascade)
                t.column("rater", .text).notNull()
                t.column("session", .text).notNull()
                t.column("swapped", .boolean).notNull()
                t.column("vote", .text).notNull().check { RatingVote.allCases.map(\.rawValue).contains($0) }
                t.column("strength", .integer).check { $0 >= 1 && $0 <= 4 }
                t.column("likert", .integer).check { $0 >= 1 && $0 <= 7 }
                t.column("ranking", .text)
                t.column("reason", .text)
                t.column("shownAt", .datetime).notNull()
                t.column("answeredAt", .datetime).notNull()
                t.column("undone", .boolean).notNull().defaults(to: false)
            }
            let old = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM rating") ?? 0
            if old > 0 {
                try db.execute(sql: """
                    INSERT INTO ratingTask (name, mode, source, seed, overlap, createdAt)
                    SELECT 'v4-ratings', 'pair', 'rating table before v5', 0, 0, MIN(createdAt) FROM rating
                    """)
                let taskId = db.lastInsertedRowID
                // Item ids follow the old rating ids, so each old row keeps its id as a rating too.
                try db.execute(sql: """
                    INSERT INTO ratingItem (id, ratingTaskId, idx, prompt, responses, sources)
                    SELECT id, ?, ROW_NUMBER() OVER (ORDER BY id) - 1, prompt,
                           json_array(responseA, responseB), json_array(sourceA, sourceB)
                    FROM rating
                    """, arguments: [taskId])
                try db.execute(sql: """
                    INSERT INTO ratingAssignment (itemId, rater, assignedAt) SELECT id, rater, createdAt FROM rating
                    """)
                try db.execute(sql: """
                    INSERT INTO new_rating (id, itemId, rater, session, swapped, vote, shownAt, answeredAt)
                    SELECT id, id, rater, 'v4', 0, choice, createdAt, createdAt FROM rating
                    """)
            }
            try db.drop(table: "rating")
            try db.rename(table: "new_rating", to: "rating")
            try db.create(index: "rating_on_itemId", on: "rating", columns: ["itemId"])
        }
        registerRatingsV6(&migrator)
        registerComparisonMigration(&migrator)
        return migrator
    }

    /// Runs pending migrations. Two processes opening a new file at once can both see "v1" pending;
    /// the loser's migration fails once the winner commits, and the retry finds nothing to do.
    private static func migrate(_ writer: DatabasePool, path: String) throws {
        let migrator = Self.migrator
        try writer.read { db in try refuseForeignSchema(db, path: path) }   // a file another process just made
        var attempt = 0
        while true {
            do {
                try migrator.migrate(writer)
                return
            } catch {
                attempt += 1
                if try writer.read(migrator.hasCompletedMigrations) { return }
                if attempt >= 3 { throw error }
            }
        }
    }

    /// Names of the applied migrations, oldest first.
    public func appliedMigrations() throws -> [String] {
        try dbPool.read(Self.migrator.appliedMigrations)
    }

    // MARK: - Runs

    /// Records a new running run and returns it with its id.
    public func createRun(name: String, recipe: String, seed: Int64, outputDir: String? = nil,
                          pid: Int64? = Int64(ProcessInfo.processInfo.processIdentifier),
                          host: String? = ProcessInfo.processInfo.hostName, startedAt: Date = Date()) throws -> Run {
        try write { db in
            var run = Run(name: name, recipe: recipe, seed: seed, status: .running, startedAt: startedAt,
                          outputDir: outputDir, pid: pid, host: host)
            try run.insert(db)
            return run
        }
    }

    /// The newest run named `name` writing to `outputDir` that did not complete (interrupted,
    /// failed, or still marked running after its process died), or nil.
    public func unfinishedRun(name: String, outputDir: String) throws -> Run? {
        try dbPool.read { db in
            let newest = try Run.filter(Column("name") == name && Column("outputDir") == outputDir)
                .order(Column("id").desc).fetchOne(db)
            return newest.flatMap { $0.status == .completed ? nil : $0 }
        }
    }

    /// Marks run `id` as taken over by this process and running again: a `running` row whose
    /// process died (kill -9) first becomes `interrupted`, then `running`.
    @discardableResult
    public func resumeRun(_ id: Int64, pid: Int64 = Int64(ProcessInfo.processInfo.processIdentifier),
                          host: String = ProcessInfo.processInfo.hostName) throws -> Run {
        try write { db in
            guard var run = try Run.fetchOne(db, key: id) else { throw StoreError.notFound(table: "run", id: id) }
            guard run.status != .completed else {
                throw StoreError.invalidTransition(table: "run", id: id, from: run.status, to: .running)
            }
            run.status = .running
            run.finishedAt = nil
            run.pid = pid
            run.host = host
            try run.update(db)
            return run
        }
    }

    /// Stages of run `runId` in start order.
    public func stages(runId: Int64) throws -> [Stage] {
        try dbPool.read { db in try Stage.filter(Column("runId") == runId).order(Column("id")).fetchAll(db) }
    }

    /// Moves run `id` to `status` (`completed`, `failed`, `interrupted`, or `running` to resume),
    /// setting `finishedAt` for end states and clearing it on resume.
    @discardableResult
    public func setRunStatus(_ id: Int64, _ status: Status, at date: Date = Date()) throws -> Run {
        try write { db in
            guard var run = try Run.fetchOne(db, key: id) else { throw StoreError.notFound(table: "run", id: id) }
            guard run.status.canMove(to: status) else {
                throw StoreError.invalidTransition(table: "run", id: id, from: run.status, to: status)
            }
            run.status = status
            run.finishedAt = status == .running ? nil : date
            try run.update(db)
            return run
        }
    }

    /// Run `id`, if present.
    public func run(_ id: Int64) throws -> Run? {
        try dbPool.read { db in try Run.fetchOne(db, key: id) }
    }

    /// All runs, newest first, each with its stages in start order.
    public func runs() throws -> [RunSummary] {
        try dbPool.read { db in
            let runs = try Run.order(Column("id").desc).fetchAll(db)
            let stages = try Stage.order(Column("id")).fetchAll(db)
            let byRun = Dictionary(grouping: stages, by: \.runId)
            return runs.map { RunSummary(run: $0, stages: byRun[$0.id ?? -1] ?? []) }
        }
    }

    // MARK: - Stages

    /// Records a new stage of run `runId` (running, or completed for a skipped stage that reuses
    /// `reusedStageId`'s output); a second stage with the same key in one run is a constraint error.
    public func createStage(runId: Int64, stageKey: String, kind: String, configJSON: String, configHash: String,
                            status: Status = .running, outputPath: String? = nil, reusedStageId: Int64? = nil,
                            checkpointPath: String? = nil, startedAt: Date = Date()) throws -> Stage {
        try write { db in
            var stage = Stage(runId: runId, stageKey: stageKey, kind: kind, configJSON: configJSON,
                              configHash: configHash, status: status, checkpointPath: checkpointPath, startedAt: startedAt,
                              finishedAt: status == .running ? nil : startedAt, outputPath: outputPath,
                              reusedStageId: reusedStageId)
            try stage.insert(db)
            return stage
        }
    }

    /// Starts stage `id` over: deletes its metrics and checkpoint rows and makes it a running stage
    /// with the given config (for a stage rerun inside a resumed run after its inputs changed).
    @discardableResult
    public func restartStage(_ id: Int64, configJSON: String, configHash: String, at date: Date = Date()) throws -> Stage {
        try write { db in
            guard var stage = try Stage.fetchOne(db, key: id) else { throw StoreError.notFound(table: "stage", id: id) }
            try Metric.filter(Column("stageId") == id).deleteAll(db)
            try Checkpoint.filter(Column("stageId") == id).deleteAll(db)
            try Rollout.filter(Column("stageId") == id).deleteAll(db)
            stage.configJSON = configJSON
            stage.configHash = configHash
            stage.status = .running
            stage.checkpointPath = nil
            stage.outputPath = nil
            stage.reusedStageId = nil
            stage.startedAt = date
            stage.finishedAt = nil
            try stage.update(db)
            return stage
        }
    }

    /// Records what stage `id` produced for later stages.
    public func setStageOutput(_ id: Int64, path: String) throws {
        try write { db in
            try Stage.filter(key: id).updateAll(db, Column("outputPath").set(to: path))
            if db.changesCount == 0 { throw StoreError.notFound(table: "stage", id: id) }
        }
    }

    /// Records a checkpoint of stage `stageId` (replacing a row with the same kind and step) and,
    /// for `last`, makes it the stage's resume point.
    public func recordCheckpoint(stageId: Int64, kind: String, step: Int, path: String, at date: Date = Date()) throws {
        try write { db in
            try Checkpoint(stageId: stageId, kind: kind, step: step, path: path, createdAt: date).upsert(db)
            if kind == "last" {
                try Stage.filter(key: stageId).updateAll(db, Column("checkpointPath").set(to: path))
            }
        }
    }

    /// Checkpoints of stage `stageId`, oldest first.
    public func checkpoints(stageId: Int64) throws -> [Checkpoint] {
        try dbPool.read { db in
            try Checkpoint.filter(Column("stageId") == stageId).order(Column("createdAt"), Column("step")).fetchAll(db)
        }
    }

    /// Moves stage `id` to `status` as `setRunStatus` does, and records `checkpointPath` when given.
    @discardableResult
    public func setStageStatus(_ id: Int64, _ status: Status, checkpointPath: String? = nil,
                               at date: Date = Date()) throws -> Stage {
        try write { db in
            guard var stage = try Stage.fetchOne(db, key: id) else { throw StoreError.notFound(table: "stage", id: id) }
            guard stage.status.canMove(to: status) else {
                throw StoreError.invalidTransition(table: "stage", id: id, from: stage.status, to: status)
            }
            stage.status = status
            stage.finishedAt = status == .running ? nil : date
            if let checkpointPath { stage.checkpointPath = checkpointPath }
            try stage.update(db)
            return stage
        }
    }

    /// Records the latest checkpoint of a stage (resume point) without changing its status.
    public func setCheckpoint(stageId: Int64, path: String) throws {
        try write { db in
            try Stage.filter(key: stageId).updateAll(db, Column("checkpointPath").set(to: path))
            if db.changesCount == 0 { throw StoreError.notFound(table: "stage", id: stageId) }
        }
    }

    /// Stage `id`, if present.
    public func stage(_ id: Int64) throws -> Stage? {
        try dbPool.read { db in try Stage.fetchOne(db, key: id) }
    }

    /// The most recently finished completed stage with this key, kind and config hash, in any run:
    /// when present, the runner may skip the stage and reuse its checkpoint.
    public func completedStage(stageKey: String, kind: String, configHash: String) throws -> Stage? {
        try dbPool.read { db in
            try Stage
                .filter(Column("stageKey") == stageKey && Column("kind") == kind && Column("configHash") == configHash)
                .filter(Column("status") == Status.completed)
                .order(Column("finishedAt").desc, Column("id").desc)
                .fetchOne(db)
        }
    }

    // MARK: - Metrics, rollouts, ratings, comparisons

    /// Inserts `metrics` in one transaction; a row whose (stageId, step, name) exists replaces the
    /// value, so a resumed stage re-logging a step leaves no duplicates.
    public func record(metrics: [Metric]) throws {
        guard !metrics.isEmpty else { return }
        try write { db in
            for metric in metrics { try metric.upsert(db) }
        }
    }

    /// Metrics of stage `stageId` ordered by step then name.
    public func metrics(stageId: Int64) throws -> [Metric] {
        try dbPool.read { db in
            try Metric.filter(Column("stageId") == stageId).order(Column("step"), Column("name")).fetchAll(db)
        }
    }

    /// The highest step with a metric in stage `stageId`, or nil if it logged none.
    public func latestStep(stageId: Int64) throws -> Int? {
        try dbPool.read { db in
            try Int.fetchOne(db, sql: "SELECT MAX(step) FROM metric WHERE stageId = ?", arguments: [stageId])
        }
    }

    /// Inserts `rollouts` in one transaction, replacing rows with the same (stageId, phase, step, idx).
    public func record(rollouts: [Rollout]) throws {
        guard !rollouts.isEmpty else { return }
        try write { db in
            for rollout in rollouts { try rollout.upsert(db) }
        }
    }

    /// Rollouts of stage `stageId` in `phase` (`RolloutPhase.train` or `.eval`; nil: both), ordered
    /// by step, then phase (an update's training rollouts before the evaluation replies at the same
    /// step, the order they are generated in), then index.
    public func rollouts(stageId: Int64, phase: String? = nil) throws -> [Rollout] {
        try dbPool.read { db in
            var request = Rollout.filter(Column("stageId") == stageId)
            if let phase { request = request.filter(Column("phase") == phase) }
            return try request.order(Column("step"), Column("phase").desc, Column("idx")).fetchAll(db)
        }
    }

    /// Inserts a comparison and returns it with its id.
    public func add(_ comparison: Comparison) throws -> Comparison {
        try write { db in
            var comparison = comparison
            try comparison.insert(db)
            return comparison
        }
    }
}
