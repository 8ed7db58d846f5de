// When TRL 1.9.2's PPO loop steps the optimizer (the ppo-step fixture's README, item 8):
// accelerate's gradient accumulation. The learning rate (item 9, a scheduler stepped once per
// update) is `PPOTrainerSettings.learningRate(update:)`.

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
