/// One sampled response of an online RL stage (PPO, RLOO, GRPO), as the store keeps it.
///
/// Rows are keyed by (stage, `step`, `index`): a resumed stage that regenerates a step writes the
/// same keys again and replaces the rows instead of duplicating them.
public struct RolloutRow: Sendable, Equatable, Codable {
    /// The update whose rollout phase generated it (1-based: the first update is step 1).
    public var step: Int
    /// Position within the step's batch (prompt-major: prompt 0's samples come first).
    public var index: Int
    /// The prompt as shown to the policy (the chat template applied).
    public var prompt: String
    /// The response text, cut after the first EOS (what the judge scored).
    public var response: String
    /// The response tokens as generated, up to and including the first EOS.
    public var responseTokenIds: [Int32]
    /// Why generation stopped: `eos`, `length` or `context`.
    public var stopReason: String
    /// The judge's or reward model's score, after the missing-EOS penalty.
    public var score: Double?
    /// The KL to the reference summed over the response tokens.
    public var kl: Double?
    /// The total reward the update used: the score plus the summed non-score (KL) reward.
    public var reward: Double?
    /// The mean advantage over the response tokens.
    public var advantage: Double?
    /// Which prompt of the step it answers (the samples of one prompt share it).
    public var group: Int
    /// The number of updates the policy had taken when it generated the response.
    public var policyVersion: Int

    public init(step: Int, index: Int, prompt: String, response: String, responseTokenIds: [Int32], stopReason: String,
                score: Double? = nil, kl: Double? = nil, reward: Double? = nil, advantage: Double? = nil, group: Int,
                policyVersion: Int) {
        self.step = step
        self.index = index
        self.prompt = prompt
        self.response = response
        self.responseTokenIds = responseTokenIds
        self.stopReason = stopReason
        self.score = score
        self.kl = kl
        self.reward = reward
        self.advantage = advantage
        self.group = group
        self.policyVersion = policyVersion
    }
}

/// Where an online RL stage sends its rollouts: the run store plugs in here.
public protocol RolloutSink: AnyObject {
    /// Records one step's rollouts (buffered or written at once).
    func record(rollouts: [RolloutRow]) throws
    /// Makes everything recorded so far durable; called before each checkpoint.
    func flush() throws
}

/// Keeps rollouts in memory (tests), replacing rows with the same (step, index).
public final class MemoryRolloutSink: RolloutSink {
    public private(set) var rows: [RolloutRow] = []
    public init() {}
    public func record(rollouts: [RolloutRow]) throws {
        let keys = Set(rollouts.map { [$0.step, $0.index] })
        rows.removeAll { keys.contains([$0.step, $0.index]) }
        rows += rollouts
        rows.sort { ($0.step, $0.index) < ($1.step, $1.index) }
    }
    public func flush() throws {}
}
