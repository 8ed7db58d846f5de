import Foundation
import GRDB

/// How the items of a rating task are judged.
public enum RatingMode: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
    /// Two responses, one preferred (or a tie, or both bad).
    case pair
    /// K responses put in order, best first.
    case rank
    /// One response on a 1-7 scale.
    case single
}

/// What one answer says. `a` and `b` name the item's first and second response (its `responses[0]`
/// and `[1]`), never the screen side: the screen side is `a` xor `swapped`.
public enum RatingVote: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
    case a, b, tie
    /// Both responses are bad.
    case bad
    /// Not judged now; offered again after the other items.
    case skip
    /// A single-mode score, in `likert`.
    case likert
    /// A rank-mode order, in `ranking`.
    case rank
}

/// A set of items to rate (table `ratingTask`).
public struct RatingTask: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public var id: Int64?
    /// Unique name, the `TASK` of `rein rate TASK`.
    public var name: String
    public var mode: RatingMode
    /// Where the candidates came from (`candidates:FILE`, `rollouts:RUN:STAGE`).
    public var source: String
    /// Seeds the left/right layout of every item for every rater.
    public var seed: Int64
    /// The share of items given to two raters (for agreement).
    public var overlap: Double
    public var createdAt: Date
    /// Single mode: a 1-7 score or thumbs up/down.
    public var scale: RatingScale
    /// How the candidates were made, as JSON (the policies, prompts, sampling options and seed of
    /// generated candidates); nil for candidates read from a file or the store.
    public var options: String?

    public init(id: Int64? = nil, name: String, mode: RatingMode, source: String, seed: Int64, overlap: Double = 0,
                createdAt: Date = Date(), scale: RatingScale = .likert, options: String? = nil) {
        self.id = id
        self.name = name
        self.mode = mode
        self.source = source
        self.seed = seed
        self.overlap = overlap
        self.createdAt = createdAt
        self.scale = scale
        self.options = options
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// One prompt and its responses to judge (table `ratingItem`).
public struct RatingItem: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public var id: Int64?
    public var ratingTaskId: Int64
    /// Position in the task, from 0: raters are given items in this order.
    public var idx: Int
    public var prompt: String
    /// The responses (two in pair mode, K in rank mode, one in single mode), stored as a JSON array.
    public var responses: [String]
    /// Where each response came from (a policy, a file line), never shown unless `--reveal`.
    public var sources: [String]
    /// For a gold item, the index of the response known to be better.
    public var gold: Int?
    /// The responses are equal after whitespace normalization: a tie, never shown.
    public var identical: Bool
    /// How many raters are given the item (2 for the overlapped share).
    public var raters: Int

    public init(id: Int64? = nil, ratingTaskId: Int64 = 0, idx: Int, prompt: String, responses: [String], sources: [String],
                gold: Int? = nil, identical: Bool = false, raters: Int = 1) {
        self.id = id
        self.ratingTaskId = ratingTaskId
        self.idx = idx
        self.prompt = prompt
        self.responses = responses
        self.sources = sources
        self.gold = gold
        self.identical = identical
        self.raters = raters
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// One answer of one rater to one item (table `rating`). Undo sets `undone`; no row is deleted.
public struct Rating: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    public var id: Int64?
    public var itemId: Int64
    public var rater: String
    /// One `rein rate` process (a random id), so a sitting's answers can be told apart.
    public var session: String
    /// The item's second response was shown on the left.
    public var swapped: Bool
    public var vote: RatingVote
    /// 1 (significantly better) to 4 (negligibly better), as Llama 2; nil when not given.
    public var strength: Int?
    /// Single mode: 1 (worst) to 7 (best).
    public var likert: Int?
    /// Rank mode: response indices best first, `>` between ranks and `=` inside a tie (`2>0=1`).
    public var ranking: String?
    /// Single mode on the thumbs scale: up (true) or down (false); the vote is `likert`, `likert` nil.
    public var thumb: Bool?
    /// The rater's free-text reason.
    public var reason: String?
    public var shownAt: Date
    public var answeredAt: Date
    public var undone: Bool

    public init(id: Int64? = nil, itemId: Int64, rater: String, session: String, swapped: Bool, vote: RatingVote,
                strength: Int? = nil, likert: Int? = nil, ranking: String? = nil, reason: String? = nil,
                shownAt: Date, answeredAt: Date = Date(), undone: Bool = false, thumb: Bool? = nil) {
        self.thumb = thumb
        self.id = id
        self.itemId = itemId
        self.rater = rater
        self.session = session
        self.swapped = swapped
        self.vote = vote
        self.strength = strength
        self.likert = likert
        self.ranking = ranking
        self.reason = reason
        self.shownAt = shownAt
        self.answeredAt = answeredAt
        self.undone = undone
    }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// Where a rater stands on a task.
public struct RaterProgress: Sendable, Equatable {
    /// Items the rater answered (skips not counted).
    public var done: Int
    /// Items the rater may still be given: theirs unanswered, plus those no one has taken yet.
    public var left: Int
    /// Gold items answered, and of those answered right.
    public var goldAnswered: Int
    public var goldCorrect: Int
}

/// Errors of rating tasks a user can act on.
public enum RatingStoreError: Error, CustomStringConvertible, Equatable {
    case taskExists(String)
    case unknownTask(String, known: [String])

    public var description: String {
        switch self {
        case let .taskExists(name): "a rating task named '\(name)' exists already in this store"
        case let .unknownTask(name, known):
            "no rating task named '\(name)' in this store" + (known.isEmpty ? " (it has none; make one with rein rate new)"
                                                                          : " (it has: \(known.joined(separator: ", ")))")
        }
    }
}

extension RunStore {
    /// Records a task and its items in one transaction (nothing is written when any insert fails).
    public func createRatingTask(_ task: RatingTask, items: [RatingItem]) throws -> RatingTask {
        try write { db in
            if try RatingTask.filter(Column("name") == task.name).fetchCount(db) > 0 {
                throw RatingStoreError.taskExists(task.name)
            }
            var task = task
            try task.insert(db)
            for var item in items {
                item.ratingTaskId = task.id!
                try item.insert(db)
            }
            return task
        }
    }

    /// The task named `name`; an error listing the store's tasks when there is none.
    public func ratingTask(named name: String) throws -> RatingTask {
        try dbPool.read { db in
            if let task = try RatingTask.filter(Column("name") == name).fetchOne(db) { return task }
            throw RatingStoreError.unknownTask(name, known: try String.fetchAll(db, sql: "SELECT name FROM ratingTask ORDER BY id"))
        }
    }

    /// Every task, oldest first.
    public func ratingTasks() throws -> [RatingTask] {
        try dbPool.read { db in try RatingTask.order(Column("id")).fetchAll(db) }
    }

    /// The items of task `taskId` in order.
    public func ratingItems(taskId: Int64) throws -> [RatingItem] {
        try dbPool.read { db in try RatingItem.filter(Column("ratingTaskId") == taskId).order(Column("idx")).fetchAll(db) }
    }

    /// The answers to task `taskId`'s items in the order they were given; undone ones only with `includeUndone`.
    public func ratings(taskId: Int64, includeUndone: Bool = false) throws -> [Rating] {
        try dbPool.read { db in
            try Rating.fetchAll(db, sql: """
                SELECT r.* FROM rating r JOIN ratingItem i ON i.id = r.itemId
                WHERE i.ratingTaskId = ? AND (? OR r.undone = 0) ORDER BY r.id
                """, arguments: [taskId, includeUndone])
        }
    }

    /// The next item for `rater`, taking it in the same transaction so two raters at once never get one
    /// single-rater item both: first an item given to this rater and not answered (a resumed sitting),
    /// then a new item that fewer than `raters` people were given, then the rater's skipped items not in
    /// `passed` (the items this sitting skipped already). Nil when nothing is left.
    ///
    /// First, items other raters were given and left unanswered go back to the pool when they were given
    /// more than `expireAfter` seconds ago or their sitting's process (on this host) has ended, so a rater
    /// who quit never blocks another. `session` names this sitting on the assignment.
    public func nextRatingItem(taskId: Int64, rater: String, passed: Set<Int64> = [], at date: Date = Date(),
                               session: String? = nil, expireAfter: TimeInterval = RunStore.assignmentTimeout) throws -> RatingItem? {
        try write { db in
            _ = try Self.releaseAbandoned(db, taskId: taskId, rater: rater, cutoff: date.addingTimeInterval(-expireAfter))
            let unanswered = """
                NOT EXISTS (SELECT 1 FROM rating r WHERE r.itemId = i.id AND r.rater = :rater AND r.undone = 0 AND r.vote != 'skip')
                """
            let skipped = "EXISTS (SELECT 1 FROM rating r WHERE r.itemId = i.id AND r.rater = :rater AND r.undone = 0 AND r.vote = 'skip')"
            let mine = "EXISTS (SELECT 1 FROM ratingAssignment g WHERE g.itemId = i.id AND g.rater = :rater)"
            let arguments: StatementArguments = ["task": taskId, "rater": rater]
            if let item = try RatingItem.fetchOne(db, sql: """
                SELECT i.* FROM ratingItem i WHERE i.ratingTaskId = :task AND \(mine) AND \(unanswered) AND NOT \(skipped)
                ORDER BY i.idx LIMIT 1
                """, arguments: arguments) {
                try Self.holdAssignment(db, itemId: item.id!, rater: rater, session: session, at: date)
                return item
            }
            if let item = try RatingItem.fetchOne(db, sql: """
                SELECT i.* FROM ratingItem i WHERE i.ratingTaskId = :task AND i.identical = 0 AND NOT \(mine)
                  AND (SELECT COUNT(*) FROM ratingAssignment g WHERE g.itemId = i.id) < i.raters
                ORDER BY i.idx LIMIT 1
                """, arguments: arguments) {
                try db.execute(sql: "INSERT INTO ratingAssignment (itemId, rater, assignedAt) VALUES (?, ?, ?)",
                               arguments: [item.id, rater, date])
                try Self.holdAssignment(db, itemId: item.id!, rater: rater, session: session, at: date)
                return item
            }
            let skippedItems = try RatingItem.fetchAll(db, sql: """
                SELECT i.* FROM ratingItem i WHERE i.ratingTaskId = :task AND \(mine) AND \(unanswered) AND \(skipped)
                ORDER BY i.idx
                """, arguments: arguments)
            guard let item = skippedItems.first(where: { !passed.contains($0.id!) }) else { return nil }
            try Self.holdAssignment(db, itemId: item.id!, rater: rater, session: session, at: date)
            return item
        }
    }

    /// Commits one answer (the transaction ends before this returns) and returns it with its id.
    public func record(rating: Rating) throws -> Rating {
        try write { db in
            var rating = rating
            try rating.insert(db)
            return rating
        }
    }

    /// Marks `rater`'s newest live answer in task `taskId` undone and returns it (nil: nothing to undo).
    public func undoLastRating(taskId: Int64, rater: String) throws -> Rating? {
        try write { db in
            guard var last = try Rating.fetchOne(db, sql: """
                SELECT r.* FROM rating r JOIN ratingItem i ON i.id = r.itemId
                WHERE i.ratingTaskId = ? AND r.rater = ? AND r.undone = 0 ORDER BY r.id DESC LIMIT 1
                """, arguments: [taskId, rater]) else { return nil }
            last.undone = true
            try last.update(db)
            return last
        }
    }

    /// The item with id `id`.
    public func ratingItem(_ id: Int64) throws -> RatingItem? {
        try dbPool.read { db in try RatingItem.fetchOne(db, key: id) }
    }

    /// How far `rater` is on task `taskId`.
    public func progress(taskId: Int64, rater: String) throws -> RaterProgress {
        try dbPool.read { db in
            let arguments: StatementArguments = ["task": taskId, "rater": rater]
            let answered = """
                EXISTS (SELECT 1 FROM rating r WHERE r.itemId = i.id AND r.rater = :rater AND r.undone = 0 AND r.vote != 'skip')
                """
            let mine = "EXISTS (SELECT 1 FROM ratingAssignment g WHERE g.itemId = i.id AND g.rater = :rater)"
            let done = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM ratingItem i WHERE i.ratingTaskId = :task AND \(answered)",
                                        arguments: arguments) ?? 0
            let open = try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM ratingItem i WHERE i.ratingTaskId = :task AND i.identical = 0 AND NOT \(answered)
                  AND (\(mine) OR (SELECT COUNT(*) FROM ratingAssignment g WHERE g.itemId = i.id) < i.raters)
                """, arguments: arguments) ?? 0
            let gold = try Row.fetchOne(db, sql: """
                SELECT COUNT(*) AS n, COALESCE(SUM((r.vote = 'a' AND i.gold = 0) OR (r.vote = 'b' AND i.gold = 1)), 0) AS right
                FROM rating r JOIN ratingItem i ON i.id = r.itemId
                WHERE i.ratingTaskId = :task AND r.rater = :rater AND r.undone = 0 AND i.gold IS NOT NULL AND r.vote != 'skip'
                """, arguments: arguments)
            let goldAnswered: Int = gold?["n"] ?? 0, goldCorrect: Int = gold?["right"] ?? 0
            return RaterProgress(done: done, left: open, goldAnswered: goldAnswered, goldCorrect: goldCorrect)
        }
    }
}

extension RunStore {
    /// Sets the strength of answer `ratingId` (a strength key pressed right after the vote).
    public func setStrength(ratingId: Int64, strength: Int) throws {
        try write { db in
            try Rating.filter(key: ratingId).updateAll(db, Column("strength").set(to: strength))
            if db.changesCount == 0 { throw StoreError.notFound(table: "rating", id: ratingId) }
        }
    }
}
