import Foundation
import GRDB

/// Text as the store can keep it. SQLite reads a text value back only up to its first NUL byte (a
/// byte-level tokenizer can decode to one), so a NUL is kept as U+FFFD: what is stored, read back,
/// shown and judged is the same string.
public enum StoredText {
    /// `text` with every NUL replaced by U+FFFD.
    public static func storable(_ text: String) -> String {
        text.unicodeScalars.contains("\u{0}") ? text.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") : text
    }
}

/// Lifecycle of a run or a stage. `running` moves to one of the three end states; `failed` and
/// `interrupted` may move back to `running` when the work resumes; `completed` is final.
public enum Status: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
    case running, completed, failed, interrupted

    /// Whether a row in this status may move to `next`.
    public func canMove(to next: Status) -> Bool {
        switch (self, next) {
        case (.running, .completed), (.running, .failed), (.running, .interrupted): true
        case (.failed, .running), (.interrupted, .running): true
        default: false
        }
    }
}

/// One `rein run` of a recipe (table `run`).
public struct Run: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    /// Row id, set on insert.
    public var id: Int64?
    /// The recipe's `name`.
    public var name: String
    /// The recipe text as it was run, so a run can be reproduced from the store alone.
    public var recipe: String
    /// The recipe's seed.
    public var seed: Int64
    /// Where the run is in its lifecycle.
    public var status: Status
    /// When the run started (UTC).
    public var startedAt: Date
    /// When the run ended; nil while running.
    public var finishedAt: Date?
    /// The recipe's output directory (v2; nil for runs recorded by `rein train`).
    public var outputDir: String?
    /// The process id of the `rein` that last ran it (v2).
    public var pid: Int64?
    /// The host name of that process (v2).
    public var host: String?

    /// A new run in `status`.
    public init(id: Int64? = nil, name: String, recipe: String, seed: Int64, status: Status = .running,
                startedAt: Date = Date(), finishedAt: Date? = nil, outputDir: String? = nil, pid: Int64? = nil,
                host: String? = nil) {
        self.id = id
        self.name = name
        self.recipe = recipe
        self.seed = seed
        self.status = status
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.outputDir = outputDir
        self.pid = pid
        self.host = host
    }

    /// Picks up the row id after an insert.
    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// One stage of a run (table `stage`), e.g. `sft` of kind `sft`.
public struct Stage: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    /// Row id, set on insert.
    public var id: Int64?
    /// The run this stage belongs to.
    public var runId: Int64
    /// The stage's `id` in the recipe; unique within a run.
    public var stageKey: String
    /// The stage kind (`pretrain`, `sft`, `reward`, `dpo`, ...).
    public var kind: String
    /// The resolved stage config as JSON.
    public var configJSON: String
    /// Hash of the resolved config and inputs; equal hashes mean the stage may be skipped.
    public var configHash: String
    /// Where the stage is in its lifecycle.
    public var status: Status
    /// The stage's latest checkpoint, for resuming and for later stages' `stage:KEY` references.
    public var checkpointPath: String?
    /// When the stage started (UTC).
    public var startedAt: Date
    /// When the stage ended; nil while running.
    public var finishedAt: Date?
    /// What the stage produced for later stages: a model or tokenizer directory, or a data
    /// directory (v2).
    public var outputPath: String?
    /// For a skipped stage: the completed stage (of this or an earlier run) whose output it reuses (v2).
    public var reusedStageId: Int64?

    /// A new stage in `status`.
    public init(id: Int64? = nil, runId: Int64, stageKey: String, kind: String, configJSON: String,
                configHash: String, status: Status = .running, checkpointPath: String? = nil,
                startedAt: Date = Date(), finishedAt: Date? = nil, outputPath: String? = nil,
                reusedStageId: Int64? = nil) {
        self.outputPath = outputPath
        self.reusedStageId = reusedStageId
        self.id = id
        self.runId = runId
        self.stageKey = stageKey
        self.kind = kind
        self.configJSON = configJSON
        self.configHash = configHash
        self.status = status
        self.checkpointPath = checkpointPath
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }

    /// Picks up the row id after an insert.
    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// One metric value at one step of a stage (table `metric`, key (stageId, step, name)).
public struct Metric: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    /// The stage that logged it.
    public var stageId: Int64
    /// Optimizer step.
    public var step: Int
    /// Metric name, e.g. `train/loss`.
    public var name: String
    /// The value.
    public var value: Double

    /// A metric row.
    public init(stageId: Int64, step: Int, name: String, value: Double) {
        self.stageId = stageId
        self.step = step
        self.name = name
        self.value = value
    }
}

