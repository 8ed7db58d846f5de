import Foundation
import Testing
import Tokenizers

@Suite struct TokenizerSavingTests {
    @Test func savedFixtureIsByteIdenticalToHuggingFaceOutput() throws {
        let original = try Data(contentsOf: TestFiles.tinyTokenizer)
        #expect(SharedTokenizers.tiny.tokenizerJSON() == original)
    }

    @Test func digitsPreTokenizerSurvivesSaveAndLoad() throws {
        let tiny = SharedTokenizers.tiny
        let tokens = (0..<Int32(tiny.vocabularySize)).map { tiny.token(forID: $0) }
        let smol = try Tokenizer(tokens: tokens, merges: tiny.merges.map { ($0.left, $0.right) },
                                 addedTokens: tiny.addedTokens, preTokenizer: .smolLM2)
        let reloaded = try Tokenizer(tokenizerJSONData: smol.tokenizerJSON())
        #expect(reloaded.preTokenizer == .smolLM2)
        for text in unicodeSamples { #expect(reloaded.encode(text) == smol.encode(text)) }
    }

    @Test func vocabularyKeysNeedingEscapesRoundTrip() throws {
        let tokens: [String?] = ["\"", "\\", "\u{1}", "é", "e\u{301}", "\"\\"]
        let tokenizer = try Tokenizer(tokens: tokens, merges: [(0, 1)], addedTokens: [AddedToken(id: 6, content: "<\t>")])
        let reloaded = try Tokenizer(tokenizerJSONData: tokenizer.tokenizerJSON())
        for id in 0..<Int32(7) { #expect(reloaded.token(forID: id) == tokenizer.token(forID: id)) }
        // "é" and "e\u{301}" are canonically equivalent but distinct tokens.
        #expect(reloaded.id(forToken: "é") == 3 && reloaded.id(forToken: "e\u{301}") == 4)
    }

    @Test(.enabled(if: TestFiles.hasGPT2, "needs assets/gpt2: run scripts/fetch-assets.sh"))
    func gpt2SavedAsTokenizerJSONEncodesTheSame() throws {
        let gpt2 = try #require(SharedTokenizers.gpt2)
        let dir = try TestFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("tokenizer.json")
        try gpt2.save(tokenizerJSON: url)
        let reloaded = try Tokenizer(tokenizerJSON: url)
        #expect(reloaded.vocabularySize == 50257)
        for text in unicodeSamples { #expect(reloaded.encode(text) == gpt2.encode(text)) }
    }
}
