import Foundation

/// What a stage's config hash covers.
private struct HashInput: Encodable {
    var kind: RecipeStageKind
    var settings: StageSettings
    var models: [String: String]
    var ratings: RatingsData?
}

/// The stage graph: ids are unique, every `stage:` reference points to an earlier stage of a kind
/// that can serve it (a role's accepted kinds, a tokenizer, a data file), and each stage gets its
/// dependencies and config hash.
extension Checker {
    mutating func resolve(_ drafts: [Draft]) -> [ResolvedStage] {
        var firstIndex: [String: Int] = [:]
        for d in drafts {
            guard let id = d.id else { continue }
            if let first = firstIndex[id] {
                report(d.idNode, "stages[\(d.index)].id", "duplicate stage id '\(id)' (first used by stages[\(first)])")
            } else {
                firstIndex[id] = d.index
            }
        }
        var kinds: [String: RecipeStageKind] = [:]
        for d in drafts { if let id = d.id, let kind = d.kind, kinds[id] == nil { kinds[id] = kind } }
        for d in drafts {
            for ref in d.refs { checkReference(ref, from: d, firstIndex: firstIndex, kinds: kinds) }
        }
        return drafts.compactMap { d in
            guard let id = d.id, let kind = d.kind, let settings = d.settings else { return nil }
            var dependencies: [String] = []
            for ref in d.refs where !dependencies.contains(ref.target) { dependencies.append(ref.target) }
            let hash = Recipe.configHash(HashInput(kind: kind, settings: settings, models: d.models.mapValues(\.reference),
                                                   ratings: d.ratings))
            return ResolvedStage(id: id, kind: kind, settings: settings, models: d.models, dependencies: dependencies,
                                 configHash: hash, line: d.node.mark?.line, ratings: d.ratings)
        }
    }

    mutating func checkReference(_ ref: Ref, from d: Draft, firstIndex: [String: Int], kinds: [String: RecipeStageKind]) {
        let written = "stage:\(ref.target)" + (ref.file.map { "/\($0)" } ?? "")
        guard let target = firstIndex[ref.target] else {
            let suggestion = Suggestions.nearest(to: ref.target, in: firstIndex.keys.sorted()).map { " (did you mean 'stage:\($0)'?)" } ?? ""
            report(ref.node, ref.keyPath, "unknown stage '\(written)'\(suggestion)")
            return
        }
        if target == d.index {
            report(ref.node, ref.keyPath, "stage '\(ref.target)' refers to itself")
            return
        }
        if target > d.index {
            report(ref.node, ref.keyPath, "refers to a later stage '\(written)' (stages run in file order; move '\(ref.target)' before this one)")
            return
        }
        guard let kind = kinds[ref.target] else { return }
        switch ref.use {
        case .model(let role):
            if !role.accepts.contains(kind) || ref.file != nil {
                let accepted = role.accepts.filter(\.definition.implemented).map(\.rawValue)
                let list = accepted.count > 1 ? accepted.dropLast().joined(separator: ", ") + " or " + accepted.last! : accepted.joined()
                let what = kind.definition.producesModel ? "a \(kind.rawValue) stage" : "a \(kind.rawValue) stage, not a model"
                report(ref.node, ref.keyPath, "'\(written)' is \(what); \(role.key) (\(role.purpose)) must be a \(list) stage")
            }
        case .tokenizer:
            if !(kind == .tokenizer || kind.definition.producesModel) || ref.file != nil {
                report(ref.node, ref.keyPath, "'\(written)' has no tokenizer (use a tokenizer stage or a model stage)")
            }
        case .data:
            let files = kind.definition.files
            if files.isEmpty {
                report(ref.node, ref.keyPath, "'\(written)' is a \(kind.rawValue) stage; data files come from a data or judge_pairs stage (stage:ID/FILE)")
            } else if let file = ref.file, !files.contains(file) {
                report(ref.node, ref.keyPath, "a \(kind.rawValue) stage writes no '\(file)' (it writes \(files.joined(separator: ", ")))")
            } else if ref.file == nil {
                report(ref.node, ref.keyPath, "name the file: stage:\(ref.target)/FILE (one of \(files.joined(separator: ", ")))")
            }
        }
    }
}

extension ResolvedStage {
    /// The stage with other settings, its config hash recomputed.
    func with(settings: StageSettings) -> ResolvedStage {
        var copy = self
        copy.settings = settings
        copy.configHash = Recipe.configHash(HashInput(kind: kind, settings: settings, models: models.mapValues(\.reference), ratings: ratings))
        return copy
    }

    /// Files the stage reads (not through `stage:` references): the values of its kind's file keys
    /// and the models it names by path.
    public var inputFiles: [String] {
        var refs: [String] = []
        if let data = try? JSONEncoder().encode(settings),
           let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] {
            for spec in definition.keys where spec.type == .file {
                if let path = object[spec.name] as? String { refs.append(path) }
            }
        }
        for role in models.keys.sorted() {
            switch models[role]! {
            case .path(let p), .hf(let p), .gguf(let p): refs.append(p)
            case .initialize(_, let tokenizer): refs.append(tokenizer)
            case .stage: break
            }
        }
        return refs.filter { !$0.hasPrefix("stage:") }
    }

    /// What decides whether the stage's output can be reused: SHA-256 over its config hash, the
    /// hashes of the stages it reads (`dependencies`: id to hash) and the contents of its input
    /// files. `fileHashes` caches file hashes by resolved path. `rein run` and `rein train --store`
    /// both record this.
    public func effectiveHash(dependencies hashes: [String: String], fileHashes: inout [String: String],
                              resolve: (String) -> String) throws -> String {
        var parts = [configHash]
        for dependency in dependencies { parts.append(dependency + ":" + (hashes[dependency] ?? "?")) }
        for file in inputFiles {
            let path = resolve(file)
            if fileHashes[path] == nil { fileHashes[path] = try ContentHash.of(path: path) }
            parts.append(file + ":" + fileHashes[path]!)
        }
        return ContentHash.combine(parts)
    }
}
