import Alignment
import Foundation
import NN
import Yams

/// Walks a recipe's composed YAML, collecting every problem with its line and key path. What a
/// stage may hold comes from its kind's declaration (``StageKindDefinition``).
struct Checker {
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
        var settings: StageSettings?
        var models: [String: ModelSource] = [:]
        /// Every `stage:` reference the stage makes (models, tokenizer, data files).
        var refs: [Ref] = []
        /// `data: {ratings: TASK}`, and the node of its task name.
        var ratings: RatingsData?
        var ratingsNode: Node?
        /// The rating task a `rate` stage makes.
        var rateTask: String?
    }

    /// A `stage:ID` or `stage:ID/FILE` reference and what it must point at.
    struct Ref {
        enum Use { case model(ModelRole), tokenizer, data }
        var target: String
        var file: String?
        var node: Node?
        var keyPath: String
        var use: Use
    }

    /// Parses `stage:ID` or `stage:ID/FILE`.
    static func parseRef(_ text: String) -> (id: String, file: String?)? {
        guard text.hasPrefix("stage:") else { return nil }
        let rest = text.dropFirst(6)
        if let slash = rest.firstIndex(of: "/") { return (String(rest[..<slash]), String(rest[rest.index(after: slash)...])) }
        return (String(rest), nil)
    }

    /// `label.key`, or `key` alone for a config that is a single stage (`rein train`).
    static func path(_ label: String, _ key: String) -> String { label.isEmpty ? key : "\(label).\(key)" }

    /// A YAML error with each quoted source line cut to 200 characters: a hostile file's one
    /// 100 kB line is not echoed whole.
    static func shortened(_ error: any Error) -> String {
        "\(error)".split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.count > 200 ? $0.prefix(200) + "..." : $0 }.joined(separator: "\n")
    }

    mutating func check(yaml: String) -> Recipe? {
        let root: Node?
        do { root = try Yams.compose(yaml: yaml) } catch {
            report(nil, "", "not valid YAML: \(Self.shortened(error))")
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
        var stages = resolve(drafts)
        if let name { checkRatingTasks(drafts, stages: &stages, recipeStore: store ?? "runs/\(name).sqlite") }
        guard let name, problems.isEmpty else { return nil }
        return Recipe(name: name, seed: seed, store: store ?? "runs/\(name).sqlite", outputDir: outputDir ?? "runs/\(name)",
                      stages: stages, baseDirectory: base)
    }

    /// A config file that is one stage of a known kind (`rein train KIND --config FILE`), with
    /// `settings` (`KEY=VALUE`, from flags) applied first.
    mutating func checkStage(kind: RecipeStageKind, yaml: String?, settings: [(key: String, value: Node)]) -> ResolvedStage? {
        var root = Node.mapping(Node.Mapping([]))
        if let yaml {
            do {
                if let node = try Yams.compose(yaml: yaml) { root = node }
            } catch {
                report(nil, "", "not valid YAML: \(Self.shortened(error))")
                return nil
            }
            guard root.mapping != nil else {
                report(root, "", "expected a mapping of settings at the top level")
                return nil
            }
        }
        for (key, value) in settings {
            var failure: String?
            if let updated = Self.set(root, [key][...], value, failure: &failure) { root = updated }
            if let failure { report(nil, key, failure) }
        }
        for (k, _) in root.mapping! where k.string == "id" || k.string == "kind" {
            report(k, k.string!, "not used in a single-stage config (the stage kind is the command's argument)")
        }
        let draft = readStage(root, index: 0, seed: nil, kind: kind, label: "")
        return resolve([draft]).first
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
        if let best = Suggestions.nearest(to: key, in: valid) { return "unknown key (did you mean '\(best)'?)" }
        // `alpha` for `lora_alpha`: a valid key that ends with the unknown one.
        if let suffixed = valid.first(where: { $0.hasSuffix("_" + key) }) { return "unknown key (did you mean '\(suffixed)'?)" }
        return "unknown key (valid keys: \(valid.joined(separator: ", ")))"
    }

    /// A key this kind does not read: named as another kind's key when it is one.
    func foreignKey(_ key: String, kind: RecipeStageKind) -> String? {
        let owners = StageKinds.owners(of: key)
        guard !owners.isEmpty else { return nil }
        return "`\(key)` is a \(owners.map(\.rawValue).joined(separator: "/")) key; this stage is \(kind.rawValue)"
    }

    mutating func readStage(_ node: Node, index: Int, seed: UInt64?, kind fixedKind: RecipeStageKind? = nil,
                            label fixedLabel: String? = nil) -> Draft {
        let path = "stages[\(index)]"
        var draft = Draft(index: index, node: node)
        guard let map = node.mapping else {
            report(node, path, "a stage must be a mapping with `id` and `kind`")
            return draft
        }
        if let fixedKind {
            draft.id = fixedKind.rawValue
            draft.kind = fixedKind
        } else {
            readIdAndKind(map, node, path, draft: &draft)
        }
        let label = fixedLabel ?? draft.id.map { "stages.\($0)" } ?? path
        guard let kind = draft.kind else { return draft }
        let definition = kind.definition

        // Every key except id/kind is checked on its own, so each wrong value gets its own line.
        var good: [(Node, Node)] = []
        for (keyNode, value) in map {
            let key = keyNode.string ?? "\(keyNode)"
            if key == "id" || key == "kind" { continue }
            let keyPath = Self.path(label, key)
            if let role = definition.role(key) {
                readRole(role, value, keyPath, draft: &draft)
                continue
            }
            if key == "data", value.mapping != nil, definition.key(key) != nil {
                readRatings(value, keyPath, kind: kind, draft: &draft)
                continue
            }
            guard let spec = definition.key(key) else {
                report(keyNode, keyPath, foreignKey(key, kind: kind) ?? unknownKey(key, valid: definition.keyNames))
                continue
            }
            if check(value, spec, keyPath, draft: &draft) { good.append((keyNode, value)) }
        }
        for spec in definition.keys where spec.required != nil && map[spec.name] == nil {
            report(node, Self.path(label, spec.name), spec.required!)
        }
        for role in definition.roles where role.required && map[role.key] == nil {
            report(node, Self.path(label, role.key), "required (\(role.purpose): stage:ID, hf:PATH, gguf:PATH or a path)")
        }
        // The recipe's seed is every stage's default.
        if let seed, definition.key("seed") != nil, map["seed"] == nil { good.append((Node("seed"), Node(String(seed)))) }
        let clean = Node.mapping(Node.Mapping(good))
        do { draft.settings = try definition.decode(clean) } catch {
            report(node, label.isEmpty ? kind.rawValue : label, "cannot read the settings: \(describe(error))")
            return draft
        }
        if case .rate(var config) = draft.settings {
            // The task is named after the stage unless the recipe names it.
            if config.task == nil { config.task = draft.id; draft.settings = .rate(config) }
            draft.rateTask = config.task
        }
        for (key, message) in definition.validate(draft.settings!) where !problems.contains(where: { $0.keyPath == Self.path(label, key) }) {
            report(map[key] ?? node, Self.path(label, key), message)
        }
        return draft
    }

    mutating func readIdAndKind(_ map: Node.Mapping, _ node: Node, _ path: String, draft: inout Draft) {
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
        guard let kindNode = map["kind"] else {
            report(node, "\(label).kind", "required")
            return
        }
        let raw = kindNode.scalar?.string ?? ""
        let available = RecipeStageKind.implemented.map(\.rawValue).joined(separator: ", ")
        if let kind = RecipeStageKind(rawValue: raw), kind.definition.implemented {
            draft.kind = kind
        } else if RecipeStageKind(rawValue: raw) != nil || RecipeStageKind.planned.contains(raw) {
            report(kindNode, "\(label).kind", "'\(raw)' is not implemented yet (available: \(available))")
        } else {
            let hint = Suggestions.nearest(to: raw, in: RecipeStageKind.implemented.map(\.rawValue)).map { " (did you mean '\($0)'?)" } ?? ""
            report(kindNode, "\(label).kind", "unknown kind \(show(kindNode))\(hint) (valid: \(available))")
        }
    }

    /// Checks one value against its declared type and range; true when it is good.
    mutating func check(_ value: Node, _ spec: KeySpec, _ keyPath: String, draft: inout Draft) -> Bool {
        func wrong() -> Bool {
            report(value, keyPath, "wrong type: expected \(spec.type.expected), got \(show(value))")
            return false
        }
        func inRange(_ x: Double, _ range: ValueRange, _ shown: String) -> Bool {
            if range.contains(x) { return true }
            report(value, keyPath, "\(range.requirement), got \(shown)")
            return false
        }
        switch spec.type {
        case .integer(let range):
            guard value.scalar != nil, let x = try? YAMLDecoder().decode(Int.self, from: value) else { return wrong() }
            return inRange(Double(x), range, String(x))
        case .number(let range):
            guard value.scalar != nil, let x = try? YAMLDecoder().decode(Double.self, from: value) else { return wrong() }
            return inRange(x, range, "\(x)")
        case .bool:
            guard value.scalar != nil, (try? YAMLDecoder().decode(Bool.self, from: value)) != nil else { return wrong() }
        case .string:
            guard let s = value.scalar?.string, !s.isEmpty else { return wrong() }
        case .choice(let words):
            guard let s = value.scalar?.string else { return wrong() }
            guard words.contains(s) else {
                let hint = Suggestions.nearest(to: s, in: words).map { " (did you mean '\($0)'?)" } ?? ""
                report(value, keyPath, "expected one of \(words.joined(separator: ", ")), got '\(s)'\(hint)")
                return false
            }
        case .strings:
            guard (try? YAMLDecoder().decode([String].self, from: value)) != nil else { return wrong() }
        case .file:
            guard let p = value.scalar?.string, !p.isEmpty else { return wrong() }
            if let ref = Self.parseRef(p) {
                draft.refs.append(Ref(target: ref.id, file: ref.file, node: value, keyPath: keyPath, use: .data))
            } else if !FileManager.default.fileExists(atPath: Recipe.resolve(p, against: base).path) {
                report(value, keyPath, "file not found: \(p)" + Self.assetsHint(p))
                return false
            }
        case .lora:
            guard let lora = value.mapping else { return wrong() }
            let loraKeys = ["r", "lora_alpha", "lora_dropout", "target_modules"]
            var ok = true
            for (k, _) in lora where !loraKeys.contains(k.string ?? "") {
                report(k, "\(keyPath).\(k.string ?? "")", unknownKey(k.string ?? "", valid: loraKeys))
                ok = false
            }
            guard ok else { return false }
            guard let config = try? YAMLDecoder().decode(LoRAConfig.self, from: value) else { return wrong() }
            if config.r < 1 {
                report(lora["r"] ?? value, "\(keyPath).r", "must be at least 1, got \(config.r)")
                return false
            }
        }
        return true
    }

    func describe(_ error: Error) -> String {
        switch error as? DecodingError {
        case .typeMismatch(let type, _): "expected \(type)"
        case .dataCorrupted(let context): context.debugDescription.isEmpty ? "invalid value" : context.debugDescription
        case .valueNotFound(let type, _): "expected \(type)"
        case .keyNotFound(let key, _): "missing key '\(key.stringValue)'"
        default: "\(error)"
        }
    }
}
