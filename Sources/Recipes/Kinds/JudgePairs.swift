import Datasets
import Evaluation
import Foundation
import TensorCore
import Tokenizers
import Yams

/// Settings of a `judge_pairs` stage: a policy samples several responses to each prompt, a judge
/// scores them, and the best and the worst of each prompt become a preference pair (when their
/// scores differ by more than `min_margin`). A `reward` stage reads `stage:ID/prefs.jsonl`.
public struct JudgePairsConfig: Codable, Equatable, Sendable {
    /// The prompts: `{"prompt": ...}`, `{"messages": [... user]}` or any record with a prompt.
    public var prompts: String?
    /// What labels the pairs: `length`, `length:N`, `regex:PATTERN`, `vader[:DIR]`, `synthetic_task`,
    /// `command:PROGRAM ARGS`.
    public var judge: String?
    /// Responses sampled per prompt; the best and the worst make the pair.
    public var samplesPerPrompt: Int = 4
    public var temperature: Double = 1.0
    public var topK: Int?
    public var topP: Double?
    /// Most new tokens per response.
    public var responseLength: Int = 32
    /// Use only the first N prompts of the file (nil: all).
    public var maxPrompts: Int?
    /// Pairs written to `prefs_valid.jsonl` (the first kept ones) instead of `prefs.jsonl`.
    public var validationPairs: Int = 32
    /// A pair is kept only when chosen's score exceeds rejected's by more than this.
    public var minMargin: Double = 0
    /// Prompts sampled per generator call (never changes the samples).
    public var generationBatchSize: Int = 8
    public var seed: UInt64 = 0

    enum CodingKeys: String, CodingKey, CaseIterable {
        case prompts, judge, samplesPerPrompt = "samples_per_prompt", temperature, topK = "top_k", topP = "top_p"
        case responseLength = "response_length", maxPrompts = "max_prompts", validationPairs = "validation_pairs"
        case minMargin = "min_margin", generationBatchSize = "generation_batch_size", seed
    }

    /// The defaults above.
    public init() {}

    /// Decodes, keeping the defaults for absent keys.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        prompts = try c.decodeIfPresent(String.self, forKey: .prompts)
        judge = try c.decodeIfPresent(String.self, forKey: .judge)
        samplesPerPrompt = try c.decodeIfPresent(Int.self, forKey: .samplesPerPrompt) ?? 4
        temperature = try c.decodeIfPresent(Double.self, forKey: .temperature) ?? 1.0
        topK = try c.decodeIfPresent(Int.self, forKey: .topK)
        topP = try c.decodeIfPresent(Double.self, forKey: .topP)
        responseLength = try c.decodeIfPresent(Int.self, forKey: .responseLength) ?? 32
        maxPrompts = try c.decodeIfPresent(Int.self, forKey: .maxPrompts)
        validationPairs = try c.decodeIfPresent(Int.self, forKey: .validationPairs) ?? 32
        minMargin = try c.decodeIfPresent(Double.self, forKey: .minMargin) ?? 0
        generationBatchSize = try c.decodeIfPresent(Int.self, forKey: .generationBatchSize) ?? 8
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? 0
    }

    /// Every key a judge_pairs stage may have besides `model`.
    public static var keys: [String] { CodingKeys.allCases.map(\.rawValue) }

    /// The judges that can label pairs (a reward model cannot: that is what the pairs train).
    static var judges: [String] { RolloutScorer.textJudges }
}

/// One line of `prefs.jsonl`: TRL's preference format, conversational when the prompt is.
struct JudgedPairLine: Encodable {
    var prompt: TextOrChat
    var chosen: String
    var rejected: String
    var chosenScore: Double
    var rejectedScore: Double

    enum CodingKeys: String, CodingKey { case prompt, chosen, rejected, chosenScore = "chosen_score", rejectedScore = "rejected_score" }

    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch prompt {
        case .text(let text):
            try c.encode(text, forKey: .prompt)
            try c.encode(chosen, forKey: .chosen)
            try c.encode(rejected, forKey: .rejected)
        case .chat(let messages):
            try c.encode(messages, forKey: .prompt)
            try c.encode([ChatMessage(role: "assistant", content: chosen)], forKey: .chosen)
            try c.encode([ChatMessage(role: "assistant", content: rejected)], forKey: .rejected)
        }
        try c.encode(JSONNumber(chosenScore), forKey: .chosenScore)
        try c.encode(JSONNumber(rejectedScore), forKey: .rejectedScore)
    }
}

