import Checkpoints
import Datasets
import Evaluation
import Foundation
import Store
import Tokenizers
import Yams

/// `data: {ratings: TASK}` of a reward or DPO stage: the preference pairs of a rating task, made by
/// the same code as `rein rate export --format trl` with its defaults (ties, both-bad, gold items and
/// identical pairs left out; majority of raters; no margin; every rater kept).
public struct RatingsData: Codable, Equatable, Sendable {
    /// The task's name.
    public var ratings: String
    /// The store holding it, as written (relative to the recipe's directory); nil: the run's store.
    public var store: String?
    /// `majority` or `all` (``RatingExport/Aggregate``).
    public var aggregate: String = RatingExport.Aggregate.majority.rawValue
    /// `none`, `llama-small` or `llama-large` (``RatingExport/Margin``).
    public var margin: String = RatingExport.Margin.none.rawValue
    /// Raters whose gold accuracy is below this are left out.
    public var minGoldAccuracy: Double = 0

    enum CodingKeys: String, CodingKey, CaseIterable {
        case ratings, store, aggregate, margin, minGoldAccuracy = "min_gold_accuracy"
    }

    /// Every key of the mapping.
    public static var keys: [String] { CodingKeys.allCases.map(\.rawValue) }

    public init(ratings: String, store: String? = nil) {
        self.ratings = ratings
        self.store = store
    }

    /// The kinds whose `data:` may name ratings (they train on preference pairs).
    static let kinds: [RecipeStageKind] = [.reward, .dpo]

    /// The TRL lines (without line breaks) of the task in `store`; an unknown task is an error that
    /// names `keyPath`, the task, the nearest task name and the tasks the store has.
    public func lines(in store: RunStore, keyPath: String) throws -> [String] { try read(in: store, keyPath: keyPath).lines }

    /// The TRL lines and a fingerprint of the answers they come from: the SHA-256 of the lines and
    /// of every live answer (id, vote, strength, score, ranking; skips left out). A stage's hash
    /// covers it, so any new answer or undo reruns the stage, even one that leaves the majority as it was.
    public func read(in store: RunStore, keyPath: String) throws -> (lines: [String], fingerprint: String) {
        let task: RatingTask
        do { task = try store.ratingTask(named: ratings) } catch RatingStoreError.unknownTask(_, let known) {
            throw RunnerError(Self.unknownTask(ratings, known: known, keyPath: keyPath, store: store.path))
        }
        let answers = try store.ratings(taskId: task.id!)
        let lines = try RatingExport.trlLines(items: try store.ratingItems(taskId: task.id!), ratings: answers,
                                         margin: RatingExport.Margin(rawValue: margin) ?? .none,
                                         aggregate: RatingExport.Aggregate(rawValue: aggregate) ?? .majority,
                                         minGoldAccuracy: minGoldAccuracy,
                                         conversational: GeneratedCandidates.record(of: task)?.chatPrompts ?? false)
        let used = answers.filter { $0.vote != .skip }.map { r in
            "\(r.id!) \(r.rater) \(r.itemId) \(r.vote.rawValue) \(r.strength ?? 0) \(r.likert ?? 0) \(r.thumb.map { $0 ? 1 : 0 } ?? -1) \(r.ranking ?? "")"
        }
        return (lines, ContentHash.combine(["task \(task.id!) \(task.name)"] + lines + ["answers"] + used))
    }

    /// "KEY: no rating task 'X' in S (did you mean 'Y'?; it has: A, B)".
    static func unknownTask(_ name: String, known: [String], keyPath: String, store: String) -> String {
        let hint = Suggestions.nearest(to: name, in: known).map { " (did you mean '\($0)'?)" } ?? ""
        let list = known.isEmpty ? "; it has none (make one with a rate stage or rein rate new)" : "; it has: \(known.joined(separator: ", "))"
        return (keyPath.isEmpty ? "" : "\(keyPath): ") + "no rating task '\(name)' in \(store)\(hint)\(list)"
    }
}

