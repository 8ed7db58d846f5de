import Foundation
import Tokenizers

/// A prompt with its reference answer: one line `{"prompt": TEXT or messages, "answer": TEXT}` of
/// an evaluation file (`eval.jsonl` of `rein data generate`), read by exact-match evaluation.
///
/// The prompt follows the prompt-only format (a string, a message list ending with a user turn, or
/// `messages` in place of `prompt`); other fields are ignored.
public struct PromptAnswerRecord: Sendable, Hashable {
    /// What the model is asked.
    public var prompt: TextOrChat
    /// The reply that counts as right.
    public var answer: String

    /// A prompt and its answer.
    public init(prompt: TextOrChat, answer: String) {
        self.prompt = prompt
        self.answer = answer
    }

    /// Every record of a JSONL file, blank lines ignored, read through the same line reader and
    /// JSON parser as `JSONLReader`.
    ///
    /// - Throws: the first bad line's `DatasetError` (`file:line: missing field 'answer' (expected
    ///   a string)` and the like); `DatasetError.noRecords` for a file without records;
    ///   `DatasetError.fileAccess` when it cannot be read.
    public static func read(_ url: URL) throws(DatasetError) -> [PromptAnswerRecord] {
        var lines = try LineReader(url: url)
        var records: [PromptAnswerRecord] = []
        while let bytes = try lines.next() {
            if isBlank(bytes) { continue }
            let line = lines.lineNumber
            let value = try parseJSONLine(bytes, file: url.path, line: line)
            records.append(try RecordParser(file: url.path, line: line, object: value).promptAnswer())
        }
        guard !records.isEmpty else { throw DatasetError.noRecords(file: url.path, skipped: 0) }
        return records
    }
}
