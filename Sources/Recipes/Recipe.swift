import Alignment
import Datasets
import Foundation
import Yams

/// One thing wrong with a recipe, located by its YAML line and key path.
public struct RecipeProblem: Error, Equatable, Sendable, CustomStringConvertible {
    /// The recipe file's name as given (used as the prefix of `description`).
    public var file: String
    /// The 1-based YAML line of the offending key or value, when known.
    public var line: Int?
    /// Where in the recipe the problem is, e.g. `stages[1].learning_rate`.
    public var keyPath: String
    /// What is wrong, in words.
    public var message: String

    /// Creates a problem.
    public init(file: String, line: Int?, keyPath: String, message: String) {
        self.file = file
        self.line = line
        self.keyPath = keyPath
        self.message = message
    }

    /// `recipe.yaml:12: stages[1].learning_rat: unknown key (did you mean 'learning_rate'?)`.
    public var description: String {
        let location = line.map { "\(file):\($0)" } ?? file
        return keyPath.isEmpty ? "\(location): \(message)" : "\(location): \(keyPath): \(message)"
    }
}

/// Every problem found in a recipe, in file order. Thrown by `Recipe.load` and `Recipe.parse`.
public struct RecipeError: Error, Sendable, CustomStringConvertible {
    /// The problems, sorted by line.
    public var problems: [RecipeProblem]

    /// Creates an error from problems.
    public init(problems: [RecipeProblem]) { self.problems = problems }

    /// One problem per line.
    public var description: String { problems.map(\.description).joined(separator: "\n") }
}

/// The stage kinds a recipe may use; each has one declaration in ``StageKinds`` (its keys, model
/// roles, decoding and how it runs). Kinds whose trainers have not landed are declared, so their
/// keys are known, and rejected as not implemented yet.
public enum RecipeStageKind: String, Codable, CaseIterable, Sendable {
    case data, tokenizer, pretrain, sft, reward, dpo, ppo, rloo, grpo
    /// Preference pairs of a policy's own samples, labelled by a judge.
    case judgePairs = "judge_pairs"
    /// Policies compared by judges (`rein compare` as a stage).
    case compare
    /// Candidates sampled from policies, rated by people (`rein rate`) before the run goes on.
    case rate

    /// The files a `data` stage writes, for `stage:ID/FILE` references.
    public static let dataFileNames = SyntheticData.fileNames

    /// Kinds that are planned but not declared yet.
    public static let planned = ["generate"]

    /// The kind's declaration.
    public var definition: StageKindDefinition { StageKinds.definition(self) }

    /// The kinds a recipe can run today.
    public static var implemented: [RecipeStageKind] { allCases.filter { $0.definition.implemented } }
}

/// Where a model named by a stage comes from.
public enum ModelSource: Codable, Equatable, Sendable {
    /// A file or directory path, as written (relative to the recipe's directory).
    case path(String)
    /// The output of an earlier stage (`stage:ID`).
    case stage(String)
    /// A Hugging Face directory (`hf:PATH`).
    case hf(String)
    /// A GGUF file (`gguf:PATH`).
    case gguf(String)
    /// A fresh model: `config` is the canonical JSON of `config.json` architecture keys (`model_type`,
    /// `n_layer`, ...), `tokenizer` a path or `stage:ID` reference to a tokenizer.
    case initialize(config: String, tokenizer: String)

    /// The reference as written in a recipe (`stage:sft`, `hf:assets/x`, or a bare path).
    public var reference: String {
        switch self {
        case .path(let p): p
        case .stage(let id): "stage:\(id)"
        case .hf(let p): "hf:\(p)"
        case .gguf(let p): "gguf:\(p)"
        case let .initialize(config, tokenizer): "init:\(config) tokenizer:\(tokenizer)"
        }
    }
}

/// One stage of a validated recipe, ready for a runner.
public struct ResolvedStage: Equatable, Sendable {
    /// The stage's unique id.
    public var id: String
    /// What the stage does.
    public var kind: RecipeStageKind
    /// The decoded settings (the kind's own config type).
    public var settings: StageSettings
    /// The models the stage names, by role (`model`, `ref_model`, `reward_model`, ...; a list role
    /// `policies` as `policies.0`, `policies.1`, ...).
    public var models: [String: ModelSource]
    /// Ids of the earlier stages this one reads from.
    public var dependencies: [String]
    /// SHA-256 (hex) of the kind, the decoded settings and the model references; see `Recipe.configHash`.
    public var configHash: String
    /// The YAML line where the stage starts.
    public var line: Int?
    /// `data: {ratings: TASK}`: the stage trains on a rating task's pairs (written to
    /// `DIR/ratings.jsonl` when it runs); its hash then covers those pairs too.
    public var ratings: RatingsData? = nil

    /// The kind's declaration.
    public var definition: StageKindDefinition { kind.definition }
    /// The model the stage trains or starts from (role `model`).
    public var model: ModelSource? { models["model"] }
    /// The shared training arguments of a training stage.
    public var training: TrainingArguments? { settings.training }
    /// The settings of a `dpo` stage.
    public var dpo: DPOConfig? { if case .dpo(let c) = settings { c } else { nil } }
    /// The settings of a `reward` stage.
    public var reward: RewardConfig? { if case .reward(let c) = settings { c } else { nil } }
    /// The settings of a `tokenizer` stage.
    public var tokenizer: TokenizerStageConfig? { if case .tokenizer(let c) = settings { c } else { nil } }
    /// The settings of a `data` stage.
    public var synthetic: SyntheticDataConfig? { if case .data(let c) = settings { c } else { nil } }
}