extension Checker {
    /// Reads `data: {ratings: TASK, store: FILE, aggregate: ..., margin: ..., min_gold_accuracy: X}`.
    mutating func readRatings(_ value: Node, _ keyPath: String, kind: RecipeStageKind, draft: inout Draft) {
        guard RatingsData.kinds.contains(kind) else {
            report(value, keyPath, "wrong type: expected a file path or stage:ID/FILE (ratings feed reward and dpo stages), got a mapping")
            return
        }
        let map = value.mapping!
        var ok = true
        for (k, _) in map where !RatingsData.keys.contains(k.string ?? "") {
            report(k, "\(keyPath).\(k.string ?? "")", unknownKey(k.string ?? "", valid: RatingsData.keys))
            ok = false
        }
        guard let taskNode = map["ratings"] else {
            report(value, "\(keyPath).ratings", "required (the name of a rating task)")
            return
        }
        guard let task = taskNode.scalar?.string, !task.isEmpty else {
            report(taskNode, "\(keyPath).ratings", "expected the name of a rating task, got \(show(taskNode))")
            return
        }
        var data = RatingsData(ratings: task)
        if let node = map["store"] {
            if let path = node.scalar?.string, !path.isEmpty {
                if FileManager.default.fileExists(atPath: Recipe.resolve(path, against: base).path) {
                    data.store = path
                } else {
                    report(node, "\(keyPath).store", "no store at \(path)")
                    ok = false
                }
            } else {
                report(node, "\(keyPath).store", "expected a store file path, got \(show(node))")
                ok = false
            }
        }
        func choice(_ key: String, _ words: [String]) -> String? {
            guard let node = map[key] else { return nil }
            guard let s = node.scalar?.string, words.contains(s) else {
                let written: String? = node.scalar?.string
                let hint = written.flatMap { Suggestions.nearest(to: $0, in: words) }.map { " (did you mean '\($0)'?)" } ?? ""
                report(node, "\(keyPath).\(key)", "expected one of \(words.joined(separator: ", ")), got \(show(node))\(hint)")
                ok = false
                return nil
            }
            return s
        }
        if let a = choice("aggregate", RatingExport.Aggregate.allCases.map(\.rawValue)) { data.aggregate = a }
        if let m = choice("margin", RatingExport.Margin.allCases.map(\.rawValue)) { data.margin = m }
        if let node = map["min_gold_accuracy"] {
            if node.scalar != nil, let x = try? YAMLDecoder().decode(Double.self, from: node), (0...1).contains(x) {
                data.minGoldAccuracy = x
            } else {
                report(node, "\(keyPath).min_gold_accuracy", "expected a number in [0, 1], got \(show(node))")
                ok = false
            }
        }
        if ok {
            draft.ratings = data
            draft.ratingsNode = taskNode
        }
    }

    /// Each `data: {ratings: TASK}` of the run's own store is made by an earlier `rate` stage (which
    /// it then depends on) or is in the store already; a task in another `store:` must be there.
    mutating func checkRatingTasks(_ drafts: [Draft], stages: inout [ResolvedStage], recipeStore: String) {
        for d in drafts {
            guard let data = d.ratings, let id = d.id else { continue }
            let keyPath = "stages.\(id).data.ratings"
            if data.store == nil, let maker = drafts.first(where: { $0.index < d.index && $0.rateTask == data.ratings }), let makerId = maker.id {
                if let k = stages.firstIndex(where: { $0.id == id }), !stages[k].dependencies.contains(makerId) {
                    stages[k].dependencies.append(makerId)
                }
                continue
            }
            let path = Recipe.resolve(data.store ?? recipeStore, against: base).path
            let made = drafts.filter { $0.index < d.index }.compactMap(\.rateTask)
            guard FileManager.default.fileExists(atPath: path) else {
                let hint = Suggestions.nearest(to: data.ratings, in: made).map { " (did you mean '\($0)'?)" } ?? ""
                report(d.ratingsNode, keyPath, "no rating task '\(data.ratings)': no earlier rate stage makes it\(hint) and there is no store at \(data.store ?? recipeStore) yet")
                continue
            }
            do {
                let known = try RunStore(path: path).ratingTasks().map(\.name)
                if !known.contains(data.ratings) {
                    report(d.ratingsNode, keyPath, RatingsData.unknownTask(data.ratings, known: made + known, keyPath: "", store: data.store ?? recipeStore))
                }
            } catch {
                report(d.ratingsNode, keyPath, "cannot read the store \(data.store ?? recipeStore): \(error)")
            }
        }
    }
}

/// Candidates sampled from policies, for `rein rate new --policies` and the `rate` stage.
public enum GeneratedCandidates {
    /// The options a task's candidates were made with, stored as `ratingTask.options`.
    public struct Record: Codable, Equatable, Sendable {
        /// The policies as given (paths, `stage:ID`), and the files they resolved to.
        public var policies: [String]
        public var policyPaths: [String]
        public var prompts: String
        /// Responses per prompt, over every policy (response `k` is policy `k % P`'s sample `k / P`).
        public var numCandidates: Int
        public var temperature: Double
        public var topK: Int?
        public var topP: Double?
        public var maxNewTokens: Int
        public var seed: UInt64
        /// The `rate` stage's content hash, when a recipe made the task.
        public var stageHash: String?
        /// Every prompt was one user message: the exported pairs are conversational again (TRL's
        /// `[{"role": "user", ...}]` prompt, assistant replies), as the policies saw them.
        public var chatPrompts: Bool = false

        enum CodingKeys: String, CodingKey {
            case policies, policyPaths = "policy_paths", prompts, numCandidates = "num_candidates", temperature
            case topK = "top_k", topP = "top_p", maxNewTokens = "max_new_tokens", seed, stageHash = "stage_hash"
            case chatPrompts = "chat_prompts"
        }

