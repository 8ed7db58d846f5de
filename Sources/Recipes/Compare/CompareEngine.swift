import Alignment
import Checkpoints
import Datasets
import Evaluation
import Foundation
import NN
import Store
import TensorCore
import Tokenizers

/// How a comparison samples and judges: the settings recorded with it (so it can be repeated).
public struct CompareOptions: Codable, Equatable, Sendable {
    public var temperature: Double = 0.7
    public var topK: Int?
    public var topP: Double?
    /// Most new tokens per response.
    public var responseLength: Int = 64
    /// Responses per policy and prompt.
    public var samplesPerPrompt: Int = 1
    /// Seeds the sampling, the in-context examples and the bootstrap.
    public var seed: UInt64 = 0
    /// Only the first N prompts of the file.
    public var maxPrompts: Int?
    /// Bootstrap resamples of every interval.
    public var bootstrap: Int = 2000
    /// Prompts per generator call (never changes the samples).
    public var generationBatchSize: Int = 8
    /// The judge on the frontier's y axis (default: the first judge that is not the reward model).
    public var gold: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case temperature, topK = "top_k", topP = "top_p", responseLength = "response_length"
        case samplesPerPrompt = "samples_per_prompt", seed, maxPrompts = "max_prompts", bootstrap
        case generationBatchSize = "generation_batch_size", gold
    }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        temperature = try c.decodeIfPresent(Double.self, forKey: .temperature) ?? 0.7
        topK = try c.decodeIfPresent(Int.self, forKey: .topK)
        topP = try c.decodeIfPresent(Double.self, forKey: .topP)
        responseLength = try c.decodeIfPresent(Int.self, forKey: .responseLength) ?? 64
        samplesPerPrompt = try c.decodeIfPresent(Int.self, forKey: .samplesPerPrompt) ?? 1
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? 0
        maxPrompts = try c.decodeIfPresent(Int.self, forKey: .maxPrompts)
        bootstrap = try c.decodeIfPresent(Int.self, forKey: .bootstrap) ?? 2000
        generationBatchSize = try c.decodeIfPresent(Int.self, forKey: .generationBatchSize) ?? 8
        gold = try c.decodeIfPresent(String.self, forKey: .gold)
    }

    /// What decides the samples (not the bootstrap, the prompt count or the batch size): the
    /// response cache's key.
    var samplingKey: String {
        ContentHash.combine(["temperature=\(temperature)", "top_k=\(topK.map(String.init) ?? "-")",
                             "top_p=\(topP.map { "\($0)" } ?? "-")", "response_length=\(responseLength)", "seed=\(seed)"])
    }
}

/// One policy to compare.
public struct ComparePolicySpec: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// A model's own samples.
        case model
        /// The reward model's best of n samples of the reference policy.
        case bestOfN(Int)
        /// The reference policy given k solved examples before each prompt.
        case inContext(Int)
        /// A model a training stage exported on its way (`export_steps`): sampled and judged on the
        /// same prompts as the policies, for the frontier only (no pairs, no ranking).
        case checkpoint
    }

    /// Its short name in tables.
    public var name: String
    /// What the user wrote.
    public var spec: String
    public var kind: Kind
    /// The model it samples from (for baselines: the reference).
    public var modelPath: String
    /// The training stage it came from, whose evaluations join the frontier.
    public var stageId: Int64?

    public init(name: String, spec: String, kind: Kind = .model, modelPath: String, stageId: Int64? = nil) {
        self.name = name
        self.spec = spec
        self.kind = kind
        self.modelPath = modelPath
        self.stageId = stageId
    }

    var kindName: String {
        switch kind {
        case .model: "model"
        case .bestOfN: "best_of_n"
        case .inContext: "in_context"
        case .checkpoint: "checkpoint"
        }
    }
}

/// Everything a comparison needs, resolved to files.
public struct CompareRequest: Sendable {
    public var name: String
    public var runId: Int64
    public var policies: [ComparePolicySpec]
    /// Training stages' exported steps (kind `.checkpoint`): frontier points on these prompts.
    public var checkpoints: [ComparePolicySpec]
    /// `reward_model`, `synthetic_task`, `exact_match`, `length[:N]`, `regex:PATTERN`, `vader[:DIR]`,
    /// `command:PROGRAM ARGS` (scores), `pairwise_command:PROGRAM ARGS` (verdicts).
    public var judges: [String]
    /// The prompts file (resolved) and how the user named it.
    public var prompts: String
    public var promptsLabel: String
    public var rewardModel: String?
    /// The policy KL is measured against, best-of-n samples and in-context prompts; default the first model policy.
    public var reference: String?
    /// Solved examples (`{"prompt", "answer"}`) for in-context baselines (default: the prompts file).
    public var inContextExamples: String?
    /// A held-out text whose perplexity measures forgetting.
    public var forgetting: String?
    public var options: CompareOptions

    public init(name: String, runId: Int64, policies: [ComparePolicySpec], judges: [String], prompts: String,
                promptsLabel: String? = nil, rewardModel: String? = nil, reference: String? = nil,
                inContextExamples: String? = nil, forgetting: String? = nil, options: CompareOptions = CompareOptions(),
                checkpoints: [ComparePolicySpec] = []) {
        self.name = name
        self.runId = runId
        self.policies = policies
        self.checkpoints = checkpoints
        self.judges = judges
        self.prompts = prompts
        self.promptsLabel = promptsLabel ?? prompts
        self.rewardModel = rewardModel
        self.reference = reference
        self.inContextExamples = inContextExamples
        self.forgetting = forgetting
        self.options = options
    }
}

/// What went wrong in a comparison, naming the policy, judge or file.
public struct CompareError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Runs a comparison: samples every policy's responses (or takes them from the store's cache),
/// judges them, measures KL and forgetting, computes the statistics and stores it all.
public final class CompareEngine {
    public let store: RunStore
    public let request: CompareRequest
    /// `(what, done, total)` while generating and judging.
    public var progress: (String, Int, Int) -> Void = { _, _, _ in }
    public var note: (String) -> Void = { _ in }

    public init(store: RunStore, request: CompareRequest) {
        self.store = store
        self.request = request
    }

    /// A judge, parsed and checked before anything runs.
    enum Judge {
        case score(name: String, function: any RewardFunction)
        case pairwise(name: String, judge: PairwiseCommandJudge)
        /// People's answers in a `rein rate` task (`ratings:TASK`), created for these pairs if missing.
        case human(name: String, task: String)

        var name: String {
            switch self {
            case .score(let name, _), .pairwise(let name, _), .human(let name, _): name
            }
        }
    }

