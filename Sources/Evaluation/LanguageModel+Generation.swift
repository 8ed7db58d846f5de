import Checkpoints
import Generation

extension LanguageModel {
    /// The id every generation and scoring call pads with: `Generator.padId` applied to the
    /// tokenizer's pad token and the model's EOS (`eosTokenId`): the pad token when the tokenizer
    /// has one, else EOS, else 0. Padding is masked, so the choice never changes a result.
    public var generationPadId: Int32 {
        Generator.padId(padTokenId: tokenizer.padTokenID, eosTokenId: eosTokenId, vocabularySize: model.config.vocabSize)
    }

    /// A generator padding with `generationPadId` whose text skips special tokens (the end-of-turn
    /// token is not part of a reply).
    public func makeGenerator() -> Generator {
        let tokenizer = self.tokenizer
        return Generator(model: model, padId: generationPadId, decode: { tokenizer.decode($0, skipSpecial: true) })
    }
}
