import Foundation
import GRDB
@testable import Store
import Testing

// v6-ratings: an item a rater was given and left unanswered goes back to the pool after the timeout,
// or at once when the process that took it has ended, so two raters never block each other.

private func oneItemTask(_ store: RunStore, items count: Int = 1) throws -> RatingTask {
    let items = (0..<count).map { RatingItem(idx: $0, prompt: "p\($0)", responses: ["x", "y"], sources: ["A", "B"]) }
    return try store.createRatingTask(RatingTask(name: "t", mode: .pair, source: "test", seed: 1), items: items)
}

/// The id of a process that has ended (it ran `true` and was waited for).
private func endedProcessId() throws -> Int64 {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", "true"]
    try process.run()
    process.waitUntilExit()
    return Int64(process.processIdentifier)
}

@Test func anUnansweredItemGoesBackToThePoolAfterTheTimeoutButNotBefore() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let store = try RunStore(path: path)
    let task = try oneItemTask(store)
    let t0 = Date(timeIntervalSince1970: 1_900_000_000)
    let ann = try #require(try store.nextRatingItem(taskId: task.id!, rater: "ann", at: t0, session: "s-ann"))
    // This process holds ann's item: bob gets nothing while the 30 minutes run.
    #expect(try store.nextRatingItem(taskId: task.id!, rater: "bob", at: t0 + 29 * 60, session: "s-bob") == nil)
    #expect(try store.progress(taskId: task.id!, rater: "bob").left == 0)
    // After them it is bob's; ann's assignment is gone, her answers none (nothing was answered).
    let bob = try #require(try store.nextRatingItem(taskId: task.id!, rater: "bob", at: t0 + 31 * 60, session: "s-bob"))
    #expect(bob.id == ann.id)
    let holders = try store.dbPool.read { db in
        try Row.fetchAll(db, sql: "SELECT rater, session, host, pid FROM ratingAssignment")
    }
    #expect(holders.count == 1)
    #expect(holders.first?["rater"] == "bob" && holders.first?["session"] == "s-bob")
    #expect(holders.first?["pid"] == Int64(ProcessInfo.processInfo.processIdentifier))
    #expect(try store.ratings(taskId: task.id!).isEmpty)
}

@Test func anItemOfARaterWhoseProcessEndedIsGivenToAnotherAtOnceAndAnAnsweredOneNever() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let store = try RunStore(path: path)
    let task = try oneItemTask(store, items: 2)
    let t0 = Date()
    let first = try #require(try store.nextRatingItem(taskId: task.id!, rater: "ann", at: t0, session: "a1"))
    // ann answers item 0 and takes item 1, then her process dies without answering it.
    _ = try store.record(rating: Rating(itemId: first.id!, rater: "ann", session: "a1", swapped: false, vote: .a, shownAt: t0))
    let second = try #require(try store.nextRatingItem(taskId: task.id!, rater: "ann", at: t0, session: "a1"))
    #expect(second.idx == 1)
    let gone = try endedProcessId()
    try store.dbPool.write { db in try db.execute(sql: "UPDATE ratingAssignment SET pid = ? WHERE rater = 'ann'", arguments: [gone]) }
    // A minute later (well inside the timeout) bob gets item 1; item 0, answered, stays ann's.
    let bob = try #require(try store.nextRatingItem(taskId: task.id!, rater: "bob", at: t0 + 60, session: "b1"))
    #expect(bob.id == second.id)
    #expect(try store.nextRatingItem(taskId: task.id!, rater: "bob", at: t0 + 61, session: "b1")?.id == second.id)  // still his
    let assigned = try store.dbPool.read { db in try Row.fetchAll(db, sql: "SELECT itemId, rater FROM ratingAssignment ORDER BY itemId") }
    #expect(assigned.map { $0["rater"] as String } == ["ann", "bob"])
    // ann comes back: nothing is left for her (her answer kept, the other item bob's).
    #expect(try store.nextRatingItem(taskId: task.id!, rater: "ann", at: t0 + 120, session: "a2") == nil)
    #expect(try store.ratings(taskId: task.id!).map(\.rater) == ["ann"])
}

@Test func aV6StoreHasTheScaleOptionsThumbAndHolderColumnsAndThumbsAnswersRoundTrip() throws {
    let path = temporaryStorePath()
    defer { removeStore(path) }
    let store = try RunStore(path: path)
    let task = try store.createRatingTask(RatingTask(name: "th", mode: .single, source: "test", seed: 0, scale: .thumbs, options: #"{"seed":4}"#),
                                          items: [RatingItem(idx: 0, prompt: "p", responses: ["x"], sources: ["A"])])
    let read = try store.ratingTask(named: "th")
    #expect(read.scale == .thumbs && read.options == #"{"seed":4}"#)
    let item = try #require(try store.nextRatingItem(taskId: task.id!, rater: "ann"))
    _ = try store.record(rating: Rating(itemId: item.id!, rater: "ann", session: "s", swapped: false, vote: .likert, shownAt: Date(), thumb: false))
    #expect(try store.ratings(taskId: task.id!).map(\.thumb) == [false])
    #expect(try store.answerCount(taskId: task.id!) == 1)
    // A scale outside likert/thumbs is refused by the schema.
    #expect(throws: (any Error).self) {
        try store.dbPool.write { db in try db.execute(sql: "UPDATE ratingTask SET scale = 'stars'") }
    }
}
