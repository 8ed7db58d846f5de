import Alignment
import Datasets
import Foundation
import NN
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

/// The stage kinds a recipe may use. Only implemented kinds are accepted; `ppo`, `generate` and
/// `compare` are recognised and rejected as not implemented yet.
public enum RecipeStageKind: String, Codable, CaseIterable, Sendable {
    case data, tokenizer, pretrain, sft, reward, dpo

    /// The files a `data` stage writes, for `stage:ID/FILE` references.
    public static let dataFileNames = SyntheticData.fileNames

    /// Kinds that are planned but not implemented.
    public static let planned = ["ppo", "generate", "compare"]

    /// The matching supervised stage kind, or nil for `tokenizer`.
    public var stageKind: StageKind? { StageKind(rawValue: rawValue) }
}

/// Where a stage's starting model comes from.
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

/// Settings of a `tokenizer` stage.
public struct TokenizerStageConfig: Codable, Equatable, Sendable {
    /// The text the tokenizer is trained on.
    public var data: String?
    /// The vocabulary size to learn.
    public var vocabSize: Int = 512
    /// Where the tokenizer is written (default: the stage's directory under the recipe's output_dir).
    public var outputDir: String?
    /// Special tokens, given ids 0, 1, ...: an end-of-text token and a padding token by default.
    public var specialTokens: [String] = ["<|endoftext|>", "<|pad|>"]
    /// Merge only pairs seen at least this many times.
    public var minFrequency: Int = 2
    /// `gpt2` (numbers kept whole) or `smollm2` (digits split one by one, better for arithmetic).
    public var preTokenizer: String = "gpt2"

    enum CodingKeys: String, CodingKey, CaseIterable {
        case data, vocabSize = "vocab_size", outputDir = "output_dir", specialTokens = "special_tokens"
        case minFrequency = "min_frequency", preTokenizer = "pre_tokenizer"
    }

    /// The defaults above.
    public init() {}

    /// Decodes, keeping the defaults for absent keys.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        data = try c.decodeIfPresent(String.self, forKey: .data)
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? 512
        outputDir = try c.decodeIfPresent(String.self, forKey: .outputDir)
        specialTokens = try c.decodeIfPresent([String].self, forKey: .specialTokens) ?? ["<|endoftext|>", "<|pad|>"]
        minFrequency = try c.decodeIfPresent(Int.self, forKey: .minFrequency) ?? 2
        preTokenizer = try c.decodeIfPresent(String.self, forKey: .preTokenizer) ?? "gpt2"
    }

    /// Every key a tokenizer stage may have.
    public static var keys: [String] { CodingKeys.allCases.map(\.rawValue) }
}

/// One stage of a validated recipe, ready for a runner.
public struct ResolvedStage: Equatable, Sendable {
    /// The stage's unique id.
    public var id: String
    /// What the stage does.
    public var kind: RecipeStageKind
    /// The decoded settings of a pretrain/sft/reward/dpo stage (nil for `tokenizer`). A model that is
    /// a reference is stored in `model` as written (`stage:sft`, `hf:...`).
    public var config: StageConfig?
    /// The decoded settings of a `tokenizer` stage.
    public var tokenizer: TokenizerStageConfig?
    /// The decoded settings of a `data` stage (the synthetic task generator).
    public var synthetic: SyntheticDataConfig?
    /// Where the starting model comes from, if the stage has one.
    public var model: ModelSource?
    /// Ids of the earlier stages this one reads from.
    public var dependencies: [String]
    /// A stable hash of the kind, the decoded settings and the model reference; see `Recipe.configHash`.
    public var configHash: UInt64
    /// The YAML line where the stage starts.
    public var line: Int?

