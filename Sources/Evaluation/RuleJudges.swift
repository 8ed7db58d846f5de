import Datasets
import Foundation

/// The synthetic task's checker (`rein data generate`): 1 when the response is the answer to the
/// prompt, else 0 (also 0 for a prompt that is not one of the task's phrasings).
///
/// The answer key is `SyntheticData.answer(to:)`, next to the phrasings it parses; this is the one
/// place that compares a reply with it.
public struct SyntheticTaskJudge: RewardFunction, Sendable {
    public let name = "synthetic_task"

    /// The checker.
    public init() {}

    /// True when `response`, trimmed of surrounding whitespace, is exactly the answer to `prompt`
    /// (false for an unrecognised prompt).
    public static func isCorrect(prompt: String, response: String) -> Bool {
        guard let answer = SyntheticData.answer(to: prompt) else { return false }
        return response.trimmingCharacters(in: .whitespacesAndNewlines) == answer
    }

    /// 1 or 0 per item, judging the prompt's text (a conversation's last message).
    public func scores(_ items: [JudgeItem]) -> [Double] {
        items.map { Self.isCorrect(prompt: $0.promptText, response: $0.response) ? 1 : 0 }
    }
}

/// A regular expression over the response: 1 when it matches somewhere, else 0; or, counting, the
/// number of non-overlapping matches.
public struct RegexJudge: RewardFunction {
    /// What the score is.
    public enum Mode: String, Sendable, CaseIterable {
        /// 1 when the pattern matches anywhere in the response, else 0.
        case match
        /// The number of non-overlapping matches.
        case count
    }

    public let name = "regex"
    /// The pattern, in Swift `Regex` syntax (the usual Perl/ICU-style syntax).
    public let pattern: String
    /// Match or count.
    public let mode: Mode
    private let regex: Regex<AnyRegexOutput>

    /// A judge for `pattern`.
    ///
    /// - Throws: `EvaluationError` quoting the pattern and what is wrong with it when it is empty
    ///   or not a valid regular expression.
    public init(pattern: String, mode: Mode = .match) throws {
        guard !pattern.isEmpty else { throw EvaluationError("regex judge: the pattern is empty") }
        do {
            regex = try Regex(pattern)
        } catch {
            throw EvaluationError("regex judge: invalid pattern \(String(reflecting: pattern)): \(error)")
        }
        self.pattern = pattern
        self.mode = mode
    }

    /// The score of each response.
    public func scores(_ items: [JudgeItem]) -> [Double] {
        items.map { item in
            switch mode {
            case .match: return item.response.contains(regex) ? 1 : 0
            case .count: return Double(item.response.matches(of: regex).count)
            }
        }
    }
}

/// The response's length, in characters or words; with a target length, minus the distance to it
/// (0 at the target, -1 one unit away, ...).
public struct LengthJudge: RewardFunction, Sendable {
    /// What is counted.
    public enum Unit: String, Sendable, CaseIterable {
        /// Characters as a reader sees them (Swift `Character`s: "é" is one, whether composed or not).
        case characters
        /// Runs of non-whitespace characters.
        case words
    }

    public let name = "length"
    /// Characters or words.
    public let unit: Unit
    /// The length that scores best, if any.
    public let target: Int?

    /// A length judge.
    ///
    /// - Throws: `EvaluationError` when `target` is negative.
    public init(unit: Unit = .characters, target: Int? = nil) throws {
        if let target, target < 0 { throw EvaluationError("length judge: target: expected at least 0, found \(target)") }
        self.unit = unit
        self.target = target
    }

    /// The length of `text` in this judge's unit.
    public func length(of text: String) -> Int {
        switch unit {
        case .characters: return text.count
        case .words: return text.split(whereSeparator: \.isWhitespace).count
        }
    }

    /// The length, or minus its distance to the target.
    public func scores(_ items: [JudgeItem]) -> [Double] {
        items.map { item in
            let n = length(of: item.response)
            guard let target else { return Double(n) }
            return -Double(abs(n - target))
        }
    }
}
