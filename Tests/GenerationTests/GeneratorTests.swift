import Foundation
import Testing
import Generation
import NN
import TensorCore

/// A small random Llama-family model (GQA, RoPE) or GPT-2 model.
func tinyModel(_ family: ModelFamily, seed: UInt64 = 1) -> DecoderModel {
    let config = ModelConfig(family: family, vocabSize: 97, hiddenSize: 32, layers: 2, heads: 4,
                             kvHeads: family == .llama ? 2 : 4, intermediateSize: 64, maxPositions: 64)
    var rng = RNG(seed: seed)
    let model = DecoderModel(config: config, rng: &rng)
    // Larger weights than the 0.02 init so that sampling is not near-uniform.
    for t in model.arena.tensors where t.rank == 2 { for i in 0..<t.count { t.data[i] *= 20 } }
    return model
}

@Suite struct GeneratorTests {
    @Test(arguments: [ModelFamily.gpt2, .llama])
    func cacheAndNoCacheGiveTheSameGreedyTokens(family: ModelFamily) {
        let model = tinyModel(family)
        let gen = Generator(model: model)
        let prompts: [[Int32]] = [[5, 9, 13, 2], [7], [1, 2, 3, 4, 5, 6]]
        let options = SamplingOptions(maxNewTokens: 12)
        var r1 = RNG(seed: 0), r2 = RNG(seed: 0)
        let cached = gen.generate(prompts: prompts, options: options, rng: &r1)
        let plain = gen.generate(prompts: prompts, options: options, rng: &r2, useCache: false)
        #expect(cached.map(\.tokens) == plain.map(\.tokens))
        #expect(cached.allSatisfy { $0.tokens.count == 12 && $0.stopReason == .maxTokens })
        for (a, b) in zip(cached, plain) {
            #expect(zip(a.logProbs, b.logProbs).allSatisfy { abs($0 - $1) < 1e-4 })
        }
    }

    @Test(arguments: [ModelFamily.gpt2, .llama])
    func leftPaddingDoesNotChangeAPrompt(family: ModelFamily) {
        // A short prompt batched with a long one generates what it generates alone.
        let model = tinyModel(family, seed: 2)
        let gen = Generator(model: model)
        let options = SamplingOptions(maxNewTokens: 8)
        var r = RNG(seed: 0)
        let alone = gen.generate(prompts: [[11, 12]], options: options, rng: &r)[0].tokens
        let batched = gen.generate(prompts: [[1, 2, 3, 4, 5, 6, 7], [11, 12]], options: options, rng: &r)[1].tokens
        #expect(alone == batched)
    }

    @Test(arguments: [ModelFamily.gpt2, .llama])
    func perRowGeneratorsMakeARowIndependentOfItsBatch(family: ModelFamily) {
        // A prompt sampled alone with generator R gives the same tokens as in a batch of 4 (left
        // padded to the longest) with its own R; the single-RNG API gives other tokens there.
        let model = tinyModel(family, seed: 7)
        let gen = Generator(model: model)
        let options = SamplingOptions(temperature: 0.7, maxNewTokens: 16)
        let prompts: [[Int32]] = [[1, 2, 3, 4, 5, 6, 7, 8, 9], [11, 12], [20, 21, 22, 23], [30]]
        let seeds: [UInt64] = [101, 202, 303, 404]
        var rngs = seeds.map { RNG(seed: $0) }
        let batched = gen.generate(prompts: prompts, options: options, rngs: &rngs)
        for (k, prompt) in prompts.enumerated() {
            var alone = [RNG(seed: seeds[k])]
            let single = gen.generate(prompts: [prompt], options: options, rngs: &alone)[0]
            #expect(single.tokens == batched[k].tokens)
            #expect(single.tokens.count == 16)
            #expect(zip(single.logProbs, batched[k].logProbs).allSatisfy { abs($0 - $1) < 1e-4 })
            // Each generator advanced exactly as far as its row drew.
            #expect(alone[0] == rngs[k])
        }
        // The rows of a reordered batch keep their tokens.
        var reversed = seeds.reversed().map { RNG(seed: $0) }
        let backwards = gen.generate(prompts: prompts.reversed(), options: options, rngs: &reversed)
        #expect(backwards.reversed().map(\.tokens) == batched.map(\.tokens))
        // The single-RNG API keeps its behaviour: one stream for the batch, drawn row by row.
        var one = RNG(seed: 101)
        let shared = gen.generate(prompts: prompts, options: options, rng: &one)
        #expect(shared.map(\.tokens) != batched.map(\.tokens))
    }

