import Datasets
import Foundation
import Testing
import Tokenizers

@Suite struct RecordsTests {
    /// Reads a one-format file whose line `badLine` is malformed and returns the error message.
    func failure(_ lines: [String], format: DatasetFormat? = nil) throws -> (file: String, message: String) {
        let scratch = try Scratch()
        let url = try scratch.write("data.jsonl", lines)
        do {
            _ = try RecordSet.read(url, format: format)
        } catch {
            return (url.path, error.description)
        }
        Issue.record("no error for \(lines)")
        return (url.path, "")
    }

    @Test func detectsEachFormatFromTheFirstRecord() throws {
        let cases: [(String, DatasetFormat)] = [
            (#"{"text": "Hello"}"#, .languageModeling),
            (#"{"prompt": "2+2=", "completion": " 4"}"#, .promptCompletion),
            (#"{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}"#, .conversational),
            (#"{"prompt": "Q", "chosen": "good", "rejected": "bad", "margin": 2}"#, .preference),
            (#"{"prompt": "Tell me a story"}"#, .promptOnly),
            (#"{"messages": [{"role": "system", "content": "Be brief"}, {"role": "user", "content": "Hi"}]}"#, .promptOnly),
        ]
        let scratch = try Scratch()
        for (k, (line, format)) in cases.enumerated() {
            let set = try RecordSet.read(try scratch.write("f\(k).jsonl", [line, line]))
            #expect(set.format == format, "\(line)")
            #expect(set.records.count == 2)
            #expect(set.records.allSatisfy { $0.format == format })
        }
    }

    @Test func recordsHoldTheirFields() throws {
        let scratch = try Scratch()
        let url = try scratch.write("prefs.jsonl", [
            #"{"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello!"}], "rejected": [{"role": "assistant", "content": "Go away."}], "margin": 0.5, "id": 7}"#,
            #"{"prompt": [{"role": "user", "content": "Bye"}], "chosen": [{"role": "assistant", "content": "Bye!"}], "rejected": [{"role": "assistant", "content": "..."}]}"#,
        ])
        let set = try RecordSet.read(url)
        #expect(set.records[0] == .preference(prompt: .chat([.user("Hi")]), chosen: .chat([.assistant("Hello!")]),
                                              rejected: .chat([.assistant("Go away.")]), margin: 0.5))
        #expect(set.records[1] == .preference(prompt: .chat([.user("Bye")]), chosen: .chat([.assistant("Bye!")]),
                                              rejected: .chat([.assistant("...")]), margin: nil))
    }

    @Test func invalidJSONNamesLineAndColumn() throws {
        let (file, message) = try failure([#"{"text": "ok"}"#, #"{"text": "a",}"#])
        print(message)
        #expect(message.hasPrefix("\(file):2: not valid JSON at column 14: "))
    }

    @Test func missingFieldNamesLineAndField() throws {
        let (file, message) = try failure([#"{"text": "ok"}"#, "", #"{"txt": "typo"}"#])
        #expect(message == "\(file):3: missing field 'text' (expected a string)")
    }

    @Test func wrongTypeNamesFieldExpectedAndFound() throws {
        let (file, message) = try failure([#"{"prompt": 3, "completion": "x"}"#])
        #expect(message == "\(file):1: field 'prompt' must be a string or a list of messages, found a number")
        let (file2, message2) = try failure([#"{"text": ["a"]}"#])
        #expect(message2 == "\(file2):1: field 'text' must be a string, found an array")
        let (file3, message3) = try failure([#"{"prompt": "Q", "chosen": "a", "rejected": "b", "margin": "big"}"#])
        #expect(message3 == "\(file3):1: field 'margin' must be a number, found a string")
        let (file4, message4) = try failure([#"["text"]"#], format: .languageModeling)
        #expect(message4 == "\(file4):1: field '(record)' must be a JSON object, found an array")
    }

    @Test func mixedTextAndMessagesIsAWrongType() throws {
        let (file, message) = try failure([#"{"prompt": "Q", "chosen": [{"role": "assistant", "content": "a"}], "rejected": "b"}"#])
        #expect(message == "\(file):1: field 'chosen' must be a string (like 'prompt'), found an array")
    }

    @Test func badRoleNamesTheMessage() throws {
        let (file, message) = try failure([
            #"{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}"#,
            #"{"messages": [{"role": "user", "content": "Hi"}, {"role": "bot", "content": "Hello"}]}"#,
        ])
        #expect(message == "\(file):2: field 'messages[1].role' is \"bot\"; expected \"system\", \"user\" or \"assistant\"")
    }

    @Test func messageWithoutRoleOrWithNumericContent() throws {
        let (file, message) = try failure([#"{"messages": [{"role": "user", "content": "Hi"}, {"content": "Hello"}]}"#])
        #expect(message == "\(file):1: missing field 'messages[1].role' (expected a string)")
        let (file2, message2) = try failure([#"{"messages": [{"role": "assistant", "content": 5}]}"#])
        #expect(message2 == "\(file2):1: field 'messages[0].content' must be a string, found a number")
        let (file3, message3) = try failure([#"{"messages": ["hello"]}"#])
        #expect(message3 == "\(file3):1: field 'messages[0]' must be a message object {\"role\", \"content\"}, found a string")
    }

    @Test func emptyMessagesAndConversationsWithoutReplies() throws {
        let (file, message) = try failure([#"{"messages": []}"#])
        #expect(message == "\(file):1: field 'messages' is an empty list; expected at least one message")
        let (file2, message2) = try failure([#"{"messages": [{"role": "user", "content": "Hi"}]}"#], format: .conversational)
        #expect(message2 == "\(file2):1: field 'messages' has no assistant message, so there is nothing to train on")
    }

    @Test func preferenceMissingRejected() throws {
        let (file, message) = try failure([
            #"{"prompt": "Q", "chosen": "a", "rejected": "b"}"#,
            #"{"prompt": "Q", "chosen": "a"}"#,
        ])
        #expect(message == "\(file):2: missing field 'rejected' (expected a string (like 'prompt'))")
        let (file2, message2) = try failure([#"{"prompt": "Q", "chosen": "a", "rejected": null}"#])
        #expect(message2 == "\(file2):1: missing field 'rejected' (expected a string (like 'prompt'))")
    }

    @Test func promptOnlyMustEndWithAUserTurn() throws {
        let (file, message) = try failure(
            [#"{"prompt": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}"#], format: .promptOnly)
        #expect(message == "\(file):1: field 'prompt[1].role' is \"assistant\"; a prompt must end with a user turn")
    }

    @Test func laterRecordsMustMatchTheDetectedFormat() throws {
        let (file, message) = try failure([#"{"text": "a"}"#, #"{"prompt": "Q", "completion": "A"}"#])
        #expect(message == "\(file):2: missing field 'text' (expected a string)")
    }

    @Test func unrecognizedFirstRecord() throws {
        let (file, message) = try failure([#"{"question": "Q", "answer": "A"}"#])
        #expect(message.hasPrefix("\(file):1: a record with fields 'question', 'answer' matches no dataset format"))
    }

    @Test func invalidUTF8() throws {
        let scratch = try Scratch()
        var bytes = Data(#"{"text": "ok"}"#.utf8 + [0x0A])
        bytes.append(contentsOf: Array(#"{"text": "caf"#.utf8) + [0xC3, 0x28] + Array(#""}"#.utf8) + [0x0A])
        let url = try scratch.write("latin.jsonl", bytes)
        #expect(throws: DatasetError.invalidUTF8(file: url.path, line: 2)) { try RecordSet.read(url) }
    }
}
