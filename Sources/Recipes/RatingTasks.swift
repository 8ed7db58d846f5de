import Datasets
import Foundation
import Store
import Tokenizers

/// One prompt with the responses to judge, before it becomes a `RatingItem`.
public struct RatingCandidate: Sendable, Equatable {
    public var prompt: String
    public var responses: [String]
    /// Where each response came from (`file:line`, a stage and step).
    public var sources: [String]

    public init(prompt: String, responses: [String], sources: [String]) {
        self.prompt = prompt
        self.responses = responses
        self.sources = sources
    }
}

/// A gold item: a pair whose better response is known.
public struct GoldPair: Sendable, Equatable {
    public var prompt: String
    public var chosen: String
    public var rejected: String

    public init(prompt: String, chosen: String, rejected: String) {
        self.prompt = prompt
        self.chosen = chosen
        self.rejected = rejected
    }
}

/// Reading candidates and gold pairs, and turning them into a task's items.
public enum RatingTasks {
    /// The candidates of a JSONL file, `{"prompt", "responses": [...]}` or `{"prompt", "response_a", "response_b"}` a
    /// line; errors name `file:line` and the field. Pair mode needs two responses a line (a longer list gives
    /// consecutive pairs), rank mode at least two, single mode takes each response as an item.
    public static func readCandidates(_ url: URL, display: String) throws(DatasetError) -> [RatingCandidate] {
        var result: [RatingCandidate] = []
        try forEachObject(url, display: display) { (value, line) throws(DatasetError) in
            let prompt = try string(value, "prompt", display, line)
            let responses: [String]
            if let list = value["responses"] {
                guard case let .array(elements) = list else {
                    throw DatasetError.wrongType(file: display, line: line, field: "responses", expected: "an array of strings",
                                                 found: typeName(list))
                }
                responses = try elements.enumerated().map { (i, element) throws(DatasetError) -> String in
                    guard case let .string(text) = element else {
                        throw DatasetError.wrongType(file: display, line: line, field: "responses[\(i)]", expected: "a string",
                                                     found: typeName(element))
                    }
                    return text
                }
                guard !responses.isEmpty else {
                    throw DatasetError.invalidValue(file: display, line: line, field: "responses", reason: "is empty")
                }
            } else if value["response_a"] != nil || value["response_b"] != nil {
                responses = [try string(value, "response_a", display, line), try string(value, "response_b", display, line)]
            } else {
                throw DatasetError.missingField(file: display, line: line, field: "responses",
                                                expected: "an array of strings, or 'response_a' and 'response_b'")
            }
            // Sources (for win rates, hidden from raters): `sources` or `source_a`/`source_b` when given, else the field.
            var sources = value["response_a"] != nil ? ["response_a", "response_b"] : responses.indices.map { "responses[\($0)]" }
            if case let .array(given)? = value["sources"] {
                for (i, element) in given.enumerated() where i < sources.count { if case let .string(s) = element { sources[i] = s } }
            }
            if case let .string(a)? = value["source_a"] { sources[0] = a }
            if case let .string(b)? = value["source_b"], sources.count > 1 { sources[1] = b }
            result.append(RatingCandidate(prompt: prompt, responses: responses, sources: sources))
        }
        guard !result.isEmpty else { throw DatasetError.noRecords(file: display, skipped: 0) }
        return result
    }

    /// The gold pairs of a JSONL file, `{"prompt", "chosen", "rejected"}` a line.
    public static func readGold(_ url: URL, display: String) throws(DatasetError) -> [GoldPair] {
        var result: [GoldPair] = []
        try forEachObject(url, display: display) { (value, line) throws(DatasetError) in
            result.append(GoldPair(prompt: try string(value, "prompt", display, line), chosen: try string(value, "chosen", display, line),
                                   rejected: try string(value, "rejected", display, line)))
        }
        guard !result.isEmpty else { throw DatasetError.noRecords(file: display, skipped: 0) }
        return result
    }

    /// Candidates from a run's rollouts: per stage (one, or every stage of the run), the responses to each
    /// prompt in the order they were sampled (training rollouts, else evaluation replies).
    public static func candidates(fromRollouts store: RunStore, run reference: String) throws -> [RatingCandidate] {
        let parts = reference.split(separator: ":", maxSplits: 1).map(String.init)
        let runRef = parts[0], stageKey = parts.count > 1 ? parts[1] : nil
        let run: Store.Run? = if let id = Int64(runRef) { try store.run(id) } else { try store.run(named: runRef) }
        guard let run, let runId = run.id else { throw RatingInputError("no run '\(runRef)' in \(store.path)") }
        var stages = try store.stages(runId: runId)
        if let stageKey {
            stages = stages.filter { $0.stageKey == stageKey }
            guard !stages.isEmpty else { throw RatingInputError("run \(runId) (\(run.name)) has no stage '\(stageKey)'") }
        }
        var result: [RatingCandidate] = []
        for stage in stages {
            let sourceStage = stage.reusedStageId ?? stage.id!
            var rollouts = try store.rollouts(stageId: sourceStage, phase: "train")
            if rollouts.isEmpty { rollouts = try store.rollouts(stageId: sourceStage, phase: "eval") }
            var order: [String] = []
            var byPrompt: [String: (responses: [String], sources: [String])] = [:]
            for r in rollouts {
                if byPrompt[r.prompt] == nil { order.append(r.prompt) }
                byPrompt[r.prompt, default: ([], [])].responses.append(r.response)
                byPrompt[r.prompt, default: ([], [])].sources.append("\(stage.stageKey)@v\(r.policyVersion)")
            }
            for prompt in order {
                let entry = byPrompt[prompt]!
                result.append(RatingCandidate(prompt: prompt, responses: entry.responses, sources: entry.sources))
            }
        }
        guard !result.isEmpty else { throw RatingInputError("run \(runId) (\(run.name)) has no rollouts" + (stageKey.map { " in stage '\($0)'" } ?? "")) }
        return result
    }