    /// One sampled response.
    struct Response {
        var text: String
        var ids: [Int32]
        var finished: Bool
    }

    /// The judge names `judges:` accepts, before any `:`.
    public static let judgeNames = ["reward_model", "exact_match", "pairwise_command", "ratings"] + RolloutScorer.textJudges

    // MARK: - Running

    /// Runs the comparison and returns its summary (also stored).
    public func run() throws -> CompareSummary {
        let o = request.options
        guard !request.policies.isEmpty else { throw CompareError("compare: no policies to compare") }
        guard request.policies.count >= 2 || request.policies.contains(where: { $0.kind != .model }) || !request.judges.isEmpty else {
            throw CompareError("compare: give at least two policies")
        }
        let names = request.policies.map(\.name)
        if let dup = names.first(where: { n in names.filter { $0 == n }.count > 1 }) {
            throw CompareError("compare: two policies are called '\(dup)'; give them different names")
        }
        guard !request.judges.isEmpty else { throw CompareError("compare: no judges (give reward_model, synthetic_task, exact_match, ...)") }
        if let gold = o.gold, !request.judges.contains(gold) {
            throw CompareError("gold: '\(gold)' is not one of the judges (\(request.judges.joined(separator: ", ")))")
        }

        // Prompts and judges first: a bad file or judge fails before any sampling.
        var records = try readRecords(request.prompts, label: request.promptsLabel)
        if let limit = o.maxPrompts { records = Array(records.prefix(limit)) }
        let answers = try answersIfNeeded(records.count)
        let judges = try request.judges.map(makeJudge)
        let referencePath = request.reference ?? request.policies.first { $0.kind == .model }?.modelPath
        for policy in request.policies where policy.kind != .model {
            guard referencePath != nil else { throw CompareError("compare: \(policy.spec) needs a reference policy (reference:)") }
            if case .bestOfN = policy.kind, request.rewardModel == nil {
                throw CompareError("compare: \(policy.spec) needs a reward model (reward_model:) to pick the best sample")
            }
        }
        let examples = try inContextExamples()

        // Hashes: what the cache keys on and the session records.
        let promptsHash = try ContentHash.of(path: request.prompts)
        var modelHashes: [String: String] = [:]
        for path in Set((request.policies + request.checkpoints).map(\.modelPath) + [referencePath].compactMap { $0 }) {
            modelHashes[path] = try ContentHash.of(path: path)
        }
        let optionsJSON = Recipe.canonicalJSON(o)
        let session = CompareSession(runId: request.runId, name: request.name, seed: Int64(bitPattern: o.seed),
                                     optionsJSON: optionsJSON, prompts: request.promptsLabel, promptsHash: promptsHash)
        let policyRows = (request.policies + request.checkpoints).enumerated().map { k, p in
            ComparePolicy(compareSessionId: 0, idx: k, name: p.name, spec: p.spec, kind: p.kindName,
                          modelPath: p.modelPath, modelHash: modelHashes[p.modelPath] ?? "")
        }
        let (saved, savedPolicies) = try store.startComparison(session, policies: policyRows)
        let sessionId = saved.id!
        do {
            let summary = try compare(sessionId: sessionId, records: records, answers: answers, judges: judges,
                                      referencePath: referencePath, examples: examples, modelHashes: modelHashes,
                                      policyRows: savedPolicies)
            return summary
        } catch {
            try? store.finishComparison(sessionId, status: "failed", summaryJSON: nil, tallies: [])
            throw error
        }
    }