    @Test func samplingIsSeededAndStopsAtStopTokens() {
        let model = tinyModel(.llama, seed: 3)
        let gen = Generator(model: model)
        var options = SamplingOptions(temperature: 1.0, topK: 20, topP: 0.9, maxNewTokens: 30)
        var a = RNG(seed: 42), b = RNG(seed: 42), c = RNG(seed: 43)
        let prompts: [[Int32]] = [[3, 4], [5, 6, 7]]
        let x = gen.generate(prompts: prompts, options: options, rng: &a)
        #expect(x.map(\.tokens) == gen.generate(prompts: prompts, options: options, rng: &b).map(\.tokens))
        #expect(x.map(\.tokens) != gen.generate(prompts: prompts, options: options, rng: &c).map(\.tokens))
        // Stop at the first occurrence of a token the unconstrained run produced.
        let stop = x[0].tokens[4]
        options.stopTokens = [stop]
        var d = RNG(seed: 42)
        let y = gen.generate(prompts: prompts, options: options, rng: &d)
        let firstIndex = x[0].tokens.firstIndex(of: stop)!
        #expect(y[0].tokens == Array(x[0].tokens[...firstIndex]))
        #expect(y[0].stopReason == .stopToken)
    }

    @Test func topKOneIsGreedy() {
        let model = tinyModel(.gpt2, seed: 4)
        let gen = Generator(model: model)
        var r1 = RNG(seed: 1), r2 = RNG(seed: 2)
        let greedy = gen.generate(prompts: [[8, 9]], options: SamplingOptions(maxNewTokens: 10), rng: &r1)
        let k1 = gen.generate(prompts: [[8, 9]], options: SamplingOptions(temperature: 0.8, topK: 1, maxNewTokens: 10), rng: &r2)
        #expect(greedy[0].tokens == k1[0].tokens)
    }

    @Test func stopStringsCutTheText() {
        let model = tinyModel(.llama, seed: 5)
        // A decoder that spells each token as a letter.
        let decode: ([Int32]) -> String = { ids in String(ids.map { Character(UnicodeScalar(UInt8(97 + Int($0) % 26))) }) }
        let gen = Generator(model: model, decode: decode)
        var r = RNG(seed: 0)
        let free = gen.generate(prompts: [[1, 2]], options: SamplingOptions(maxNewTokens: 12), rng: &r)[0]
        let needle = String(free.text.dropFirst(3).prefix(2))
        var r2 = RNG(seed: 0)
        let cut = gen.generate(prompts: [[1, 2]], options: SamplingOptions(maxNewTokens: 12, stopStrings: [needle]), rng: &r2)[0]
        #expect(cut.stopReason == .stopString)
        #expect(!cut.text.contains(needle) && free.text.hasPrefix(cut.text))
    }

    @Test func contextLimitIsReported() {
        let model = tinyModel(.gpt2, seed: 6)
        var r = RNG(seed: 0)
        let out = Generator(model: model).generate(prompts: [Array(repeating: 3, count: 60)], options: SamplingOptions(maxNewTokens: 10), rng: &r)
        #expect(out[0].tokens.count == 4 && out[0].stopReason == .contextFull)
    }

    @Test(arguments: [ModelFamily.gpt2, .llama])
    func fewRowKernelDecodesAsBLASDoes(family: ModelFamily) {
        // Decoding steps (5 rows) take the few-row kernel; forced to BLAS the model gives the same
        // greedy tokens, and log-probs and logits that differ only by float32 summation order
        // (relative 1e-4: products of length 32 to 64, through 2 layers of weights scaled 20x).
        let model = tinyModel(family, seed: 5)
        let gen = Generator(model: model)
        let prompts: [[Int32]] = [[5, 9, 13, 2], [7], [1, 2, 3, 4, 5, 6], [40, 41], [96, 0, 50]]
        let options = SamplingOptions(maxNewTokens: 16)
        var r1 = RNG(seed: 0), r2 = RNG(seed: 0)
        let fast = gen.generate(prompts: prompts, options: options, rng: &r1)
        let blas = SkinnyMatmul.$isEnabled.withValue(false) { gen.generate(prompts: prompts, options: options, rng: &r2) }
        #expect(fast.map(\.tokens) == blas.map(\.tokens))
        for (a, b) in zip(fast, blas) {
            #expect(zip(a.logProbs, b.logProbs).allSatisfy { abs($0 - $1) <= 1e-4 * (1 + abs($1)) })
        }
        // One decoding step's logits after a prompt of 3 x 4 tokens (prefilled through BLAS both times).
        func stepLogits() -> [Float] {
            Autograd.withoutGrad {
                let cache = model.makeCache(batch: 3, capacity: 8)
                _ = model.hiddenStates(ids: (0..<12).map { Int32($0 * 7 % 97) }, batch: 3, length: 4, cache: cache)
                let h = model.hiddenStates(ids: [3, 30, 60], batch: 3, length: 1, cache: cache)
                return model.inferenceLogits(hidden: h).values
            }
        }
        let fastLogits = stepLogits(), blasLogits = SkinnyMatmul.$isEnabled.withValue(false) { stepLogits() }
        #expect(fastLogits.count == 3 * 97)
        let worst = zip(fastLogits, blasLogits).map { abs($0 - $1) / (1 + abs($1)) }.max()!
        #expect(worst <= 1e-4, "worst relative logit difference \(worst)")
    }
}