        public init(policies: [String], policyPaths: [String], prompts: String, numCandidates: Int, temperature: Double,
                    topK: Int?, topP: Double?, maxNewTokens: Int, seed: UInt64, stageHash: String? = nil) {
            self.policies = policies
            self.policyPaths = policyPaths
            self.prompts = prompts
            self.numCandidates = numCandidates
            self.temperature = temperature
            self.topK = topK
            self.topP = topP
            self.maxNewTokens = maxNewTokens
            self.seed = seed
            self.stageHash = stageHash
        }

        /// Canonical JSON (sorted keys).
        public var json: String { Recipe.canonicalJSON(self) }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            policies = try c.decode([String].self, forKey: .policies)
            policyPaths = try c.decode([String].self, forKey: .policyPaths)
            prompts = try c.decode(String.self, forKey: .prompts)
            numCandidates = try c.decode(Int.self, forKey: .numCandidates)
            temperature = try c.decode(Double.self, forKey: .temperature)
            topK = try c.decodeIfPresent(Int.self, forKey: .topK)
            topP = try c.decodeIfPresent(Double.self, forKey: .topP)
            maxNewTokens = try c.decode(Int.self, forKey: .maxNewTokens)
            seed = try c.decode(UInt64.self, forKey: .seed)
            stageHash = try c.decodeIfPresent(String.self, forKey: .stageHash)
            chatPrompts = try c.decodeIfPresent(Bool.self, forKey: .chatPrompts) ?? false
        }
    }

    /// The record of a task made from policies (nil for other tasks).
    public static func record(of task: RatingTask) -> Record? {
        task.options.flatMap { try? JSONDecoder().decode(Record.self, from: Data($0.utf8)) }
    }

    /// Samples `record.numCandidates` responses to each of the first `maxPrompts` prompts of
    /// `promptsPath`, spread over the policies in turn; each policy's rows are seeded by the seed,
    /// the policy's index, the prompt and the sample. Sources are `policy#sample`. Sets
    /// `record.chatPrompts` when every prompt is a single user message.
    public static func generate(_ record: inout Record, promptsPath: String, maxPrompts: Int? = nil, batchSize: Int = 8,
                                note: (String) -> Void = { _ in }) throws -> [RatingCandidate] {
        let P = record.policies.count
        guard P > 0, record.numCandidates >= 1 else { throw RatingInputError("no policies to sample from") }
        var records = try RecordSet.read(URL(fileURLWithPath: promptsPath)).records
        if let maxPrompts { records = Array(records.prefix(maxPrompts)) }
        guard !records.isEmpty else { throw RatingInputError("\(record.prompts) holds no prompts") }
        // Per prompt, the responses of each policy in sample order.
        var byPolicy: [[[String]]] = []
        var shown: [String] = []
        for (p, path) in record.policyPaths.enumerated() {
            let samples = (record.numCandidates - p + P - 1) / P
            guard samples > 0 else { byPolicy.append(Array(repeating: [], count: records.count)); continue }
            let lm = try LanguageModel.load(path)
            let options = RolloutOptions(temperature: Float(record.temperature), topK: record.topK.flatMap { $0 > 0 ? $0 : nil },
                                         topP: record.topP.map(Float.init), responseLength: record.maxNewTokens,
                                         samplesPerPrompt: samples, seed: record.seed)
            let engine = try RolloutEngine(lm: lm, options: options)
            let prompts = try engine.prompts(records, file: record.prompts)
            if p == 0 {
                shown = prompts.map { promptText($0.source) }
                record.chatPrompts = prompts.allSatisfy { if case .chat(let m) = $0.source { m.count == 1 } else { false } }
            }
            var responses: [[String]] = []
            for first in stride(from: 0, to: prompts.count, by: batchSize) {
                let indices = Array(first..<min(first + batchSize, prompts.count))
                let batch = try engine.generate(indices.map { prompts[$0] }, step: p, promptIndices: indices)
                for k in indices.indices {
                    responses.append((0..<samples).map { s in
                        // Without the whitespace after the generation prompt, as judge_pairs writes replies.
                        String(String.UnicodeScalarView(batch.responseTexts[k * samples + s].unicodeScalars.drop { $0.properties.isWhitespace }))
                    })
                }
            }
            note("\(record.policies[p]): \(prompts.count) prompts × \(samples) samples")
            byPolicy.append(responses)
        }
        return shown.indices.map { i in
            var texts: [String] = [], sources: [String] = []
            for k in 0..<record.numCandidates {
                texts.append(byPolicy[k % P][i][k / P])
                sources.append("\(record.policies[k % P])#\(k / P)")
            }
            return RatingCandidate(prompt: shown[i], responses: texts, sources: sources)
        }
    }

    /// The prompt as a rater reads it: the text, or the conversation's turns (the last is the user's).
    static func promptText(_ source: TextOrChat) -> String {
        switch source {
        case .text(let text): text
        case .chat(let messages):
            messages.count == 1 ? messages[0].content : messages.map { "\($0.role): \($0.content)" }.joined(separator: "\n\n")
        }
    }
}