    private func compare(sessionId: Int64, records: [DatasetRecord], answers: [String]?, judges: [Judge],
                         referencePath: String?, examples: [PromptAnswerRecord], modelHashes: [String: String],
                         policyRows: [ComparePolicy]) throws -> CompareSummary {
        let o = request.options
        let S = o.samplesPerPrompt
        var models: [String: LanguageModel] = [:]
        func model(_ path: String) throws -> LanguageModel {
            if let lm = models[path] { return lm }
            let lm: LanguageModel
            do { lm = try LanguageModel.load(path) } catch { throw CompareError("compare: cannot load \(path): \(error)") }
            models[path] = lm
            return lm
        }
        let rewardJudge = try request.rewardModel.map { path -> RewardModelJudge in
            let stats = try? RewardStats.read(URL(fileURLWithPath: path).appendingPathComponent(RewardStats.fileName))
            return try RewardModelJudge(model: try model(path), normalization: stats)
        }

        // 1. Responses: responses[p][i][s], and the prompts each policy saw.
        var responses: [[[Response]]] = []
        var sourcePrompts: [TextOrChat] = []
        for (p, policy) in request.policies.enumerated() {
            let lm = try model(policy.modelPath)
            let engine = try rolloutEngine(lm, samples: S)
            var prompts = try engine.prompts(records, file: request.promptsLabel)
            if sourcePrompts.isEmpty { sourcePrompts = prompts.map(\.source) }
            let key = ContentHash.combine([modelHashes[policy.modelPath] ?? policy.modelPath, policy.kindName])
            switch policy.kind {
            case .model, .checkpoint:
                responses.append(try sample(engine, prompts: prompts, samples: S, policyKey: key, label: policy.name))
            case .inContext(let k):
                prompts = try prompts.enumerated().map { i, prompt in
                    try engine.prompt(inContextRecord(records[i], examples: examples, k: k, index: i),
                                      file: request.inContextExamples ?? request.promptsLabel, number: i + 1)
                }
                responses.append(try sample(engine, prompts: prompts, samples: S, policyKey: key + "/k\(k)", label: policy.name))
            case .bestOfN(let n):
                // The reference's own samples, n per kept response; its first S are the reference's samples.
                let refKey = ContentHash.combine([modelHashes[policy.modelPath] ?? policy.modelPath, "model"])
                let wide = try rolloutEngine(lm, samples: n * S)
                let pool = try sample(wide, prompts: prompts, samples: n * S, policyKey: refKey, label: "\(policy.name) pool")
                guard let rewardJudge else { throw CompareError("compare: \(policy.spec) needs reward_model:") }
                var picked: [[Response]] = []
                for (i, group) in pool.enumerated() {
                    let scores = try rewardJudge.scores(group.map { JudgeItem(prompt: prompts[i].source, response: $0.text) })
                    var row: [Response] = []
                    for s in 0..<S {
                        let range = (s * n)..<((s + 1) * n)
                        let top = range.max { scores[$0] < scores[$1] } ?? range.lowerBound
                        row.append(group[top])
                    }
                    picked.append(row)
                    progress("\(policy.name): reward model picks", i + 1, pool.count)
                }
                responses.append(picked)
            }
        }
        let P = request.policies.count, N = records.count

        // 2. Judges.
        var verdictRows: [CompareVerdict] = []
        var judgeSummaries: [CompareSummary.JudgeSummary] = []
        var scoreTables: [String: [[[Double?]]]] = [:]
        for judge in judges {
            switch judge {
            case let .score(name, function):
                var table = [[[Double?]]](repeating: [[Double?]](repeating: [Double?](repeating: nil, count: S), count: N), count: P)
                var failures = 0, firstFailure: String?
                for p in 0..<P {
                    var items: [(i: Int, s: Int, item: JudgeItem)] = []
                    for i in 0..<N { for s in 0..<S { items.append((i, s, JudgeItem(prompt: sourcePrompts[i], response: responses[p][i][s].text))) } }
                    var done = 0
                    for start in stride(from: 0, to: items.count, by: 64) {
                        let part = Array(items[start..<min(start + 64, items.count)])
                        let results = scoreItems(function, part.map(\.item), answers: answers, indices: part.map(\.i))
                        for (k, result) in results.enumerated() {
                            let (i, s) = (part[k].i, part[k].s)
                            switch result {
                            case .success(let score):
                                table[p][i][s] = score
                                verdictRows.append(CompareVerdict(compareSessionId: sessionId, judge: name, policyA: p,
                                                                  promptIdx: i, sampleIdx: s, score: score))
                            case .failure(let error):
                                failures += 1
                                if firstFailure == nil { firstFailure = "\(request.policies[p].name), prompt \(i + 1): \(error)" }
                                verdictRows.append(CompareVerdict(compareSessionId: sessionId, judge: name, policyA: p,
                                                                  promptIdx: i, sampleIdx: s, error: "\(error)"))
                            }
                        }
                        done += part.count
                        progress("\(name): \(request.policies[p].name)", done, items.count)
                    }
                }
                scoreTables[name] = table
                var pairs: [CompareSummary.PairSummary] = []
                var battles: [CompareStatsInput.Battle] = []
                for a in 0..<P {
                    for b in (a + 1)..<P {
                        var outcomes: [[CompareStatsInput.Outcome]] = []
                        var diffs: [[(Double, Double)]] = []
                        for i in 0..<N {
                            var row: [CompareStatsInput.Outcome] = [], drow: [(Double, Double)] = []
                            for s in 0..<S {
                                guard let x = table[a][i][s], let y = table[b][i][s] else {
                                    row.append(.failed)
                                    verdictRows.append(CompareVerdict(compareSessionId: sessionId, judge: name, policyA: a, policyB: b,
                                                                      promptIdx: i, sampleIdx: s, verdict: "failed",
                                                                      error: "a score is missing"))
                                    continue
                                }
                                let outcome: CompareStatsInput.Outcome = abs(x - y) <= 1e-9 * max(1, abs(x), abs(y)) ? .tie : (x > y ? .a : .b)
                                row.append(outcome)
                                drow.append((x, y))
                                verdictRows.append(CompareVerdict(compareSessionId: sessionId, judge: name, policyA: a, policyB: b,
                                                                  promptIdx: i, sampleIdx: s, verdict: outcome.rawValue))
                                battles.append(.init(a: a, b: b, outcome: outcome))
                            }
                            outcomes.append(row)
                            diffs.append(drow)
                        }
                        pairs.append(try CompareStatsInput.pairSummary(
                            a: request.policies[a].name, b: request.policies[b].name, outcomes: outcomes, scores: diffs,
                            orders: nil, lengthsA: lengths(responses[a]), lengthsB: lengths(responses[b]),
                            bootstrap: o.bootstrap, seed: o.seed))
                    }
                }
                let scores = try (0..<P).map { p in
                    try CompareStatsInput.policyScore(policy: request.policies[p].name, values: table[p], bootstrap: o.bootstrap, seed: o.seed)
                }
                judgeSummaries.append(.init(name: name, kind: "score", scores: scores, pairs: pairs,
                                            ranking: P >= 3 ? try CompareStatsInput.ranking(battles, names: request.policies.map(\.name),
                                                                                            bootstrap: o.bootstrap, seed: o.seed) : [],
                                            failures: failures, firstFailure: firstFailure))
            case let .pairwise(name, pairJudge):
                var pairs: [CompareSummary.PairSummary] = []
                var battles: [CompareStatsInput.Battle] = []
                var failures = 0, firstFailure: String?
                for a in 0..<P {
                    for b in (a + 1)..<P {
                        var outcomes = [[CompareStatsInput.Outcome]](repeating: [], count: N)
                        var orders: [(forward: Verdict, swapped: Verdict)] = []
                        var jobs: [(i: Int, s: Int)] = []
                        for i in 0..<N { for s in 0..<S { jobs.append((i, s)) } }
                        var done = 0
                        for start in stride(from: 0, to: jobs.count, by: 32) {
                            let part = Array(jobs[start..<min(start + 32, jobs.count)])
                            // Each pair in both orders: A first, then B first.
                            var calls: [(prompt: TextOrChat, first: String, second: String)] = []
                            for (i, s) in part {
                                let x = responses[a][i][s].text, y = responses[b][i][s].text
                                calls.append((sourcePrompts[i], x, y))
                                calls.append((sourcePrompts[i], y, x))
                            }
                            let results: [Result<PairVerdict, EvaluationError>]
                            do { results = try pairJudge.verdicts(calls) } catch {
                                let failure = (error as? EvaluationError) ?? EvaluationError("\(error)")
                                results = [Result](repeating: .failure(failure), count: calls.count)
                            }
                            for (k, (i, s)) in part.enumerated() {
                                let forward = results[2 * k], swapped = results[2 * k + 1]
                                guard case .success(let f) = forward, case .success(let w) = swapped else {
                                    var reason = ""
                                    if case .failure(let e) = forward { reason = e.description } else if case .failure(let e) = swapped { reason = e.description }
                                    failures += 1
                                    if firstFailure == nil { firstFailure = "\(request.policies[a].name) vs \(request.policies[b].name), prompt \(i + 1): \(reason)" }
                                    outcomes[i].append(.failed)
                                    verdictRows.append(CompareVerdict(compareSessionId: sessionId, judge: name, policyA: a, policyB: b,
                                                                      promptIdx: i, sampleIdx: s, verdict: "failed", error: reason))
                                    continue
                                }
                                // As shown (.a: the first shown), then in policy terms: swapped's first is B.
                                func shown(_ v: PairVerdict) -> Verdict { v == .first ? .a : (v == .second ? .b : .tie) }
                                orders.append((shown(f), shown(w)))
                                let fwd = shown(f), swp = shown(w).swapped
                                let outcome = PairwiseOutcome.combine(forward: shown(f), swapped: shown(w))
                                outcomes[i].append(outcome)
                                battles.append(.init(a: a, b: b, outcome: outcome))
                                verdictRows.append(CompareVerdict(compareSessionId: sessionId, judge: name, policyA: a, policyB: b,
                                                                  promptIdx: i, sampleIdx: s, verdict: outcome.rawValue,
                                                                  forward: fwd.rawValue, swapped: swp.rawValue))
                            }
                            done += part.count
                            progress("\(name): \(request.policies[a].name) vs \(request.policies[b].name)", done, jobs.count)
                        }
                        pairs.append(try CompareStatsInput.pairSummary(
                            a: request.policies[a].name, b: request.policies[b].name, outcomes: outcomes, scores: nil,
                            orders: orders,
                            lengthsA: lengths(responses[a]), lengthsB: lengths(responses[b]), bootstrap: o.bootstrap, seed: o.seed))
                    }
                }
                judgeSummaries.append(.init(name: name, kind: "pairwise", scores: [], pairs: pairs,
                                            ranking: P >= 3 ? try CompareStatsInput.ranking(battles, names: request.policies.map(\.name),
                                                                                            bootstrap: o.bootstrap, seed: o.seed) : [],
                                            failures: failures, firstFailure: firstFailure))
            case let .human(name, task):
                let (summary, rows) = try humanJudge(name: name, taskName: task, sessionId: sessionId, responses: responses,
                                                     sourcePrompts: sourcePrompts)
                judgeSummaries.append(summary)
                verdictRows += rows
            }
            try store.record(verdicts: verdictRows)
            verdictRows.removeAll()
        }

        // 3. KL to the reference, and forgetting.
        var policySummaries: [CompareSummary.PolicySummary] = []
        let reference = try referencePath.map { try model($0) }
        var referencePerplexity: Double?
        if let forgetting = request.forgetting, let reference {
            referencePerplexity = try perplexity(reference, forgetting)
        }
        for (p, policy) in request.policies.enumerated() {
            let flat = responses[p].flatMap { $0 }
            let count = Double(max(flat.count, 1))
            var kl: Double?
            switch policy.kind {
            case .model:
                if let reference {
                    kl = try sequenceKL(policy: try model(policy.modelPath), reference: reference, records: records, responses: responses[p])
                }
            case .bestOfN(let n):
                kl = try CompareStatsInput.bestOfNKL(n)
            case .inContext, .checkpoint:
                kl = nil
            }
            var ppl: Double?
            if let forgetting = request.forgetting {
                ppl = policy.kind == .model ? try perplexity(try model(policy.modelPath), forgetting) : referencePerplexity
            }
            let summary = CompareSummary.PolicySummary(
                name: policy.name, spec: policy.spec, kind: policy.kindName,
                meanTokens: Double(flat.reduce(0) { $0 + $1.ids.count }) / count,
                meanCharacters: Double(flat.reduce(0) { $0 + $1.text.unicodeScalars.count }) / count,
                finishedShare: Double(flat.filter(\.finished).count) / count, kl: kl, perplexity: ppl)
            policySummaries.append(summary)
            try store.setComparePolicyDetails(policyRows[p].id!, detailsJSON: Recipe.canonicalJSON(summary))
        }
        if let referencePerplexity { note("forgetting: the reference's perplexity is \(String(format: "%.3f", referencePerplexity))") }

        // 4. The frontier: gold score against KL, for the policies, the stages' exported steps
        // (on these prompts) and, for a stage without them, its own evaluations.
        let checkpointPoints = try checkpointFrontier(judges: judges, summaries: judgeSummaries, sessionId: sessionId,
                                                      records: records, answers: answers, sourcePrompts: sourcePrompts,
                                                      reference: reference, modelHashes: modelHashes, model: model,
                                                      evict: { models[$0] = nil })
        let frontier = try frontierPoints(judges: judgeSummaries, policies: policySummaries, checkpoints: checkpointPoints)

        // Side by side: the first prompts, each policy's first response with the gold judge's score.
        let goldName = goldJudgeName(judgeSummaries)
        let samples = (0..<min(N, Self.sampleCount)).map { i in
            CompareSummary.SampleSummary(prompt: JudgeItem(prompt: sourcePrompts[i], response: "").promptText,
                                         responses: (0..<P).map { p in
                CompareSummary.SampleResponse(policy: request.policies[p].name, text: responses[p][i][0].text,
                                              score: goldName.flatMap { scoreTables[$0]?[p][i][0] })
            })
        }
        let summary = CompareSummary(sessionId: sessionId, name: request.name, seed: o.seed, options: o,
                                     prompts: request.promptsLabel, promptCount: N, policies: policySummaries,
                                     judges: judgeSummaries, frontier: frontier, samples: samples)
        var tallies: [Comparison] = []
        for judge in judgeSummaries {
            for pair in judge.pairs {
                tallies.append(Comparison(runId: request.runId, policyA: pair.a, policyB: pair.b, judge: judge.name,
                                          winsA: pair.wins, winsB: pair.losses, ties: pair.ties, summaryJSON: Recipe.canonicalJSON(pair)))
            }
        }
        try store.finishComparison(sessionId, status: "completed", summaryJSON: Recipe.canonicalJSON(summary), tallies: tallies)
        return summary
    }

