import Foundation
import Testing
import Generation
import NN
import TensorCore

@Suite struct ContinuousBatchingTests {
    /// 12 sequences: 6 prompts of different lengths, two samples each (adjacent, as rollouts order them).
    static let prompts: [[Int32]] = [[5, 9, 13, 2], [7], [1, 2, 3, 4, 5, 6], [40, 41], [96, 0, 50], [60, 61, 62, 63, 64]]
        .flatMap { [$0, $0] }
    static let seeds: [UInt64] = (0..<12).map { 1000 + UInt64($0) * 17 }
    /// Stop tokens that end the sequences at many different lengths.
    static let options = SamplingOptions(temperature: 1.0, maxNewTokens: 20, stopTokens: [3, 11, 17, 29, 41, 53, 67, 71, 83])

    func plain(_ gen: Generator) -> (out: [GeneratedSequence], rngs: [RNG]) {
        var rngs = Self.seeds.map { RNG(seed: $0) }
        let out = gen.generate(prompts: Self.prompts, options: Self.options, rngs: &rngs)
        return (out, rngs)
    }

    func continuous(_ gen: Generator, _ batching: BatchingOptions, order: [Int]? = nil) -> (out: [GeneratedSequence], rngs: [RNG]) {
        let order = order ?? Array(Self.prompts.indices)
        var rngs = order.map { RNG(seed: Self.seeds[$0]) }
        let out = gen.generate(prompts: order.map { Self.prompts[$0] }, options: Self.options, rngs: &rngs, batching: batching)
        // Back to the original order.
        var sequences = [GeneratedSequence?](repeating: nil, count: order.count)
        var generators = [RNG](repeating: RNG(seed: 0), count: order.count)
        for (k, i) in order.enumerated() {
            sequences[i] = out[k]
            generators[i] = rngs[k]
        }
        return (sequences.map { $0! }, generators)
    }

    func expectSame(_ a: (out: [GeneratedSequence], rngs: [RNG]), _ b: (out: [GeneratedSequence], rngs: [RNG])) {
        #expect(a.out.map(\.tokens) == b.out.map(\.tokens))
        #expect(a.out.map(\.stopReason) == b.out.map(\.stopReason))
        #expect(a.rngs == b.rngs)
        for (x, y) in zip(a.out, b.out) {
            #expect(x.logProbs.count == y.logProbs.count)
            #expect(zip(x.logProbs, y.logProbs).allSatisfy { abs($0 - $1) <= 1e-4 * (1 + abs($1)) })
        }
    }

    @Test(arguments: [ModelFamily.gpt2, .llama])
    func slotsRefilledGiveEachSequenceThePlainBatchTokens(family: ModelFamily) {
        let gen = Generator(model: tinyModel(family, seed: 11))
        let reference = plain(gen)
        // The fixture exercises refills: sequences stop at many lengths, some at the budget.
        let lengths = reference.out.map(\.tokens.count)
        #expect(Set(lengths).count >= 4)
        #expect(reference.out.contains { $0.stopReason == .stopToken } && reference.out.contains { $0.stopReason == .maxTokens })
        for slots in [1, 3, 5, 12, 16] {
            expectSame(continuous(gen, BatchingOptions(slots: slots)), reference)
        }
        // Refilling at every free slot, and the prompts in another order, change nothing.
        expectSame(continuous(gen, BatchingOptions(slots: 4, refillWhenFree: 1)), reference)
        expectSame(continuous(gen, BatchingOptions(slots: 4), order: Array(Self.prompts.indices.reversed())), reference)
    }

    @Test(arguments: [ModelFamily.gpt2, .llama])
    func sharedPrefillGivesTheSamplesOfUnsharedPrefills(family: ModelFamily) {
        let gen = Generator(model: tinyModel(family, seed: 12))
        for slots in [2, 6, 12] {
            let shared = continuous(gen, BatchingOptions(slots: slots, sharePrefill: true))
            let unshared = continuous(gen, BatchingOptions(slots: slots, sharePrefill: false))
            expectSame(shared, unshared)
            // The two samples of a prompt share a prefill but not their tokens.
            #expect(stride(from: 0, to: 12, by: 2).contains { shared.out[$0].tokens != shared.out[$0 + 1].tokens })
        }
        expectSame(continuous(gen, BatchingOptions(slots: 3)), plain(gen))
    }

