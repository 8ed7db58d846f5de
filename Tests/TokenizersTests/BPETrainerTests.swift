import Foundation
import Testing
import Tokenizers

@Suite struct BPETrainerTests {
    static let corpus = [
        "Good morning, how are you?",
        "I am doing well, how about you?",
        "I'm also good.",
        "That's good to hear.",
        "Yes it is.",
        "Hello there! How are you doing today?",
        "I am doing well. Thank you for asking.",
        "What is your favorite book?",
        "I can't read, but I like hearing stories.",
        "Do you like music? I like music a lot.",
        "The weather is good today, isn't it?",
        "Yes, the weather is very good today.",
        "Numbers like 12, 123 and 1234 are good too.",
        "Café, naïve, 漢字 and 🤗 are fine as well.",
    ]
    static let specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

    /// Merges Hugging Face `tokenizers` 0.23 learns from `corpus` (BpeTrainer, vocab_size 300,
    /// min_frequency 2, the same special tokens, initial_alphabet ByteLevel.alphabet()).
    static let huggingFaceMerges = [
        "Ġ a", "o d", "h e", "i n", "o u", "Ġ i", "Ġ t", "o od", "r e", "y ou", "Ġ you", "in g", "g ood", "w e",
        "Ġ l", "Ġ good", "Ġ we", "Ġi s", "a t", "i k", "l l", "o r", "Ġa re", "Ġl ik", "Ġlik e", "1 2", "a y",
        "d o", "e s", "o w", "Ġ f", "Ġ m", "Ġ 12", "Ġ do", "od ay", "Ġt oday", "Ġwe ll", "Ġdo ing", "' t", "T h", "Y es",
    ]

    static func mergeStrings(_ tokenizer: Tokenizer) -> [String] {
        tokenizer.merges.map { tokenizer.token(forID: $0.left)! + " " + tokenizer.token(forID: $0.right)! }
    }

    @Test func matchesHuggingFaceTrainer() throws {
        let tokenizer = try BPETrainer(vocabularySize: 300, minFrequency: 2, specialTokens: Self.specials).train(on: Self.corpus)
        #expect(Self.mergeStrings(tokenizer) == Self.huggingFaceMerges)
        #expect(tokenizer.vocabularySize == 300)
        #expect(tokenizer.addedTokens.map(\.content) == Self.specials)
        #expect(tokenizer.token(forID: 3) == "!" && tokenizer.token(forID: 3 + 255) == "Ń")
        #expect(tokenizer.encode("How are you doing? 1234 good") == [42, 288, 281, 269, 296, 33, 291, 21, 22, 274])
    }

    @Test func digitsPreTokenizerMatchesHuggingFaceTrainer() throws {
        let trainer = BPETrainer(vocabularySize: 300, minFrequency: 2, specialTokens: Self.specials, preTokenizer: .smolLM2)
        let tokenizer = try trainer.train(on: Self.corpus)
        var expected = Self.huggingFaceMerges.filter { $0 != "1 2" && $0 != "Ġ 12" }
        expected += ["a n", "a r"]
        #expect(Self.mergeStrings(tokenizer) == expected)
        #expect(tokenizer.encode("How are you doing? 1234 good") == [42, 287, 281, 269, 294, 33, 223, 19, 20, 21, 22, 274])
    }

    @Test func savedAndReloadedEncodesHeldOutTextIdentically() throws {
        let tokenizer = try BPETrainer(vocabularySize: 400, minFrequency: 1, specialTokens: Self.specials).train(on: Self.corpus)
        let dir = try TestFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("tokenizer.json")
        try tokenizer.save(tokenizerJSON: url)
        let reloaded = try Tokenizer(tokenizerJSON: url)
        #expect(reloaded.merges.count == tokenizer.merges.count)
        let heldOut = unicodeSamples + ["How is the weather where you are? I hope it's good.", "<|im_start|>user\nHi<|im_end|>"]
        for text in heldOut {
            let ids = tokenizer.encode(text)
            #expect(reloaded.encode(text) == ids, "\(String(reflecting: text))")
            #expect(reloaded.decode(ids) == text)
            #expect(Array(tokenizer.decodeBytes(tokenizer.encode(text, allowSpecial: false))) == Array(text.utf8))
        }
    }

    @Test func minimumFrequencyAndSizeLimits() throws {
        let none = try BPETrainer(vocabularySize: 1000, minFrequency: 1000).train(on: Self.corpus)
        #expect(none.merges.isEmpty && none.vocabularySize == 256)
        #expect(none.decode(none.encode("漢字 ok")) == "漢字 ok")
        #expect(throws: TokenizerError.invalidConfiguration(
            "BPETrainer: vocabularySize 100 is smaller than the 3 special tokens plus 256 bytes")) {
            try BPETrainer(vocabularySize: 100, specialTokens: Self.specials).train(on: Self.corpus)
        }
        let empty = try BPETrainer(vocabularySize: 300).train(on: [String]())
        #expect(empty.vocabularySize == 256)
    }
}