/// A validated recipe: one YAML file describing a whole pipeline of stages.
public struct Recipe: Equatable, Sendable {
    /// The recipe's name (used for the default store and output directory).
    public var name: String
    /// The seed given to every stage that does not set its own.
    public var seed: UInt64?
    /// The SQLite store path (default `runs/<name>.sqlite`).
    public var store: String
    /// The output directory (default `runs/<name>`).
    public var outputDir: String
    /// The stages in dependency order (every reference points to an earlier stage).
    public var stages: [ResolvedStage]
    /// The directory relative paths are resolved against (the current directory for `load`).
    public var baseDirectory: URL

    /// Top-level keys a recipe may have.
    public static let topLevelKeys = ["name", "seed", "store", "output_dir", "stages"]

    /// Resolves `path` against the recipe's directory (absolute paths are returned unchanged).
    public func resolve(_ path: String) -> URL { Recipe.resolve(path, against: baseDirectory) }

    static func resolve(_ path: String, against base: URL) -> URL {
        path.hasPrefix("/") ? URL(fileURLWithPath: path) : base.appendingPathComponent(path)
    }

    /// Reads and validates the recipe at `path`; relative paths inside are resolved against the
    /// current directory.
    /// Throws `RecipeError` listing every problem.
    public static func load(path: String, overrides: [String] = []) throws(RecipeError) -> Recipe {
        let url = URL(fileURLWithPath: path)
        let fileName = url.lastPathComponent
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RecipeError(problems: [RecipeProblem(file: fileName, line: nil, keyPath: "", message: "cannot read the recipe file")])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            let valid = data.prefix { $0 < 0x80 }
            let line = valid.reduce(1) { $1 == 0x0A ? $0 + 1 : $0 }
            throw RecipeError(problems: [RecipeProblem(file: fileName, line: line, keyPath: "",
                                                       message: "not valid UTF-8 (byte \(valid.count) of the file)")])
        }
        // Paths inside are relative to the directory rein runs in (the project root), like the
        // store and output_dir defaults (runs/NAME...), not to the recipe file's folder.
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
        return try parse(yaml: text, fileName: path, baseDirectory: cwd, overrides: overrides)
    }

    /// Validates recipe text. `fileName` prefixes problem descriptions; `baseDirectory` resolves
    /// relative data and model paths, which must exist. Throws `RecipeError` listing every problem.
    ///
    /// `overrides` are `KEY.PATH=VALUE` settings applied before validation (`rein run --set`), e.g.
    /// `stages.sft.learning_rate=1e-5`, `stages.sft.lora.r=16` or `seed=7`; VALUE is read as YAML.
    public static func parse(yaml: String, fileName: String = "recipe.yaml", baseDirectory: URL,
                             overrides: [String] = []) throws(RecipeError) -> Recipe {
        var checker = Checker(file: fileName, base: baseDirectory)
        checker.overrides = overrides
        let recipe = checker.check(yaml: yaml)
        if let recipe, checker.problems.isEmpty { return recipe }
        let sorted = checker.problems.enumerated().sorted { ($0.element.line ?? 0, $0.offset) < ($1.element.line ?? 0, $1.offset) }.map(\.element)
        throw RecipeError(problems: sorted)
    }

    /// Checks a config file that is one stage of `kind` (`rein train KIND --config FILE`) with the
    /// recipe checker: the same messages with file:line and key, the same suggestions. `settings`
    /// (from flags: key and YAML value text) are applied over the file first. `yaml` nil: flags only.
    public static func stage(kind: RecipeStageKind, yaml: String?, fileName: String, baseDirectory: URL,
                             settings: [(key: String, value: String)] = []) throws(RecipeError) -> ResolvedStage {
        var checker = Checker(file: fileName, base: baseDirectory)
        // A flag's value has no line in the file: its problems name the key alone.
        let nodes = settings.map { ($0.key, Checker.withoutMarks(((try? Yams.compose(yaml: $0.value)) ?? nil) ?? Node($0.value))) }
        let stage = checker.checkStage(kind: kind, yaml: yaml, settings: nodes)
        if let stage, checker.problems.isEmpty { return stage }
        let sorted = checker.problems.enumerated().sorted { ($0.element.line ?? 0, $0.offset) < ($1.element.line ?? 0, $1.offset) }.map(\.element)
        throw RecipeError(problems: sorted.isEmpty ? [RecipeProblem(file: fileName, line: nil, keyPath: "", message: "invalid")] : sorted)
    }

    /// The number of entries under `stages:` of a recipe's YAML text, or nil for other text.
    public static func stageCount(yaml: String) -> Int? {
        guard let root = (try? Yams.load(yaml: yaml)) as? [String: Any] else { return nil }
        return (root["stages"] as? [Any])?.count
    }

    /// The SHA-256 (hex) of `value`'s canonical JSON (sorted keys, no whitespace): equal values hash
    /// equally whatever the YAML's key order. `rein run` and `rein train --store` record it.
    public static func configHash<T: Encodable>(_ value: T) -> String {
        ContentHash.hex(of: Data(canonicalJSON(value).utf8))
    }

    /// `value` as JSON with sorted keys and unescaped slashes, as stored with a stage.
    public static func canonicalJSON<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

