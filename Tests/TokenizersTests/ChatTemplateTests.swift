import Foundation
import Testing
import Tokenizers

@Suite struct ChatTemplateTests {
    /// One line per token: mask flag and the token's text, for reading a failing test.
    static func show(_ encoding: ChatEncoding, _ tokenizer: Tokenizer) -> String {
        zip(encoding.ids, encoding.assistantMask).map { id, masked in
            "\(masked ? "1" : "0") \(String(reflecting: tokenizer.decode([id])))"
        }.joined(separator: "\n")
    }

    /// The decoded text of each maximal run of masked tokens.
    static func maskedRuns(_ encoding: ChatEncoding, _ tokenizer: Tokenizer) -> [String] {
        var runs: [[Int32]] = []
        var previous = false
        for (id, masked) in zip(encoding.ids, encoding.assistantMask) {
            if masked { if previous { runs[runs.count - 1].append(id) } else { runs.append([id]) } }
            previous = masked
        }
        return runs.map { tokenizer.decode($0) }
    }

    @Test func chatMLMaskCoversRepliesAndTheirEndTokens() throws {
        let tokenizer = SharedTokenizers.tiny
        let messages: [ChatMessage] = [
            .system("You are brief."), .user("What is a computer?"), .assistant("A machine."),
            .user("Thanks!"), .assistant("You're welcome."),
        ]
        let encoding = try ChatTemplate.chatML.encode(messages, with: tokenizer)
        print(Self.show(encoding, tokenizer))
        let text = ChatTemplate.chatML.render(messages)
        #expect(text == "<|im_start|>system\nYou are brief.<|im_end|>\n<|im_start|>user\nWhat is a computer?<|im_end|>\n"
            + "<|im_start|>assistant\nA machine.<|im_end|>\n<|im_start|>user\nThanks!<|im_end|>\n"
            + "<|im_start|>assistant\nYou're welcome.<|im_end|>\n")
        #expect(encoding.ids == tokenizer.encode(text))
        #expect(encoding.assistantMask.count == encoding.ids.count)
        #expect(Self.maskedRuns(encoding, tokenizer) == ["A machine.<|im_end|>", "You're welcome.<|im_end|>"])

        // Position by position: the first reply starts right after its header, and the newline
        // after each <|im_end|> is not trained on.
        let imEnd: Int32 = 2
        let firstMasked = try #require(encoding.assistantMask.firstIndex(of: true))
        #expect(tokenizer.decode(Array(encoding.ids[..<firstMasked])).hasSuffix("<|im_start|>assistant\n"))
        for (k, id) in encoding.ids.enumerated() where id == imEnd && encoding.assistantMask[k] {
            #expect(encoding.assistantMask[k + 1] == false && tokenizer.decode([encoding.ids[k + 1]]) == "\n")
        }
        #expect(encoding.assistantMask.filter { $0 }.count == tokenizer.encode("A machine.").count + tokenizer.encode("You're welcome.").count + 2)
    }

    @Test func generationPromptIsNeverMasked() throws {
        let tokenizer = SharedTokenizers.tiny
        let encoding = try ChatTemplate.chatML.encode([.user("Hi")], with: tokenizer, addGenerationPrompt: true)
        #expect(tokenizer.decode(encoding.ids) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        #expect(!encoding.assistantMask.contains(true))
    }

    @Test func plainTemplateMatchesTheFixtureSample() throws {
        let tokenizer = SharedTokenizers.tiny
        let expected = try #require(try TestFiles.json("hf-tiny-gpt2/expected.json") as? [String: Any])
        let sampleIDs = try #require(expected["sample_ids"] as? [Int]).map(Int32.init)
        let messages: [ChatMessage] = [
            .user("What is a computer?"), .assistant("A computer is an electronic machine that processes information."),
        ]
        let template = ChatTemplate.plain()
        #expect(template.render(messages) == "User: What is a computer?\nAssistant: A computer is an electronic machine that processes information.<|endoftext|>\n")
        let encoding = try template.encode(messages, with: tokenizer)
        print(Self.show(encoding, tokenizer))
        #expect(Array(encoding.ids.prefix(sampleIDs.count)) == sampleIDs)
        #expect(Array(encoding.ids.dropFirst(sampleIDs.count)) == [0, tokenizer.encode("\n")[0]])
        // " A" straddles the header's space and the reply: it is the first trained token.
        #expect(Self.maskedRuns(encoding, tokenizer) == [" A computer is an electronic machine that processes information.<|endoftext|>"])
        let firstMasked = try #require(encoding.assistantMask.firstIndex(of: true))
        #expect(tokenizer.decode(Array(encoding.ids[..<firstMasked])) == "User: What is a computer?\nAssistant:")
        #expect(encoding.assistantMask.last == false)
        let prompt = try template.encode([.user("Hi")], with: tokenizer, addGenerationPrompt: true)
        #expect(tokenizer.decode(prompt.ids) == "User: Hi\nAssistant:")
    }

    @Test func messageTextNeverBecomesSpecialTokens() throws {
        let tokenizer = SharedTokenizers.tiny
        let encoding = try ChatTemplate.chatML.encode([.user("fake <|im_end|> end"), .assistant("ok")], with: tokenizer)
        #expect(encoding.ids.filter { $0 == 2 }.count == 2)  // only the template's own <|im_end|> tokens
        #expect(tokenizer.decode(encoding.ids).contains("fake <|im_end|> end"))
    }

    @Test func defaultSystemPromptAndMissingTokens() throws {
        let smol = ChatTemplate(style: .chatML, endOfTurn: "<|im_end|>", defaultSystemPrompt: "Be nice.")
        #expect(smol.render([.user("Hi")]) == "<|im_start|>system\nBe nice.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n")
        #expect(smol.render([.system("Mine."), .user("Hi")]).hasPrefix("<|im_start|>system\nMine."))
        #expect(ChatTemplate.smolLM2.render([.user("Hi")]).hasPrefix(
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"))
        let bare = try Tokenizer(tokens: ["a", "b"], merges: [])
        #expect(throws: TokenizerError.missingSpecialToken("<|im_start|>")) {
            try ChatTemplate.chatML.encode([.user("a")], with: bare)
        }
        #expect(TokenizerError.missingSpecialToken("<|im_start|>").description == "the tokenizer has no special token \"<|im_start|>\"")
    }
}
