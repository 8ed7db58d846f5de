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
    public func step(learningRate: Double) -> Result {
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