extension StageKinds {
    /// The files a judge_pairs stage writes, for `stage:ID/FILE`.
    public static let judgePairsFiles = ["prefs.jsonl", "prefs_valid.jsonl"]

    /// Preference pairs of a policy's own samples, labelled by a judge.
    static let judgePairs = StageKindDefinition(
        kind: .judgePairs, implemented: true,
        keys: [
            KeySpec("prompts", .file, required: "required (a .jsonl file of prompts)"),
            KeySpec("judge", .string, required: "required (length, length:N, regex:PATTERN, vader[:DIR], synthetic_task or command:PROGRAM)"),
            KeySpec("samples_per_prompt", .integer(.atLeast(2))),
            KeySpec("temperature", .number(.above(0))),
            KeySpec("top_k", .integer(.atLeast(0))),
            KeySpec("top_p", .number(.closed(0, 1))),
            KeySpec("response_length", .integer(.atLeast(1))),
            KeySpec("max_prompts", .integer(.atLeast(1))),
            KeySpec("validation_pairs", .integer(.atLeast(0))),
            KeySpec("min_margin", .number(.atLeast(0))),
            KeySpec("generation_batch_size", .integer(.atLeast(1))),
            KeySpec("seed", .integer(.atLeast(0))),
        ],
        roles: [ModelRole(key: "model", purpose: "the policy that samples the responses", required: true,
                          accepts: [.pretrain, .sft, .dpo, .ppo, .rloo, .grpo])],
        producesModel: false, files: judgePairsFiles,
        decode: { .judgePairs(try YAMLDecoder().decode(JudgePairsConfig.self, from: $0)) },
        validate: { settings in
            guard case .judgePairs(let config) = settings, let judge = config.judge else { return [] }
            let name = String(judge.prefix { $0 != ":" })
            if name == "reward_model" {
                return [("judge", "a reward model cannot label the pairs it is trained on; use length, regex:PATTERN, vader, synthetic_task or command:PROGRAM")]
            }
            guard JudgePairsConfig.judges.contains(name) else {
                let hint = Suggestions.nearest(to: name, in: JudgePairsConfig.judges).map { " (did you mean '\($0)'?)" } ?? ""
                return [("judge", "unknown judge '\(name)'\(hint); expected one of \(JudgePairsConfig.judges.joined(separator: ", "))")]
            }
            return []
        },
        write: { try writeJudgedPairs($0) })

