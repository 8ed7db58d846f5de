import Testing
@testable import NN
import TensorCore

@Suite struct InferencePrecisionTests {
    /// The fixture with every copied weight replaced by its stored (dequantized) values, in fp32.
    func dequantizedTwin(_ name: String, of model: DecoderModel) throws -> DecoderModel {
        let twin = try Fixture(name).model
        let copies = try #require(model.inferenceWeights).copies
        let byName = Dictionary(uniqueKeysWithValues: zip(model.arena.entries, model.arena.tensors).map { ($0.name, $1) })
        for (entry, t) in zip(twin.arena.entries, twin.arena.tensors) {
            // A tied embedding is copied as the LM head, but the lookup reads the fp32 rows.
            guard !entry.name.hasSuffix("wte.weight") && !entry.name.hasSuffix("embed_tokens.weight"),
                  let w = byName[entry.name], let copy = copies[ObjectIdentifier(w)] else { continue }
            t.data.update(from: copy.matrix.dequantized().data, count: t.count)
        }
        return twin
    }

    // Tolerances: the copy's logits equal fp32 logits over its own stored weights up to summation
    // order (1e-4 of the logit scale); against transformers' fp32 logits, bf16 within 1% and Q8_0
    // within 2% of the largest logit (the rounding of the weights themselves).
    @Test(arguments: ["hf-tiny-gpt2", "hf-tiny-llama"], [WeightPrecision.bf16, .q8_0])
    func copiesGiveTheLogitsOfTheirStoredWeights(name: String, precision: WeightPrecision) throws {
        let f = try Fixture(name)
        let reference = try f.expected.tensor("logits").values
        let fp32 = Autograd.withoutGrad { f.model.logits(ids: f.ids, batch: f.batch, length: f.length).values }
        f.model.setInferencePrecision(precision, scope: .everyForward)
        #expect(f.model.inferenceWeights?.keptInFP32 == [])
        let low = Autograd.withoutGrad { f.model.logits(ids: f.ids, batch: f.batch, length: f.length).values }
        // The blocks' products (hidden states, before the head, whose kernel LowPrecisionTests checks).
        let twin = try dequantizedTwin(name, of: f.model)
        let stored = Autograd.withoutGrad { twin.hiddenStates(ids: f.ids, batch: f.batch, length: f.length).values }
        let hidden = Autograd.withoutGrad { f.model.hiddenStates(ids: f.ids, batch: f.batch, length: f.length).values }
        let scale = reference.map(abs).max()!, hiddenScale = stored.map(abs).max()!
        let kernel = zip(hidden, stored).map { abs($0 - $1) }.max()!
        #expect(kernel <= 1e-4 * hiddenScale, "\(name) \(precision): copy vs its stored weights in fp32: \(kernel)")
        let rounding = zip(low, reference).map { abs($0 - $1) }.max()!
        let tolerance: Float = precision == .bf16 ? 0.01 : 0.02
        #expect(rounding <= tolerance * scale, "\(name) \(precision): max |logit - transformers| \(rounding) (scale \(scale))")
        #expect(rounding > 0, "\(name) \(precision): the copy was not used")
        print("\(name) \(precision): max |logit diff| against transformers' fp32 \(rounding), largest logit \(scale)")

        // A forward that records gradients never takes the copy (training stays fp32).
        let recorded = f.model.logits(ids: f.ids, batch: f.batch, length: f.length).values
        let recordedError = zip(recorded, fp32).map { abs($0 - $1) }.max()!
        #expect(recordedError <= 1e-6 * scale, "\(name) \(precision): a recording forward differs from fp32 by \(recordedError)")
    }

    @Test func generationScopeLeavesOtherForwardsInFP32() throws {
        let f = try Fixture("hf-tiny-llama")
        let fp32 = Autograd.withoutGrad { f.model.logits(ids: f.ids, batch: f.batch, length: f.length).values }
        f.model.setInferencePrecision(.q8_0, scope: .generation)
        // No cache: a log-prob forward (PPO's old log-probs) is the fp32 policy's, bit for bit.
        #expect(Autograd.withoutGrad { f.model.logits(ids: f.ids, batch: f.batch, length: f.length).values } == fp32)
        // With a cache (generation) the copy serves: the prefill's logits differ from fp32.
        let cache = f.model.makeCache(batch: f.batch, capacity: f.length)
        let cached = Autograd.withoutGrad {
            f.model.inferenceLogits(hidden: f.model.hiddenStates(ids: f.ids, batch: f.batch, length: f.length, cache: cache)).values
        }
        #expect(cached != fp32)
        let worst = zip(cached, fp32).map { abs($0 - $1) }.max()!
        #expect(worst <= 0.02 * fp32.map(abs).max()!)
    }

    @Test func refreshFollowsTheFP32Weights() throws {
        let f = try Fixture("hf-tiny-gpt2")
        f.model.setInferencePrecision(.bf16, scope: .everyForward)
        let before = Autograd.withoutGrad { f.model.logits(ids: f.ids, batch: f.batch, length: f.length).values }
        // An "update": every parameter scaled, then the copy refreshed in place.
        for t in f.model.arena.tensors { for i in 0..<t.count { t.data[i] *= 1.25 } }
        f.model.refreshInferenceWeights()
        let refreshed = Autograd.withoutGrad { f.model.logits(ids: f.ids, batch: f.batch, length: f.length).values }
        f.model.setInferencePrecision(.bf16, scope: .everyForward)
        let remade = Autograd.withoutGrad { f.model.logits(ids: f.ids, batch: f.batch, length: f.length).values }
        #expect(refreshed == remade)
        #expect(refreshed != before)
        f.model.setInferencePrecision(.fp32, scope: .everyForward)
        #expect(f.model.inferenceWeights == nil)
    }
}
