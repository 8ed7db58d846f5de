import Evaluation
import Foundation
import TensorCore
import Report
import Store
import Yams

/// Settings of a `compare` stage: the policies (a list of model references), their judges and
/// the prompts, the baselines, and `rein compare`'s sampling options.
public struct CompareStageConfig: Codable, Equatable, Sendable {
    public var prompts: String?
    public var judges: [String] = []
    /// `best_of_n`, `best_of_n:N`, `in_context`, `in_context:K`.
    public var baselines: [String] = []
    /// Solved examples for in_context (default: the prompts file).
    public var examples: String?
    public var forgetting: String?
    public var options = CompareOptions()

    enum CodingKeys: String, CodingKey, CaseIterable {
        case prompts, judges, baselines, examples, forgetting
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        prompts = try c.decodeIfPresent(String.self, forKey: .prompts)
        judges = try c.decodeIfPresent([String].self, forKey: .judges) ?? []
        baselines = try c.decodeIfPresent([String].self, forKey: .baselines) ?? []
        examples = try c.decodeIfPresent(String.self, forKey: .examples)
        forgetting = try c.decodeIfPresent(String.self, forKey: .forgetting)
        options = try CompareOptions(from: decoder)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(prompts, forKey: .prompts)
        try c.encode(judges, forKey: .judges)
        try c.encode(baselines, forKey: .baselines)
        try c.encodeIfPresent(examples, forKey: .examples)
        try c.encodeIfPresent(forgetting, forKey: .forgetting)
        try options.encode(to: encoder)
    }
}

extension StageKinds {
    /// The file a compare stage writes: its summary (also in the store).
    public static let compareFiles = ["comparison.json", "report.html"]

    static let compare = StageKindDefinition(
        kind: .compare, implemented: true,
        keys: [
            KeySpec("prompts", .file, required: "required (a .jsonl file of prompts)"),
            KeySpec("judges", .strings, required: "required (reward_model, synthetic_task, exact_match, vader, ...)"),
            KeySpec("baselines", .strings),
            KeySpec("examples", .file),
            KeySpec("forgetting", .file),
            KeySpec("samples_per_prompt", .integer(.atLeast(1))),
            KeySpec("temperature", .number(.above(0))),
            KeySpec("top_k", .integer(.atLeast(0))),
            KeySpec("top_p", .number(.closed(0, 1))),
            KeySpec("response_length", .integer(.atLeast(1))),
            KeySpec("max_prompts", .integer(.atLeast(1))),
            KeySpec("bootstrap", .integer(.atLeast(100))),
            KeySpec("generation_batch_size", .integer(.atLeast(1))),
            KeySpec("gold", .string),
            KeySpec("seed", .integer(.atLeast(0))),
        ],
        roles: [
            ModelRole(key: "policies", purpose: "the policies to compare", required: true,
                      accepts: [.pretrain, .sft, .dpo, .ppo, .rloo, .grpo], isList: true),
            ModelRole(key: "reward_model", purpose: "the reward_model judge and best-of-n's picker", required: false,
                      accepts: [.reward], needsScoreHead: true),
            ModelRole(key: "ref_model", purpose: "the policy KL is measured against and baselines sample", required: false,
                      accepts: [.pretrain, .sft, .dpo, .ppo, .rloo, .grpo]),
            ModelRole(key: "checkpoints", purpose: "RL stages whose exported steps (export_steps) join the frontier",
                      required: false, accepts: [.ppo, .rloo, .grpo], isList: true),
        ],
        producesModel: false, files: compareFiles, unit: "responses",
        decode: { .compare(try YAMLDecoder().decode(CompareStageConfig.self, from: $0)) },
        validate: { settings in
            guard case .compare(let config) = settings else { return [] }
            var problems: [(key: String, message: String)] = []
            for judge in config.judges {
                let name = String(judge.prefix { $0 != ":" })
                if !CompareEngine.judgeNames.contains(name) {
                    let hint = Suggestions.nearest(to: name, in: CompareEngine.judgeNames).map { " (did you mean '\($0)'?)" } ?? ""
                    problems.append(("judges", "unknown judge '\(name)'\(hint); expected one of \(CompareEngine.judgeNames.joined(separator: ", "))"))
                }
            }
            if config.judges.isEmpty { problems.append(("judges", "give at least one judge")) }
            for baseline in config.baselines {
                let name = String(baseline.prefix { $0 != ":" })
                if !["best_of_n", "in_context"].contains(name) {
                    problems.append(("baselines", "unknown baseline '\(baseline)'; expected best_of_n[:N] or in_context[:K]"))
                }
            }
            return problems
        },
        write: { try runComparison($0) })

