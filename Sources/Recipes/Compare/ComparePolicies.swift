import Foundation
import Store

/// Reading the policies of a comparison from what a user wrote: `stage:ID` (a stage of a run in
/// the store), `hf:DIR`, `gguf:FILE`, a path, the baselines `best_of_n[:N]` and `in_context[:K]`,
/// each optionally named `NAME=SPEC`.
public enum ComparePolicies {
    /// The n of best-of-n when none is given: the DPO paper's and the issue's 1, 4 and 16.
    public static let defaultBestOfN = [1, 4, 16]
    public static let defaultInContextShots = 4

    /// Where `stage:ID` references point: a run's completed stages by key.
    public struct StageLookup {
        public var runName: String
        public var stages: [Stage]
        /// A stage's checkpoints (the store's `checkpoint` rows): `model` ones are its exported steps.
        public var checkpoints: (Int64) throws -> [Checkpoint]
        public init(runName: String, stages: [Stage], checkpoints: @escaping (Int64) throws -> [Checkpoint] = { _ in [] }) {
            self.runName = runName
            self.stages = stages
            self.checkpoints = checkpoints
        }

        /// The models a stage exported during training (`export_steps`), by step, oldest first;
        /// a reused stage's are those of the stage that ran.
        public func exportedModels(_ stage: Stage) throws -> [(step: Int, path: String)] {
            let source = stage.reusedStageId ?? stage.id!
            var byStep: [Int: String] = [:]
            for row in try checkpoints(source) where row.kind == "model" { byStep[row.step] = row.path }
            return byStep.keys.sorted().map { ($0, byStep[$0]!) }
        }

        /// `stage:KEY@STEP`: the model stage `key` exported after update `step` (or its final
        /// model when `step` is the last), or an error listing the steps there are.
        public func model(_ key: String, step text: String, for spec: String) throws -> (path: String, stage: Stage) {
            let stage = try self.stage(key, for: spec)
            let exported = try exportedModels(stage)
            let final = (try checkpoints(stage.reusedStageId ?? stage.id!)).last { $0.kind == "final" }
            guard let step = Int(text), step >= 0 else {
                throw CompareError("\(spec): expected stage:\(key)@STEP with STEP a whole number of updates")
            }
            if let hit = exported.first(where: { $0.step == step }) { return (hit.path, stage) }
            if let final, final.step == step { return (stage.outputPath ?? final.path, stage) }
            var kept = exported.map { String($0.step) }
            if let final { kept.append("\(final.step) (final)") }
            throw CompareError("\(spec): stage '\(key)' kept no model at step \(step); "
                               + (exported.isEmpty ? "it exported none during training (set export_steps: N on it)"
                                                   : "its steps: \(kept.joined(separator: ", "))"))
        }

        /// The newest completed stage called `key`, or an error listing the stages there are.
        public func stage(_ key: String, for spec: String) throws -> Stage {
            let matching = stages.filter { $0.stageKey == key }
            guard let done = matching.last(where: { $0.status == .completed && $0.outputPath != nil }) else {
                if let any = matching.last {
                    throw CompareError("\(spec): stage '\(key)' of run \(runName) is \(any.status.rawValue), not completed")
                }
                let keys = stages.map(\.stageKey)
                let hint = Suggestions.nearest(to: key, in: keys).map { "; did you mean stage:\($0)?" } ?? ""
                throw CompareError("\(spec): run \(runName) has no stage '\(key)'\(hint); its stages: \(keys.joined(separator: ", "))")
            }
            return done
        }
    }

    /// The policies `specs` name; `reference` is the model baselines sample from.
    public static func resolve(_ specs: [String], stages: StageLookup?, reference: String?) throws -> [ComparePolicySpec] {
        var out: [ComparePolicySpec] = []
        for text in specs {
            out += try resolve(text, stages: stages, reference: reference)
        }
        return out
    }

