import Foundation
import Testing
import Checkpoints
import Evaluation
import NN
import TensorCore

@Suite struct PerplexityTests {
    let text = "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer"

    /// The model's own mean loss with the Hugging Face label shift; labels before `firstTarget` ignored.
    func referenceLoss(_ model: DecoderModel, _ ids: [Int32], firstTarget: Int = 1) -> Double {
        var labels = ids
        for t in 0..<firstTarget { labels[t] = ignoreIndex }
        return Double(Autograd.withoutGrad {
            let logits = model.logits(ids: ids, batch: 1, length: ids.count)
            return model.languageModelingLoss(logits: logits, labels: labels, batch: 1, length: ids.count)
        }.item)
    }

    @Test(arguments: ["hf-tiny-gpt2", "hf-tiny-llama"])
    func perplexityIsExpOfTheModelsMeanLoss(fixture: String) throws {
        let lm = try fixtureModel(fixture)
        let ids = lm.tokenizer.encode(text)
        let result = Perplexity.evaluate(model: lm.model, windows: [PerplexityWindow(ids: ids)], batchSize: 1)
        let loss = referenceLoss(lm.model, ids)
        #expect(result.tokenCount == ids.count - 1)
        #expect(abs(result.meanNLL - loss) < 1e-5)
        #expect(abs(result.perplexity - Double.exp(loss)) < 1e-5 * result.perplexity)
    }

    @Test(arguments: ["hf-tiny-gpt2", "hf-tiny-llama"])
    func batchingAndPaddingDoNotChangeTheResult(fixture: String) throws {
        let lm = try fixtureModel(fixture)
        let all = lm.tokenizer.encode(text + " " + text)
        // Windows of different lengths, some scored only after some context.
        let windows = [PerplexityWindow(ids: Array(all.prefix(40))), PerplexityWindow(ids: Array(all[3..<12])),
                       PerplexityWindow(ids: Array(all[5..<30]), firstTarget: 10), PerplexityWindow(ids: Array(all[7..<9])),
                       PerplexityWindow(ids: Array(all[20..<51]))]
        var single = PerplexityResult(totalNLL: 0, tokenCount: 0)
        for w in windows {
            let alone = Perplexity.evaluate(model: lm.model, windows: [w], batchSize: 1)
            #expect(abs(alone.meanNLL - referenceLoss(lm.model, w.ids, firstTarget: w.firstTarget)) < 1e-5)
            single.totalNLL += alone.totalNLL
            single.tokenCount += alone.tokenCount
        }
        for batchSize in [1, 2, 3, 5, 8] {
            let batched = Perplexity.evaluate(model: lm.model, windows: windows, batchSize: batchSize, padId: 3)
            #expect(batched.tokenCount == single.tokenCount)
            #expect(abs(batched.meanNLL - single.meanNLL) < 1e-5, "batch size \(batchSize)")
        }
    }

    @Test func slidingWindowsScoreEveryTokenOnce() {
        let tokens = (0..<10).map(Int32.init)
        let sliding = Perplexity.windows(of: tokens, maxLength: 4, stride: 2)
        #expect(sliding.map(\.ids) == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7], [6, 7, 8, 9]])
        #expect(sliding.map(\.firstTarget) == [1, 2, 2, 2])
        #expect(sliding.map(\.targetCount).reduce(0, +) == 9)

        let disjoint = Perplexity.windows(of: tokens, maxLength: 4, stride: 4)
        #expect(disjoint.map(\.ids) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]])
        #expect(disjoint.map(\.targetCount) == [3, 3, 1])
        #expect(Perplexity.windows(of: [], maxLength: 4, stride: 4).isEmpty)
    }

    @Test func nothingToScoreGivesZero() throws {
        let lm = try fixtureModel("hf-tiny-gpt2")
        let result = Perplexity.evaluate(model: lm.model, windows: [PerplexityWindow(ids: [5])], batchSize: 4)
        #expect(result.tokenCount == 0 && result.totalNLL == 0 && result.perplexity == 1)
    }
}
