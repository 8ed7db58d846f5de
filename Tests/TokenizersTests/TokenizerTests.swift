import Foundation
import Testing
@testable import Tokenizers

@Suite struct TokenizerTests {
    @Test func tinyTokenizerMatchesHuggingFaceSample() throws {
        let expected = try #require(try TestFiles.json("hf-tiny-gpt2/expected.json") as? [String: Any])
        let text = try #require(expected["sample_text"] as? String)
        let ids = try #require(expected["sample_ids"] as? [Int]).map(Int32.init)
        let tokenizer = SharedTokenizers.tiny
        #expect(tokenizer.encode(text) == ids)
        #expect(tokenizer.decode(ids) == text)
    }

    @Test func tinyTokenizerShape() {
        let tokenizer = SharedTokenizers.tiny
        #expect(tokenizer.vocabularySize == 512)
        #expect(tokenizer.merges.count == 252)
        #expect(tokenizer.addedTokens.map(\.content) == ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>"])
        #expect(tokenizer.id(forToken: "<|im_end|>") == 2)
        #expect(tokenizer.id(forToken: "Ġthe") != nil)
        #expect(tokenizer.token(forID: 4) == "!")
    }

    @Test func specialTokensAreMatchedOnlyWhenAllowed() {
        let tokenizer = SharedTokenizers.tiny
        let text = "<|im_start|>user\nHi<|im_end|>"
        let ids = tokenizer.encode(text)
        #expect(ids.first == 1 && ids.last == 2)
        #expect(tokenizer.decode(ids) == text)
        #expect(tokenizer.decode(ids, skipSpecial: true) == "user\nHi")
        let plain = tokenizer.encode(text, allowSpecial: false)
        #expect(!plain.contains(1) && !plain.contains(2))
        #expect(tokenizer.decode(plain) == text)
    }

    @Test func roundTripIsByteExact() {
        for tokenizer in [SharedTokenizers.tiny, SharedTokenizers.gpt2].compactMap({ $0 }) {
            for text in unicodeSamples {
                for allowSpecial in [true, false] {
                    let ids = tokenizer.encode(text, allowSpecial: allowSpecial)
                    #expect(Array(tokenizer.decodeBytes(ids)) == Array(text.utf8), "\(String(reflecting: text))")
                }
            }
        }
    }

    @Test func longWhitespaceRunsAndWordsRoundTrip() {
        let tokenizer = SharedTokenizers.tiny
        for text in ["x" + String(repeating: " ", count: 301) + "x", String(repeating: "abcdefgh", count: 40),
                     String(repeating: "\n", count: 100) + "y"] {
            #expect(tokenizer.decode(tokenizer.encode(text)) == text)
        }
    }

    @Test func encodeIntoBufferAppends() {
        let tokenizer = SharedTokenizers.tiny
        var ids: [Int32] = [7]
        Array("Hello<|im_end|>".utf8).withUnsafeBufferPointer { tokenizer.encode($0, into: &ids) }
        #expect(ids == [7] + tokenizer.encode("Hello<|im_end|>"))
    }

    @Test func decodeSkipsUnknownIDs() {
        let tokenizer = SharedTokenizers.tiny
        let ids = tokenizer.encode("Hi")
        #expect(tokenizer.decode([-1] + ids + [9999]) == "Hi")
        #expect(tokenizer.token(forID: 9999) == nil)
    }

    @Test(.enabled(if: TestFiles.hasGPT2, "needs assets/gpt2: run scripts/fetch-assets.sh"))
    func gpt2ReferenceCases() throws {
        let tokenizer = try #require(SharedTokenizers.gpt2)
        let cases = try #require(try TestFiles.json("tokenizer/gpt2_cases.json") as? [[String: Any]])
        #expect(cases.count == 10)
        for entry in cases {
            let text = try #require(entry["text"] as? String)
            let ids = try #require(entry["ids"] as? [Int]).map(Int32.init)
            let decoded = try #require(entry["decoded"] as? String)
            #expect(tokenizer.encode(text, allowSpecial: false) == ids, "\(String(reflecting: text))")
            #expect(tokenizer.decode(ids) == decoded)
        }
    }

    @Test(.enabled(if: TestFiles.hasGPT2, "needs assets/gpt2: run scripts/fetch-assets.sh"))
    func gpt2Facts() throws {
        let tokenizer = try #require(SharedTokenizers.gpt2)
        #expect(tokenizer.encode("Hello world") == [15496, 995])
        #expect(tokenizer.encode("That's my beautiful and sweet string") == [2504, 338, 616, 4950, 290, 6029, 4731])
        #expect(tokenizer.id(forToken: "<|endoftext|>") == 50256)
        #expect(tokenizer.encode("<|endoftext|>") == [50256])
        #expect(tokenizer.eosTokenID == 50256)
        #expect(tokenizer.vocabularySize == 50257)
        #expect(tokenizer.merges.count == 50000)
    }
}
