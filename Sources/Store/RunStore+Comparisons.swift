import Foundation
import GRDB

/// One `rein compare` (table `compareSession`): which policies, on which prompts, judged by whom,
/// with which seed and sampling options; the per-item verdicts and scores hang off it, and each
/// pair's tally is a `comparison` row linked to it.
public struct CompareSession: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public var id: Int64?
    /// The run it belongs to (a recipe's compare stage), or nil for a command-line comparison.
    public var runId: Int64?
    /// A label (`quickstart/compare`, or what `--name` gave).
    public var name: String
    /// `running`, `completed` or `failed`.
    public var status: String
    /// Seeds the sampling and the bootstrap.
    public var seed: Int64
    /// Sampling options and settings, as JSON (temperature, response length, samples per prompt, ...).
    public var optionsJSON: String
    /// The prompts file as given and the SHA-256 of its contents.
    public var prompts: String
    public var promptsHash: String
    /// The statistics of the finished comparison, as JSON (pairs, rankings, KL, frontier).
    public var summaryJSON: String?
    public var createdAt: Date
    public var finishedAt: Date?

    public init(id: Int64? = nil, runId: Int64? = nil, name: String, status: String = "running", seed: Int64,
                optionsJSON: String, prompts: String, promptsHash: String, summaryJSON: String? = nil,
                createdAt: Date = Date(), finishedAt: Date? = nil) {
        self.id = id
        self.runId = runId
        self.name = name
        self.status = status
        self.seed = seed
        self.optionsJSON = optionsJSON
        self.prompts = prompts
        self.promptsHash = promptsHash
        self.summaryJSON = summaryJSON
        self.createdAt = createdAt
        self.finishedAt = finishedAt
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// One policy of a comparison (table `comparePolicy`).
public struct ComparePolicy: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public var id: Int64?
    public var compareSessionId: Int64
    /// Position in the comparison, from 0.
    public var idx: Int
    /// Its short name in tables (`sft`, `ppo@20`, `best_of_4`).
    public var name: String
    /// What the user wrote (`stage:ppo`, `hf:DIR`, `best_of_n:4`).
    public var spec: String
    /// `model`, `best_of_n` or `in_context`.
    public var kind: String
    /// The model files it samples from, and their content hash (what the response cache keys on).
    public var modelPath: String
    public var modelHash: String
    /// Kind-specific details and measurements (n, k, KL, perplexity), as JSON.
    public var detailsJSON: String

    public init(id: Int64? = nil, compareSessionId: Int64, idx: Int, name: String, spec: String, kind: String,
                modelPath: String, modelHash: String, detailsJSON: String = "{}") {
        self.id = id
        self.compareSessionId = compareSessionId
        self.idx = idx
        self.name = name
        self.spec = spec
        self.kind = kind
        self.modelPath = modelPath
        self.modelHash = modelHash
        self.detailsJSON = detailsJSON
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// A sampled response, kept for every later comparison that asks for the same policy, prompt,
/// seed and sampling options (table `compareGeneration`).
public struct CompareGeneration: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public var id: Int64?
    /// Hash of the policy's model and kind (`ComparePolicy.modelHash` plus its details).
    public var policyKey: String
    /// Hash of the seed and sampling options.
    public var optionsKey: String
    /// Hash of the prompt as the policy saw it (after its chat template).
    public var promptHash: String
    public var sampleIdx: Int
    public var prompt: String
    public var response: String
    /// The response's token ids up to and including the stop token (what KL is measured on).
    public var responseIds: [Int32]
    /// How many.
    public var tokens: Int
    /// Whether it ended with the end-of-sequence token (false: cut at the response length).
    public var finished: Bool
    public var createdAt: Date

    public init(id: Int64? = nil, policyKey: String, optionsKey: String, promptHash: String, sampleIdx: Int,
                prompt: String, response: String, responseIds: [Int32], tokens: Int, finished: Bool, createdAt: Date = Date()) {
        self.responseIds = responseIds
        self.id = id
        self.policyKey = policyKey
        self.optionsKey = optionsKey
        self.promptHash = promptHash
        self.sampleIdx = sampleIdx
        self.prompt = prompt
        self.response = response
        self.tokens = tokens
        self.finished = finished
        self.createdAt = createdAt
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// What a judge said of one item (table `compareVerdict`): a score judge's score of one policy's
/// response (`policyB` nil), or a pairwise verdict on two policies' responses to one prompt.
public struct CompareVerdict: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public var id: Int64?
    public var compareSessionId: Int64
    public var judge: String
    /// Policy positions (`ComparePolicy.idx`).
    public var policyA: Int
    public var policyB: Int?
    public var promptIdx: Int
    public var sampleIdx: Int
    /// A score judge's score of A's response.
    public var score: Double?
    /// A pairwise verdict: `a`, `b`, `tie` or `failed`; and what each order said (`a`/`b`/`tie`
    /// naming the policies, not the positions shown).
    public var verdict: String?
    public var forward: String?
    public var swapped: String?
    /// Why the judge failed on this item.
    public var error: String?

    public init(id: Int64? = nil, compareSessionId: Int64, judge: String, policyA: Int, policyB: Int? = nil,
                promptIdx: Int, sampleIdx: Int, score: Double? = nil, verdict: String? = nil, forward: String? = nil,
                swapped: String? = nil, error: String? = nil) {
        self.id = id
        self.compareSessionId = compareSessionId
        self.judge = judge
        self.policyA = policyA
        self.policyB = policyB
        self.promptIdx = promptIdx
        self.sampleIdx = sampleIdx
        self.score = score
        self.verdict = verdict
        self.forward = forward
        self.swapped = swapped
        self.error = error
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

extension RunStore {
    /// The comparison tables, and `comparison` rows linked to the session that made them.
    static func registerComparisonMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v6-comparisons") { db in
            try db.create(table: "compareSession") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("runId", .integer).references("run", onDelete: .setNull)
                t.column("name", .text).notNull()
                t.column("status", .text).notNull().check { ["running", "completed", "failed"].contains($0) }
                t.column("seed", .integer).notNull()
                t.column("optionsJSON", .text).notNull()
                t.column("prompts", .text).notNull()
                t.column("promptsHash", .text).notNull()
                t.column("summaryJSON", .text)
                t.column("createdAt", .datetime).notNull()
                t.column("finishedAt", .datetime)
            }
            try db.create(table: "comparePolicy") { t in
                t.autoIncrementedPrimaryKey("id")
                t.belongsTo("compareSession", onDelete: .cascade).notNull()
                t.column("idx", .integer).notNull()
                t.column("name", .text).notNull()
                t.column("spec", .text).notNull()
                t.column("kind", .text).notNull()
                t.column("modelPath", .text).notNull()
                t.column("modelHash", .text).notNull()
                t.column("detailsJSON", .text).notNull()
                t.uniqueKey(["compareSessionId", "idx"])
            }
            try db.create(table: "compareGeneration") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("policyKey", .text).notNull()
                t.column("optionsKey", .text).notNull()
                t.column("promptHash", .text).notNull()
                t.column("sampleIdx", .integer).notNull()
                t.column("prompt", .text).notNull()
                t.column("response", .text).notNull()
                t.column("responseIds", .text).notNull()
                t.column("tokens", .integer).notNull()
                t.column("finished", .boolean).notNull()
                t.column("createdAt", .datetime).notNull()
                t.uniqueKey(["policyKey", "optionsKey", "promptHash", "sampleIdx"])
            }
            try db.create(table: "compareVerdict") { t in
                t.autoIncrementedPrimaryKey("id")
                t.belongsTo("compareSession", onDelete: .cascade).notNull()
                t.column("judge", .text).notNull()
                t.column("policyA", .integer).notNull()
                t.column("policyB", .integer)
                t.column("promptIdx", .integer).notNull()
                t.column("sampleIdx", .integer).notNull()
                t.column("score", .double)
                t.column("verdict", .text).check { $0 == nil || ["a", "b", "tie", "failed"].contains($0) }
                t.column("forward", .text)
                t.column("swapped", .text)
                t.column("error", .text)
            }
            try db.create(index: "compareVerdict_on_session_judge", on: "compareVerdict",
                          columns: ["compareSessionId", "judge", "policyA", "policyB"])
            try db.alter(table: "comparison") { t in
                t.add(column: "compareSessionId", .integer).references("compareSession", onDelete: .cascade)
                t.add(column: "summaryJSON", .text)
            }
        }
    }

    // MARK: - Comparisons

    /// Starts a comparison: its session row and its policies, in one transaction.
    public func startComparison(_ session: CompareSession, policies: [ComparePolicy]) throws -> (CompareSession, [ComparePolicy]) {
        try write { db in
            var session = session
            try session.insert(db)
            var saved: [ComparePolicy] = []
            for var policy in policies {
                policy.compareSessionId = session.id!
                try policy.insert(db)
                saved.append(policy)
            }
            return (session, saved)
        }
    }

    /// The cached responses of a policy to some prompts under some options, by (prompt hash, sample).
    public func cachedGenerations(policyKey: String, optionsKey: String) throws -> [String: CompareGeneration] {
        try dbPool.read { db in
            let rows = try CompareGeneration.filter(Column("policyKey") == policyKey && Column("optionsKey") == optionsKey).fetchAll(db)
            var out: [String: CompareGeneration] = [:]
            for row in rows { out["\(row.promptHash)#\(row.sampleIdx)"] = row }
            return out
        }
    }

    /// Stores freshly sampled responses (a batch at a time, so an interrupted comparison keeps them).
    public func record(generations: [CompareGeneration]) throws {
        try write { db in
            for var g in generations { try g.insert(db, onConflict: .ignore) }
        }
    }

    /// Stores judges' scores and verdicts.
    public func record(verdicts: [CompareVerdict]) throws {
        try write { db in
            for var v in verdicts { try v.insert(db) }
        }
    }

    /// Ends a comparison: its summary, status, and one `comparison` row per judged pair.
    public func finishComparison(_ id: Int64, status: String, summaryJSON: String?, tallies: [Comparison],
                                 at date: Date = Date()) throws {
        try write { db in
            try db.execute(sql: "UPDATE compareSession SET status = ?, summaryJSON = ?, finishedAt = ? WHERE id = ?",
                           arguments: [status, summaryJSON, date, id])
            for var tally in tallies {
                tally.compareSessionId = id
                try tally.insert(db)
            }
        }
    }

    /// Sets a policy's details (its KL, perplexity, mean length) once measured.
    public func setComparePolicyDetails(_ id: Int64, detailsJSON: String) throws {
        try write { db in
            try db.execute(sql: "UPDATE comparePolicy SET detailsJSON = ? WHERE id = ?", arguments: [detailsJSON, id])
        }
    }

    /// Every comparison, newest first.
    public func compareSessions() throws -> [CompareSession] {
        try dbPool.read { db in try CompareSession.order(Column("id").desc).fetchAll(db) }
    }

    /// One comparison.
    public func compareSession(_ id: Int64) throws -> CompareSession? {
        try dbPool.read { db in try CompareSession.fetchOne(db, key: id) }
    }

    /// A comparison's policies in order.
    public func comparePolicies(sessionId: Int64) throws -> [ComparePolicy] {
        try dbPool.read { db in
            try ComparePolicy.filter(Column("compareSessionId") == sessionId).order(Column("idx")).fetchAll(db)
        }
    }

    /// A comparison's scores and verdicts, in the order they were recorded.
    public func compareVerdicts(sessionId: Int64) throws -> [CompareVerdict] {
        try dbPool.read { db in
            try CompareVerdict.filter(Column("compareSessionId") == sessionId).order(Column("id")).fetchAll(db)
        }
    }

    /// The `comparison` tallies a session wrote.
    public func comparisons(sessionId: Int64) throws -> [Comparison] {
        try dbPool.read { db in
            try Comparison.filter(Column("compareSessionId") == sessionId).order(Column("id")).fetchAll(db)
        }
    }

    /// The responses a session's policies gave (from the cache), keyed as `cachedGenerations`.
    public func generations(policyKey: String, optionsKey: String, promptHashes: [String]) throws -> [CompareGeneration] {
        try dbPool.read { db in
            try CompareGeneration.filter(Column("policyKey") == policyKey && Column("optionsKey") == optionsKey
                                         && promptHashes.contains(Column("promptHash")))
                .order(Column("id")).fetchAll(db)
        }
    }
}
