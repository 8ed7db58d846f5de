import Datasets
import Foundation
import Store
import TensorCore
import Yams

/// Settings of a `rate` stage: policies sample candidates for `prompts`, they become a rating task in
/// the run's store (once: a rerun finds it), and the run waits until people have given
/// `min_ratings` answers (`rein rate TASK`). Later stages read the answers with `data: {ratings: TASK}`.
public struct RateStepConfig: Codable, Equatable, Sendable {
    /// The task's name (default: the stage's id).
    public var task: String?
    /// The prompts: `{"prompt": ...}`, `{"messages": [... user]}` or any record with a prompt.
    public var prompts: String?
    /// `pair`, `rank` or `single`.
    public var mode: String = "pair"
    /// Single mode: `likert` (1-7) or `thumbs` (up/down).
    public var scale: String = "likert"
    /// Responses per prompt over all policies (default: 2 in pair mode, 4 in rank mode, 1 in single).
    public var numCandidates: Int?
    /// The run goes on once the task has this many answers (skips and undone answers not counted).
    public var minRatings: Int?
    public var temperature: Double = 1.0
    public var topK: Int?
    public var topP: Double?
    /// Most new tokens per response.
    public var responseLength: Int = 32
    /// Use only the first N prompts of the file (nil: all).
    public var maxPrompts: Int?
    /// The share of items given to two raters, for agreement.
    public var overlap: Double = 0
    /// Prompts sampled per generator call (never changes the samples).
    public var generationBatchSize: Int = 8
    public var seed: UInt64 = 0
    /// The rater name the printed `rein rate` command shows (default YOUR_NAME).
    public var rater: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case task, prompts, mode, scale, numCandidates = "num_candidates", minRatings = "min_ratings", temperature
        case topK = "top_k", topP = "top_p", responseLength = "response_length", maxPrompts = "max_prompts", overlap
        case generationBatchSize = "generation_batch_size", seed, rater
    }

    /// The defaults above.
    public init() {}

    /// Decodes, keeping the defaults for absent keys.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        task = try c.decodeIfPresent(String.self, forKey: .task)
        prompts = try c.decodeIfPresent(String.self, forKey: .prompts)
        mode = try c.decodeIfPresent(String.self, forKey: .mode) ?? "pair"
        scale = try c.decodeIfPresent(String.self, forKey: .scale) ?? "likert"
        numCandidates = try c.decodeIfPresent(Int.self, forKey: .numCandidates)
        minRatings = try c.decodeIfPresent(Int.self, forKey: .minRatings)
        temperature = try c.decodeIfPresent(Double.self, forKey: .temperature) ?? 1.0
        topK = try c.decodeIfPresent(Int.self, forKey: .topK)
        topP = try c.decodeIfPresent(Double.self, forKey: .topP)
        responseLength = try c.decodeIfPresent(Int.self, forKey: .responseLength) ?? 32
        maxPrompts = try c.decodeIfPresent(Int.self, forKey: .maxPrompts)
        overlap = try c.decodeIfPresent(Double.self, forKey: .overlap) ?? 0
        generationBatchSize = try c.decodeIfPresent(Int.self, forKey: .generationBatchSize) ?? 8
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? 0
        rater = try c.decodeIfPresent(String.self, forKey: .rater)
    }

    /// Responses per prompt: `num_candidates`, or the mode's default.
    public var candidates: Int { numCandidates ?? (mode == "rank" ? 4 : mode == "single" ? 1 : 2) }
}

/// A `rate` stage's task has fewer answers than `min_ratings`: the run stops, to go on when people
/// have rated (`rein run` exits with ``RatingsPending/exitStatus``).
public struct RatingsPending: Error, Sendable, CustomStringConvertible {
    public var stage: String
    public var task: String
    public var store: String
    public var answers: Int
    public var needed: Int
    public var rater: String

    /// `rein run`'s exit status while a run waits for ratings (not the error status 1, nor 130).
    public static let exitStatus: Int32 = 3

    /// The command that rates the task.
    public var command: String { "rein rate \(task) --store \(store) --rater \(rater)" }

    public var description: String {
        "stage \(stage) waits for ratings: task \(task) has \(answers) of the \(needed) answers it needs"
    }
}

