import DataParallel
import Foundation
import Optimizers
import TensorCore

/// One optimizer update assembled from micro-batches, for any loop (the supervised ``Trainer``;
/// a PPO round keeps one for the policy and one for the value model):
///
/// ```swift
/// let step = OptimizerStep(optimizer: AdamW(arena: arena, ...), maxGradNorm: 1)
/// for micro in microBatches {
///     let (loss, items) = lossOf(micro)        // mean over `items` tokens (or pairs)
///     try step.accumulate(loss: loss, items: items)
/// }
/// let result = step.step(learningRate: schedule.lr(at: t))   // reduce, clip, step, zero
/// ```
///
/// Micro-batches are weighted by the items each reports, so accumulating micro-batches of
/// different sizes gives the gradient of one batch of all of them: each micro-batch's mean loss is
/// backpropagated times its item count, and the summed gradients are divided by the total count
/// before clipping. The loss reported is the item-weighted mean too.
public final class OptimizerStep {
    /// What one update did.
    public struct Result: Sendable, Equatable {
        /// The item-weighted mean loss of the micro-batches.
        public let loss: Double
        /// The global gradient norm before clipping.
        public let gradNorm: Double
        /// The learning rate of the update.
        public let learningRate: Double
        /// Items (tokens, pairs) of every micro-batch together.
        public let items: Int
        /// Micro-batches accumulated.
        public let microBatches: Int
        /// The item-weighted means of the metrics the micro-batches reported.
        public let metrics: [String: Double]
    }

    /// The optimizer applied.
    public let optimizer: any Optimizer
    /// The largest global gradient norm let through (`max_grad_norm`); 0 or less: no clipping.
    public var maxGradNorm: Double
    /// The parameters updated (the optimizer's).
    public var arena: ParameterArena { optimizer.arena }
    /// Items accumulated since the last update.
    public private(set) var items = 0
    /// Micro-batches accumulated since the last update.
    public private(set) var microBatches = 0

    private var weightedLoss = 0.0
    private var unweightedLoss = 0.0
    private var weightedMetrics: [String: Double] = [:]

    /// A step over `optimizer`'s arena, clipping at `maxGradNorm`.
    public init(optimizer: any Optimizer, maxGradNorm: Double = 1.0) {
        self.optimizer = optimizer
        self.maxGradNorm = maxGradNorm
    }

    /// Backpropagates one micro-batch: `loss` is its mean over `items` items (a micro-batch of no
    /// items adds no gradient). Throws, before any backward pass, when the loss is NaN or infinite.
    public func accumulate(loss: Tensor, items: Int, metrics: [String: Double] = [:]) throws {
        let value = loss.item
        guard value.isFinite else { throw TrainingError.nonFiniteLoss(step: optimizer.stepCount + 1) }
        guard items >= 0 else { throw TrainingError.badItemCount(items) }
        microBatches += 1
        unweightedLoss += Double(value)
        guard items > 0 else { return }
        (loss * Float(items)).backward()
        self.items += items
        weightedLoss += Double(value) * Double(items)
        for (name, v) in metrics { weightedMetrics[name, default: 0] += v * Double(items) }
    }

    /// Turns the accumulated gradients into the mean over every item, clips them, updates the
    /// parameters at `learningRate` and zeroes the gradients for the next update.
    @discardableResult
    public func step(learningRate: Double) -> Result { update(learningRate: learningRate) }

    /// Elements of one gradient all-reduce (16 MiB of floats), PyTorch DDP's bucket size order.
    public static let defaultBucketElements = 1 << 22
    /// Seconds spent in the collectives of ``step(learningRate:over:)`` since the step was made.
    public private(set) var communicationSeconds = 0.0

    /// The data-parallel update: every process of `communicator` has accumulated its shard of
    /// the batch; the gradients are summed over the processes in fixed-order buckets over the
    /// arena's trainable ranges, the items, losses and metrics likewise, and then every process
    /// takes the same step (the mean over every item of every process). Alone, this is
    /// ``step(learningRate:)`` exactly.
    @discardableResult
    public func step(learningRate: Double, over communicator: any Communicator,
                     bucketElements: Int = OptimizerStep.defaultBucketElements) throws -> Result {
        if communicator.size > 1 {
            let started = DispatchTime.now().uptimeNanoseconds
            try reduce(over: communicator, bucketElements: max(1, bucketElements))
            communicationSeconds += Double(DispatchTime.now().uptimeNanoseconds - started) * 1e-9
        }
        return update(learningRate: learningRate)
    }

