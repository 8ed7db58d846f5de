import Checkpoints
import Datasets
import Foundation
import NN
import TensorCore
import Tokenizers

/// The mean and standard deviation of a reward model's scores, as its reward stage measured them
/// (`reward_stats.json` beside the exported model: `{"mean": m, "std": s, "split": "validation"}`).
public struct RewardStats: Sendable, Equatable {
    /// Mean score.
    public var mean: Double
    /// Standard deviation of the scores (positive).
    public var std: Double
    /// The split the statistics were measured on, when the file says.
    public var split: String?

    /// The name of the file a reward stage writes.
    public static let fileName = "reward_stats.json"

    /// Statistics with the given values.
    public init(mean: Double, std: Double, split: String? = nil) {
        self.mean = mean
        self.std = std
        self.split = split
    }

    /// Reads a `reward_stats.json`.
    ///
    /// - Throws: `EvaluationError` naming the file (and the key) when it is missing, is not a JSON
    ///   object, lacks a numeric `mean` or `std`, or has a `std` that is not a positive finite number.
    public static func read(_ url: URL) throws -> RewardStats {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw EvaluationError("\(url.path): not found (the reward stage writes it beside its model; "
                                  + "score without normalization, or train the reward model again)")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw EvaluationError("\(url.path): expected a JSON object {\"mean\", \"std\", \"split\"}")
        }
        func number(_ key: String) throws -> Double {
            guard let value = object[key] as? NSNumber else {
                throw EvaluationError("\(url.path): \(key): expected a number, found \(object[key].map { "\($0)" } ?? "nothing")")
            }
            return value.doubleValue
        }
        let mean = try number("mean"), std = try number("std")
        guard mean.isFinite else { throw EvaluationError("\(url.path): mean: expected a finite number, found \(mean)") }
        guard std.isFinite, std > 0 else {
            throw EvaluationError("\(url.path): std: expected a positive number (scores are divided by it), found \(std)")
        }
        var split: String?
        if let value = object["split"], !(value is NSNull) {
            guard let text = value as? String else { throw EvaluationError("\(url.path): split: expected a string") }
            split = text
        }
        return RewardStats(mean: mean, std: std, split: split)
    }
}

/// A reward model as a judge: the score head at the last real token of prompt + response.
///
/// A pair is tokenized as its reward stage tokenized preference pairs: a text prompt's tokens,
/// then the response's and EOS; a conversational prompt rendered with the model's chat template
/// with the response as the assistant turn after it. A sequence longer than the model's context
/// keeps its end (where the score is read). Items are scored `batchSize` at a time, right-padded
/// with `generationPadId`, without autograd; padding comes after every real token, so a batched
/// score equals the score of the item alone.
///
/// With `normalization`, a score `r` becomes `(r - mean) / std`; with `clip`, it is then limited
/// to `[-clip, clip]`.
///
/// PPO builds one from a reward stage's output: `try RewardModelJudge.load(directory: "<stage>/model", normalize: true)`.
public final class RewardModelJudge: RewardFunction {
    public let name = "reward_model"
    /// The reward model (with its score head), tokenizer and template.
    public let languageModel: LanguageModel
    /// Applied to raw scores when set.
    public let normalization: RewardStats?
    /// Bound on the (normalized) score's magnitude when set.
    public let clip: Double?
    /// Sequences per forward pass.
    public let batchSize: Int
    private let builder: ExampleBuilder

