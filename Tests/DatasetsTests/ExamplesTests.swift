import Datasets
import Testing
import Tokenizers

@Suite struct ExamplesTests {
    let tokenizer = Tiny.tokenizer

    func builder(maxLength: Int? = nil, overflow: OverflowPolicy = .truncate,
                 template: ChatTemplate = .chatML) throws -> ExampleBuilder {
        try ExampleBuilder(tokenizer: tokenizer, template: template, eosTokenID: Tiny.eos, maxLength: maxLength, overflow: overflow)
    }

    @Test func chatMaskCoversExactlyTheAssistantTokensAndTheirEndOfTurn() throws {
        let messages: [ChatMessage] = [
            .system("You are brief."), .user("What is a computer?"), .assistant("A machine."),
            .user("Thanks!"), .assistant("You're welcome."),
        ]
        let example = try builder().example(for: .conversation(messages))
        print(show(example.ids, example.lossMask))
        #expect(example.ids == tokenizer.encode(ChatTemplate.chatML.render(messages)))
        #expect(maskedRuns(example.ids, example.lossMask) == ["A machine.<|im_end|>", "You're welcome.<|im_end|>"])
        // Exactly: the reply tokens, then the <|im_end|> closing each; the "\n" after it is not trained.
        let replies = [tokenizer.encode("A machine."), tokenizer.encode("You're welcome.")]
        var expected = [Bool](repeating: false, count: example.count)
        var searchFrom = 0
        for reply in replies {
            let target = reply + [Tiny.imEnd]
            let start = try #require((searchFrom...(example.count - target.count)).first {
                Array(example.ids[$0..<$0 + target.count]) == target
            })
            for k in start..<start + target.count { expected[k] = true }
            searchFrom = start + target.count
        }
        #expect(example.lossMask == expected)
        #expect(!example.ids.contains(Tiny.eos))  // chat replies end with their end-of-turn, no extra EOS
    }

    @Test func plainTemplateEndsRepliesWithEOS() throws {
        let example = try builder(template: .plain()).example(for: .conversation([.user("Hi"), .assistant("Hello there")]))
        print(show(example.ids, example.lossMask))
        #expect(maskedRuns(example.ids, example.lossMask) == [" Hello there<|endoftext|>"])
    }

    @Test func promptCompletionMasksExactlyTheCompletionAndEOS() throws {
        let example = try builder().example(for: .promptCompletion(prompt: .text("The capital of France is"), completion: .text(" Paris.")))
        let prompt = tokenizer.encode("The capital of France is")
        let completion = tokenizer.encode(" Paris.")
        print(show(example.ids, example.lossMask))
        #expect(example.ids == prompt + completion + [Tiny.eos])
        #expect(example.lossMask == [Bool](repeating: false, count: prompt.count) + [Bool](repeating: true, count: completion.count + 1))
    }

    @Test func conversationalPromptCompletionTrainsOnTheCompletionTurnOnly() throws {
        let prompt: [ChatMessage] = [.user("Hi"), .assistant("Hello"), .user("How are you?")]
        let example = try builder().example(for: .promptCompletion(prompt: .chat(prompt), completion: .chat([.assistant("Fine.")])))
        #expect(example.ids == tokenizer.encode(ChatTemplate.chatML.render(prompt + [.assistant("Fine.")])))
        #expect(maskedRuns(example.ids, example.lossMask) == ["Fine.<|im_end|>"])
    }

    @Test func languageModelingTrainsOnEveryTokenAndEndsWithEOS() throws {
        let example = try builder().example(for: .text("Hello world"))
        #expect(example.ids == tokenizer.encode("Hello world") + [Tiny.eos])
        #expect(example.lossMask.allSatisfy { $0 })
        // Record text is plain text: a literal "<|endoftext|>" is not the EOS token.
        #expect(!(try builder().example(for: .text("a<|endoftext|>b")).ids.dropLast().contains(Tiny.eos)))
    }

    @Test func textPreferencePairsShareThePromptAndMaskOnlyResponses() throws {
        let pair = try builder().pair(for: .preference(prompt: .text("Is the sky blue?"), chosen: .text(" Yes."),
                                                       rejected: .text(" Purple, always."), margin: 1))
        let prompt = tokenizer.encode("Is the sky blue?")
        #expect(pair.prompt == prompt)
        #expect(pair.margin == 1)
        let chosen = pair.chosenSequence, rejected = pair.rejectedSequence
        print(show(chosen.ids, chosen.lossMask) + "\n--\n" + show(rejected.ids, rejected.lossMask))
        #expect(chosen.ids == prompt + tokenizer.encode(" Yes.") + [Tiny.eos])
        #expect(rejected.ids == prompt + tokenizer.encode(" Purple, always.") + [Tiny.eos])
        #expect(Array(chosen.ids.prefix(prompt.count)) == Array(rejected.ids.prefix(prompt.count)))
        #expect(maskedRuns(chosen.ids, chosen.lossMask) == [" Yes.<|endoftext|>"])
        #expect(maskedRuns(rejected.ids, rejected.lossMask) == [" Purple, always.<|endoftext|>"])
        #expect(!chosen.lossMask.prefix(prompt.count).contains(true) && !rejected.lossMask.prefix(prompt.count).contains(true))
    }

    @Test func chatPreferencePairsAreTheTemplateIdsWithASharedPrompt() throws {
        let prompt: [ChatMessage] = [.system("Be kind."), .user("Rate my poem.")]
        let pair = try builder().pair(for: .preference(prompt: .chat(prompt), chosen: .chat([.assistant("It is lovely.")]),
                                                       rejected: .chat([.assistant("Awful.")]), margin: nil))
        #expect(pair.prompt == (try ChatTemplate.chatML.encode(prompt, with: tokenizer, addGenerationPrompt: true).ids))
        #expect(pair.chosenSequence.ids == tokenizer.encode(ChatTemplate.chatML.render(prompt + [.assistant("It is lovely.")])))
        #expect(pair.rejectedSequence.ids == tokenizer.encode(ChatTemplate.chatML.render(prompt + [.assistant("Awful.")])))
        #expect(maskedRuns(pair.chosenSequence.ids, pair.chosenSequence.lossMask) == ["It is lovely.<|im_end|>"])
        #expect(maskedRuns(pair.rejectedSequence.ids, pair.rejectedSequence.lossMask) == ["Awful.<|im_end|>"])
    }

    @Test func promptsForGeneration() throws {
        let b = try builder()
        #expect(try b.prompt(for: .prompt(.text("Once upon"))) == tokenizer.encode("Once upon"))
        let chat = try b.prompt(for: .prompt(.chat([.user("Hi")])))
        #expect(tokenizer.decode(chat) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        #expect(try b.prompt(for: .preference(prompt: .text("Q"), chosen: .text("a"), rejected: .text("b"), margin: nil))
            == tokenizer.encode("Q"))
    }

    @Test func wrongRecordKindsAreConfigurationErrors() throws {
        let b = try builder()
        #expect(throws: DatasetError.self) { try b.example(for: .prompt(.text("Q"))) }
        #expect(throws: DatasetError.self) { try b.pair(for: .text("Q")) }
        #expect(throws: DatasetError.self) { try b.prompt(for: .conversation([.user("a"), .assistant("b")])) }
        #expect(throws: DatasetError.self) {
            try b.pair(for: .preference(prompt: .text("Q"), chosen: .chat([.assistant("a")]), rejected: .text("b"), margin: nil))
        }
        #expect(throws: DatasetError.self) { try ExampleBuilder(tokenizer: tokenizer) }  // the fixture has no EOS of its own
        #expect(throws: DatasetError.self) { try ExampleBuilder(tokenizer: tokenizer, eosTokenID: 0, maxLength: 0) }
        let noChatML = try ExampleBuilder(tokenizer: tokenizer, template: ChatTemplate(style: .chatML, endOfTurn: "<|eot|>"), eosTokenID: 0)
        #expect(throws: DatasetError.self) { try noChatML.example(for: .conversation([.user("a"), .assistant("b")])) }
    }

    @Test func truncationKeepsTheStartOfSFTExamplesAndCounts() throws {
        let records: [DatasetRecord] = [
            .text("short"),
            .text("a much longer text that will not fit in eight tokens at all"),
            .promptCompletion(prompt: .text("a prompt that is far too long for the limit here"), completion: .text(" done")),
            .promptCompletion(prompt: .text("Hi"), completion: .text(" a reply longer than the limit allows for sure")),
        ]
        let (examples, stats) = try builder(maxLength: 8).examples(records)
        #expect(stats == { var s = LengthStats(); s.kept = 3; s.truncated = 2; s.dropped = 1; return s }())
        #expect(examples.count == 3 && examples.allSatisfy { $0.count <= 8 })
        let full = try builder().example(for: records[1])
        #expect(examples[1] == TokenizedExample(ids: Array(full.ids.prefix(8)), lossMask: Array(full.lossMask.prefix(8))))
        let hi = tokenizer.encode("Hi")
        #expect(Array(examples[2].ids.prefix(hi.count)) == hi && examples[2].lossMask.filter { $0 }.count == 8 - hi.count)

        let (kept, dropStats) = try builder(maxLength: 8, overflow: .drop).examples(records)
        #expect(kept.count == 1 && dropStats.kept == 1 && dropStats.dropped == 3 && dropStats.truncated == 0)
    }

    @Test func pairTruncationCutsThePromptFromTheLeft() throws {
        let record = DatasetRecord.preference(prompt: .text("one two three four five six seven eight"),
                                              chosen: .text(" yes"), rejected: .text(" no no no"), margin: nil)
        let full = try builder().pair(for: record)
        let longest = max(full.chosen.count, full.rejected.count)
        let limit = longest + 3
        let (pairs, stats) = try builder(maxLength: limit).pairs([record])
        let pair = try #require(pairs.first)
        #expect(stats.truncated == 1 && stats.kept == 1)
        #expect(pair.prompt == Array(full.prompt.suffix(3)))
        #expect(pair.chosen == full.chosen && pair.rejected == full.rejected)
        #expect(pair.chosenSequence.count <= limit && pair.rejectedSequence.count <= limit)

        // Responses longer than the limit: no prompt left, the responses' ends cut.
        let (tight, _) = try builder(maxLength: 2).pairs([record])
        #expect(tight[0].prompt.isEmpty && tight[0].rejected.ids == Array(full.rejected.ids.prefix(2)))

        let (none, dropStats) = try builder(maxLength: limit, overflow: .drop).pairs([record])
        #expect(none.isEmpty && dropStats.dropped == 1)
    }

    @Test func promptTruncationKeepsTheEnd() throws {
        let records: [DatasetRecord] = [.prompt(.text("one two three four five six")), .prompt(.text("")), .prompt(.text("hi"))]
        let (prompts, stats) = try builder(maxLength: 3).prompts(records)
        #expect(prompts[0] == Array(tokenizer.encode("one two three four five six").suffix(3)))
        #expect(prompts.count == 2 && stats.truncated == 1 && stats.dropped == 1 && stats.kept == 2)
    }
}
