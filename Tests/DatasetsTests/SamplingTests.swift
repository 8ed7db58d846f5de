import Datasets
import Foundation
import TensorCore
import Testing

@Suite struct SamplingTests {
    @Test func seededShuffleIsReproducibleAndSeedDependent() {
        let items = Array(0..<100)
        let a = seededShuffle(items, seed: 42), b = seededShuffle(items, seed: 42), c = seededShuffle(items, seed: 43)
        #expect(a == b)
        #expect(a != c)
        #expect(a != items && a.sorted() == items && c.sorted() == items)
        #expect(seededPermutation(count: 100, seed: 42) == a)
        var generator = RNG(seed: 42)
        var inPlace = items
        seededShuffle(&inPlace, using: &generator)
        #expect(inPlace == a)
    }

    @Test func splitSizesAndDeterminism() throws {
        let items = Array(0..<103)
        let (train, validation) = try splitTrainValidation(items, validationFraction: 0.2, seed: 9)
        #expect(validation.count == 21 && train.count == 82)
        #expect(Set(train).isDisjoint(with: validation) && (train + validation).sorted() == items)
        #expect(train == train.sorted() && validation == validation.sorted())
        let again = try splitTrainValidation(items, validationFraction: 0.2, seed: 9)
        #expect(again.train == train && again.validation == validation)
        #expect(try splitTrainValidation(items, validationFraction: 0.2, seed: 10).validation != validation)
        #expect(try splitTrainValidation(items, validationFraction: 0, seed: 9).train == items)
        #expect(throws: DatasetError.self) { try splitTrainValidation(items, validationFraction: 1, seed: 9) }
        #expect(throws: DatasetError.self) { try splitTrainValidation([1], validationFraction: 0.6, seed: 9) }
    }

    @Test func epochsCoverEveryExampleOnceInNewOrders() throws {
        var batches = try EpochBatches(count: 10, batchSize: 4, seed: 5)
        #expect(batches.batchesPerEpoch == 3)
        let epoch0 = (0..<3).map { _ in batches.next() }
        #expect(epoch0.map(\.count) == [4, 4, 2])
        #expect(batches.position.epoch == 1 && batches.position.batchIndex == 0)
        let epoch1 = (0..<3).map { _ in batches.next() }
        #expect(epoch0.flatMap { $0 }.sorted() == Array(0..<10) && epoch1.flatMap { $0 }.sorted() == Array(0..<10))
        #expect(epoch0.flatMap { $0 } != epoch1.flatMap { $0 })

        var dropping = try EpochBatches(count: 10, batchSize: 4, seed: 5, dropLast: true)
        #expect(dropping.batchesPerEpoch == 2 && dropping.next().count == 4)
        var ordered = try EpochBatches(count: 5, batchSize: 2, seed: 5, shuffle: false)
        #expect([ordered.next(), ordered.next(), ordered.next(), ordered.next()] == [[0, 1], [2, 3], [4], [0, 1]])
        #expect(throws: DatasetError.self) { try EpochBatches(count: 3, batchSize: 4, seed: 1, dropLast: true) }
        #expect(throws: DatasetError.self) { try EpochBatches(count: 0, batchSize: 4, seed: 1) }
    }

    @Test func resumeFromASavedPositionGivesTheSameFollowingBatches() throws {
        let seed: UInt64 = 0xDEAD_BEEF_CAFE_F00D
        var uninterrupted = try EpochBatches(count: 23, batchSize: 5, seed: seed)
        let expected = (0..<17).map { _ in uninterrupted.next() }

        for k in [0, 3, 5, 7, 12] {
            var first = try EpochBatches(count: 23, batchSize: 5, seed: seed)
            let before = (0..<k).map { _ in first.next() }
            let saved = try JSONEncoder().encode(first.position)  // stored with a checkpoint
            let position = try JSONDecoder().decode(DataPosition.self, from: saved)
            #expect(position == first.position)

            var resumed = try EpochBatches(count: 23, batchSize: 5, seed: 1)  // seed comes from the position
            try resumed.restore(position)
            let after = (k..<17).map { _ in resumed.next() }
            #expect(before + after == expected, "resumed after \(k) batches")
        }
        let json = String(decoding: try JSONEncoder().encode(uninterrupted.position), as: UTF8.self)
        #expect(json.contains("\"batch_index\"") && json.contains("\(seed)"))
    }

    @Test func restoreRejectsAPositionForOtherData() throws {
        var a = try EpochBatches(count: 23, batchSize: 5, seed: 1)
        _ = a.next()
        var other = try EpochBatches(count: 24, batchSize: 5, seed: 1)
        #expect(throws: DatasetError.self) { try other.restore(a.position) }
        var otherBatch = try EpochBatches(count: 23, batchSize: 4, seed: 1)
        #expect(throws: DatasetError.self) { try otherBatch.restore(a.position) }
        var same = try EpochBatches(count: 23, batchSize: 5, seed: 1)
        var past = a.position
        past.batchIndex = 99
        #expect(throws: DatasetError.self) { try same.restore(past) }
    }
}
