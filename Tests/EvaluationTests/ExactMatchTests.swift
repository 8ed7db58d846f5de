import Checkpoints
import Datasets
import Evaluation
import Foundation
import Testing
import Tokenizers

@Suite struct ExactMatchTests {
    @Test func readsPromptAnswerRecordsAndTokenizesPromptsWithTheGenerationPrompt() throws {
        let lm = try fixtureModel("hf-tiny-llama")
        let builder = try ExampleBuilder(tokenizer: lm.tokenizer, template: lm.chatTemplate, eosTokenID: lm.eosTokenId)
        let scratch = try Scratch()
        let file = try scratch.write("eval.jsonl", """
            {"prompt": [{"role": "user", "content": "What is 1 + 2?"}], "answer": "3"}
            {"prompt": "Sort the digits: 2 1", "answer": "1 2"}

            """)
        let set = try ExactMatchSet(path: file.path, builder: builder)
        #expect(set.count == 2)
        #expect(set.answers == ["3", "1 2"])
        #expect(set.promptTexts == ["What is 1 + 2?", "Sort the digits: 2 1"])
        let chat = try lm.chatTemplate.encode([ChatMessage(role: "user", content: "What is 1 + 2?")], with: lm.tokenizer,
                                              addGenerationPrompt: true).ids
        #expect(set.prompts == [chat, lm.tokenizer.encode("Sort the digits: 2 1", allowSpecial: false)])
    }

    @Test func aBadLineNamesFileLineAndField() throws {
        let lm = try fixtureModel("hf-tiny-llama")
        let builder = try ExampleBuilder(tokenizer: lm.tokenizer, template: lm.chatTemplate, eosTokenID: lm.eosTokenId)
        let scratch = try Scratch()
        let file = try scratch.write("eval.jsonl", "{\"prompt\": \"Q\", \"answer\": \"A\"}\n{\"prompt\": \"Q\", \"answer\": [\"A\"]}\n")
        #expect(throws: DatasetError.wrongType(file: file.path, line: 2, field: "answer", expected: "a string", found: "an array")) {
            try ExactMatchSet(path: file.path, builder: builder)
        }
        let empty = try scratch.write("empty.jsonl", "{\"prompt\": \"Q\", \"answer\": \"A\"}\n{\"prompt\": \"\", \"answer\": \"A\"}\n")
        #expect(throws: EvaluationError("\(empty.path): record 2: prompt: is empty, so there is nothing to generate from")) {
            try ExactMatchSet(path: empty.path, builder: builder)
        }
    }

    @Test func batchedGreedySamplesEqualUnbatchedAndAccuracyCountsExactReplies() throws {
        let lm = try fixtureModel("hf-tiny-llama")
        let builder = try ExampleBuilder(tokenizer: lm.tokenizer, template: lm.chatTemplate, eosTokenID: lm.eosTokenId)
        let records = ["What is 1 + 2?", "Sort the digits: 3 1 2", "Hi", "Reverse the letters: a b c d e"].map {
            PromptAnswerRecord(prompt: .chat([ChatMessage(role: "user", content: $0)]), answer: "x")
        }
        let set = try ExactMatchSet(records: records, builder: builder)
        let batched = set.samples(lm, maxNewTokens: 5, batchSize: 3)
        let alone = set.samples(lm, maxNewTokens: 5, batchSize: 1)
        #expect(batched.map(\.reply) == alone.map(\.reply))
        #expect(batched.map(\.tokens) == alone.map(\.tokens))
        #expect(batched.map(\.prompt) == records.map { JudgeItem(prompt: $0.prompt, response: "").promptText })

        // Answers set to two of the replies: exactly those two count.
        let answered = try ExactMatchSet(records: records.enumerated().map { k, record in
            PromptAnswerRecord(prompt: record.prompt, answer: k < 2 ? alone[k].reply : alone[k].reply + " and more")
        }, builder: builder)
        let samples = answered.samples(lm, maxNewTokens: 5)
        #expect(samples.map(\.correct) == [true, true, false, false])
        #expect(ExactMatchSet.accuracy(samples) == 0.5)
        #expect(ExactMatchSet.accuracy([]) == 0)
    }
}
