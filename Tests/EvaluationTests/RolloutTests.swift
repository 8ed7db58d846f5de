import Checkpoints
import Datasets
import Evaluation
import Foundation
import Generation
import TensorCore
import Testing
import Tokenizers

/// The fixture model with its tokenizer reloaded under `tokenizer_config.json` = `config`.
private func withTokenizerConfig(_ name: String, _ config: String) throws -> LanguageModel {
    let fixture = try fixtureModel(name)
    let scratch = try Scratch()
    try fixture.tokenizer.save(tokenizerJSON: scratch.directory.appendingPathComponent("tokenizer.json"))
    try scratch.write("tokenizer_config.json", config)
    let tokenizer = try Tokenizer(tokenizerJSON: scratch.directory.appendingPathComponent("tokenizer.json"))
    return LanguageModel(model: fixture.model, tokenizer: tokenizer, chatTemplate: fixture.chatTemplate, source: "test")
}

/// Row `r` of a flat [rows * width] array.
private func row<T>(_ values: [T], _ r: Int, _ width: Int) -> [T] {
    Array(values[(r * width)..<((r + 1) * width)])
}

private let records: [DatasetRecord] = [
    .prompt(.text("The quick brown fox")),
    .prompt(.chat([.user("hi")])),
    .promptCompletion(prompt: .text("a longer prompt that has quite a few more words in it"), completion: .text("x")),
    .prompt(.text("one")),
    .preference(prompt: .chat([.system("be brief"), .user("why?")]), chosen: .chat([.assistant("a")]),
                rejected: .chat([.assistant("b")]), margin: nil),
]

@Suite struct RolloutTests {
    @Test func promptsAreTokenizedAsSFTDoesAndLeftPaddedWithTheRolloutPad() throws {
        let lm = try fixtureModel("hf-tiny-llama")
        let engine = try RolloutEngine(lm: lm, options: RolloutOptions(responseLength: 6))
        let prompts = try engine.prompts(records, file: "prompts.jsonl")
        let builder = try ExampleBuilder(tokenizer: lm.tokenizer, template: lm.chatTemplate, eosTokenID: lm.eosTokenId)
        for (prompt, record) in zip(prompts, records) {
            #expect(prompt.ids == (try builder.prompt(for: record)))
            #expect(prompt.text == lm.tokenizer.decode(prompt.ids))
            #expect(!prompt.truncated)
        }
        #expect(prompts[1].ids == (try lm.chatTemplate.encode([.user("hi")], with: lm.tokenizer, addGenerationPrompt: true).ids))
        #expect(prompts[1].text.hasSuffix("<|im_start|>assistant\n"))
        #expect(prompts[0].ids == lm.tokenizer.encode("The quick brown fox", allowSpecial: false))
        #expect(prompts[4].source == .chat([.system("be brief"), .user("why?")]))

        // The sentinel pad: the fixture's tokenizer names no pad token.
        #expect(engine.padId == 512 && engine.eosId == 2)
        let batch = try engine.generate(prompts, step: 1)
        let ctx = prompts.map(\.ids.count).max()!
        #expect(batch.rows == 5 && batch.contextLength == ctx && batch.responseLength == 6)
        #expect(batch.queries.count == 5 * ctx && batch.responses.count == 5 * 6 && batch.logProbs.count == 5 * 6)
        #expect(batch.padId == 512 && batch.promptIndex == [0, 1, 2, 3, 4] && batch.sampleIndex == [0, 0, 0, 0, 0])
        for (r, prompt) in prompts.enumerated() {
            let query = row(batch.queries, r, ctx)
            #expect(query == Array(repeating: 512, count: ctx - prompt.ids.count) + prompt.ids)
        }
        let joined = batch.queryResponses()
        #expect(joined.count == 5 * (ctx + 6))
        for r in 0..<5 {
            #expect(row(joined, r, ctx + 6) == row(batch.queries, r, ctx) + row(batch.responses, r, 6))
        }
        #expect(batch.judgeItems.map(\.prompt) == prompts.map(\.source))
        #expect(batch.judgeItems.map(\.response) == batch.responseTexts)
    }