    /// `configHash` as 16 lowercase hex digits.
    public var configHashHex: String {
        let hex = String(configHash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
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
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw RecipeError(problems: [RecipeProblem(file: fileName, line: nil, keyPath: "", message: "cannot read the recipe file")])
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

    /// A stable 64-bit FNV-1a hash of `value`'s canonical JSON (sorted keys, no whitespace). SHA-256
    /// would need swift-crypto; FNV-1a is enough to notice that a stage's settings changed, not to
    /// resist deliberate collisions. Equal values hash equally regardless of the YAML's key order.
    public static func configHash<T: Encodable>(_ value: T) -> UInt64 {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let bytes = (try? encoder.encode(value)) ?? Data()
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }
}

/// What a stage's hash covers.
private struct HashInput: Encodable {
    var kind: RecipeStageKind
    var config: StageConfig?
    var tokenizer: TokenizerStageConfig?
    var synthetic: SyntheticDataConfig?
    var model: ModelSource?
}

/// Walks the composed YAML, collecting every problem.
private struct Checker {
    let file: String
    let base: URL
    var problems: [RecipeProblem] = []
    var overrides: [String] = []

    init(file: String, base: URL) {
        self.file = file
        self.base = base
    }

    mutating func report(_ node: Node?, _ keyPath: String, _ message: String) {
        problems.append(RecipeProblem(file: file, line: node?.mark?.line, keyPath: keyPath, message: message))
    }

    /// A stage as read, before references are checked.
    struct Draft {
        var index: Int
        var id: String?
        var idNode: Node?
        var node: Node
        var kind: RecipeStageKind?
        var config: StageConfig?
        var tokenizer: TokenizerStageConfig?
        var synthetic: SyntheticDataConfig?
        var model: ModelSource?
        var modelNode: Node?
        /// Every `stage:` reference the stage makes (model, tokenizer, data files).
        var refs: [Ref] = []
    }

    /// A `stage:ID` or `stage:ID/FILE` reference and what it must point at.
    struct Ref {
        enum Role { case model, tokenizer, data }
        var target: String
        var file: String?
        var node: Node?
        var keyPath: String
        var role: Role
    }

    /// Parses `stage:ID` or `stage:ID/FILE`.
    static func parseRef(_ text: String) -> (id: String, file: String?)? {
        guard text.hasPrefix("stage:") else { return nil }
        let rest = text.dropFirst(6)
        if let slash = rest.firstIndex(of: "/") { return (String(rest[..<slash]), String(rest[rest.index(after: slash)...])) }
        return (String(rest), nil)
    }

    mutating func check(yaml: String) -> Recipe? {
        let root: Node?
        do { root = try Yams.compose(yaml: yaml) } catch {
            report(nil, "", "not valid YAML: \(error)")
            return nil
        }
        guard var root, root.mapping != nil else {
            report(root, "", "a recipe must be a mapping with `name` and `stages`")
            return nil
        }
        for setting in overrides { root = apply(setting, to: root) }
        let top = root.mapping!
        var name: String?, seed: UInt64?, store: String?, outputDir: String?
        var stagesNode: Node?
        for (keyNode, value) in top {
            let key = keyNode.string ?? "\(keyNode)"
            switch key {
            case "name":
                if let s = value.scalar?.string, !s.isEmpty { name = s } else { report(value, "name", "must be a non-empty string") }
            case "seed": seed = decode(UInt64.self, value, "seed", expected: "a non-negative integer")
            case "store": store = string(value, "store")
            case "output_dir": outputDir = string(value, "output_dir")
            case "stages": stagesNode = value
            default: report(keyNode, key, unknownKey(key, valid: Recipe.topLevelKeys))
            }
        }
        if top["name"] == nil { report(root, "name", "required") }
        var drafts: [Draft] = []
        if let stagesNode {
            if let list = stagesNode.sequence {
                if list.isEmpty { report(stagesNode, "stages", "must list at least one stage") }
                for (i, stage) in list.enumerated() { drafts.append(readStage(stage, index: i, seed: seed)) }
            } else {
                report(stagesNode, "stages", "must be a list of stages")
            }
        } else {
            report(root, "stages", "required (a non-empty list of stages)")
        }
        let stages = checkReferences(drafts)
        guard let name, problems.isEmpty else { return nil }
        return Recipe(name: name, seed: seed, store: store ?? "runs/\(name).sqlite", outputDir: outputDir ?? "runs/\(name)",
                      stages: stages, baseDirectory: base)
    }

    /// Applies one `--set KEY.PATH=VALUE` to the document; a path that names no stage is a problem.
    mutating func apply(_ setting: String, to root: Node) -> Node {
        guard let eq = setting.firstIndex(of: "="), eq != setting.startIndex else {
            report(nil, "--set \(setting)", "expected KEY.PATH=VALUE, e.g. stages.sft.learning_rate=1e-5")
            return root
        }
        let path = setting[..<eq].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let text = String(setting[setting.index(after: eq)...])
        guard !path.contains("") else {
            report(nil, "--set \(setting)", "empty key in '\(setting[..<eq])'")
            return root
        }
        let value = ((try? Yams.compose(yaml: text)) ?? nil) ?? Node(text)
        var failure: String?
        let result = set(root, path[...], value, failure: &failure)
        if let failure { report(nil, "--set \(setting[..<eq])", failure) }
        return result ?? root
    }

    func set(_ node: Node, _ path: ArraySlice<String>, _ value: Node, failure: inout String?) -> Node? {
        guard let key = path.first else { return value }
        let rest = path.dropFirst()
        if let list = node.sequence {
            // Stages are addressed by id: stages.sft.learning_rate.
            guard let index = list.firstIndex(where: { $0.mapping?["id"]?.string == key }) else {
                let ids = list.compactMap { $0.mapping?["id"]?.string }
                failure = "no stage with id '\(key)' (stages: \(ids.joined(separator: ", ")))"
                return nil
            }
            guard !rest.isEmpty, let updated = set(list[index], rest, value, failure: &failure) else {
                if failure == nil { failure = "name a key of stage '\(key)', e.g. stages.\(key).learning_rate" }
                return nil
            }
            var nodes = Array(list)
            nodes[index] = updated
            return .sequence(Node.Sequence(nodes))
        }
        var pairs: [(Node, Node)] = node.mapping.map { Array($0).map { ($0.key, $0.value) } } ?? []
        if node.mapping == nil && node.scalar != nil {
            failure = "'\(key)' is inside a value that is not a mapping"
            return nil
        }
        if let index = pairs.firstIndex(where: { $0.0.string == key }) {
            guard let updated = set(pairs[index].1, rest, value, failure: &failure) else { return nil }
            pairs[index].1 = updated
        } else {
            guard let created = set(.mapping(Node.Mapping([])), rest, value, failure: &failure) else { return nil }
            pairs.append((Node(key), created))
        }
        return .mapping(Node.Mapping(pairs))
    }

    mutating func string(_ node: Node, _ keyPath: String) -> String? {
        if let s = node.scalar?.string, !s.isEmpty { return s }
        report(node, keyPath, "must be a non-empty string")
        return nil
    }

    mutating func decode<T: Decodable>(_ type: T.Type, _ node: Node, _ keyPath: String, expected: String) -> T? {
        do { return try YAMLDecoder().decode(T.self, from: node) } catch {
            report(node, keyPath, "expected \(expected), got \(show(node))")
            return nil
        }
    }

    func show(_ node: Node) -> String {
        if let s = node.scalar?.string { return "'\(s)'" }
        return node.mapping != nil ? "a mapping" : "a list"
    }

    func unknownKey(_ key: String, valid: [String]) -> String {
        let best = valid.min { distance(key, $0) < distance(key, $1) }
        if let best, distance(key, best) <= max(2, key.count / 3) { return "unknown key (did you mean '\(best)'?)" }
        // `alpha` for `lora_alpha`: a valid key that ends with the unknown one.
        if let suffixed = valid.first(where: { $0.hasSuffix("_" + key) }) { return "unknown key (did you mean '\(suffixed)'?)" }
        return "unknown key (valid keys: \(valid.joined(separator: ", ")))"
    }

    mutating func readStage(_ node: Node, index: Int, seed: UInt64?) -> Draft {
        let path = "stages[\(index)]"
        var draft = Draft(index: index, node: node)
        guard let map = node.mapping else {
            report(node, path, "a stage must be a mapping with `id` and `kind`")
            return draft
        }
        if let idNode = map["id"] {
            draft.idNode = idNode
            if let id = idNode.scalar?.string, !id.isEmpty,
               id.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" }) {
                draft.id = id
            } else {
                report(idNode, "\(path).id", "must match [a-z0-9_-]+, got \(show(idNode))")
            }
        } else {
            report(node, "\(path).id", "required")
        }
        let label = draft.id.map { "stages.\($0)" } ?? path
        if let kindNode = map["kind"] {
            let raw = kindNode.scalar?.string ?? ""
            if let kind = RecipeStageKind(rawValue: raw) {
                draft.kind = kind
            } else if RecipeStageKind.planned.contains(raw) {
                report(kindNode, "\(label).kind", "'\(raw)' is not implemented yet (available: \(RecipeStageKind.allCases.map(\.rawValue).joined(separator: ", ")))")
            } else {
                report(kindNode, "\(label).kind", "unknown kind \(show(kindNode)) (valid: \(RecipeStageKind.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
        } else {
            report(node, "\(label).kind", "required")
        }
        guard let kind = draft.kind else { return draft }

        // Every key except id/kind/model is decoded on its own, so each wrong value gets its own line.
        let valid = ["id", "kind"] + (kind == .tokenizer ? TokenizerStageConfig.keys : kind == .data ? SyntheticDataConfig.keys : StageConfig.keys)
        var good: [(Node, Node)] = []
        for (keyNode, value) in map {
            let key = keyNode.string ?? "\(keyNode)"
            if key == "id" || key == "kind" { continue }
            guard valid.contains(key) else {
                report(keyNode, "\(label).\(key)", unknownKey(key, valid: valid))
                continue
            }
            if key == "model" {
                if let source = readModel(value, "\(label).model", draft: &draft) {
                    draft.model = source
                    draft.modelNode = value
                    good.append((keyNode, Node(source.reference)))
                }
                continue
            }
            if key == "lora", let lora = value.mapping {
                let loraKeys = ["r", "lora_alpha", "lora_dropout", "target_modules"]
                for (k, _) in lora where !loraKeys.contains(k.string ?? "") {
                    report(k, "\(label).lora.\(k.string ?? "")", unknownKey(k.string ?? "", valid: loraKeys))
                }
            }
            let single = Node.mapping(Node.Mapping([(keyNode, value)]))
            do {
                switch kind {
                case .tokenizer: _ = try YAMLDecoder().decode(TokenizerStageConfig.self, from: single)
                case .data: _ = try YAMLDecoder().decode(SyntheticDataConfig.self, from: single)
                default: _ = try YAMLDecoder().decode(StageConfig.self, from: single)
                }
                good.append((keyNode, value))
            } catch {
                report(value, "\(label).\(key)", "wrong type: \(describe(error)), got \(show(value))")
                continue
            }
            if kind == .data, key == "source", let p = value.scalar?.string,
               !FileManager.default.fileExists(atPath: Recipe.resolve(p, against: base).path) {
                let hint = p.hasPrefix("assets/") ? " (run scripts/fetch-assets.sh to download it into assets/)" : ""
                report(value, "\(label).source", "not found: \(p)\(hint)")
            }
            if kind != .data, key == "data" || key == "validation_data" || key == "eval_prompts", let p = value.scalar?.string {
                if let ref = Self.parseRef(p) {
                    draft.refs.append(Ref(target: ref.id, file: ref.file, node: value, keyPath: "\(label).\(key)", role: .data))
                } else if !FileManager.default.fileExists(atPath: Recipe.resolve(p, against: base).path) {
                    report(value, "\(label).\(key)", "file not found: \(p)")
                }
            }
        }
        let clean = Node.mapping(Node.Mapping(good))
        if kind == .data {
            guard var d = try? YAMLDecoder().decode(SyntheticDataConfig.self, from: clean) else { return draft }
            if map["seed"] == nil, let seed { d.seed = seed }
            for problem in d.problems() {
                let key = String(problem.prefix { $0 != ":" })
                report(map[key] ?? node, "\(label).\(key)", String(problem.dropFirst(key.count + 1)).trimmingCharacters(in: .whitespaces))
            }
            draft.synthetic = d
        } else if kind == .tokenizer {
            guard let t = try? YAMLDecoder().decode(TokenizerStageConfig.self, from: clean) else { return draft }
            if t.data == nil { report(node, "\(label).data", "required (the text to train the tokenizer on)") }
            let minimum = 256 + t.specialTokens.count
            if t.vocabSize < minimum {
                report(map["vocab_size"] ?? node, "\(label).vocab_size", "must be at least \(minimum) (256 bytes + \(t.specialTokens.count) special tokens), got \(t.vocabSize)")
            }
            if t.minFrequency < 1 { report(map["min_frequency"] ?? node, "\(label).min_frequency", "must be at least 1, got \(t.minFrequency)") }
            if !["gpt2", "smollm2"].contains(t.preTokenizer) {
                report(map["pre_tokenizer"] ?? node, "\(label).pre_tokenizer", "expected gpt2 or smollm2, got '\(t.preTokenizer)'")
            }
            if t.specialTokens.contains("") { report(map["special_tokens"] ?? node, "\(label).special_tokens", "tokens must be non-empty") }
            draft.tokenizer = t
        } else if let stageKind = kind.stageKind {
            guard var config = try? YAMLDecoder().decode(StageConfig.self, from: clean) else { return draft }
            if map["seed"] == nil, let seed { config.seed = seed }
            let present = Set(good.compactMap { $0.0.string })
            for problem in config.problems(for: stageKind) {
                let key = String(problem.prefix { $0 != ":" })
                let message = String(problem.dropFirst(key.count + 1)).trimmingCharacters(in: .whitespaces)
                // A value that failed to decode is already reported; don't also call it missing.
                if message.hasPrefix("required"), map[key] != nil, !present.contains(key) { continue }
                report(map[key] ?? node, "\(label).\(key)", message)
            }
            draft.config = config
        }
        return draft
    }

    func describe(_ error: Error) -> String {
        switch error as? DecodingError {
        case .typeMismatch(let type, _): "expected \(typeName(type))"
        case .dataCorrupted(let context): context.debugDescription.isEmpty ? "invalid value" : context.debugDescription
        case .valueNotFound(let type, _): "expected \(typeName(type))"
        case .keyNotFound(let key, _): "missing key '\(key.stringValue)'"
        default: "\(error)"
        }
    }

    func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is UInt64.Type: "an integer"
        case is Double.Type: "a number"
        case is Bool.Type: "true or false"
        case is String.Type: "a string"
        default: "\(type)"
        }
    }

    /// `model: PATH`, `model: {from: stage:ID | hf:PATH | gguf:PATH}`, or a fresh model
    /// `model: {init: {model_type: gpt2, n_layer: 2, ...}, tokenizer: stage:ID | PATH}`.
    mutating func readModel(_ node: Node, _ keyPath: String, draft: inout Draft) -> ModelSource? {
        var refNode = node
        let usage = "expected a path, {from: stage:ID | hf:PATH | gguf:PATH} or {init: {model_type: ..., ...}, tokenizer: REF}"
        if let map = node.mapping {
            if map["init"] != nil || map["tokenizer"] != nil { return readInit(map, node, keyPath, draft: &draft) }
            for (k, _) in map where k.string != "from" {
                report(k, "\(keyPath).\(k.string ?? "")", unknownKey(k.string ?? "", valid: ["from", "init", "tokenizer"]))
            }
            guard let from = map["from"] else {
                report(node, keyPath, usage)
                return nil
            }
            refNode = from
        }
        guard let text = refNode.scalar?.string, !text.isEmpty else {
            report(refNode, keyPath, "\(usage), got \(show(refNode))")
            return nil
        }
        let source: ModelSource
        if let ref = Self.parseRef(text) {
            draft.refs.append(Ref(target: ref.id, file: ref.file, node: refNode, keyPath: keyPath, role: .model))
            return .stage(ref.id)
        } else if text.hasPrefix("hf:") {
            source = .hf(String(text.dropFirst(3)))
        } else if text.hasPrefix("gguf:") {
            source = .gguf(String(text.dropFirst(5)))
        } else if node.mapping != nil {
            report(refNode, keyPath, "unknown reference '\(text)' (use stage:ID, hf:PATH or gguf:PATH)")
            return nil
        } else {
            source = .path(text)
        }
        let path: String
        switch source {
        case .hf(let p), .gguf(let p), .path(let p): path = p
        case .stage, .initialize: return source
        }
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: Recipe.resolve(path, against: base).path, isDirectory: &isDirectory)
        if !exists {
            var message = "model not found: \(path)"
            if path.hasPrefix("assets/") || path.contains("/assets/") {
                message += " (run scripts/fetch-assets.sh to download the pinned model files into assets/)"
            }
            report(refNode, keyPath, message)
        } else if case .hf = source, !isDirectory.boolValue {
            report(refNode, keyPath, "hf:\(path) must be a Hugging Face model directory")
        }
        return source
    }