    // MARK: - Human judgments

    /// `ratings:TASK`: the verdicts people gave in rating task `TASK` on these very pairs. When
    /// the task does not exist it is made: one pair-mode item per pair of policies, prompt and
    /// sample (responses that are the same text are ties, never shown), for `rein rate TASK`; a
    /// later comparison with the same seed and options finds the same responses (the cache) and
    /// reads the answers. An item's verdict is the majority of its raters' votes (equal counts and
    /// "both bad" are ties); a pair nobody has answered yet is recorded as a failure, "not rated
    /// yet", which never counts as a win.
    func humanJudge(name: String, taskName: String, sessionId: Int64, responses: [[[Response]]],
                    sourcePrompts: [TextOrChat]) throws -> (CompareSummary.JudgeSummary, [CompareVerdict]) {
        let o = request.options
        let P = request.policies.count, N = sourcePrompts.count, S = o.samplesPerPrompt
        let promptTexts = sourcePrompts.map { JudgeItem(prompt: $0, response: "").promptText }
        let task: RatingTask
        if let existing = try store.ratingTasks().first(where: { $0.name == taskName }) {
            guard existing.mode == .pair else {
                throw CompareError("judge \(name): rating task '\(taskName)' is in \(existing.mode.rawValue) mode; a judge of pairs needs a pair task")
            }
            task = existing
        } else {
            var candidates: [RatingCandidate] = []
            for i in 0..<N {
                for a in 0..<P {
                    for b in (a + 1)..<P {
                        for s in 0..<S {
                            candidates.append(RatingCandidate(prompt: promptTexts[i], responses: [responses[a][i][s].text, responses[b][i][s].text],
                                                              sources: [request.policies[a].name, request.policies[b].name]))
                        }
                    }
                }
            }
            let items = RatingTasks.items(candidates, mode: .pair, seed: Int64(bitPattern: o.seed))
            task = try store.createRatingTask(RatingTask(name: taskName, mode: .pair, source: "compare:\(sessionId)",
                                                         seed: Int64(bitPattern: o.seed)), items: items)
            let shown = items.filter { !$0.identical }.count
            note("\(name): made rating task '\(taskName)' of \(shown) pairs to rate (\(items.count - shown) identical ones are ties); "
                 + "rate them with `rein rate \(taskName) --store \(store.path)`, then compare again")
        }
        // The task's items by (prompt, first, second) text, and each item's votes.
        let items = try store.ratingItems(taskId: task.id!)
        var votes: [Int64: [RatingVote]] = [:]
        for rating in try store.ratings(taskId: task.id!) where ([.a, .b, .tie, .bad] as [RatingVote]).contains(rating.vote) {
            votes[rating.itemId, default: []].append(rating.vote)
        }
        func key(_ prompt: String, _ x: String, _ y: String) -> String { [prompt, x, y].joined(separator: "\u{0}") }
        var byText: [String: RatingItem] = [:]
        for item in items where item.responses.count == 2 && item.gold == nil {
            byText[key(item.prompt, item.responses[0], item.responses[1])] = item
        }
        var rows: [CompareVerdict] = []
        var pairs: [CompareSummary.PairSummary] = []
        var battles: [CompareStatsInput.Battle] = []
        var failures = 0, firstFailure: String?
        for a in 0..<P {
            for b in (a + 1)..<P {
                var outcomes = [[CompareStatsInput.Outcome]](repeating: [], count: N)
                for i in 0..<N {
                    for s in 0..<S {
                        let x = responses[a][i][s].text, y = responses[b][i][s].text
                        var outcome: CompareStatsInput.Outcome?
                        var reason = "no item for this pair in rating task '\(taskName)' (it was made for other responses)"
                        // The item shows A's response first, or B's (a task made by another comparison).
                        let forward = byText[key(promptTexts[i], x, y)], backward = byText[key(promptTexts[i], y, x)]
                        if let item = forward ?? backward {
                            if item.identical {
                                outcome = .tie
                            } else if let given = votes[item.id!], !given.isEmpty {
                                let first = given.filter { $0 == .a }.count, second = given.filter { $0 == .b }.count
                                let firstWins: CompareStatsInput.Outcome = forward != nil ? .a : .b
                                outcome = first == second ? .tie : (first > second ? firstWins : (firstWins == .a ? .b : .a))
                            } else {
                                reason = "not rated yet in task '\(taskName)'"
                            }
                        }
                        if let outcome {
                            outcomes[i].append(outcome)
                            battles.append(.init(a: a, b: b, outcome: outcome))
                            rows.append(CompareVerdict(compareSessionId: sessionId, judge: name, policyA: a, policyB: b,
                                                       promptIdx: i, sampleIdx: s, verdict: outcome.rawValue))
                        } else {
                            failures += 1
                            if firstFailure == nil { firstFailure = "\(request.policies[a].name) vs \(request.policies[b].name), prompt \(i + 1): \(reason)" }
                            outcomes[i].append(.failed)
                            rows.append(CompareVerdict(compareSessionId: sessionId, judge: name, policyA: a, policyB: b,
                                                       promptIdx: i, sampleIdx: s, verdict: "failed", error: reason))
                        }
                    }
                }
                pairs.append(try CompareStatsInput.pairSummary(
                    a: request.policies[a].name, b: request.policies[b].name, outcomes: outcomes, scores: nil, orders: nil,
                    lengthsA: lengths(responses[a]), lengthsB: lengths(responses[b]), bootstrap: o.bootstrap, seed: o.seed))
            }
        }
        let ranking = P >= 3 && !battles.isEmpty
            ? try CompareStatsInput.ranking(battles, names: request.policies.map(\.name), bootstrap: o.bootstrap, seed: o.seed) : []
        return (.init(name: name, kind: "pairwise", scores: [], pairs: pairs, ranking: ranking, failures: failures,
                      firstFailure: firstFailure), rows)
    }

