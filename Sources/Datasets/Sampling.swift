import TensorCore

/// Shuffles `items` in place with Fisher-Yates driven by `generator`.
///
/// Rein's own loop rather than `shuffle(using:)`, whose algorithm the standard library does not
/// promise to keep, so a seed gives the same order on every Swift version.
public func seededShuffle<T>(_ items: inout [T], using generator: inout RNG) {
    guard items.count > 1 else { return }
    for i in stride(from: items.count - 1, to: 0, by: -1) {
        items.swapAt(i, generator.int(below: i + 1))
    }
}

/// `items` in a seeded random order.
public func seededShuffle<T>(_ items: [T], seed: UInt64) -> [T] {
    var generator = RNG(seed: seed)
    var shuffled = items
    seededShuffle(&shuffled, using: &generator)
    return shuffled
}

/// A seeded random permutation of `0..<count`.
public func seededPermutation(count: Int, seed: UInt64) -> [Int] {
    seededShuffle(Array(0..<count), seed: seed)
}

/// Splits `items` into training and validation parts.
///
/// The validation part has `round(validationFraction · count)` items chosen by a seeded
/// permutation; both parts keep the original order. The same seed gives the same split.
///
/// - Throws: `DatasetError.invalidConfiguration` when the fraction is outside [0, 1) or leaves
///   no training items.
public func splitTrainValidation<T>(_ items: [T], validationFraction: Double,
                                    seed: UInt64) throws(DatasetError) -> (train: [T], validation: [T]) {
    guard validationFraction >= 0, validationFraction < 1 else {
        throw DatasetError.invalidConfiguration("validation fraction \(validationFraction) must be in [0, 1)")
    }
    let validationCount = Int((validationFraction * Double(items.count)).rounded())
    guard validationCount < items.count || items.isEmpty else {
        throw DatasetError.invalidConfiguration(
            "a validation fraction of \(validationFraction) leaves no training examples out of \(items.count)")
    }
    var isValidation = [Bool](repeating: false, count: items.count)
    for index in seededPermutation(count: items.count, seed: seed).prefix(validationCount) { isValidation[index] = true }
    var train: [T] = []
    var validation: [T] = []
    train.reserveCapacity(items.count - validationCount)
    validation.reserveCapacity(validationCount)
    for (item, held) in zip(items, isValidation) {
        if held { validation.append(item) } else { train.append(item) }
    }
    return (train, validation)
}

/// Where an `EpochBatches` stands: enough to continue exactly where a run stopped.
///
/// Each epoch's order is a permutation derived from `seed` and the epoch number, so the position
/// does not store the permutation itself. The dataset size and the batching settings are kept to
/// catch a resume on different data.
public struct DataPosition: Sendable, Hashable, Codable {
    /// The epoch the next batch belongs to, from 0.
    public var epoch: Int
    /// Batches of that epoch already handed out.
    public var batchIndex: Int
    /// The shuffle seed.
    public var seed: UInt64
    /// Number of examples in the dataset.
    public var count: Int
    /// Examples per batch.
    public var batchSize: Int
    /// Whether epochs are shuffled.
    public var shuffle: Bool
    /// Whether a last, smaller batch is dropped.
    public var dropLast: Bool

    enum CodingKeys: String, CodingKey {
        case epoch
        case batchIndex = "batch_index"
        case seed
        case count
        case batchSize = "batch_size"
        case shuffle
        case dropLast = "drop_last"
    }
}

/// Batches of example indices, epoch after epoch, each epoch in its own seeded order.
///
/// ```swift
/// var batches = try EpochBatches(count: examples.count, batchSize: 8, seed: 1234)
/// try batches.restore(savedPosition)          // when resuming
/// let batch = collator.collate(batches.next().map { examples[$0] })
/// let position = batches.position             // save with the checkpoint
/// ```
public struct EpochBatches: Sendable {
    /// The position of the next batch.
    public private(set) var position: DataPosition
    /// The current epoch's order of example indices.
    private var order: [Int]

    /// Batches over `count` examples.
    ///
    /// - Parameters:
    ///   - shuffle: order each epoch by a permutation seeded from `seed` and the epoch number;
    ///     false keeps file order.
    ///   - dropLast: drop the last batch of an epoch when it is smaller than `batchSize`.
    /// - Throws: `DatasetError.invalidConfiguration` when there is not one batch per epoch.
    public init(count: Int, batchSize: Int, seed: UInt64, shuffle: Bool = true, dropLast: Bool = false) throws(DatasetError) {
        guard batchSize > 0 else { throw DatasetError.invalidConfiguration("batch size \(batchSize) must be positive") }
        guard count > 0, !dropLast || count >= batchSize else {
            throw DatasetError.invalidConfiguration("\(count) examples do not fill one batch of \(batchSize)")
        }
        position = DataPosition(epoch: 0, batchIndex: 0, seed: seed, count: count, batchSize: batchSize,
                                shuffle: shuffle, dropLast: dropLast)
        order = []
        order = epochOrder(0)
    }

    /// Batches in one epoch.
    public var batchesPerEpoch: Int {
        position.dropLast ? position.count / position.batchSize
            : (position.count + position.batchSize - 1) / position.batchSize
    }

    /// Continues from a saved position.
    ///
    /// - Throws: `DatasetError.invalidConfiguration` when the position was saved for a different
    ///   dataset size or batching, or lies past the end of its epoch.
    public mutating func restore(_ saved: DataPosition) throws(DatasetError) {
        var expected = position
        expected.epoch = saved.epoch
        expected.batchIndex = saved.batchIndex
        expected.seed = saved.seed
        guard saved == expected else {
            throw DatasetError.invalidConfiguration(
                "the saved data position is for \(saved.count) examples in batches of \(saved.batchSize) "
                + "(shuffle \(saved.shuffle), drop last \(saved.dropLast)); this run has \(position.count) examples "
                + "in batches of \(position.batchSize) (shuffle \(position.shuffle), drop last \(position.dropLast))")
        }
        guard saved.epoch >= 0, saved.batchIndex >= 0, saved.batchIndex < batchesPerEpoch else {
            throw DatasetError.invalidConfiguration(
                "the saved data position (epoch \(saved.epoch), batch \(saved.batchIndex)) is outside an epoch of \(batchesPerEpoch) batches")
        }
        position = saved
        order = epochOrder(saved.epoch)
    }

    /// The indices of the next batch; after an epoch's last batch the next epoch starts, in a new
    /// order. Never empty.
    public mutating func next() -> [Int] {
        let start = position.batchIndex * position.batchSize
        let batch = Array(order[start..<min(start + position.batchSize, order.count)])
        position.batchIndex += 1
        if position.batchIndex == batchesPerEpoch {
            position.epoch += 1
            position.batchIndex = 0
            order = epochOrder(position.epoch)
        }
        return batch
    }

    private func epochOrder(_ epoch: Int) -> [Int] {
        guard position.shuffle else { return Array(0..<position.count) }
        var generator = RNG(seed: position.seed, stream: UInt64(epoch) &+ 1)
        var order = Array(0..<position.count)
        seededShuffle(&order, using: &generator)
        return order
    }
}
