import Datasets
import Foundation
import TensorCore

/// A pairwise verdict: which of two responses shown is better, in the order shown.
public enum PairVerdict: String, Sendable, Codable, Equatable {
    case first, second, tie
}

/// A user's program that compares two responses (an LLM judge, a script): one process per call.
///
/// Its stdin gets one JSON line per pair, `{"prompt":P,"response_a":"...","response_b":"..."}` (P as
/// for ``CommandJudge``); it prints one verdict per line: `a`, `b` or `tie` (also `A`/`B`, `1`/`2`,
/// `0` for a tie, or a JSON object `{"winner": "a"}`). A line it cannot parse fails that pair only; a
/// crash, a timeout or a wrong number of lines fails the whole call, with a message naming the
/// command, so that no failure is ever counted as a win.
public struct PairwiseCommandJudge: Sendable {
    public let command: CommandJudge
    public var name: String { command.name }

    public init(executable: String, arguments: [String] = [], timeout: Double = 120, name: String = "pairwise_command") throws {
        command = try CommandJudge(executable: executable, arguments: arguments, timeout: timeout, name: name)
    }

    /// The stdin line of one pair.
    public static func line(prompt: TextOrChat, first: String, second: String) -> String {
        "{\"prompt\":\(CommandJudge.promptJSON(prompt)),\"response_a\":\(JSONText.quoted(first)),"
            + "\"response_b\":\(JSONText.quoted(second))}"
    }

    /// One verdict, or the reason it could not be read, per pair; throws when the call itself failed.
    public func verdicts(_ pairs: [(prompt: TextOrChat, first: String, second: String)]) throws -> [Result<PairVerdict, EvaluationError>] {
        if pairs.isEmpty { return [] }
        let input = Data(pairs.map { Self.line(prompt: $0.prompt, first: $0.first, second: $0.second) + "\n" }.joined().utf8)
        let (status, reason, output, errors) = try command.run(input: input)
        let stderrTail = CommandJudge.tail(errors)
        if reason == .uncaughtSignal { throw command.failure("was killed by signal \(status)" + stderrTail) }
        guard status == 0 else { throw command.failure("exited with status \(status)" + stderrTail) }
        var lines = String(decoding: output, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        guard lines.count == pairs.count else {
            throw command.failure("printed \(lines.count) line\(lines.count == 1 ? "" : "s") for \(pairs.count) pair\(pairs.count == 1 ? "" : "s"); "
                                  + "expected one verdict (a, b or tie) per line")
        }
        return lines.enumerated().map { k, line in
            if let verdict = Self.parse(String(line)) { return .success(verdict) }
            return .failure(command.failure("line \(k + 1) of its output is \(String(reflecting: String(line.prefix(200)))), "
                                            + "not a verdict (a, b or tie)"))
        }
    }

    /// `a`, `b`, `tie` and their spellings; nil for anything else.
    public static func parse(_ line: String) -> PairVerdict? {
        var text = line.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.hasPrefix("{"), let data = text.data(using: .utf8),
           let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            guard let winner = object["winner"] else { return nil }
            text = "\(winner)"
        }
        switch text.lowercased() {
        case "a", "1", "first", "response_a": return .first
        case "b", "2", "second", "response_b": return .second
        case "tie", "0", "draw", "=": return .tie
        default: return nil
        }
    }
}
