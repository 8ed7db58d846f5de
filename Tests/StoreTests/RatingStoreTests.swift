import Foundation
import GRDB
@testable import Store
import Synchronization
import Testing

/// A pair task of `count` items, item i answering "p\(i)" with "x\(i)" and "y\(i)"; the first `overlapped` go to two raters.
private func pairTask(_ store: RunStore, name: String = "t", count: Int, overlapped: Int = 0) throws -> RatingTask {
    let items = (0..<count).map { i in
        RatingItem(idx: i, prompt: "p\(i)", responses: ["x\(i)", "y\(i)"], sources: ["A", "B"], raters: i < overlapped ? 2 : 1)
    }
    return try store.createRatingTask(RatingTask(name: name, mode: .pair, source: "test", seed: 7), items: items)
}

@Test func aV4StoreKeepsItsRatingsAsTheTaskV4Ratings() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(),
                                            withIntermediateDirectories: true)
    let queue = try DatabaseQueue(path: path)
    try RunStore.migrator.migrate(queue, upTo: "v4")
    try queue.write { db in
        try db.execute(sql: """
            INSERT INTO rating (id, prompt, responseA, responseB, sourceA, sourceB, choice, rater, createdAt) VALUES
              (4, 'hi', 'hello', 'yo', 'stage:sft', 'stage:dpo', 'b', 'ann', '2026-01-02 03:04:05.000'),
              (9, 'bye', 'ciao', 'ciao!', 'm1', 'm2', 'tie', 'bob', '2026-01-02 03:05:05.000')
            """)
    }
    try queue.close()

    let store = try RunStore(path: path)
    #expect(try store.appliedMigrations() == ["v1", "v2", "v3", "v4", "v5", "v6-ratings", "v6-comparisons"])
    let task = try store.ratingTask(named: "v4-ratings")
    #expect(task.mode == .pair)
    let items = try store.ratingItems(taskId: task.id!)
    #expect(items.map(\.prompt) == ["hi", "bye"])
    #expect(items[0].responses == ["hello", "yo"] && items[0].sources == ["stage:sft", "stage:dpo"])
    let ratings = try store.ratings(taskId: task.id!)
    #expect(ratings.map(\.id) == [4, 9])
    #expect(ratings.map(\.vote) == [.b, .tie] && ratings.map(\.rater) == ["ann", "bob"])
    #expect(ratings.allSatisfy { !$0.swapped && !$0.undone && $0.shownAt == $0.answeredAt })
}

@Test func anEmptyV4RatingTableMakesNoTask() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let store = try RunStore(path: path)
    #expect(try store.ratingTasks().isEmpty)
    #expect(throws: RatingStoreError.unknownTask("nope", known: [])) { try store.ratingTask(named: "nope") }
}

@Test func aTaskNameIsUniqueAndAFailedCreateWritesNothing() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let store = try RunStore(path: path)
    _ = try pairTask(store, count: 2)
    #expect(throws: RatingStoreError.taskExists("t")) { try pairTask(store, count: 3) }
    // An item that breaks a constraint (raters 0) rolls the whole task back.
    let bad = [RatingItem(idx: 0, prompt: "p", responses: ["a", "b"], sources: ["", ""]),
               RatingItem(idx: 1, prompt: "p", responses: ["a", "b"], sources: ["", ""], raters: 0)]
    #expect(throws: (any Error).self) { try store.createRatingTask(RatingTask(name: "u", mode: .pair, source: "", seed: 0), items: bad) }
    #expect(try store.ratingTasks().map(\.name) == ["t"])
    #expect(try store.dbPool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM ratingItem") } == 2)
}