    /// `{init: {config.json keys}, tokenizer: REF}`: a model trained from scratch.
    mutating func readInit(_ map: Node.Mapping, _ node: Node, _ keyPath: String, draft: inout Draft) -> ModelSource? {
        for (k, _) in map where !["init", "tokenizer"].contains(k.string ?? "") {
            report(k, "\(keyPath).\(k.string ?? "")", unknownKey(k.string ?? "", valid: ["init", "tokenizer"]))
        }
        var configJSON: String?
        if let initNode = map["init"] {
            if initNode.mapping != nil, let text = try? Yams.serialize(node: initNode),
               let object = try? Yams.load(yaml: text) as? [String: Any],
               let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
                var probe = object
                probe["vocab_size"] = probe["vocab_size"] ?? 256
                if object["vocab_size"] != nil {
                    report(initNode, "\(keyPath).init.vocab_size", "set by the tokenizer; remove it")
                } else if let probeData = try? JSONSerialization.data(withJSONObject: probe) {
                    do { _ = try ModelConfig(huggingFaceJSON: probeData, file: "init") } catch {
                        let reason = "\(error)".replacingOccurrences(of: "init: ", with: "")
                        report(initNode, "\(keyPath).init", reason)
                    }
                }
                configJSON = String(decoding: data, as: UTF8.self)
            } else {
                report(initNode, "\(keyPath).init", "expected a mapping of config.json keys (model_type, n_layer, n_embd, ...)")
            }
        } else {
            report(node, "\(keyPath).init", "required with `tokenizer` (the architecture of the fresh model)")
        }
        var tokenizer: String?
        if let tokNode = map["tokenizer"] {
            if let text = tokNode.scalar?.string, !text.isEmpty {
                tokenizer = text
                if let ref = Self.parseRef(text) {
                    draft.refs.append(Ref(target: ref.id, file: ref.file, node: tokNode, keyPath: "\(keyPath).tokenizer", role: .tokenizer))
                } else if !FileManager.default.fileExists(atPath: Recipe.resolve(text, against: base).path) {
                    report(tokNode, "\(keyPath).tokenizer", "tokenizer not found: \(text)")
                }
            } else {
                report(tokNode, "\(keyPath).tokenizer", "expected stage:ID or a tokenizer path, got \(show(tokNode))")
            }
        } else {
            report(node, "\(keyPath).tokenizer", "required with `init` (stage:ID of a tokenizer stage, or a tokenizer path)")
        }
        guard let configJSON, let tokenizer else { return nil }
        return .initialize(config: configJSON, tokenizer: tokenizer)
    }

    /// Duplicate ids, unknown/later/self references and cycles; returns the stages in order.
    mutating func checkReferences(_ drafts: [Draft]) -> [ResolvedStage] {
        var firstIndex: [String: Int] = [:]
        for d in drafts {
            guard let id = d.id else { continue }
            if let first = firstIndex[id] {
                report(d.idNode, "stages[\(d.index)].id", "duplicate stage id '\(id)' (first used by stages[\(first)])")
            } else {
                firstIndex[id] = d.index
            }
        }
        var edges: [String: [String]] = [:]
        var kinds: [String: RecipeStageKind] = [:]
        for d in drafts { if let id = d.id, let kind = d.kind, kinds[id] == nil { kinds[id] = kind } }
        for d in drafts {
            let label = d.id.map { "stages.\($0)" } ?? "stages[\(d.index)]"
            for ref in d.refs {
                _ = label
                let written = "stage:\(ref.target)" + (ref.file.map { "/\($0)" } ?? "")
                guard let target = firstIndex[ref.target] else {
                    let hint = firstIndex.keys.sorted().min { distance(ref.target, $0) < distance(ref.target, $1) }
                    let suggestion = hint.map { distance(ref.target, $0) <= max(2, ref.target.count / 3) ? " (did you mean 'stage:\($0)'?)" : "" } ?? ""
                    report(ref.node, ref.keyPath, "unknown stage '\(written)'\(suggestion)")
                    continue
                }
                if let id = d.id { edges[id, default: []].append(ref.target) }
                if target == d.index {
                    report(ref.node, ref.keyPath, "stage '\(ref.target)' refers to itself")
                    continue
                } else if target > d.index {
                    report(ref.node, ref.keyPath, "refers to a later stage '\(written)' (stages run in file order; move '\(ref.target)' before this one)")
                    continue
                }
                guard let kind = kinds[ref.target] else { continue }
                switch ref.role {
                case .model:
                    if kind.stageKind == nil || ref.file != nil {
                        report(ref.node, ref.keyPath, "'\(written)' is a \(kind.rawValue) stage, not a model (use a pretrain, sft, reward or dpo stage)")
                    }
                case .tokenizer:
                    if kind == .data || ref.file != nil {
                        report(ref.node, ref.keyPath, "'\(written)' has no tokenizer (use a tokenizer stage or a model stage)")
                    }
                case .data:
                    if kind != .data {
                        report(ref.node, ref.keyPath, "'\(written)' is a \(kind.rawValue) stage; data files come from a data stage (stage:ID/FILE)")
                    } else if let file = ref.file, !RecipeStageKind.dataFileNames.contains(file) {
                        report(ref.node, ref.keyPath, "a data stage writes no '\(file)' (it writes \(RecipeStageKind.dataFileNames.joined(separator: ", ")))")
                    } else if ref.file == nil {
                        report(ref.node, ref.keyPath, "name the file: stage:\(ref.target)/FILE (one of \(RecipeStageKind.dataFileNames.joined(separator: ", ")))")
                    }
                }
            }
        }
        // Cycles through forward references (self-references are reported above).
        var reported = Set<String>()
        for start in edges.keys.sorted() {
            var path = [start]
            var current = start
            while let next = edges[current]?.first, next != current {
                if let loop = path.firstIndex(of: next) {
                    let cycle = Array(path[loop...]) + [next]
                    let key = cycle.dropLast().sorted().joined(separator: ",")
                    if !reported.contains(key) {
                        reported.insert(key)
                        let culprit = drafts.first { $0.id == next }
                        let ref = culprit?.refs.first { cycle.contains($0.target) }
                        report(ref?.node ?? culprit?.modelNode, ref?.keyPath ?? "stages.\(next)", "cycle: \(cycle.joined(separator: " -> "))")
                    }
                    break
                }
                path.append(next)
                current = next
            }
        }
        return drafts.compactMap { d in
            guard let id = d.id, let kind = d.kind, d.config != nil || d.tokenizer != nil || d.synthetic != nil else { return nil }
            var dependencies: [String] = []
            for ref in d.refs where !dependencies.contains(ref.target) { dependencies.append(ref.target) }
            let hash = Recipe.configHash(HashInput(kind: kind, config: d.config, tokenizer: d.tokenizer, synthetic: d.synthetic, model: d.model))
            return ResolvedStage(id: id, kind: kind, config: d.config, tokenizer: d.tokenizer, synthetic: d.synthetic, model: d.model,
                                 dependencies: dependencies, configHash: hash, line: d.node.mark?.line)
        }
    }
}

/// Levenshtein distance, for "did you mean".
private func distance(_ a: String, _ b: String) -> Int {
    let a = Array(a.utf8), b = Array(b.utf8)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}