    /// Runs the stage's comparison into the run's store and writes `comparison.json`.
    static func runComparison(_ c: WriteContext) throws -> [String: Double] {
        guard case .compare(let config) = c.settings else { throw RunnerError("compare: wrong settings") }
        guard let store = c.store, let runId = c.runId else { throw RunnerError("compare: needs the run's store") }
        guard let promptsPath = try config.prompts.map(c.resolve) else { throw RunnerError("compare: prompts: required") }
        let stageRows = try store.stages(runId: runId)
        var policies: [ComparePolicySpec] = []
        var k = 0
        while let start = c.models["policies.\(k)"] {
            guard case .load(let path) = start else { throw RunnerError("compare: policies[\(k)]: not a model directory or file") }
            let reference = c.modelReferences["policies.\(k)"] ?? path
            var spec = ComparePolicySpec(name: "", spec: reference, modelPath: path)
            if reference.hasPrefix("stage:") {
                let key = String(reference.dropFirst(6))
                spec.name = key
                if let row = stageRows.last(where: { $0.stageKey == key }) { spec.stageId = row.reusedStageId ?? row.id }
            } else {
                spec = (try ComparePolicies.resolve(path, stages: nil, reference: nil).first) ?? spec
                spec.spec = reference
            }
            policies.append(spec)
            k += 1
        }
        func path(_ role: String) -> String? {
            if case .load(let p)? = c.models[role] { return p }
            return nil
        }
        // The exported steps of the `checkpoints` stages, from the store (a reused stage's are the
        // run's that trained it).
        let lookup = ComparePolicies.StageLookup(runName: "\(runId)", stages: stageRows, checkpoints: { try store.checkpoints(stageId: $0) })
        var checkpoints: [ComparePolicySpec] = []
        k = 0
        while c.models["checkpoints.\(k)"] != nil {
            guard let reference = c.modelReferences["checkpoints.\(k)"], reference.hasPrefix("stage:") else {
                throw RunnerError("compare: checkpoints[\(k)]: expected stage:ID of a ppo, rloo or grpo stage")
            }
            do {
                // A stage that exported nothing (fewer updates than export_steps, say) leaves the
                // frontier to its own evaluations; the comparison goes on.
                let stage = try lookup.stage(String(reference.dropFirst(6)), for: "checkpoints: \(reference)")
                if try lookup.exportedModels(stage).isEmpty {
                    c.note("compare: checkpoints: \(reference) exported no models during training (export_steps); "
                           + "the frontier shows its own evaluations instead")
                } else {
                    checkpoints += try ComparePolicies.checkpoints([reference], stages: lookup)
                }
            } catch let error as CompareError {
                throw RunnerError(error.description)
            }
            k += 1
        }
        let referencePath = path("ref_model") ?? policies.first?.modelPath
        policies += try ComparePolicies.resolve(config.baselines, stages: nil, reference: referencePath)
        let request = CompareRequest(
            name: c.stageName, runId: runId, policies: policies, judges: config.judges, prompts: promptsPath,
            promptsLabel: config.prompts ?? promptsPath, rewardModel: path("reward_model"), reference: referencePath,
            inContextExamples: try config.examples.map(c.resolve), forgetting: try config.forgetting.map(c.resolve),
            options: config.options, checkpoints: checkpoints)
        let engine = CompareEngine(store: store, request: request)
        var last: [String: Date] = [:]
        engine.progress = { label, done, total in
            let now = Date()
            if done == total || now.timeIntervalSince(last[label] ?? .distantPast) > 10 {
                last[label] = now
                c.note("compare: \(label) \(done)/\(total)")
            }
        }
        engine.note = { c.note("compare: \($0)") }
        let summary: CompareSummary
        do { summary = try engine.run() } catch let error as CompareError { throw RunnerError(error.description) }
        for line in summary.textLines() { c.note(line) }
        try FileManager.default.createDirectory(at: c.output, withIntermediateDirectories: true)
        try AtomicFile.write(Data(Recipe.canonicalJSON(summary).utf8), to: c.output.appendingPathComponent("comparison.json"))
        if let session = try store.compareSession(summary.sessionId) {
            let html = try ReportRenderer.render(comparison: ComparisonReportData(summary: summary, session: session), store: store)
            try AtomicFile.write(Data(html.utf8), to: c.output.appendingPathComponent("report.html"))
            c.note("compare: wrote \(c.output.appendingPathComponent("report.html").path)")
        }
        var facts: [String: Double] = ["compare/session": Double(summary.sessionId), "compare/prompts": Double(summary.promptCount)]
        for judge in summary.judges {
            for score in judge.scores { if let mean = score.mean { facts["compare/\(judge.name)/\(score.policy)"] = mean } }
            facts["compare/\(judge.name)/failures"] = Double(judge.failures)
        }
        for policy in summary.policies { if let kl = policy.kl { facts["compare/kl/\(policy.name)"] = kl } }
        return facts
    }
}