    @Test func aResponseStopsAtEOSAndPadsFollowWithInvalidLogProbs() throws {
        // A random fixture rarely samples its EOS, so make a frequently sampled token the EOS.
        let options = RolloutOptions(responseLength: 12, samplesPerPrompt: 8, seed: 5)
        let plain = try RolloutEngine(lm: try fixtureModel("hf-tiny-llama"), options: options)
        let prompts = try plain.prompts(Array(records.prefix(2)), file: "p")
        let free = try plain.generate(prompts, step: 3)
        var counts: [Int32: Int] = [:]
        for token in free.responses where token != free.padId && token != 2 { counts[token, default: 0] += 1 }
        let frequent = counts.max { ($0.value, $1.key) < ($1.value, $0.key) }!.key
        let lm = try withTokenizerConfig("hf-tiny-llama", #"{"eos_token": \#(JSONText.quoted(plain.lm.tokenizer.token(forID: frequent)!))}"#)
        let engine = try RolloutEngine(lm: lm, options: options)
        #expect(engine.eosId == frequent && engine.stopTokenIds.contains(frequent) && engine.padId == 512)
        let stopped = try engine.generate(try engine.prompts(Array(records.prefix(2)), file: "p"), step: 3)

        var stops = 0
        for r in 0..<free.rows {
            let before = row(free.responses, r, 12), after = row(stopped.responses, r, 12)
            let logBefore = row(free.logProbs, r, 12), logAfter = row(stopped.logProbs, r, 12)
            guard let end = before.firstIndex(where: { $0 == frequent || $0 == 2 }) else {
                #expect(after == before && stopped.stopReasons[r] == .maxTokens)
                continue
            }
            stops += 1
            #expect(Array(after[...end]) == Array(before[...end]))
            #expect(after[(end + 1)...].allSatisfy { $0 == 512 })
            #expect(zip(logAfter[...end], logBefore[...end]).allSatisfy { abs($0 - $1) < 1e-5 })
            #expect(logAfter[(end + 1)...].allSatisfy { $0 == RolloutBatch.invalidLogProb })
            #expect(stopped.stopReasons[r] == .stopToken)
            #expect(stopped.responseTokens(row: r) == Array(before[...end]))
            #expect(stopped.responseTexts[r] == lm.tokenizer.decode(Array(before[...end]), skipSpecial: true))
        }
        #expect(stops > 0)
        // Without a stop, a response has all R tokens and real log-probs.
        for r in 0..<free.rows where free.stopReasons[r] == .maxTokens {
            #expect(!row(free.responses, r, 12).contains(512) && !row(free.logProbs, r, 12).contains(1.0))
        }
    }

    @Test func anEOSInThePromptNeitherStopsNorCounts() throws {
        let lm = try fixtureModel("hf-tiny-llama")
        let engine = try RolloutEngine(lm: lm, options: RolloutOptions(responseLength: 8, samplesPerPrompt: 3))
        let prompts = [RolloutPrompt(source: .text("x"), text: "", ids: [2, 40, 41, 2]),
                       RolloutPrompt(source: .text("y"), text: "", ids: [50, 2])]
        let batch = try engine.generate(prompts, step: 0)
        #expect(row(batch.queries, 0, 4) == [2, 40, 41, 2] && row(batch.queries, 3, 4) == [512, 512, 50, 2])
        for r in 0..<batch.rows {
            let response = row(batch.responses, r, 8)
            #expect(response[0] != batch.padId)
            if let end = response.firstIndex(of: 2) {
                #expect(batch.stopReasons[r] == .stopToken && response[(end + 1)...].allSatisfy { $0 == 512 })
            } else {
                #expect(batch.stopReasons[r] == .maxTokens && !response.contains(512))
            }
        }
        #expect(batch.stopReasons.contains(.maxTokens))
    }

    @Test func rowsDoNotDependOnBatchSizeOrPromptOrder() throws {
        let lm = try fixtureModel("hf-tiny-llama")
        let options = RolloutOptions(responseLength: 8, samplesPerPrompt: 2, seed: 11)
        let engine = try RolloutEngine(lm: lm, options: options)
        let prompts = try engine.prompts(records, file: "p")
        let global = [7, 3, 0, 12, 5]
        let whole = try engine.generate(prompts, step: 2, promptIndices: global)

        /// Each row's response, log-probs and text by (dataset index, sample).
        func keyed(_ batch: RolloutBatch) -> [[Int]: ([Int32], [Float], String)] {
            var out: [[Int]: ([Int32], [Float], String)] = [:]
            for r in 0..<batch.rows {
                out[[batch.datasetIndex[r], batch.sampleIndex[r]]] =
                    (row(batch.responses, r, 8), row(batch.logProbs, r, 8), batch.responseTexts[r])
            }
            return out
        }
        func same(_ a: [[Int]: ([Int32], [Float], String)], _ b: [[Int]: ([Int32], [Float], String)]) -> Bool {
            a.count == b.count && a.allSatisfy { key, value in
                guard let other = b[key] else { return false }
                return value.0 == other.0 && value.2 == other.2 && zip(value.1, other.1).allSatisfy { abs($0 - $1) < 1e-4 }
            }
        }
        let reference = keyed(whole)
        for size in [1, 3] {
            var chunked = options
            chunked.generationBatchSize = size
            let batch = try RolloutEngine(lm: lm, options: chunked).generate(prompts, step: 2, promptIndices: global)
            #expect(same(keyed(batch), reference))
            #expect(batch.queries == whole.queries)
        }
        // Prompts split over calls, and in another order.
        var parts = keyed(try engine.generate(Array(prompts[..<2]), step: 2, promptIndices: Array(global[..<2])))
        parts.merge(keyed(try engine.generate(Array(prompts[2...]), step: 2, promptIndices: Array(global[2...])))) { a, _ in a }
        #expect(same(parts, reference))
        let reversed = try engine.generate(prompts.reversed(), step: 2, promptIndices: global.reversed())
        #expect(same(keyed(reversed), reference))
        // A resumed run regenerates the step; another step or seed samples anew.
        #expect(same(keyed(try engine.generate(prompts, step: 2, promptIndices: global)), reference))
        #expect(try engine.generate(prompts, step: 3, promptIndices: global).responses != whole.responses)
        var reseeded = options
        reseeded.seed = 12
        #expect(try RolloutEngine(lm: lm, options: reseeded).generate(prompts, step: 2, promptIndices: global).responses != whole.responses)
    }

    @Test(arguments: ["hf-tiny-gpt2", "hf-tiny-llama"])
    func continuousBatchingGivesTheRowsOfFixedBatches(name: String) throws {
        // Refilled slots and shared prompt prefills give every row the response, log-probs and
        // stop reason that fixed batches (each decoded until its longest response ends) give it.
        // A random fixture rarely samples its EOS, so a frequently sampled token is made the EOS.
        let probe = try RolloutEngine(lm: try fixtureModel(name), options: RolloutOptions(responseLength: 12, samplesPerPrompt: 8, seed: 5))
        let free = try probe.generate(try probe.prompts(Array(records.prefix(2)), file: "p"), step: 3)
        var counts: [Int32: Int] = [:]
        for token in free.responses where token != free.padId && !probe.stopTokenIds.contains(token) { counts[token, default: 0] += 1 }
        let frequent = counts.max { ($0.value, $1.key) < ($1.value, $0.key) }!.key
        let lm = try withTokenizerConfig(name, #"{"eos_token": \#(JSONText.quoted(probe.lm.tokenizer.token(forID: frequent)!))}"#)
        for size in [3, 5, 16] {
            let options = RolloutOptions(responseLength: 12, samplesPerPrompt: 8, seed: 5, generationBatchSize: size)
            var fixed = try RolloutEngine(lm: lm, options: options)
            fixed.continuousBatching = false
            var continuous = fixed
            continuous.continuousBatching = true
            let prompts = try fixed.prompts(Array(records.prefix(2)), file: "p")
            let a = try fixed.generate(prompts, step: 3)
            let b = try continuous.generate(prompts, step: 3)
            #expect(a.responses == b.responses && a.queries == b.queries && a.stopReasons == b.stopReasons)
            #expect(a.responseTexts == b.responseTexts)
            #expect(zip(a.logProbs, b.logProbs).allSatisfy { abs($0 - $1) < 1e-4 })
            // Responses end at different lengths, so slots free up at different steps.
            #expect(Set((0..<a.rows).map { a.responseTokens(row: $0).count }).count >= 2)
            #expect(a.stopReasons.contains(.stopToken))
        }
    }

    @Test func samplesPerPromptGivesPromptMajorRows() throws {
        let lm = try fixtureModel("hf-tiny-gpt2")
        let engine = try RolloutEngine(lm: lm, options: RolloutOptions(responseLength: 8, samplesPerPrompt: 3))
        // GPT-2's EOS is <|endoftext|> (0); the template's end of turn <|im_end|> (2) also stops.
        #expect(engine.eosId == 0 && engine.stopTokenIds == [0, 2] && engine.padId == 512)
        let prompts = try engine.prompts(Array(records.prefix(2)), file: "p")
        let batch = try engine.generate(prompts, step: 1, promptIndices: [4, 9])
        #expect(batch.rows == 6)
        #expect(batch.promptIndex == [0, 0, 0, 1, 1, 1] && batch.sampleIndex == [0, 1, 2, 0, 1, 2])
        #expect(batch.datasetIndex == [4, 4, 4, 9, 9, 9])
        let ctx = batch.contextLength
        #expect(row(batch.queries, 0, ctx) == row(batch.queries, 2, ctx) && row(batch.queries, 3, ctx) == row(batch.queries, 5, ctx))
        let samples = (0..<3).map { row(batch.responses, $0, 8) }
        #expect(Set(samples).count == 3)
        // Sample 1 of prompt 4 is the same row whatever the number of samples.
        let two = try RolloutEngine(lm: lm, options: RolloutOptions(responseLength: 8, samplesPerPrompt: 2))
            .generate(Array(prompts.prefix(1)), step: 1, promptIndices: [4])
        #expect(row(two.responses, 1, 8) == samples[1])
    }

    @Test func promptOrderResumesExactlyAndReshufflesEachEpoch() throws {
        var uninterrupted = try PromptOrder(count: 7, seed: 3)
        let all = (0..<6).flatMap { _ in uninterrupted.next(3) }
        #expect(all.count == 18)
        #expect(Array(all[0..<7]).sorted() == Array(0..<7) && Array(all[7..<14]).sorted() == Array(0..<7))
        #expect(Array(all[0..<7]) != Array(all[7..<14]))
        #expect(uninterrupted.position == PromptOrder.Position(epoch: 2, offset: 4))

        var first = try PromptOrder(count: 7, seed: 3)
        var resumed = (0..<2).flatMap { _ in first.next(3) }
        let saved = try JSONEncoder().encode(first.position)
        var second = try PromptOrder(count: 7, seed: 3)
        try second.restore(try JSONDecoder().decode(PromptOrder.Position.self, from: saved))
        resumed += (0..<4).flatMap { _ in second.next(3) }
        #expect(resumed == all)

        var plain = try PromptOrder(count: 4, seed: 3, shuffle: false)
        #expect(plain.next(6) == [0, 1, 2, 3, 0, 1])
        #expect(throws: EvaluationError.self) { try plain.restore(PromptOrder.Position(epoch: 0, offset: 4)) }
        #expect(throws: EvaluationError.self) { try PromptOrder(count: 0, seed: 1) }
    }

    @Test func theRolloutPadIsNeverEOS() throws {
        #expect(RolloutEngine.rolloutPadId(padTokenId: 3, stopTokenIds: [2], vocabularySize: 512) == 3)
        #expect(RolloutEngine.rolloutPadId(padTokenId: nil, stopTokenIds: [2], vocabularySize: 512) == 512)
        #expect(RolloutEngine.rolloutPadId(padTokenId: 2, stopTokenIds: [2], vocabularySize: 512) == 512)
        #expect(RolloutEngine.rolloutPadId(padTokenId: 600, stopTokenIds: [2], vocabularySize: 512) == 512)
        let options = RolloutOptions(responseLength: 4)
        let padded = try withTokenizerConfig("hf-tiny-llama", #"{"pad_token": "<|pad|>", "eos_token": "<|im_end|>"}"#)
        #expect(try RolloutEngine(lm: padded, options: options).padId == 3)
        // A pad token that is the EOS is not used: the sentinel (the vocabulary size) pads instead.
        let padIsEOS = try withTokenizerConfig("hf-tiny-llama", #"{"pad_token": "<|im_end|>", "eos_token": "<|im_end|>"}"#)
        #expect(padIsEOS.generationPadId == 2)
        let engine = try RolloutEngine(lm: padIsEOS, options: options)
        #expect(engine.padId == 512)
        let batch = try engine.generate([RolloutPrompt(source: .text("a"), text: "", ids: [7]),
                                         RolloutPrompt(source: .text("b"), text: "", ids: [7, 8, 9])], step: 0)
        #expect(row(batch.queries, 0, 3) == [512, 512, 7])
    }

    @Test func aPromptMustEndWithAUserTurn() throws {
        let engine = try RolloutEngine(lm: try fixtureModel("hf-tiny-llama"), options: RolloutOptions(responseLength: 4))
        let conversation: [DatasetRecord] = [.prompt(.text("ok")), .conversation([.user("q"), .assistant("a")])]
        #expect(throws: EvaluationError("prompts.jsonl: record 2: messages[1].role: is \"assistant\"; a prompt must end with a user turn")) {
            try engine.prompts(conversation, file: "prompts.jsonl")
        }
        #expect(throws: EvaluationError("p.jsonl: record 1: messages[0].role: is \"system\"; a prompt must end with a user turn")) {
            try engine.prompts([.prompt(.chat([.system("s")]))], file: "p.jsonl")
        }
        #expect(throws: EvaluationError("p.jsonl: record 1: text: is language-modeling text, which has no prompt to generate from")) {
            try engine.prompts([.text("t")], file: "p.jsonl")
        }
        #expect(throws: EvaluationError("p.jsonl: record 3: prompt: is empty, so there is nothing to generate from")) {
            try engine.prompts([.prompt(.text("a")), .prompt(.text("b")), .prompt(.text(""))], file: "p.jsonl")
        }
        // A file read as prompts: its prompt-only records detected as such.
        let scratch = try Scratch()
        let file = try scratch.write("rl.jsonl", """
            {"prompt": "Say hi"}
            {"messages": [{"role": "user", "content": "q"}]}

            """)
        let read = try RecordSet.read(file, format: .promptOnly)
        #expect(try engine.prompts(read.records, file: file.path).count == 2)
    }

