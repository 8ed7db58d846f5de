// When TRL 1.9.2's PPO loop steps the optimizer and with which learning rate (the ppo-step
// fixture's README, items 8 and 9): accelerate's gradient accumulation and the linear schedule that
// PPOTrainer steps once per update, not once per optimizer step.

/// The learning rate of every optimizer step of PPO update `update` (1-based) under TRL's linear
/// schedule without warmup: base · (1 - (update - 1) / numTotalBatches).
public func ppoLinearLearningRate(base: Double, update: Int, numTotalBatches: Int) -> Double {
    guard numTotalBatches > 0 else { return base }
    return base * Swift.max(0, 1 - Double(update - 1) / Double(numTotalBatches))
}

/// accelerate's gradient-accumulation counter as PPOTrainer uses it: one count per micro-batch,
/// running across minibatches, PPO epochs and updates.
public struct GradientAccumulationCounter: Equatable, Sendable {
    /// `gradient_accumulation_steps` (at least 1).
    public let steps: Int
    /// Micro-batches counted since the start (or since the last end-of-dataloader step).
    public private(set) var counter = 0

    public init(steps: Int) { self.steps = Swift.max(steps, 1) }

    /// Counts one micro-batch and says whether the optimizer steps (and zeroes the gradients) after
    /// it: on every `steps`-th count, and on every micro-batch while the batch being trained is the
    /// dataloader's last (accelerate then restarts the count).
    public mutating func microStep(endOfDataloader: Bool = false) -> Bool {
        if endOfDataloader {
            counter = 0
            return true
        }
        counter += 1
        return counter % steps == 0
    }

    /// What accelerate's `backward` multiplies every micro-batch loss by.
    public var lossScale: Float { 1 / Float(steps) }
}