    /// One spec (best_of_n without n gives three policies).
    public static func resolve(_ text: String, stages: StageLookup?, reference: String?) throws -> [ComparePolicySpec] {
        var name: String?
        var spec = text.trimmingCharacters(in: .whitespaces)
        if let eq = spec.firstIndex(of: "="), !spec[..<eq].contains(":"), !spec[..<eq].contains("/") {
            name = String(spec[..<eq])
            spec = String(spec[spec.index(after: eq)...])
            guard let n = name, !n.isEmpty, n.unicodeScalars.allSatisfy({ $0.properties.isAlphabetic || "0123456789_-.@".unicodeScalars.contains($0) }) else {
                throw CompareError("\(text): a policy name may hold letters, digits and _ - . @ only")
            }
        }
        guard !spec.isEmpty else { throw CompareError("\(text): empty policy") }
        func baseline(_ prefix: String) -> String? {
            if spec == prefix { return "" }
            if spec.hasPrefix(prefix + ":") { return String(spec.dropFirst(prefix.count + 1)) }
            return nil
        }
        if let argument = baseline("best_of_n") {
            guard let reference else { throw CompareError("\(text): best-of-n samples a reference policy; give reference: (or --reference)") }
            let ns: [Int]
            if argument.isEmpty { ns = defaultBestOfN } else {
                guard let n = Int(argument), n >= 1, n <= 256 else {
                    throw CompareError("\(text): expected best_of_n:N with N from 1 to 256")
                }
                ns = [n]
            }
            return ns.map { n in
                ComparePolicySpec(name: name.map { ns.count > 1 ? "\($0)_\(n)" : $0 } ?? "best_of_\(n)", spec: "best_of_n:\(n)",
                                  kind: .bestOfN(n), modelPath: reference)
            }
        }
        if let argument = baseline("in_context") {
            guard let reference else { throw CompareError("\(text): the in-context baseline prompts a reference policy; give reference: (or --reference)") }
            let k: Int
            if argument.isEmpty { k = defaultInContextShots } else {
                guard let value = Int(argument), value >= 1, value <= 64 else {
                    throw CompareError("\(text): expected in_context:K with K from 1 to 64 examples")
                }
                k = value
            }
            return [ComparePolicySpec(name: name ?? "in_context_\(k)", spec: "in_context:\(k)", kind: .inContext(k), modelPath: reference)]
        }
        if spec.hasPrefix("stage:") {
            let key = String(spec.dropFirst(6))
            if let at = key.firstIndex(of: "@") {
                guard let stages else { throw CompareError("\(text): stage references need a run (--run RUN)") }
                let stageKey = String(key[..<at])
                let (path, stage) = try stages.model(stageKey, step: String(key[key.index(after: at)...]), for: text)
                return [ComparePolicySpec(name: name ?? key, spec: spec, modelPath: path, stageId: stage.id)]
            }
            guard let stages else { throw CompareError("\(text): stage references need a run (--run RUN)") }
            let stage = try stages.stage(key, for: text)
            return [ComparePolicySpec(name: name ?? key, spec: spec, modelPath: stage.outputPath!, stageId: stage.id)]
        }
        var path = spec
        for prefix in ["hf:", "gguf:"] where path.hasPrefix(prefix) { path = String(path.dropFirst(prefix.count)) }
        guard FileManager.default.fileExists(atPath: path) else {
            throw CompareError("\(text): no such model directory or .gguf file: \(path)")
        }
        let url = URL(fileURLWithPath: path)
        var label = url.lastPathComponent
        if label == "model" { label = url.deletingLastPathComponent().lastPathComponent }
        if label.hasSuffix(".gguf") { label = String(label.dropLast(5)) }
        return [ComparePolicySpec(name: name ?? label, spec: spec, modelPath: path)]
    }

    /// The exported step models of the stages `specs` name (`stage:ID`), each a frontier point of
    /// its stage (`ID@STEP`), never a compared policy.
    public static func checkpoints(_ specs: [String], stages: StageLookup?) throws -> [ComparePolicySpec] {
        var out: [ComparePolicySpec] = []
        for text in specs {
            guard text.hasPrefix("stage:"), !text.contains("@") else {
                throw CompareError("checkpoints: \(text): expected stage:ID, a training stage whose exported steps join the frontier")
            }
            guard let stages else { throw CompareError("checkpoints: \(text): stage references need a run (--run RUN)") }
            let key = String(text.dropFirst(6))
            let stage = try stages.stage(key, for: "checkpoints: \(text)")
            let exported = try stages.exportedModels(stage)
            guard !exported.isEmpty else {
                throw CompareError("checkpoints: \(text): stage '\(key)' exported no models during training (set export_steps: N on it)")
            }
            out += exported.map { ComparePolicySpec(name: "\(key)@\($0.step)", spec: "stage:\(key)@\($0.step)", kind: .checkpoint,
                                                   modelPath: $0.path, stageId: stage.id) }
        }
        return out
    }

    /// A model reference that is not a policy (reward model, reference): `stage:ID` or a path.
    public static func modelPath(_ text: String, role: String, stages: StageLookup?) throws -> String {
        if text.hasPrefix("stage:") {
            guard let stages else { throw CompareError("\(role): \(text): stage references need a run (--run RUN)") }
            return try stages.stage(String(text.dropFirst(6)), for: "\(role): \(text)").outputPath!
        }
        var path = text
        for prefix in ["hf:", "gguf:"] where path.hasPrefix(prefix) { path = String(path.dropFirst(prefix.count)) }
        guard FileManager.default.fileExists(atPath: path) else { throw CompareError("\(role): no such model: \(path)") }
        return path
    }

    /// A data file: `stage:ID/FILE` of a run's file-writing stage, or a path.
    public static func filePath(_ text: String, role: String, stages: StageLookup?) throws -> String {
        if text.hasPrefix("stage:") {
            let rest = text.dropFirst(6)
            let key = String(rest.prefix { $0 != "/" })
            let file = rest.dropFirst(key.count + 1)
            guard let stages else { throw CompareError("\(role): \(text): stage references need a run (--run RUN)") }
            let dir = try stages.stage(key, for: "\(role): \(text)").outputPath!
            let path = file.isEmpty ? dir : URL(fileURLWithPath: dir).appendingPathComponent(String(file)).path
            guard FileManager.default.fileExists(atPath: path) else { throw CompareError("\(role): \(text): \(path) not found") }
            return path
        }
        guard FileManager.default.fileExists(atPath: text) else { throw CompareError("\(role): no such file: \(text)") }
        return text
    }
}