    @Test func longPromptsKeepTheirEndAndTextPromptsCanUseTheTemplate() throws {
        let lm = try fixtureModel("hf-tiny-llama")   // 128 positions
        let engine = try RolloutEngine(lm: lm, options: RolloutOptions(responseLength: 120))
        #expect(engine.maxPromptLength == 8)
        let long = lm.tokenizer.encode(String(repeating: "many words here ", count: 10), allowSpecial: false)
        let prompt = try engine.prompt(.prompt(.text(String(repeating: "many words here ", count: 10))), file: "p", number: 1)
        #expect(prompt.truncated && prompt.ids == Array(long.suffix(8)))
        #expect(try engine.generate([prompt], step: 0).stopReasons.allSatisfy { $0 != .contextFull })
        #expect(throws: EvaluationError.self) {
            try engine.generate([RolloutPrompt(source: .text(""), text: "", ids: long)], step: 0)
        }
        #expect(throws: EvaluationError.self) { try RolloutEngine(lm: lm, options: RolloutOptions(responseLength: 128)) }

        let chat = try RolloutEngine(lm: lm, options: RolloutOptions(responseLength: 8, textPromptsAsChat: true))
        let asChat = try chat.prompt(.prompt(.text("hi")), file: "p", number: 1)
        #expect(asChat.ids == (try lm.chatTemplate.encode([.user("hi")], with: lm.tokenizer, addGenerationPrompt: true).ids))
        #expect(asChat.source == .text("hi"))
    }
}