    // MARK: - Pieces

    func readRecords(_ path: String, label: String) throws -> [DatasetRecord] {
        do {
            return try RecordSet.read(URL(fileURLWithPath: path)).records
        } catch {
            throw CompareError("prompts: \(label): \(error)")
        }
    }

    /// The prompts file's reference answers, when a judge needs them.
    func answersIfNeeded(_ count: Int) throws -> [String]? {
        guard request.judges.contains(where: { $0 == "exact_match" }) else { return nil }
        do {
            let records = try PromptAnswerRecord.read(URL(fileURLWithPath: request.prompts))
            return Array(records.prefix(count).map(\.answer))
        } catch {
            throw CompareError("judge exact_match needs an \"answer\" in every prompt record: \(request.promptsLabel): \(error)")
        }
    }

    func inContextExamples() throws -> [PromptAnswerRecord] {
        guard request.policies.contains(where: { if case .inContext = $0.kind { return true } else { return false } }) else { return [] }
        let path = request.inContextExamples ?? request.prompts
        do {
            let examples = try PromptAnswerRecord.read(URL(fileURLWithPath: path))
            guard !examples.isEmpty else { throw CompareError("in_context: \(path) holds no examples") }
            return examples
        } catch let error as CompareError {
            throw error
        } catch {
            throw CompareError("in_context: examples need {\"prompt\", \"answer\"} records: \(path): \(error)")
        }
    }