extension StageKinds {
    /// Candidates from policies, rated by people before the run goes on.
    static let rate = StageKindDefinition(
        kind: .rate, implemented: true,
        keys: [
            KeySpec("prompts", .file, required: "required (a .jsonl file of prompts)"),
            KeySpec("min_ratings", .integer(.atLeast(1)), required: "required (how many answers the run waits for)"),
            KeySpec("task", .string),
            KeySpec("mode", .choice(RatingMode.allCases.map(\.rawValue))),
            KeySpec("scale", .choice(RatingScale.allCases.map(\.rawValue))),
            KeySpec("num_candidates", .integer(.atLeast(1))),
            KeySpec("temperature", .number(.above(0))),
            KeySpec("top_k", .integer(.atLeast(0))),
            KeySpec("top_p", .number(.closed(0, 1))),
            KeySpec("response_length", .integer(.atLeast(1))),
            KeySpec("max_prompts", .integer(.atLeast(1))),
            KeySpec("overlap", .number(.closed(0, 1))),
            KeySpec("generation_batch_size", .integer(.atLeast(1))),
            KeySpec("seed", .integer(.atLeast(0))),
            KeySpec("rater", .string),
        ],
        roles: [ModelRole(key: "policies", purpose: "the policies whose samples people rate", required: true,
                          accepts: [.pretrain, .sft, .dpo, .ppo, .rloo, .grpo], isList: true)],
        producesModel: false, files: ["candidates.jsonl"],
        decode: { .rate(try YAMLDecoder().decode(RateStepConfig.self, from: $0)) },
        validate: { settings in
            guard case .rate(let c) = settings else { return [] }
            var problems: [(key: String, message: String)] = []
            switch c.mode {
            case "pair" where c.candidates % 2 != 0 || c.candidates < 2:
                problems.append(("num_candidates", "pair mode rates responses two at a time: expected an even number, got \(c.candidates)"))
            case "rank" where !(2...9).contains(c.candidates):
                problems.append(("num_candidates", "rank mode rates 2 to 9 responses a prompt, got \(c.candidates)"))
            default: break
            }
            if c.scale != "likert", c.mode != "single" { problems.append(("scale", "only single mode has a scale (this stage is \(c.mode))")) }
            if let task = c.task, task.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                problems.append(("task", "must not contain control characters"))
            }
            return problems
        },
        write: { try writeRateStep($0) })

    /// Makes the task (or finds the one an earlier run of this stage made), writes `candidates.jsonl`,
    /// and throws ``RatingsPending`` while it has fewer than `min_ratings` answers.
    static func writeRateStep(_ c: WriteContext) throws -> [String: Double] {
        guard case .rate(let config) = c.settings, let name = config.task else { throw RunnerError("rate: wrong settings") }
        guard let store = c.store else { throw RunnerError("rate: needs the run's store") }
        guard let promptsPath = try config.prompts.map(c.resolve) else { throw RunnerError("rate: prompts: required") }
        let roles = c.models.keys.filter { $0.hasPrefix("policies.") }.sorted { Int($0.dropFirst(9)) ?? 0 < Int($1.dropFirst(9)) ?? 0 }
        let paths = try roles.map { role -> String in
            guard case .load(let path) = c.models[role]! else { throw RunnerError("rate: \(role) must be a trained model") }
            return path
        }
        var record = GeneratedCandidates.Record(
            policies: roles.map { c.modelReferences[$0] ?? $0 }, policyPaths: paths, prompts: config.prompts ?? promptsPath,
            numCandidates: config.candidates, temperature: config.temperature, topK: config.topK, topP: config.topP,
            maxNewTokens: config.responseLength, seed: config.seed, stageHash: c.hash)
        let task: RatingTask
        if let existing = try store.ratingTasks().first(where: { $0.name == name }) {
            guard GeneratedCandidates.record(of: existing)?.stageHash == c.hash else {
                throw RunnerError("rate: the store \(store.path) has a task '\(name)' made from other candidates (other policies, "
                                  + "prompts or sampling, or by rein rate new); give this stage another task: name to rate the new ones")
            }
            task = existing
            c.note("task \(name): made earlier, candidates kept")
        } else {
            let candidates = try GeneratedCandidates.generate(&record, promptsPath: promptsPath, maxPrompts: config.maxPrompts,
                                                              batchSize: config.generationBatchSize, note: c.note)
            let mode = RatingMode(rawValue: config.mode) ?? .pair
            let items = RatingTasks.items(candidates, mode: mode, overlap: config.overlap, seed: Int64(bitPattern: config.seed))
            guard !items.isEmpty else { throw RunnerError("rate: no items to rate") }
            task = try store.createRatingTask(
                RatingTask(name: name, mode: mode, source: "policies:" + record.policies.joined(separator: ","),
                           seed: Int64(bitPattern: config.seed), overlap: config.overlap, scale: RatingScale(rawValue: config.scale) ?? .likert,
                           options: record.json), items: items)
            c.note("task \(name): \(items.count) items (\(mode.rawValue)) of \(candidates.count) prompts")
        }
        let items = try store.ratingItems(taskId: task.id!)
        let encoder = JSONLinesEncoder()
        struct Line: Encodable { var prompt: String, responses: [String], sources: [String] }
        let text = try items.filter { $0.gold == nil }.map { try encoder.line(Line(prompt: $0.prompt, responses: $0.responses, sources: $0.sources)) + "\n" }
        try FileManager.default.createDirectory(at: c.output, withIntermediateDirectories: true)
        try AtomicFile.write(Data(text.joined().utf8), to: c.output.appendingPathComponent("candidates.jsonl"))

        let answers = try store.answerCount(taskId: task.id!)
        let needed = config.minRatings ?? 1
        // Identical pairs are ties never shown: a task can get at most one answer per shown item and rater.
        let open = items.filter { !$0.identical }.reduce(0) { $0 + $1.raters }
        if answers < needed, needed > open {
            throw RunnerError("min_ratings: \(needed) is more answers than task \(name) can get (\(open) to give; "
                              + "\(items.filter(\.identical).count) of its \(items.count) items are identical pairs, never shown); "
                              + "lower min_ratings, or raise max_prompts or temperature and name a new task")
        }
        guard answers >= needed else {
            throw RatingsPending(stage: c.stageId, task: name, store: c.storeDisplay ?? store.path, answers: answers, needed: needed,
                                 rater: config.rater ?? "YOUR_NAME")
        }
        return ["data/candidates.jsonl": Double(items.count), "rate/answers": Double(answers),
                "rate/shown_items": Double(items.filter { !$0.identical }.count)]
    }
}