@Test func nextItemResumesSkipsComeLastAndUndoMarksNeverDeletes() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let store = try RunStore(path: path)
    let task = try pairTask(store, count: 3)
    let taskId = task.id!
    let first = try #require(try store.nextRatingItem(taskId: taskId, rater: "ann"))
    #expect(first.idx == 0)
    // Not answered yet: asking again (a resumed sitting) gives the same item.
    #expect(try store.nextRatingItem(taskId: taskId, rater: "ann")?.idx == 0)
    _ = try store.record(rating: Rating(itemId: first.id!, rater: "ann", session: "s1", swapped: true, vote: .skip, shownAt: Date()))
    let second = try #require(try store.nextRatingItem(taskId: taskId, rater: "ann"))
    #expect(second.idx == 1)
    _ = try store.record(rating: Rating(itemId: second.id!, rater: "ann", session: "s1", swapped: false, vote: .a, strength: 2,
                                        shownAt: Date()))
    #expect(try store.nextRatingItem(taskId: taskId, rater: "ann")?.idx == 2)
    // Undo takes back the newest live answer, then the one before (the skip).
    let undone = try #require(try store.undoLastRating(taskId: taskId, rater: "ann"))
    #expect(undone.itemId == second.id && undone.undone)
    #expect(try store.undoLastRating(taskId: taskId, rater: "ann")?.itemId == first.id)
    #expect(try store.undoLastRating(taskId: taskId, rater: "ann") == nil)
    #expect(try store.ratings(taskId: taskId).isEmpty)
    #expect(try store.ratings(taskId: taskId, includeUndone: true).count == 2)
    #expect(try store.nextRatingItem(taskId: taskId, rater: "ann")?.idx == 0)
    let progress = try store.progress(taskId: taskId, rater: "ann")
    #expect(progress.done == 0 && progress.left == 3)
}

@Test func aSkippedItemComesBackAfterTheRestUnlessPassedThisSitting() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let store = try RunStore(path: path)
    let taskId = try pairTask(store, count: 2).id!
    let first = try #require(try store.nextRatingItem(taskId: taskId, rater: "ann"))
    _ = try store.record(rating: Rating(itemId: first.id!, rater: "ann", session: "s", swapped: false, vote: .skip, shownAt: Date()))
    let second = try #require(try store.nextRatingItem(taskId: taskId, rater: "ann"))
    _ = try store.record(rating: Rating(itemId: second.id!, rater: "ann", session: "s", swapped: false, vote: .b, shownAt: Date()))
    #expect(try store.nextRatingItem(taskId: taskId, rater: "ann", passed: [first.id!]) == nil)
    #expect(try store.nextRatingItem(taskId: taskId, rater: "ann")?.id == first.id)
}

@Test func overlappedItemsGoToTwoRatersAndTheRestToOne() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let store = try RunStore(path: path)
    let taskId = try pairTask(store, count: 4, overlapped: 1).id!
    var seen: [String: [Int]] = [:]
    // Two raters taking turns, each answering what they are given.
    var active = ["ann", "bob"]
    while !active.isEmpty {
        for rater in active {
            guard let item = try store.nextRatingItem(taskId: taskId, rater: rater) else {
                active.removeAll { $0 == rater }
                continue
            }
            seen[rater, default: []].append(item.idx)
            _ = try store.record(rating: Rating(itemId: item.id!, rater: rater, session: rater, swapped: false, vote: .a, shownAt: Date()))
        }
    }
    #expect(seen["ann"] == [0, 1, 3])
    #expect(seen["bob"] == [0, 2])
    #expect(try store.progress(taskId: taskId, rater: "ann") == RaterProgress(done: 3, left: 0, goldAnswered: 0, goldCorrect: 0))
}

@Test func twoConnectionsTakingItemsAtOnceNeverShareASingleRaterItem() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let taskId = try pairTask(try RunStore(path: path), count: 40).id!
    let results = Mutex<[String: [Int]]>([:])
    DispatchQueue.concurrentPerform(iterations: 2) { worker in
        let rater = worker == 0 ? "ann" : "bob"
        guard let store = try? RunStore(path: path) else { return }
        var mine: [Int] = []
        while let item = try? store.nextRatingItem(taskId: taskId, rater: rater) {
            mine.append(item.idx)
            _ = try? store.record(rating: Rating(itemId: item.id!, rater: rater, session: rater, swapped: false, vote: .a, shownAt: Date()))
        }
        results.withLock { $0[rater] = mine }
    }
    let all = results.withLock { $0 }
    let ann = all["ann"] ?? [], bob = all["bob"] ?? []
    #expect(Set(ann).isDisjoint(with: bob))
    #expect((ann + bob).sorted() == Array(0..<40))
}