    func makeJudge(_ spec: String) throws -> Judge {
        let name = String(spec.prefix { $0 != ":" })
        switch name {
        case "reward_model":
            guard let path = request.rewardModel else {
                throw CompareError("judge reward_model: no reward model given (reward_model: a reward stage or directory)")
            }
            let stats = try? RewardStats.read(URL(fileURLWithPath: path).appendingPathComponent(RewardStats.fileName))
            let lm: LanguageModel
            do { lm = try LanguageModel.load(path) } catch { throw CompareError("judge reward_model: cannot load \(path): \(error)") }
            return .score(name: "reward_model", function: try RewardModelJudge(model: lm, normalization: stats))
        case "exact_match":
            return .score(name: "exact_match", function: ExactAnswerJudge())
        case "ratings":
            let task = String(spec.dropFirst(name.count + 1)).trimmingCharacters(in: .whitespaces)
            guard !task.isEmpty else { throw CompareError("judge ratings needs a rating task's name (ratings:TASK)") }
            return .human(name: spec, task: task)
        case "pairwise_command":
            let words = spec.dropFirst(name.count + 1).split(separator: " ").map(String.init)
            guard let program = words.first else { throw CompareError("judge pairwise_command needs a program (pairwise_command:PROGRAM ARGS)") }
            return .pairwise(name: spec, judge: try PairwiseCommandJudge(executable: program, arguments: Array(words.dropFirst())))
        default:
            guard RolloutScorer.textJudges.contains(name) else {
                let hint = Suggestions.nearest(to: name, in: Self.judgeNames).map { "; did you mean \($0)?" } ?? ""
                throw CompareError("judge '\(name)': unknown\(hint); expected one of \(Self.judgeNames.joined(separator: ", "))")
            }
            return .score(name: spec, function: try RolloutScorer.judge(spec))
        }
    }

    /// Scores a batch; when the batch fails, each item alone, so one bad item fails only itself.
    func scoreItems(_ judge: any RewardFunction, _ items: [JudgeItem], answers: [String]?, indices: [Int]) -> [Result<Double, Error>] {
        func one(_ batch: [JudgeItem], _ idx: [Int]) throws -> [Double] {
            let scores: [Double]
            if let exact = judge as? ExactAnswerJudge {
                guard let answers else { throw CompareError("exact_match: no answers") }
                scores = exact.scores(batch, answers: idx.map { answers[$0] })
            } else {
                scores = try judge.scores(batch)
            }
            guard scores.count == batch.count else {
                throw CompareError("the \(judge.name) judge gave \(scores.count) scores for \(batch.count) responses")
            }
            return scores
        }
        do {
            let scores = try one(items, indices)
            return scores.map { $0.isFinite ? .success($0) : .failure(CompareError("the \(judge.name) judge gave \($0)")) }
        } catch {
            if items.count == 1 { return [.failure(error)] }
            return items.indices.map { k in
                do {
                    let s = try one([items[k]], [indices[k]])[0]
                    return s.isFinite ? .success(s) : .failure(CompareError("the \(judge.name) judge gave \(s)"))
                } catch { return .failure(error) }
            }
        }
    }

    func rolloutEngine(_ lm: LanguageModel, samples: Int) throws -> RolloutEngine {
        let o = request.options
        let options = RolloutOptions(temperature: Float(o.temperature), topK: o.topK.flatMap { $0 > 0 ? $0 : nil },
                                     topP: o.topP.map(Float.init), responseLength: o.responseLength,
                                     samplesPerPrompt: samples, seed: o.seed, generationBatchSize: nil)
        do { return try RolloutEngine(lm: lm, options: options) } catch { throw CompareError("compare: \(lm.source): \(error)") }
    }

    /// A stable number for a prompt, from its text: seeds its samples wherever it sits in the file.
    static func promptNumber(_ hash: String) -> Int {
        Int(UInt64(hash.prefix(12), radix: 16) ?? 0)
    }

    /// Every prompt's `samples` responses: cached ones from the store, the rest sampled (and stored
    /// a batch at a time, so an interrupted comparison keeps what it sampled).
    func sample(_ engine: RolloutEngine, prompts: [RolloutPrompt], samples: Int, policyKey: String,
                label: String) throws -> [[Response]] {
        let o = request.options
        let optionsKey = o.samplingKey
        let cached = try store.cachedGenerations(policyKey: policyKey, optionsKey: optionsKey)
        let hashes = prompts.map { ContentHash.hex(of: Data($0.text.utf8)) }
        var out = [[Response?]](repeating: [Response?](repeating: nil, count: samples), count: prompts.count)
        var missing: [Int] = []
        for i in prompts.indices {
            for s in 0..<samples {
                if let g = cached["\(hashes[i])#\(s)"] {
                    out[i][s] = Response(text: g.response, ids: g.responseIds, finished: g.finished)
                }
            }
            if out[i].contains(where: { $0 == nil }) { missing.append(i) }
        }
        if !missing.isEmpty {
            note("\(label): sampling \(missing.count) of \(prompts.count) prompts × \(samples) (\(prompts.count - missing.count) fully cached)")
        }
        var done = 0
        for start in stride(from: 0, to: missing.count, by: max(1, o.generationBatchSize)) {
            let part = Array(missing[start..<min(start + max(1, o.generationBatchSize), missing.count)])
            let batch: RolloutBatch
            do {
                batch = try engine.generate(part.map { prompts[$0] }, step: 0, promptIndices: part.map { Self.promptNumber(hashes[$0]) })
            } catch { throw CompareError("\(label): \(error)") }
            var rows: [CompareGeneration] = []
            for r in 0..<batch.rows {
                let i = part[batch.promptIndex[r]], s = batch.sampleIndex[r]
                let ids = batch.responseTokens(row: r)
                let finished = batch.stopReasons[r] != .maxTokens
                // A sample already cached stays as stored (the same seed; it may differ in the last
                // float bits when batched otherwise).
                guard out[i][s] == nil else { continue }
                // The stored and the judged text must be the same (a NUL cannot be stored).
                let text = StoredText.storable(batch.responseTexts[r])
                out[i][s] = Response(text: text, ids: ids, finished: finished)
                rows.append(CompareGeneration(policyKey: policyKey, optionsKey: optionsKey, promptHash: hashes[i], sampleIdx: s,
                                              prompt: prompts[i].text, response: text, responseIds: ids,
                                              tokens: ids.count, finished: finished))
            }
            try store.record(generations: rows)
            done += part.count
            progress("\(label): sampling", done, missing.count)
        }
        return out.map { $0.map { $0! } }
    }

