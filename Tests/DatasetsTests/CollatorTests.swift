import Datasets
import Testing
import Tokenizers

@Suite struct CollatorTests {
    let collator = try! Collator(padTokenID: Tiny.pad, eosTokenID: Tiny.eos)
    let ignore = Batch.ignoreIndex

    @Test func rightPaddingForTraining() throws {
        let a = TokenizedExample(ids: [10, 11, 12, 0], lossMask: [false, true, true, true])
        let b = TokenizedExample(ids: [20, 0], lossMask: [true, true])
        let batch = collator.collate([a, b])
        #expect(batch.rows == 2 && batch.length == 4 && batch.padding == .right)
        #expect(batch.ids == [10, 11, 12, 0, /**/ 20, 0, 3, 3])
        #expect(batch.attentionMask == [1, 1, 1, 1, /**/ 1, 1, 0, 0])
        #expect(batch.labels == [ignore, 11, 12, 0, /**/ 20, 0, ignore, ignore])
        #expect(batch.positionIDs == [0, 1, 2, 3, /**/ 0, 1, 1, 1])
        #expect(batch.lengths == [4, 2])
        #expect(batch.lastTokenIndex(row: 0) == 3 && batch.lastTokenIndex(row: 1) == 1)
    }

    @Test func padToAMultipleOfEight() throws {
        let collator8 = try Collator(padTokenID: Tiny.pad, eosTokenID: Tiny.eos, padToMultipleOf: 8)
        let batch = collator8.collate([TokenizedExample(ids: Array(repeating: 5, count: 9), lossMask: Array(repeating: true, count: 9))])
        #expect(batch.length == 16)
        #expect(batch.ids.suffix(7).allSatisfy { $0 == Tiny.pad } && batch.labels.suffix(7).allSatisfy { $0 == ignore })
        #expect(batch.attentionMask.reduce(0, +) == 9)
    }

    @Test func leftPaddingForGenerationWithPositionIDs() throws {
        let batch = collator.collatePrompts([[7, 8, 9], [5]])
        #expect(batch.padding == .left && batch.length == 3)
        #expect(batch.ids == [7, 8, 9, /**/ 3, 3, 5])
        #expect(batch.attentionMask == [1, 1, 1, /**/ 0, 0, 1])
        #expect(batch.positionIDs == [0, 1, 2, /**/ 0, 0, 0])
        #expect(batch.labels.allSatisfy { $0 == ignore })
        #expect(batch.lastTokenIndex(row: 1) == 2)
        // cumsum(mask) - 1 clamped at 0, the rule the models use.
        for row in 0..<batch.rows {
            var sum: Float = 0
            for t in 0..<batch.length {
                sum += batch.attentionMask[row * batch.length + t]
                #expect(batch.positionIDs[row * batch.length + t] == Int32(max(sum - 1, 0)))
            }
        }
    }

    @Test func pairsBecomeChosenRowsThenRejectedRows() throws {
        let builder = try ExampleBuilder(tokenizer: Tiny.tokenizer, eosTokenID: Tiny.eos)
        let pairs = try [
            builder.pair(for: .preference(prompt: .text("Q1"), chosen: .text(" good"), rejected: .text(" bad answer"), margin: 2)),
            builder.pair(for: .preference(prompt: .text("Question two"), chosen: .text(" fine"), rejected: .text(" no"), margin: nil)),
        ]
        let batch = collator.collate(pairs)
        #expect(batch.pairs == 2 && batch.sequences.rows == 4)
        #expect(batch.margins == [2, 0])
        let rows = pairs.map(\.chosenSequence) + pairs.map(\.rejectedSequence)
        let T = batch.sequences.length
        for (r, row) in rows.enumerated() {
            #expect(Array(batch.sequences.ids[r * T..<r * T + row.count]) == row.ids)
            let labels = Array(batch.sequences.labels[r * T..<(r + 1) * T])
            let expected = (0..<T).map { t in t < row.count && row.lossMask[t] ? row.ids[t] : ignore }
            #expect(labels == expected)
        }
        #expect(collator.collate([pairs[1]]).margins == nil)
    }

    @Test func padMustDifferFromEOS() throws {
        #expect(throws: DatasetError.self) { try Collator(padTokenID: 0, eosTokenID: 0) }
        #expect(throws: DatasetError.self) { try Collator(padTokenID: 3, eosTokenID: 0, padToMultipleOf: 0) }
    }

    @Test func padTokenHelperPicksASpareSpecialToken() throws {
        // The fixture has no PAD of its own but an unused "<|pad|>".
        #expect(try Collator.padTokenID(for: Tiny.tokenizer, eosTokenID: Tiny.eos, template: .chatML) == Tiny.pad)
        // With only EOS and the ChatML markers, there is nothing spare.
        let bare = try Tokenizer(tokens: ["a", "b"], merges: [],
                                 addedTokens: [AddedToken(id: 2, content: "<|endoftext|>"), AddedToken(id: 3, content: "<|im_start|>"),
                                               AddedToken(id: 4, content: "<|im_end|>")],
                                 eosTokenID: 2, padTokenID: 2)
        do {
            _ = try Collator.padTokenID(for: bare, template: .chatML)
            Issue.record("no error")
        } catch {
            #expect(error.description.contains("add one (for example \"<|pad|>\")"))
        }
        // Without a template to protect, a spare special token serves.
        #expect(try Collator.padTokenID(for: bare) == 3)
    }

    @Test func packingRoundTripsTheTokens() throws {
        let builder = try ExampleBuilder(tokenizer: Tiny.tokenizer, eosTokenID: Tiny.eos)
        let texts = ["The first document.", "A second, somewhat longer document with more words in it.", "Third.", "Fourth one here."]
        let (examples, _) = try builder.examples(texts.map { .text($0) })
        let rows = try pack(examples, length: 8)
        let all = examples.flatMap(\.ids)
        #expect(rows.flatMap(\.ids) == all)
        #expect(rows.dropLast().allSatisfy { $0.count == 8 } && rows.last!.count == (all.count - 1) % 8 + 1)
        #expect(rows.allSatisfy { $0.lossMask.allSatisfy { $0 } })
        #expect(all.filter { $0 == Tiny.eos }.count == texts.count)  // one EOS after each document
        #expect(Tiny.tokenizer.decode(all) == texts.map { $0 + "<|endoftext|>" }.joined())
        #expect(throws: DatasetError.self) { try pack(examples, length: 0) }

        let batch = collator.collate(rows)
        #expect(batch.attentionMask.reduce(0, +) == Float(all.count))
    }
}
