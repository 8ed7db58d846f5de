import Datasets
import Foundation
import Testing
import Tokenizers

@Suite struct PromptAnswerTests {
    @Test func readsTextAndMessagePromptsWithTheirAnswers() throws {
        let scratch = try Scratch()
        let url = try scratch.write("eval.jsonl", [
            #"{"prompt": "What is 2 + 3?", "answer": "5", "id": 7}"#,
            "",
            #"{"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Sort the digits: 3 1"}], "answer": "1 3"}"#,
            #"{"messages": [{"role": "user", "content": "Hi"}], "answer": "Hello"}"#,
        ])
        let records = try PromptAnswerRecord.read(url)
        #expect(records == [
            PromptAnswerRecord(prompt: .text("What is 2 + 3?"), answer: "5"),
            PromptAnswerRecord(prompt: .chat([ChatMessage(role: "system", content: "Be brief."),
                                              ChatMessage(role: "user", content: "Sort the digits: 3 1")]), answer: "1 3"),
            PromptAnswerRecord(prompt: .chat([ChatMessage(role: "user", content: "Hi")]), answer: "Hello"),
        ])
    }

    @Test func badLinesNameTheFileTheLineAndTheField() throws {
        let scratch = try Scratch()
        let cases: [(String, (String) -> DatasetError)] = [
            (#"{"prompt": "Q"}"#, { .missingField(file: $0, line: 2, field: "answer", expected: "a string") }),
            (#"{"prompt": "Q", "answer": 5}"#, { .wrongType(file: $0, line: 2, field: "answer", expected: "a string", found: "a number") }),
            (#"{"answer": "A"}"#, { .missingField(file: $0, line: 2, field: "prompt", expected: "a string or a list of messages") }),
            (#"{"prompt": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}], "answer": "A"}"#,
             { .invalidValue(file: $0, line: 2, field: "prompt[1].role", reason: "is \"assistant\"; a prompt must end with a user turn") }),
            (#"{"prompt": "Q", "answer": "A""#, { .invalidJSON(file: $0, line: 2, column: 29, reason: "") }),
        ]
        for (k, (line, expected)) in cases.enumerated() {
            let url = try scratch.write("bad\(k).jsonl", [#"{"prompt": "ok", "answer": "fine"}"#, line])
            do {
                _ = try PromptAnswerRecord.read(url)
                Issue.record("line \(line) was accepted")
            } catch {
                if case .invalidJSON(let file, let number, _, _) = error {
                    // The parser's wording is its own; the place is ours.
                    #expect(file == url.path && number == 2)
                    #expect(error.description.hasPrefix("\(url.path):2: not valid JSON"))
                } else {
                    #expect(error == expected(url.path), "\(line)")
                }
            }
        }
        let missing = try scratch.write("missing.jsonl", [#"{"prompt": "Q"}"#])
        #expect(throws: DatasetError.self) { try PromptAnswerRecord.read(missing) }
        do { _ = try PromptAnswerRecord.read(missing) } catch {
            #expect(error.description == "\(missing.path):1: missing field 'answer' (expected a string)")
        }
        let blank = try scratch.write("blank.jsonl", ["", "  "])
        #expect(throws: DatasetError.noRecords(file: blank.path, skipped: 0)) { try PromptAnswerRecord.read(blank) }
    }
}