    /// An in-context prompt: k solved examples (seeded per prompt, never the prompt itself) before it.
    func inContextRecord(_ record: DatasetRecord, examples: [PromptAnswerRecord], k: Int, index: Int) throws -> DatasetRecord {
        guard case let .prompt(prompt) = record else {
            if case let .promptCompletion(prompt, _) = record { return try inContextRecord(.prompt(prompt), examples: examples, k: k, index: index) }
            if case let .preference(prompt, _, _, _) = record { return try inContextRecord(.prompt(prompt), examples: examples, k: k, index: index) }
            throw CompareError("in_context: record \(index + 1) of \(request.promptsLabel) has no prompt")
        }
        var rng = RNG(seed: RNG.mix(request.options.seed ^ 0x494E_434F_4E54_5854 ^ UInt64(index)))
        var pool = examples.indices.filter { examples[$0].prompt != prompt }
        var chosen: [PromptAnswerRecord] = []
        while chosen.count < k && !pool.isEmpty {
            let j = Int(rng.next() % UInt64(pool.count))
            chosen.append(examples[pool.remove(at: j)])
        }
        switch prompt {
        case .chat(let messages):
            var turns: [ChatMessage] = []
            for e in chosen {
                switch e.prompt {
                case .chat(let m): turns += m
                case .text(let t): turns.append(.user(t))
                }
                turns.append(ChatMessage(role: "assistant", content: e.answer))
            }
            return .prompt(.chat(turns + messages))
        case .text(let text):
            let shots = chosen.map { e -> String in
                switch e.prompt {
                case .text(let t): return t + " " + e.answer
                case .chat(let m): return (m.last?.content ?? "") + " " + e.answer
                }
            }
            return .prompt(.text((shots + [text]).joined(separator: "\n\n")))
        }
    }

    /// Mean over a policy's samples of the summed per-token log-ratio to the reference, at the
    /// sampling temperature (the RL stages' `eval/kl`); nil when their tokenizers differ.
    func sequenceKL(policy: LanguageModel, reference: LanguageModel, records: [DatasetRecord], responses: [[Response]]) throws -> Double? {
        let probe = "The quick brown fox, 12 + 30 = 42."
        guard policy.model.config.vocabSize == reference.model.config.vocabSize,
              policy.tokenizer.encode(probe) == reference.tokenizer.encode(probe) else { return nil }
        if policy.source == reference.source { return 0 }
        let engine = try rolloutEngine(policy, samples: 1)
        let prompts = try engine.prompts(records, file: request.promptsLabel)
        let pad = engine.padId, R = request.options.responseLength
        var total = 0.0, count = 0
        var rows: [(prompt: [Int32], response: [Int32])] = []
        for (i, group) in responses.enumerated() { for r in group { rows.append((prompts[i].ids, Array(r.ids.prefix(R)))) } }
        for start in stride(from: 0, to: rows.count, by: 16) {
            let part = Array(rows[start..<min(start + 16, rows.count)])
            let ctx = part.map(\.prompt.count).max() ?? 1
            var queries = [Int32](repeating: pad, count: part.count * ctx), resp = [Int32](repeating: pad, count: part.count * R)
            for (k, row) in part.enumerated() {
                for (t, id) in row.prompt.enumerated() { queries[k * ctx + ctx - row.prompt.count + t] = id }
                for (t, id) in row.response.enumerated() { resp[k * R + t] = id }
            }
            let qr = concatenateRows(queries: queries, responses: resp, rows: part.count, contextLength: ctx, responseLength: R)
            let T = request.options.temperature
            let lp = responseLogProbsNoGrad(policy.model, queryResponses: qr, rows: part.count, contextLength: ctx, responseLength: R,
                                            pad: pad, temperature: T, chunk: 16)
            let lq = responseLogProbsNoGrad(reference.model, queryResponses: qr, rows: part.count, contextLength: ctx, responseLength: R,
                                            pad: pad, temperature: T, chunk: 16)
            for (k, row) in part.enumerated() {
                for t in 0..<row.response.count { total += Double(lp[k * R + t] - lq[k * R + t]) }
                count += 1
            }
            progress("KL: \(policy.source.split(separator: "/").suffix(2).joined(separator: "/"))", min(start + 16, rows.count), rows.count)
        }
        return count == 0 ? nil : total / Double(count)
    }

    func perplexity(_ lm: LanguageModel, _ path: String) throws -> Double {
        let texts: [String]
        do { texts = try TextCorpus.texts(of: path, accepted: ["txt", "jsonl"]) } catch { throw CompareError("forgetting: \(error)") }
        let length = min(lm.model.config.maxPositions, 256)
        let windows = texts.flatMap { Perplexity.windows(of: lm.tokenizer.encode($0, allowSpecial: false), maxLength: length, stride: length) }
        guard windows.contains(where: { $0.targetCount > 0 }) else { throw CompareError("forgetting: \(path) has no text to score") }
        return Perplexity.evaluate(model: lm.model, windows: windows, batchSize: 4, padId: lm.generationPadId).perplexity
    }

    func lengths(_ responses: [[Response]]) -> [[Double]] {
        responses.map { $0.map { Double($0.ids.count) } }
    }

    /// Prompts shown side by side in the summary and the report.
    static let sampleCount = 12

    /// The judge on the frontier's y axis: `gold`, else the first score judge that is not the
    /// reward model, else the first score judge.
    func goldJudgeName(_ judges: [CompareSummary.JudgeSummary]) -> String? {
        let scoreJudges = judges.filter { $0.kind == "score" }
        return (request.options.gold.flatMap { g in scoreJudges.first { $0.name == g } }
                ?? scoreJudges.first { $0.name != "reward_model" } ?? scoreJudges.first)?.name
    }

