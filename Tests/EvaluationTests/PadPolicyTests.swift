import Checkpoints
import Evaluation
import Foundation
import Generation
import TensorCore
import Testing
import Tokenizers

@Suite struct PadPolicyTests {
    @Test func theRulePrefersPadThenEOSThenZeroAndSkipsIdsOutsideTheVocabulary() {
        #expect(Generator.padId(padTokenId: 3, eosTokenId: 2, vocabularySize: 512) == 3)
        #expect(Generator.padId(padTokenId: nil, eosTokenId: 2, vocabularySize: 512) == 2)
        #expect(Generator.padId(padTokenId: nil, eosTokenId: nil, vocabularySize: 512) == 0)
        #expect(Generator.padId(padTokenId: 600, eosTokenId: 2, vocabularySize: 512) == 2)
        #expect(Generator.padId(padTokenId: -1, eosTokenId: 512, vocabularySize: 512) == 0)
    }

    @Test func aTokenizerWithoutAPadTokenPadsWithEOS() throws {
        // The fixtures' tokenizers name no pad (no tokenizer_config.json); EOS comes from config.json.
        let llama = try fixtureModel("hf-tiny-llama")
        #expect(llama.tokenizer.padTokenID == nil)
        #expect(llama.generationPadId == 2)
        #expect(llama.makeGenerator().padId == 2)
        #expect(Generator(model: llama.model).padId == 2)
        let gpt2 = try fixtureModel("hf-tiny-gpt2")
        #expect(gpt2.generationPadId == 0)
    }

    @Test func aTokenizerWithAPadTokenPadsWithIt() throws {
        let fixture = try fixtureModel("hf-tiny-llama")
        let tokenizer = try Tokenizer(tokenizerJSON: fixtureDirectory("hf-tiny-llama").appendingPathComponent("tokenizer.json"))
        // The same files with a tokenizer_config.json naming <|pad|> (id 3) as the pad token.
        let scratch = try Scratch()
        try tokenizer.save(tokenizerJSON: scratch.directory.appendingPathComponent("tokenizer.json"))
        try scratch.write("tokenizer_config.json", #"{"pad_token": "<|pad|>", "eos_token": "<|im_end|>"}"#)
        let padded = try Tokenizer(tokenizerJSON: scratch.directory.appendingPathComponent("tokenizer.json"))
        #expect(padded.padTokenID == 3)
        let lm = LanguageModel(model: fixture.model, tokenizer: padded, chatTemplate: fixture.chatTemplate, source: "test")
        #expect(lm.generationPadId == 3)
        #expect(lm.makeGenerator().padId == 3)
    }

    @Test func thePadIdDoesNotChangeWhatIsGenerated() throws {
        let lm = try fixtureModel("hf-tiny-llama")
        let prompts: [[Int32]] = [[5, 6, 7, 8, 9, 10], [11, 12], [13, 14, 15]]
        let options = SamplingOptions(maxNewTokens: 6)
        var outputs: [[[Int32]]] = []
        for pad: Int32 in [lm.generationPadId, 3, 0, 400] {
            var rng = RNG(seed: 1)
            outputs.append(Generator(model: lm.model, padId: pad).generate(prompts: prompts, options: options, rng: &rng).map(\.tokens))
        }
        #expect(outputs.allSatisfy { $0 == outputs[0] })
        // Each prompt alone (no padding at all) gives the same tokens.
        for (k, prompt) in prompts.enumerated() {
            var rng = RNG(seed: 1)
            #expect(lm.makeGenerator().generate(prompts: [prompt], options: options, rng: &rng)[0].tokens == outputs[0][k])
        }
    }
}
