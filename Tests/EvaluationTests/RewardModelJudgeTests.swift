import Checkpoints
import Evaluation
import Foundation
import NN
import TensorCore
import Testing
import Tokenizers

@Suite struct RewardModelJudgeTests {
    /// The tiny Llama fixture with a seeded score head, exported as a reward stage exports it, with
    /// `stats` (when given) as its reward_stats.json.
    func rewardModelDirectory(_ scratch: Scratch, stats: String?) throws -> URL {
        let lm = try fixtureModel("hf-tiny-llama")
        var rng = RNG(seed: 42)
        lm.model.addScoreHead(rng: &rng)
        let directory = scratch.directory.appendingPathComponent("model")
        try lm.save(to: directory)
        if let stats { try scratch.write("model/reward_stats.json", stats) }
        return directory
    }

    let items = [
        JudgeItem(prompt: "What is 47 + 38?", response: "85"),
        JudgeItem(prompt: "To be, or not to be, that is the question:", response: " whether 'tis nobler in the mind to suffer"),
        JudgeItem(prompt: "Hi", response: ""),
        JudgeItem(prompt: .chat([ChatMessage(role: "user", content: "Sort the digits: 3 1 2")]), response: "1 2 3"),
        JudgeItem(prompt: "A longer prompt, so that the batch has rows of three lengths", response: "ok"),
    ]

    @Test func batchedScoresEqualEachItemScoredAloneAtItsLastToken() throws {
        let scratch = try Scratch()
        let judge = try RewardModelJudge.load(directory: try rewardModelDirectory(scratch, stats: nil).path, batchSize: 3)
        let lm = judge.languageModel
        let batched = try judge.scores(items)
        #expect(batched.count == items.count)
        for (item, score) in zip(items, batched) {
            let alone = try judge.scores([item])[0]
            #expect(abs(score - alone) < 1e-5, "\(item)")
            // The reward stage's layout, by hand: a text prompt's tokens, the response's, then EOS.
            if case .text(let prompt) = item.prompt {
                let ids = lm.tokenizer.encode(prompt, allowSpecial: false) + lm.tokenizer.encode(item.response, allowSpecial: false) + [2]
                #expect(try judge.tokens(for: item) == ids)
                let direct = Autograd.withoutGrad { lm.model.rewards(ids: ids, batch: 1, length: ids.count).item }
                #expect(abs(alone - Double(direct)) < 1e-5, "\(item)")
            }
        }
        // A conversational prompt is the whole conversation rendered by the template.
        let chat = try lm.chatTemplate.encode([ChatMessage(role: "user", content: "Sort the digits: 3 1 2"),
                                              ChatMessage(role: "assistant", content: "1 2 3")], with: lm.tokenizer).ids
        #expect(try judge.tokens(for: items[3]) == chat)
        // The scores are not all one value, so the comparison above could fail.
        #expect(Set(batched.map { ($0 * 1e4).rounded() }).count > 1)
    }

    @Test func normalizationAppliesTheFilesStatsExactlyAndClippingBoundsThem() throws {
        let scratch = try Scratch()
        let directory = try rewardModelDirectory(scratch, stats: #"{"mean": 0.25, "split": "validation", "std": 2.0}"#).path
        let raw = try RewardModelJudge.load(directory: directory, batchSize: 2).scores(items)
        let normalized = try RewardModelJudge.load(directory: directory, normalize: true, batchSize: 2)
        #expect(normalized.normalization == RewardStats(mean: 0.25, std: 2, split: "validation"))
        #expect(try normalized.scores(items) == raw.map { ($0 - 0.25) / 2.0 })
        #expect(try normalized.rawScores(items) == raw)

        let clip = 0.5 * raw.map { abs(($0 - 0.25) / 2.0) }.max()!
        let clipped = try RewardModelJudge.load(directory: directory, normalize: true, clip: clip, batchSize: 2).scores(items)
        #expect(clipped == raw.map { min(max(($0 - 0.25) / 2.0, -clip), clip) })
        #expect(clipped.contains { abs($0) == clip })
        #expect(normalized.adjust(4.25) == 2)
    }

    @Test func missingOrBadStatisticsAreClearErrors() throws {
        let scratch = try Scratch()
        let directory = try rewardModelDirectory(scratch, stats: nil)
        let file = directory.appendingPathComponent("reward_stats.json").path
        func message(_ body: () throws -> Void) -> String {
            do { try body() } catch { return "\(error)" }
            return "no error"
        }
        // Raw scores need no file.
        #expect(throws: Never.self) { try RewardModelJudge.load(directory: directory.path) }
        #expect(message { _ = try RewardModelJudge.load(directory: directory.path, normalize: true) }.hasPrefix("\(file): not found"))
        for (text, expected) in [(#"{"mean": 1, "std": 0}"#, "\(file): std: expected a positive number (scores are divided by it), found 0.0"),
                                 (#"{"std": 1}"#, "\(file): mean: expected a number, found nothing"),
                                 (#"[1, 2]"#, "\(file): expected a JSON object {\"mean\", \"std\", \"split\"}")] {
            try scratch.write("model/reward_stats.json", text)
            #expect(message { _ = try RewardModelJudge.load(directory: directory.path, normalize: true) } == expected)
        }
        #expect(message { _ = try RewardModelJudge.load(directory: directory.path, clip: 0) } == "clip: expected a positive number, found 0.0")
    }

    @Test func aModelWithoutAScoreHeadIsRefused() throws {
        let lm = try fixtureModel("hf-tiny-gpt2")
        #expect(throws: EvaluationError.self) { try RewardModelJudge(model: lm) }
    }
}