    /// Samples, judges, pairs and writes `prefs.jsonl` and `prefs_valid.jsonl`; returns the counts
    /// (`data/FILE`) and the judge's mean scores (`judge_pairs/...`).
    static func writeJudgedPairs(_ c: WriteContext) throws -> [String: Double] {
        guard case .judgePairs(let config) = c.settings else { throw RunnerError("judge_pairs: wrong settings") }
        guard let promptsPath = try config.prompts.map(c.resolve) else { throw RunnerError("judge_pairs: prompts: required") }
        guard let spec = config.judge else { throw RunnerError("judge_pairs: judge: required") }
        guard let start = c.models["model"] else { throw RunnerError("judge_pairs: model: required") }
        let judge = try RolloutScorer.judge(spec)
        let lm = try StageExecutor.startingLanguageModel(start, seed: config.seed)
        let options = RolloutOptions(temperature: Float(config.temperature), topK: config.topK.flatMap { $0 > 0 ? $0 : nil },
                                     topP: config.topP.map(Float.init), responseLength: config.responseLength,
                                     samplesPerPrompt: config.samplesPerPrompt, seed: config.seed)
        let engine = try RolloutEngine(lm: lm, options: options)
        var records = try RecordSet.read(URL(fileURLWithPath: promptsPath)).records
        if let limit = config.maxPrompts { records = Array(records.prefix(limit)) }
        let prompts = try engine.prompts(records, file: config.prompts ?? promptsPath)
        guard !prompts.isEmpty else { throw RunnerError("judge_pairs: \(config.prompts ?? promptsPath) holds no prompts") }
        c.note("judge_pairs: \(prompts.count) prompts × \(config.samplesPerPrompt) samples of up to \(config.responseLength) tokens, judge \(spec)")

        let S = config.samplesPerPrompt
        var pairs: [JudgedPairLine] = []
        var scoreSum = 0.0, scored = 0, dropped = 0
        let started = Date()
        for first in stride(from: 0, to: prompts.count, by: config.generationBatchSize) {
            let indices = Array(first..<min(first + config.generationBatchSize, prompts.count))
            let batch = try engine.generate(indices.map { prompts[$0] }, step: 0, promptIndices: indices)
            let scores = try judge.scores(batch.judgeItems)
            guard scores.count == batch.rows else {
                throw RunnerError("judge_pairs: the \(judge.name) judge gave \(scores.count) scores for \(batch.rows) responses")
            }
            if let bad = scores.firstIndex(where: { !$0.isFinite }) {
                throw RunnerError("judge_pairs: the \(judge.name) judge gave \(scores[bad]) for response \(bad + 1) of prompt \(indices[bad / S] + 1)")
            }
            for (k, index) in indices.enumerated() {
                let rows = (k * S)..<((k + 1) * S)
                // The first best and the first worst: ties go to the earlier sample.
                var best = rows.lowerBound, worst = rows.lowerBound
                for r in rows {
                    scoreSum += scores[r]
                    scored += 1
                    if scores[r] > scores[best] { best = r }
                    if scores[r] < scores[worst] { worst = r }
                }
                // Without the whitespace the model wrote after the generation prompt (the quickstart's
                // template puts "Assistant:" then the reply's own " 57"): the template adds its own
                // separator when the reward stage renders the pair, and "Assistant:  57" is not what
                // the policy's replies look like.
                func content(_ text: String) -> String {
                    String(String.UnicodeScalarView(text.unicodeScalars.drop { $0.properties.isWhitespace }))
                }
                let chosen = content(batch.responseTexts[best]), rejected = content(batch.responseTexts[worst])
                guard scores[best] - scores[worst] > config.minMargin, chosen != rejected else {
                    dropped += 1
                    continue
                }
                pairs.append(JudgedPairLine(prompt: prompts[index].source, chosen: chosen, rejected: rejected,
                                            chosenScore: scores[best], rejectedScore: scores[worst]))
            }
            let done = indices.last! + 1
            if done == prompts.count || (done / config.generationBatchSize) % 8 == 0 {
                let seconds = Date().timeIntervalSince(started)
                c.note(String(format: "judge_pairs: %d/%d prompts, %d pairs kept (%.0f s)", done, prompts.count, pairs.count, seconds))
            }
        }
        guard !pairs.isEmpty else {
            throw RunnerError("judge_pairs: no pair kept: every prompt's \(S) samples scored within min_margin \(config.minMargin) of each other "
                              + "(raise temperature or samples_per_prompt, or lower min_margin)")
        }
        // Held out: the first pairs, at most half of them so training keeps the rest.
        let held = min(config.validationPairs, pairs.count / 2)
        if held < config.validationPairs {
            c.note("judge_pairs: only \(pairs.count) pairs: \(held) held out for validation instead of \(config.validationPairs)")
        }
        let validation = Array(pairs.prefix(held)), training = Array(pairs.dropFirst(held))
        try FileManager.default.createDirectory(at: c.output, withIntermediateDirectories: true)
        let encoder = JSONLinesEncoder()
        for (name, lines) in [("prefs.jsonl", training), ("prefs_valid.jsonl", validation)] {
            let text = try lines.map { try encoder.line($0) + "\n" }.joined()
            try AtomicFile.write(Data(text.utf8), to: c.output.appendingPathComponent(name))
        }
        func mean(_ values: [Double]) -> Double { values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count) }
        return [
            "data/prefs.jsonl": Double(training.count),
            "data/prefs_valid.jsonl": Double(validation.count),
            "judge_pairs/prompts": Double(prompts.count),
            "judge_pairs/dropped": Double(dropped),
            "judge_pairs/mean_score": scoreSum / Double(max(scored, 1)),
            "judge_pairs/chosen_score": mean(pairs.map(\.chosenScore)),
            "judge_pairs/rejected_score": mean(pairs.map(\.rejectedScore)),
        ]
    }
}