/// One checkpoint a stage wrote (table `checkpoint`, v2; key (stageId, kind, step)).
public struct Checkpoint: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    /// The stage that wrote it.
    public var stageId: Int64
    /// `last` (the resume point), `best` (lowest validation loss) or `final` (the exported model).
    public var kind: String
    /// The optimizer step it holds.
    public var step: Int
    /// Its directory. A `last` directory is replaced by later saves; the newest row is current.
    public var path: String
    /// When it was written (UTC).
    public var createdAt: Date

    /// A checkpoint row.
    public init(stageId: Int64, kind: String, step: Int, path: String, createdAt: Date = Date()) {
        self.stageId = stageId
        self.kind = kind
        self.step = step
        self.path = path
        self.createdAt = createdAt
    }
}

/// The values of `rollout.phase` (v4): which kind of generation a rollout row records.
public enum RolloutPhase {
    /// A response an online RL stage (PPO, RLOO, GRPO) sampled for an update (`StoreRolloutSink`).
    public static let train = "train"
    /// A greedy evaluation reply (exact match, before a stage's first step and after its last).
    public static let eval = "eval"
    /// Both values, the only ones the column accepts.
    public static let all = [train, eval]
}

/// One generated response during a stage (table `rollout`, key (stageId, phase, step, idx)).
public struct Rollout: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    /// The stage that generated it.
    public var stageId: Int64
    /// `train` (an RL update's rollout) or `eval` (an evaluation reply); see `RolloutPhase` (v4).
    public var phase: String
    /// Optimizer step at generation time.
    public var step: Int
    /// Index of the rollout within the step.
    public var idx: Int
    /// The prompt text.
    public var prompt: String
    /// The generated response text.
    public var response: String
    /// Number of generated tokens.
    public var responseTokens: Int
    /// Why generation stopped (`eos`, `stop_string`, `length`, `context`).
    public var stopReason: String
    /// Reward-model or verifier score, if any.
    public var score: Double?
    /// KL to the reference policy, if measured.
    public var kl: Double?
    /// The reward used for the update, if any.
    public var reward: Double?
    /// Version (step) of the policy that generated it.
    public var policyVersion: Int
    /// The generated token ids (v3; stored as a JSON array of integers; nil for rows without them).
    public var responseTokenIds: [Int32]?
    /// The mean advantage over the response tokens (v3), if computed.
    public var advantage: Double?
    /// Which prompt of the step it answers; the samples of one prompt share it (v3).
    public var groupIndex: Int?

    /// A rollout row (an evaluation reply unless `phase` says otherwise).
    public init(stageId: Int64, phase: String = RolloutPhase.eval, step: Int, idx: Int, prompt: String, response: String, responseTokens: Int,
                stopReason: String, score: Double? = nil, kl: Double? = nil, reward: Double? = nil,
                policyVersion: Int, responseTokenIds: [Int32]? = nil, advantage: Double? = nil, groupIndex: Int? = nil) {
        self.stageId = stageId
        self.phase = phase
        self.step = step
        self.idx = idx
        self.prompt = StoredText.storable(prompt)
        self.response = StoredText.storable(response)
        self.responseTokens = responseTokens
        self.stopReason = stopReason
        self.score = score
        self.kl = kl
        self.reward = reward
        self.policyVersion = policyVersion
        self.responseTokenIds = responseTokenIds
        self.advantage = advantage
        self.groupIndex = groupIndex
    }
}

/// A head-to-head tally of two policies (table `comparison`).
public struct Comparison: Codable, Sendable, Equatable, FetchableRecord, MutablePersistableRecord {
    /// Row id, set on insert.
    public var id: Int64?
    /// The run that made the comparison.
    public var runId: Int64
    /// First policy (e.g. `stage:sft`).
    public var policyA: String
    /// Second policy.
    public var policyB: String
    /// Who judged (a rule, a reward model).
    public var judge: String
    /// Prompts where A won.
    public var winsA: Int
    /// Prompts where B won.
    public var winsB: Int
    /// Prompts judged a tie.
    public var ties: Int
    /// The `rein compare` session that made it (nil for rows from before store v6).
    public var compareSessionId: Int64?
    /// The pair's statistics (win rate and interval, sign test, ...), as JSON.
    public var summaryJSON: String?

    /// A new comparison.
    public init(id: Int64? = nil, runId: Int64, policyA: String, policyB: String, judge: String,
                winsA: Int, winsB: Int, ties: Int, compareSessionId: Int64? = nil, summaryJSON: String? = nil) {
        self.compareSessionId = compareSessionId
        self.summaryJSON = summaryJSON
        self.id = id
        self.runId = runId
        self.policyA = policyA
        self.policyB = policyB
        self.judge = judge
        self.winsA = winsA
        self.winsB = winsB
        self.ties = ties
    }

    /// Picks up the row id after an insert.
    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// A run with its stages in start order.
public struct RunSummary: Sendable, Equatable {
    /// The run.
    public var run: Run
    /// Its stages, by id.
    public var stages: [Stage]
}
