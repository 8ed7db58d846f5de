import Foundation
import Testing
@testable import Alignment
import Datasets
import TensorCore

/// The items a stage's loss reports are the count its mean divides by, so the trainer's
/// item-weighted accumulation of micro-batches equals one batch of all of them.
@Suite struct StageItemsTests {
    /// `loss(all) == sum(loss(part) * items(part)) / sum(items(part))` and the items add up.
    func expectItemsWeightExactly(_ examples: [TokenizedExample], split: Int) throws {
        let collator = try Collator(padTokenID: pad, eosTokenID: eos)
        let model = smallModel(seed: 3)
        let all = Stages.languageModelingLoss(model, collator.collate(examples))
        let parts = [Array(examples[..<split]), Array(examples[split...])].map {
            Stages.languageModelingLoss(model, collator.collate($0))
        }
        #expect(parts[0].items != parts[1].items)
        #expect(all.items == parts[0].items + parts[1].items)
        let weighted = parts.map { Double($0.loss.item) * Double($0.items) }.reduce(0, +) / Double(all.items)
        #expect(abs(weighted - Double(all.loss.item)) < 1e-5, "\(weighted) vs \(all.loss.item)")
    }

    @Test func sftCompletionsOfDifferentLengths() throws {
        let builder = try ExampleBuilder(tokenizer: tinyTokenizer, eosTokenID: eos)
        let records: [DatasetRecord] = (0..<8).map { i in
            .promptCompletion(prompt: .text("Say it \(i) times:"), completion: .text(String(repeating: " again", count: 1 + 3 * (i % 4))))
        }
        let (examples, _) = try builder.examples(records)
        try expectItemsWeightExactly(examples, split: 2)
    }

    @Test func pretrainingRowsWhereEveryTokenIsALabel() throws {
        // The first token of a row is a label the shifted loss never scores: it is not an item.
        var rng = RNG(seed: 4)
        let examples = [3, 9, 14, 6].map { n in
            TokenizedExample(ids: (0..<n).map { _ in Int32(5 + rng.int(below: 400)) }, lossMask: [Bool](repeating: true, count: n))
        }
        let collator = try Collator(padTokenID: pad, eosTokenID: eos)
        let one = collator.collate([examples[1]])
        #expect(Stages.scoredLabels(one) == 8)
        try expectItemsWeightExactly(examples, split: 1)
    }
}
