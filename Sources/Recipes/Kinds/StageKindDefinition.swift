import Alignment
import Datasets
import Foundation
import NN
import TensorCore
import Yams

/// What a key's value must be: its type and, for numbers, its range. The checker reads these to
/// report a wrong value with its line before any config struct is decoded.
public enum KeyType: Sendable, Equatable {
    /// An integer, optionally bounded.
    case integer(ValueRange = .any)
    /// A number, optionally bounded.
    case number(ValueRange = .any)
    case bool
    case string
    /// One of the listed words.
    case choice([String])
    /// A list of strings.
    case strings
    /// A data file: a path (which must exist) or `stage:ID/FILE` of a data stage.
    case file
    /// A LoRA mapping `{r, lora_alpha, lora_dropout, target_modules}`.
    case lora

    /// "an integer", "a number in [0, 1)", ...
    public var expected: String {
        switch self {
        case .integer: "an integer"
        case .number: "a number"
        case .bool: "true or false"
        case .string: "a string"
        case .choice(let words): "one of " + words.joined(separator: ", ")
        case .strings: "a list of strings"
        case .file: "a file path or stage:ID/FILE"
        case .lora: "a mapping {r, lora_alpha, lora_dropout, target_modules}"
        }
    }
}

/// The values a number may take: a lower and an upper bound, each inclusive or not.
public struct ValueRange: Sendable, Equatable {
    public var lower: Double?
    public var lowerInclusive = true
    public var upper: Double?
    public var upperInclusive = true

    public static let any = ValueRange()
    /// `x >= value`.
    public static func atLeast(_ value: Double) -> ValueRange { ValueRange(lower: value) }
    /// `x > value`.
    public static func above(_ value: Double) -> ValueRange { ValueRange(lower: value, lowerInclusive: false) }
    /// `lower <= x < upper`.
    public static func halfOpen(_ lower: Double, _ upper: Double) -> ValueRange {
        ValueRange(lower: lower, upper: upper, upperInclusive: false)
    }
    /// `lower <= x <= upper`.
    public static func closed(_ lower: Double, _ upper: Double) -> ValueRange { ValueRange(lower: lower, upper: upper) }

    public func contains(_ x: Double) -> Bool {
        if let lower, lowerInclusive ? x < lower : x <= lower { return false }
        if let upper, upperInclusive ? x > upper : x >= upper { return false }
        return x.isFinite || (lower == nil && upper == nil)
    }

    /// "must be at least 2", "must be positive", "must be in [0, 1)".
    var requirement: String { "must be " + description }

    var description: String {
        func show(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : "\(x)" }
        switch (lower, upper) {
        case (nil, nil): return ""
        case let (l?, nil):
            if l == 0 { return lowerInclusive ? "non-negative" : "positive" }
            return lowerInclusive ? "at least \(show(l))" : "greater than \(show(l))"
        case let (nil, u?): return upperInclusive ? "at most \(show(u))" : "less than \(show(u))"
        case let (l?, u?): return "in \(lowerInclusive ? "[" : "(")\(show(l)), \(show(u))\(upperInclusive ? "]" : ")")"
        }
    }
}

/// One key a stage kind reads: its TRL name, type and range, and whether it is required.
public struct KeySpec: Sendable, Equatable {
    public var name: String
    public var type: KeyType
    /// Why it is needed, when it is required ("required (a .jsonl or .txt file)").
    public var required: String?

    public init(_ name: String, _ type: KeyType, required: String? = nil) {
        self.name = name
        self.type = type
        self.required = required
    }
}

/// A model a stage names, by the role it plays.
public struct ModelRole: Sendable, Equatable {
    /// The recipe key: `model` (the policy, or the model trained), `ref_model`, `reward_model`,
    /// `value_model`, or `policies` (a list, for comparisons).
    public var key: String
    /// What the model is for, in a few words (used in messages).
    public var purpose: String
    /// Whether the stage needs it.
    public var required: Bool
    /// The stage kinds a `stage:ID` of this role may point at.
    public var accepts: [RecipeStageKind]
    /// A fresh model (`{init: {...}, tokenizer: REF}`) is allowed (pretraining).
    public var allowsInit = false
    /// A list of models (`policies: [...]`).
    public var isList = false
    /// A directory must hold a reward model (a score head and `reward_stats.json`).
    public var needsScoreHead = false
}