    /// The training stages' exported steps as frontier points: each sampled on the comparison's
    /// prompts (cached like a policy's), scored by the gold judge (and the reward model, the proxy,
    /// when it is not the gold one), its KL measured the same way; verdict rows are stored under
    /// the checkpoint's policy index. Each model is let go once measured.
    func checkpointFrontier(judges: [Judge], summaries: [CompareSummary.JudgeSummary], sessionId: Int64,
                            records: [DatasetRecord], answers: [String]?, sourcePrompts: [TextOrChat], reference: LanguageModel?,
                            modelHashes: [String: String], model: (String) throws -> LanguageModel, evict: (String) -> Void) throws -> [CompareSummary.FrontierPointSummary] {
        guard !request.checkpoints.isEmpty else { return [] }
        func scoreJudge(_ name: String?) -> (any RewardFunction)? {
            for judge in judges { if case let .score(n, f) = judge, n == name { return f } }
            return nil
        }
        guard let goldName = goldJudgeName(summaries), let gold = scoreJudge(goldName) else {
            note("checkpoints: no score judge to put them on the frontier")
            return []
        }
        guard let reference else {
            note("checkpoints: no reference policy to measure their KL against")
            return []
        }
        let proxy = goldName == "reward_model" ? nil : scoreJudge("reward_model")
        let S = request.options.samplesPerPrompt, P = request.policies.count
        var points: [CompareSummary.FrontierPointSummary] = []
        for (k, checkpoint) in request.checkpoints.enumerated() {
            let lm = try model(checkpoint.modelPath)
            let engine = try rolloutEngine(lm, samples: S)
            let prompts = try engine.prompts(records, file: request.promptsLabel)
            let key = ContentHash.combine([modelHashes[checkpoint.modelPath] ?? checkpoint.modelPath, "model"])
            let responses = try sample(engine, prompts: prompts, samples: S, policyKey: key, label: checkpoint.name)
            var items: [(i: Int, item: JudgeItem)] = []
            for i in responses.indices { for r in responses[i] { items.append((i, JudgeItem(prompt: sourcePrompts[i], response: r.text))) } }
            var rows: [CompareVerdict] = []
            func mean(_ function: any RewardFunction, name: String) -> Double? {
                var sum = 0.0, n = 0
                for start in stride(from: 0, to: items.count, by: 64) {
                    let part = Array(items[start..<min(start + 64, items.count)])
                    for (j, result) in scoreItems(function, part.map(\.item), answers: answers, indices: part.map(\.i)).enumerated() {
                        let index = start + j, i = items[index].i, sample = index - i * S
                        switch result {
                        case .success(let score):
                            sum += score
                            n += 1
                            rows.append(CompareVerdict(compareSessionId: sessionId, judge: name, policyA: P + k, promptIdx: i,
                                                       sampleIdx: sample, score: score))
                        case .failure(let error):
                            rows.append(CompareVerdict(compareSessionId: sessionId, judge: name, policyA: P + k, promptIdx: i,
                                                       sampleIdx: sample, error: "\(error)"))
                        }
                    }
                    progress("\(name): \(checkpoint.name)", min(start + 64, items.count), items.count)
                }
                return n == 0 ? nil : sum / Double(n)
            }
            let goldMean = mean(gold, name: goldName)
            let proxyMean = proxy.flatMap { mean($0, name: "reward_model") }
            try store.record(verdicts: rows)
            let kl = try sequenceKL(policy: lm, reference: reference, records: records, responses: responses)
            if lm.source != reference.source { evict(checkpoint.modelPath) }
            guard let kl, let goldMean else {
                note("checkpoints: \(checkpoint.name) left off the frontier (\(kl == nil ? "its tokenizer differs from the reference's" : "the gold judge failed on every response"))")
                continue
            }
            let series = String(checkpoint.name.prefix { $0 != "@" })
            points.append(.init(series: series, label: checkpoint.name, kl: kl, gold: goldMean, proxy: proxyMean, pareto: false))
        }
        return points
    }

    /// The gold judge's mean score against KL: one point per compared policy (with a KL), one per
    /// exported step of a training stage (`checkpoints`, measured here on the same prompts), and,
    /// for a stage with no exported steps, one per evaluation during its training (`eval/kl` with
    /// `eval/judge_score`, or `eval/score` when the stage's own judge is the gold one). Those last
    /// are measured on the stage's own `eval_prompts`, not these: they are drawn as the series
    /// "NAME (stage eval)" and never marked on the Pareto front, which compares like with like.
    func frontierPoints(judges: [CompareSummary.JudgeSummary], policies: [CompareSummary.PolicySummary],
                        checkpoints: [CompareSummary.FrontierPointSummary] = []) throws -> [CompareSummary.FrontierPointSummary] {
        let scoreJudges = judges.filter { $0.kind == "score" }
        guard let goldName = goldJudgeName(judges), let gold = scoreJudges.first(where: { $0.name == goldName }) else { return [] }
        let proxy = scoreJudges.first { $0.name == "reward_model" && $0.name != gold.name }
        // Series: best-of-n is a curve of its own, and a stage's final policy ends the line of its
        // exported steps; the other policies are loose points ("compared").
        var stageSeries: [Int64: String] = [:]
        for c in request.checkpoints { if let id = c.stageId { stageSeries[id] = String(c.name.prefix { $0 != "@" }) } }
        var points: [CompareSummary.FrontierPointSummary] = []
        for (p, policy) in policies.enumerated() {
            guard let kl = policy.kl, let g = gold.scores[p].mean else { continue }
            let spec = request.policies[p]
            var series = "compared"
            if case .bestOfN = spec.kind { series = "best_of_n" }
            if let id = spec.stageId, let name = stageSeries[id] { series = name }
            points.append(.init(series: series, label: policy.name, kl: kl, gold: g, proxy: proxy?.scores[p].mean, pareto: false))
        }
        points += checkpoints
        let measuredHere = points.count
        var drawn = Set(request.checkpoints.compactMap(\.stageId))
        for spec in request.policies {
            guard let stageId = spec.stageId, drawn.insert(stageId).inserted, let stage = try store.stage(stageId) else { continue }
            // Which of the stage's evaluation series is the gold judge, and which the proxy.
            let config = (try? JSONSerialization.jsonObject(with: Data(stage.configJSON.utf8))) as? [String: Any]
            let settings = config?["settings"] as? [String: Any]
            let stageJudge = settings?["judge"] as? String ?? "reward_model"
            let goldName: String
            if settings?["eval_judge"] as? String == gold.name { goldName = "eval/judge_score" }
            else if stageJudge == gold.name { goldName = "eval/score" }
            else { continue }
            let source = stage.reusedStageId ?? stageId
            let kl = try store.series(stageId: source, name: "eval/kl")
            let byStep = Dictionary(try store.series(stageId: source, name: goldName).map { ($0.step, $0.value) },
                                    uniquingKeysWith: { _, last in last })
            let proxyByStep = stageJudge == "reward_model" && proxy != nil
                ? Dictionary(try store.series(stageId: source, name: "eval/score").map { ($0.step, $0.value) }, uniquingKeysWith: { _, last in last })
                : [:]
            for point in kl {
                guard let g = byStep[point.step] else { continue }
                points.append(.init(series: "\(spec.name) (stage eval)", label: "\(spec.name)@\(point.step)", kl: point.value, gold: g,
                                    proxy: proxyByStep[point.step], pareto: false))
            }
        }
        let front = try CompareStatsInput.paretoFront(points.prefix(measuredHere).map { ($0.kl, $0.gold) })
        for k in 0..<measuredHere { points[k].pareto = front[k] }
        return points
    }
}

/// `exact_match`: 1 when the response (trimmed) equals the prompt record's reference answer.
struct ExactAnswerJudge: RewardFunction {
    let name = "exact_match"
    func scores(_ items: [JudgeItem]) throws -> [Double] {
        throw CompareError("exact_match needs the prompts' answers")
    }
    func scores(_ items: [JudgeItem], answers: [String]) -> [Double] {
        zip(items, answers).map { item, answer in
            item.response.trimmingCharacters(in: .whitespacesAndNewlines) == answer.trimmingCharacters(in: .whitespacesAndNewlines) ? 1 : 0
        }
    }
}