@Test func goldAccuracyCountsAnswersAgainstTheKnownBetterResponse() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let store = try RunStore(path: path)
    let items = [RatingItem(idx: 0, prompt: "g0", responses: ["good", "bad"], sources: ["gold", "gold"], gold: 0),
                 RatingItem(idx: 1, prompt: "g1", responses: ["bad", "good"], sources: ["gold", "gold"], gold: 1),
                 RatingItem(idx: 2, prompt: "p", responses: ["x", "y"], sources: ["A", "B"])]
    let taskId = try store.createRatingTask(RatingTask(name: "g", mode: .pair, source: "", seed: 0), items: items).id!
    for vote in [RatingVote.a, .a, .b] {
        let item = try #require(try store.nextRatingItem(taskId: taskId, rater: "ann"))
        _ = try store.record(rating: Rating(itemId: item.id!, rater: "ann", session: "s", swapped: false, vote: vote, shownAt: Date()))
    }
    #expect(try store.progress(taskId: taskId, rater: "ann") == RaterProgress(done: 3, left: 0, goldAnswered: 2, goldCorrect: 1))
}

/// The `sqlite3` queries of docs/store.md's Ratings section.
private func documentedRatingQueries() throws -> [String] {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let doc = try String(contentsOf: root.appendingPathComponent("docs/store.md"), encoding: .utf8)
    return doc.components(separatedBy: "```sh\n").dropFirst().compactMap { block in
        let code = block.components(separatedBy: "```")[0]
        let parts = code.components(separatedBy: "\"")
        return code.hasPrefix("sqlite3 runs/rate.sqlite") && parts.count == 3 ? parts[1] : nil
    }
}

@Test func docRatingQueriesAnswerWhatTheySay() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let store = try RunStore(path: path)
    let taskId = try pairTask(store, name: "helpful", count: 4).id!
    let items = try store.ratingItems(taskId: taskId)
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    func answer(_ i: Int, _ rater: String, _ vote: RatingVote, swapped: Bool = false, seconds: Double, undone: Bool = false) throws {
        _ = try store.record(rating: Rating(itemId: items[i].id!, rater: rater, session: "s", swapped: swapped, vote: vote,
                                            shownAt: t0, answeredAt: t0.addingTimeInterval(seconds), undone: undone))
    }
    try answer(0, "ann", .b, swapped: true, seconds: 3)
    try answer(1, "ann", .a, seconds: 5, undone: true)
    try answer(1, "ann", .a, seconds: 7)
    try answer(2, "ann", .skip, seconds: 1)
    try answer(3, "ann", .tie, seconds: 2)
    try answer(0, "bob", .a, seconds: 4)
    let queries = try documentedRatingQueries()
    #expect(queries.count == 2)
    let chosen = try store.dbPool.read { db in try Row.fetchAll(db, sql: queries[0]) }
    #expect(chosen.map { $0["chosen"] as String } == ["y0", "x1", "x0"])
    #expect(chosen.map { $0["rejected"] as String } == ["x0", "y1", "y0"])
    let raters = try store.dbPool.read { db in try Row.fetchAll(db, sql: queries[1]) }
    #expect(raters.map { $0["rater"] as String } == ["ann", "bob"])
    #expect(raters.map { $0["answers"] as Int } == [3, 1] && raters.map { $0["skips"] as Int } == [1, 0])
    #expect(raters.map { $0["undone"] as Int } == [1, 0])
    // ann's answers took 3, 7 and 2 seconds (the undone one and the skip do not count).
    #expect(raters.map { $0["mean_seconds"] as Double } == [4, 4])
}