/// Everything Rein knows about one stage kind, in one declaration: the keys it reads (with TRL's
/// names, types, ranges and which are required), the models it names and in which roles, how
/// its settings decode and are checked, what it writes, and how it runs. The recipe checker,
/// `--set`, the config hash, `rein train` and the runner all read this; a new kind is one file in
/// `Sources/Recipes/Kinds/` plus one line in ``StageKinds/all``.
public struct StageKindDefinition: Sendable {
    public var kind: RecipeStageKind
    /// False for kinds whose keys are known but whose trainer has not landed (`ppo`, ...).
    public var implemented: Bool
    public var keys: [KeySpec]
    public var roles: [ModelRole]
    /// The stage writes a model (`DIR/model`, Hugging Face layout) rather than files.
    public var producesModel: Bool
    /// The files a kind that writes files writes, which later stages read as `stage:ID/FILE`.
    public var files: [String]
    /// What one training item is, for progress lines (tokens, pairs, episodes).
    public var unit: String
    /// The policy's exact match on `eval_prompts` is measured before and after (policy kinds).
    public var measuresExactMatch: Bool
    /// The data are prompts for rollouts, all of them trained on: no `validation_split` holds some
    /// back (the kind measures on `eval_prompts`).
    public var promptsOnly: Bool
    /// Decodes the checked keys (a mapping holding only valid values).
    public var decode: @Sendable (Node) throws -> StageSettings
    /// Problems that need several keys at once, each naming its key.
    public var validate: @Sendable (StageSettings) -> [(key: String, message: String)]
    /// Changes the loaded model before LoRA and training (a reward model gets its score head, a PPO
    /// policy with `shared_value_head` its value head).
    public var prepare: (@Sendable (DecoderModel, StageSettings, inout RNG) -> Void)?
    /// How a training kind trains, once the executor has loaded the model and data.
    public var train: (@Sendable (TrainingContext) throws -> StageSummary)?
    /// Writes what the kind adds beside the exported model (a reward model's statistics).
    public var exported: (@Sendable (StageSummary, URL) throws -> Void)?
    /// How a kind that writes files (data, tokenizer) writes them; returns step-0 metrics.
    public var write: (@Sendable (WriteContext) throws -> [String: Double])?
    /// What a run's summary shows of the stage: metrics before -> after.
    public var summary: [SummaryMetric]

    public init(kind: RecipeStageKind, implemented: Bool, keys: [KeySpec], roles: [ModelRole], producesModel: Bool,
                files: [String] = [], unit: String = "items", measuresExactMatch: Bool = false,
                promptsOnly: Bool = false, decode: @escaping @Sendable (Node) throws -> StageSettings,
                validate: @escaping @Sendable (StageSettings) -> [(key: String, message: String)],
                prepare: (@Sendable (DecoderModel, StageSettings, inout RNG) -> Void)? = nil,
                train: (@Sendable (TrainingContext) throws -> StageSummary)? = nil,
                exported: (@Sendable (StageSummary, URL) throws -> Void)? = nil,
                write: (@Sendable (WriteContext) throws -> [String: Double])? = nil,
                summary: [SummaryMetric] = []) {
        self.kind = kind
        self.implemented = implemented
        self.keys = keys
        self.roles = roles
        self.producesModel = producesModel
        self.files = files
        self.unit = unit
        self.measuresExactMatch = measuresExactMatch
        self.promptsOnly = promptsOnly
        self.decode = decode
        self.validate = validate
        self.prepare = prepare
        self.train = train
        self.exported = exported
        self.write = write
        self.summary = summary
    }

    /// The spec of `name`, if this kind reads it.
    public func key(_ name: String) -> KeySpec? { keys.first { $0.name == name } }
    /// The role called `key`, if this kind names one.
    public func role(_ key: String) -> ModelRole? { roles.first { $0.key == key } }
    /// Every key a stage of this kind may have (besides `id` and `kind`).
    public var keyNames: [String] { roles.map(\.key) + keys.map(\.name) }
}

/// A metric a run's summary shows for a stage, as "label before -> after".
public struct SummaryMetric: Sendable {
    public var metric: String
    public var label: String
    public var percent = false
    /// False when the value before the first step means nothing (DPO's implicit rewards are all 0).
    public var showBefore = true

    public init(_ metric: String, _ label: String, percent: Bool = false, showBefore: Bool = true) {
        self.metric = metric
        self.label = label
        self.percent = percent
        self.showBefore = showBefore
    }
}

/// The decoded settings of a stage, one case per config type.
public enum StageSettings: Equatable, Sendable, Encodable {
    case data(SyntheticDataConfig)
    case tokenizer(TokenizerStageConfig)
    case sft(SFTConfig)
    case reward(RewardConfig)
    case dpo(DPOConfig)
    case ppo(PPOConfig)
    case criticFree(CriticFreeConfig)
    case judgePairs(JudgePairsConfig)
    case compare(CompareStageConfig)
    case rate(RateStepConfig)