    /// Sums gradients, counts, losses and metrics over the processes.
    func reduce(over communicator: any Communicator, bucketElements: Int) throws {
        try Self.allReduceGradients(of: arena, over: communicator, bucketElements: bucketElements)
        // The metric names must agree before their values are summed side by side.
        let names = weightedMetrics.keys.sorted()
        var check = [Double(names.count), -Double(names.count)]
        try communicator.allReduce(&check, .max)
        guard check[0] == -check[1] else {
            throw TrainingError.distributed("the processes report different metrics (\(names.joined(separator: ", ")) here)")
        }
        var totals = [Double(items), weightedLoss, unweightedLoss, Double(microBatches)] + names.map { weightedMetrics[$0]! }
        try communicator.allReduce(&totals, .sum)
        items = Int(totals[0])
        weightedLoss = totals[1]
        unweightedLoss = totals[2]
        microBatches = Int(totals[3])
        for (k, name) in names.enumerated() { weightedMetrics[name] = totals[4 + k] }
    }

    /// Sums the gradients of `arena`'s trainable ranges over the processes, in place, in buckets in
    /// arena order: consecutive pieces of the ranges up to `bucketElements` elements; one piece is
    /// reduced in place, several go through a staging buffer. Every process must call it with the
    /// same layout. The loops that do not accumulate through an ``OptimizerStep`` (PPO, RLOO,
    /// GRPO) call it before their own update.
    public static func allReduceGradients(of arena: ParameterArena, over communicator: any Communicator,
                                          bucketElements: Int = defaultBucketElements) throws {
        guard communicator.isDistributed else { return }
        let bucketElements = max(1, bucketElements)
        let grads = arena.grads.base
        var pieces: [Range<Int>] = [], filled = 0
        var staging: [Float] = []
        func flush() throws {
            defer { pieces.removeAll(keepingCapacity: true); filled = 0 }
            guard let first = pieces.first else { return }
            if pieces.count == 1 { return try communicator.allReduceSum(grads + first.lowerBound, count: first.count) }
            if staging.count < filled { staging = [Float](repeating: 0, count: filled) }
            try staging.withUnsafeMutableBufferPointer { s in
                var at = 0
                for p in pieces { (s.baseAddress! + at).update(from: grads + p.lowerBound, count: p.count); at += p.count }
                try communicator.allReduceSum(s.baseAddress!, count: filled)
                at = 0
                for p in pieces { (grads + p.lowerBound).update(from: s.baseAddress! + at, count: p.count); at += p.count }
            }
        }
        for range in arena.trainableRanges {
            var start = range.lowerBound
            while start < range.upperBound {
                let n = min(range.upperBound - start, bucketElements - filled)
                pieces.append(start..<(start + n))
                filled += n
                start += n
                if filled == bucketElements { try flush() }
            }
        }
        try flush()
    }

    private func update(learningRate: Double) -> Result {
        if items > 0 { arena.scaleGrads(by: Float(1 / Double(items))) }
        let gradNorm = maxGradNorm > 0 ? Double(arena.clipGradNorm(maxNorm: Float(maxGradNorm))) : Double(arena.gradNorm())
        optimizer.learningRate = learningRate
        optimizer.step()
        arena.zeroGrad()
        let total = Double(items)
        let result = Result(
            loss: items > 0 ? weightedLoss / total : (microBatches > 0 ? unweightedLoss / Double(microBatches) : 0),
            gradNorm: gradNorm, learningRate: learningRate, items: items, microBatches: microBatches,
            metrics: items > 0 ? weightedMetrics.mapValues { $0 / total } : [:])
        items = 0
        microBatches = 0
        weightedLoss = 0
        unweightedLoss = 0
        weightedMetrics = [:]
        return result
    }
}