    /// A judge over a loaded reward model.
    ///
    /// - Throws: `EvaluationError` when the model has no score head or no EOS token, `clip` is
    ///   not positive, or `batchSize` < 1.
    public init(model: LanguageModel, normalization: RewardStats? = nil, clip: Double? = nil, batchSize: Int = 8) throws {
        guard model.model.scoreHead != nil else {
            throw EvaluationError("\(model.source): the model has no score head (score.weight); a reward model is the "
                                  + "model/ directory a reward stage exports")
        }
        guard let eos = model.eosTokenId else {
            throw EvaluationError("\(model.source): neither the tokenizer nor config.json names an EOS token, which ends every scored reply")
        }
        if let clip, !(clip > 0 && clip.isFinite) {
            throw EvaluationError("clip: expected a positive number, found \(clip)")
        }
        guard batchSize >= 1 else { throw EvaluationError("batch_size: expected at least 1, found \(batchSize)") }
        do {
            builder = try ExampleBuilder(tokenizer: model.tokenizer, template: model.chatTemplate, eosTokenID: eos)
        } catch {
            throw EvaluationError("\(model.source): \(error)")
        }
        languageModel = model
        self.normalization = normalization
        self.clip = clip
        self.batchSize = batchSize
    }

    /// Loads the reward model exported to `directory` (a reward stage's `model/`), with the
    /// statistics of its `reward_stats.json` when `normalize` is set.
    ///
    /// - Throws: the loader's error for a missing or broken model; `EvaluationError` naming
    ///   `reward_stats.json` when `normalize` is set and the file is missing or invalid.
    public static func load(directory: String, normalize: Bool = false, clip: Double? = nil,
                            batchSize: Int = 8) throws -> RewardModelJudge {
        let model = try LanguageModel.load(directory)
        let stats = normalize
            ? try RewardStats.read(URL(fileURLWithPath: directory).appendingPathComponent(RewardStats.fileName)) : nil
        return try RewardModelJudge(model: model, normalization: stats, clip: clip, batchSize: batchSize)
    }

    /// The token ids the score is read from: the pair as the reward stage built it, cut to the
    /// model's context by keeping the end.
    public func tokens(for item: JudgeItem) throws -> [Int32] {
        let completion: TextOrChat
        switch item.prompt {
        case .text: completion = .text(item.response)
        case .chat: completion = .chat([ChatMessage(role: "assistant", content: item.response)])
        }
        let ids: [Int32]
        do {
            ids = try builder.example(for: .promptCompletion(prompt: item.prompt, completion: completion)).ids
        } catch {
            throw EvaluationError("reward model \(languageModel.source): \(error)")
        }
        return Array(ids.suffix(languageModel.model.config.maxPositions))
    }

    /// The score head's outputs, before normalization and clipping.
    public func rawScores(_ items: [JudgeItem]) throws -> [Double] {
        let sequences = try items.map(tokens(for:))
        let model = languageModel.model
        let pad = languageModel.generationPadId
        var out = [Double](repeating: 0, count: items.count)
        // Longest first, so each batch pads little.
        let order = sequences.indices.sorted { sequences[$0].count > sequences[$1].count }
        for start in stride(from: 0, to: order.count, by: batchSize) {
            let batch = Array(order[start..<min(start + batchSize, order.count)])
            let B = batch.count, T = sequences[batch[0]].count
            var ids = [Int32](repeating: pad, count: B * T)
            var mask = [Float](repeating: 0, count: B * T)
            for (b, index) in batch.enumerated() {
                let row = sequences[index]
                ids.replaceSubrange((b * T)..<(b * T + row.count), with: row)
                for t in 0..<row.count { mask[b * T + t] = 1 }
            }
            let rewards = Autograd.withoutGrad {
                model.rewards(ids: ids, batch: B, length: T, attentionMask: mask).values
            }
            for (b, index) in batch.enumerated() { out[index] = Double(rewards[b]) }
        }
        return out
    }

    /// Normalized (when asked) and clipped (when asked) scores.
    public func scores(_ items: [JudgeItem]) throws -> [Double] {
        try rawScores(items).map(adjust)
    }

    /// A raw score normalized and clipped as this judge is configured to.
    public func adjust(_ raw: Double) -> Double {
        var score = raw
        if let normalization { score = (score - normalization.mean) / normalization.std }
        if let clip { score = min(max(score, -clip), clip) }
        return score
    }
}