    /// The shared training arguments of a training stage.
    public var training: TrainingArguments? {
        get {
            switch self {
            case .sft(let c): c.args
            case .reward(let c): c.args
            case .dpo(let c): c.args
            case .ppo(let c): c.args
            case .criticFree(let c): c.args
            case .data, .tokenizer, .judgePairs, .rate, .compare: nil
            }
        }
        set {
            guard let newValue else { return }
            switch self {
            case .sft(var c): c.args = newValue; self = .sft(c)
            case .reward(var c): c.args = newValue; self = .reward(c)
            case .dpo(var c): c.args = newValue; self = .dpo(c)
            case .ppo(var c): c.args = newValue; self = .ppo(c)
            case .criticFree(var c): c.args = newValue; self = .criticFree(c)
            case .data, .tokenizer, .judgePairs, .rate, .compare: break
            }
        }
    }

    public func encode(to encoder: Encoder) throws {
        switch self {
        case .data(let c): try c.encode(to: encoder)
        case .tokenizer(let c): try c.encode(to: encoder)
        case .sft(let c): try c.encode(to: encoder)
        case .reward(let c): try c.encode(to: encoder)
        case .dpo(let c): try c.encode(to: encoder)
        case .ppo(let c): try c.encode(to: encoder)
        case .criticFree(let c): try c.encode(to: encoder)
        case .judgePairs(let c): try c.encode(to: encoder)
        case .compare(let c): try c.encode(to: encoder)
        case .rate(let c): try c.encode(to: encoder)
        }
    }
}

/// The registry: every stage kind's declaration.
public enum StageKinds {
    /// In the order `rein check` lists them.
    public static let all: [StageKindDefinition] = [data, tokenizer, judgePairs, rate, pretrain, sft, reward, dpo, ppo, rloo, grpo, compare]

    /// The declaration of `kind`.
    public static func definition(_ kind: RecipeStageKind) -> StageKindDefinition {
        all.first { $0.kind == kind }!
    }

    /// The kinds (by name) that read `key`, for "`beta` is a dpo/ppo key; this stage is sft".
    public static func owners(of key: String) -> [RecipeStageKind] {
        all.filter { $0.keyNames.contains(key) }.map(\.kind)
    }

    /// Kinds whose output is a model a later stage can start from.
    static let modelKinds: [RecipeStageKind] = all.filter(\.producesModel).map(\.kind)

    // MARK: Shared declarations

    /// The keys of ``TrainingArguments`` every training kind reads, with their types and ranges.
    static let trainingKeys: [KeySpec] = [
        KeySpec("data", .file, required: "required (a .jsonl or .txt file)"),
        KeySpec("validation_data", .file),
        KeySpec("validation_split", .number(.halfOpen(0, 1))),
        KeySpec("output_dir", .string),
        KeySpec("max_length", .integer(.atLeast(2))),
        KeySpec("batch_size", .integer(.atLeast(1))),
        KeySpec("num_train_epochs", .number(.above(0))),
        KeySpec("max_steps", .integer(.atLeast(0))),
        KeySpec("gradient_accumulation_steps", .integer(.atLeast(1))),
        KeySpec("learning_rate", .number(.above(0))),
        KeySpec("lr_scheduler_type", .choice(["constant", "linear", "cosine"])),
        KeySpec("warmup_steps", .integer(.atLeast(0))),
        KeySpec("min_lr", .number(.atLeast(0))),
        KeySpec("max_grad_norm", .number(.atLeast(0))),
        KeySpec("weight_decay", .number(.atLeast(0))),
        KeySpec("adam_beta1", .number(.halfOpen(0, 1))),
        KeySpec("adam_beta2", .number(.halfOpen(0, 1))),
        KeySpec("logging_steps", .integer(.atLeast(0))),
        KeySpec("eval_steps", .integer(.atLeast(0))),
        KeySpec("save_steps", .integer(.atLeast(0))),
        KeySpec("early_stopping_patience", .integer(.atLeast(0))),
        KeySpec("seed", .integer(.atLeast(0))),
        KeySpec("lora", .lora),
        KeySpec("on_bad_record", .choice(["fail", "skip"])),
        KeySpec("overflow", .choice(["truncate", "drop"])),
        KeySpec("resume", .bool),
        KeySpec("eval_on_start", .bool),
    ]

    /// Exact match of the policy's greedy replies on held-out prompts: kinds that train a policy.
    static let policyEvalKeys: [KeySpec] = [
        KeySpec("eval_prompts", .file),
        KeySpec("eval_max_new_tokens", .integer(.atLeast(1))),
    ]

    /// The policy a training stage starts from.
    static func policyRole(_ purpose: String, allowsInit: Bool = false) -> ModelRole {
        ModelRole(key: "model", purpose: purpose, required: true, accepts: [.pretrain, .sft, .dpo, .ppo, .rloo, .grpo],
                  allowsInit: allowsInit)
    }

    /// A frozen reference policy (default: a copy of `model` as it starts).
    static let referenceRole = ModelRole(key: "ref_model", purpose: "the frozen reference policy", required: false,
                                         accepts: [.pretrain, .sft, .dpo, .ppo, .rloo, .grpo])
}