    @Test func greedyStopStringsAndTheContextLimit() {
        // Greedy decoding, a stop string and a prompt that leaves 4 positions of the context of 64.
        let model = tinyModel(.gpt2, seed: 13)
        let decode: ([Int32]) -> String = { ids in String(ids.map { Character(UnicodeScalar(UInt8(97 + Int($0) % 26))) }) }
        let gen = Generator(model: model, decode: decode)
        var r = RNG(seed: 0)
        let free = gen.generate(prompts: [[1, 2]], options: SamplingOptions(maxNewTokens: 12), rng: &r)[0]
        let needle = String(free.text.dropFirst(3).prefix(2))
        let options = SamplingOptions(maxNewTokens: 12, stopStrings: [needle])
        let prompts: [[Int32]] = [[1, 2], Array(repeating: 3, count: 60), [4, 5, 6]]
        var rngs = prompts.map { _ in RNG(seed: 0) }
        let out = gen.generate(prompts: prompts, options: options, rngs: &rngs, batching: BatchingOptions(slots: 2))
        #expect(out[0].stopReason == .stopString && free.text.hasPrefix(out[0].text) && !out[0].text.contains(needle))
        #expect(out[1].tokens.count <= 4 && [.contextFull, .stopString].contains(out[1].stopReason))
        for (k, prompt) in prompts.enumerated() {
            var alone = [RNG(seed: 0)]
            let single = gen.generate(prompts: [prompt], options: options, rngs: &alone)[0]
            #expect(out[k].tokens == single.tokens && out[k].text == single.text && out[k].stopReason == single.stopReason)
        }
        // Without the stop string the long prompt runs into the context.
        var more = prompts.map { _ in RNG(seed: 0) }
        let unstopped = gen.generate(prompts: prompts, options: SamplingOptions(maxNewTokens: 12), rngs: &more,
                                     batching: BatchingOptions(slots: 2))
        #expect(unstopped[1].tokens.count == 4 && unstopped[1].stopReason == .contextFull)
        #expect(unstopped[0].tokens.count == 12 && unstopped[0].stopReason == .maxTokens)
    }

    @Test func copyPositionsMovesKeysAndValuesBetweenCaches() {
        // A prompt prefilled into row 1 of one cache and copied to row 0 of another, right-aligned
        // after 3 masked positions, decodes the next token as the original cache does.
        let model = tinyModel(.llama, seed: 14)
        let prompt: [Int32] = [8, 9, 10, 11]
        Autograd.withoutGrad {
            let a = model.makeCache(batch: 2, capacity: 8)
            _ = model.hiddenStates(ids: [1, 2, 3, 4] + prompt, batch: 2, length: 4, cache: a)
            let b = model.makeCache(batch: 1, capacity: 9)
            b.copyPositions(from: a, srcRow: 1, srcStart: 0, count: 4, dstRow: 0, dstStart: 3)
            b.setLength(7)
            #expect(b.length == 7)
            let viaA = model.inferenceLogits(hidden: model.hiddenStates(ids: [5, 12], batch: 2, length: 1, cache: a)).values
            let viaB = model.inferenceLogits(hidden: model.hiddenStates(ids: [12], batch: 1, length: 1,
                                                                        attentionMask: [0, 0, 0, 1, 1, 1, 1, 1],
                                                                        positions: [4], cache: b)).values
            let V = model.config.vocabSize
            #expect(zip(viaA[V...], viaB).allSatisfy { abs($0 - $1) <= 1e-4 * (1 + abs($0)) })
            #expect(viaB.contains { $0 != 0 })
        }
    }
}