    /// The items of a task: each candidate cut to the mode's shape (pairs of consecutive responses, all of them
    /// for rank, one each for single; a prompt with too few responses is left out), identical responses marked
    /// as ties, gold pairs mixed in so they make about `goldRate` of the items, and the `overlap` share given to
    /// two raters. Deterministic in `seed`.
    public static func items(_ candidates: [RatingCandidate], mode: RatingMode, gold: [GoldPair] = [], goldRate: Double = 0,
                             overlap: Double = 0, seed: Int64) -> [RatingItem] {
        var shaped: [RatingItem] = []
        for c in candidates {
            switch mode {
            case .pair:
                for start in stride(from: 0, to: c.responses.count - 1, by: 2) {
                    shaped.append(RatingItem(idx: 0, prompt: c.prompt, responses: Array(c.responses[start...start + 1]),
                                             sources: Array(c.sources[start...start + 1])))
                }
            case .rank:
                if c.responses.count >= 2 { shaped.append(RatingItem(idx: 0, prompt: c.prompt, responses: c.responses, sources: c.sources)) }
            case .single:
                for (r, s) in zip(c.responses, c.sources) { shaped.append(RatingItem(idx: 0, prompt: c.prompt, responses: [r], sources: [s])) }
            }
        }
        for i in shaped.indices where shaped[i].responses.count >= 2 {
            shaped[i].identical = Set(shaped[i].responses.map(normalizedWhitespace)).count == 1
        }
        if mode == .pair, goldRate > 0, !gold.isEmpty {
            let wanted = Int((Double(shaped.count) * goldRate / max(1 - goldRate, 1e-9)).rounded())
            let count = min(gold.count, max(1, wanted))
            for g in 0..<count {
                let chosenFirst = hash(seed, "gold", g) & 1 == 0
                let pair = gold[g]
                let item = RatingItem(idx: 0, prompt: pair.prompt, responses: chosenFirst ? [pair.chosen, pair.rejected] : [pair.rejected, pair.chosen],
                                      sources: ["gold:chosen", "gold:rejected"].reversedIf(!chosenFirst), gold: chosenFirst ? 0 : 1)
                // Spread evenly: gold g at (g + 1/2) / count of the way through the final list.
                let total = shaped.count - g + count
                shaped.insert(item, at: min(shaped.count, Int((Double(g) + 0.5) * Double(total) / Double(count))))
            }
        }
        for i in shaped.indices {
            shaped[i].idx = i
            if overlap > 0, unitInterval(hash(seed, "overlap", i)) < overlap { shaped[i].raters = 2 }
        }
        return shaped
    }

    /// The order the item's responses are shown to `rater` (screen position -> response index): a seeded
    /// hash of (task seed, task, item, rater), so undo and resume show the same layout.
    public static func layout(task: RatingTask, item: RatingItem, rater: String) -> [Int] {
        var order = Array(item.responses.indices)
        guard order.count >= 2 else { return order }
        var state = hash(task.seed, "layout \(task.name) \(item.idx) \(rater)", 0)
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            state = splitMix(state)
            order.swapAt(i, Int(state % UInt64(i + 1)))
        }
        return order
    }

    /// Runs of whitespace as one space, none at the ends: responses equal after this are a tie.
    public static func normalizedWhitespace(_ text: String) -> String {
        text.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }

    // MARK: - Helpers

    private static func forEachObject(_ url: URL, display: String,
                                      _ body: (JSONValue, Int) throws(DatasetError) -> Void) throws(DatasetError) {
        var lines = try LineReader(url: url)
        while let bytes = try lines.next() {
            if isBlank(bytes) { continue }
            let value = try parseJSONLine(bytes, file: display, line: lines.lineNumber)
            guard case .object = value else {
                throw DatasetError.wrongType(file: display, line: lines.lineNumber, field: "(line)", expected: "a JSON object",
                                             found: typeName(value))
            }
            try body(value, lines.lineNumber)
        }
    }

    private static func string(_ value: JSONValue, _ key: String, _ file: String, _ line: Int) throws(DatasetError) -> String {
        guard let field = value[key], !isNull(field) else {
            throw DatasetError.missingField(file: file, line: line, field: key, expected: "a string")
        }
        guard case let .string(text) = field else {
            throw DatasetError.wrongType(file: file, line: line, field: key, expected: "a string", found: typeName(field))
        }
        return text
    }

    private static func isNull(_ value: JSONValue) -> Bool { if case .null = value { true } else { false } }

    private static func typeName(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool: "a boolean"
        case .integer, .double: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    static func hash(_ seed: Int64, _ text: String, _ index: Int) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ UInt64(bitPattern: seed)
        for byte in text.utf8 { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return splitMix(h ^ UInt64(bitPattern: Int64(index)))
    }

    static func splitMix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    static func unitInterval(_ x: UInt64) -> Double { Double(x >> 11) / Double(1 << 53) }
}

/// A problem with `rein rate` input that is not a file line's (an unknown run or stage).
public struct RatingInputError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}

private extension Array {
    func reversedIf(_ condition: Bool) -> [Element] { condition ? reversed() : self }
}
