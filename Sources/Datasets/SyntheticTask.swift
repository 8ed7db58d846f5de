import Foundation
import TensorCore
import Tokenizers

/// Settings of the synthetic instruction task (`rein data generate`): which task, how many examples
/// each file gets, and the seed. Keys are snake_case; absent keys keep their defaults.
public struct SyntheticDataConfig: Codable, Equatable, Sendable {
    /// `arithmetic`, `reverse`, `sort`, or `mix` (an even mix of the three).
    public var task: String
    /// Lines of `pretrain.txt`.
    public var pretrainExamples: Int
    /// Records of `sft.jsonl`.
    public var sftExamples: Int
    /// Records of `prefs.jsonl`.
    public var preferencePairs: Int
    /// Records of `sft_valid.jsonl` and of `prefs_valid.jsonl` (the same held-out problems).
    public var validationExamples: Int
    /// Records of `eval.jsonl`.
    public var evalPrompts: Int
    /// Seed of the generator; the same config always writes the same bytes.
    public var seed: UInt64
    /// Largest operand of the arithmetic task (1 to `maxOperandLimit`).
    public var maxOperand: Int
    /// The share of `sft.jsonl`'s demonstrations for sorts and reversals of 5 or 6 items whose
    /// answer drops the last item, as a tired demonstrator's would (0 to 1; default 0). Everything
    /// else stays right: the pretraining text, the validation records, the preference pairs (whose
    /// rule prefers the complete answer) and the held-out answers. It gives RL something SFT
    /// leaves behind: the habit is the policy's own, so sampling finds the complete answer too.
    public var sloppyDemonstrations: Double
    /// For `task: chatterbot`: a ChatterBot corpus directory of `.yml` files (or one file), turned
    /// into question/answer records instead of a generated task.
    public var source: String?

    /// The values `task` may take.
    public static let tasks = ["arithmetic", "reverse", "sort", "mix", "chatterbot"]
    /// The largest `max_operand` allowed, so answers stay a few tokens long.
    public static let maxOperandLimit = 9999

    enum CodingKeys: String, CodingKey, CaseIterable {
        case task, pretrainExamples = "pretrain_examples", sftExamples = "sft_examples"
        case preferencePairs = "preference_pairs", validationExamples = "validation_examples"
        case evalPrompts = "eval_prompts", seed, maxOperand = "max_operand", sloppyDemonstrations = "sloppy_demonstrations", source
    }

    /// Creates a config; every argument has the default a key takes when absent.
    public init(task: String = "arithmetic", pretrainExamples: Int = 20_000, sftExamples: Int = 2_000,
                preferencePairs: Int = 1_000, validationExamples: Int = 200, evalPrompts: Int = 200,
                seed: UInt64 = 1234, maxOperand: Int = 99, sloppyDemonstrations: Double = 0) {
        self.task = task
        self.pretrainExamples = pretrainExamples
        self.sftExamples = sftExamples
        self.preferencePairs = preferencePairs
        self.validationExamples = validationExamples
        self.evalPrompts = evalPrompts
        self.seed = seed
        self.maxOperand = maxOperand
        self.sloppyDemonstrations = sloppyDemonstrations
    }

    /// Decodes, keeping the defaults for absent keys.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var d = SyntheticDataConfig()
        func read<T: Decodable>(_ key: CodingKeys, _ into: inout T) throws {
            if let value = try c.decodeIfPresent(T.self, forKey: key) { into = value }
        }
        try read(.task, &d.task)
        try read(.pretrainExamples, &d.pretrainExamples)
        try read(.sftExamples, &d.sftExamples)
        try read(.preferencePairs, &d.preferencePairs)
        try read(.validationExamples, &d.validationExamples)
        try read(.evalPrompts, &d.evalPrompts)
        try read(.seed, &d.seed)
        try read(.maxOperand, &d.maxOperand)
        try read(.sloppyDemonstrations, &d.sloppyDemonstrations)
        d.source = try c.decodeIfPresent(String.self, forKey: .source)
        self = d
    }

    /// Every key a config may have.
    public static var keys: [String] { CodingKeys.allCases.map(\.rawValue) }

    /// Problems with the values, each "key: message".
    ///
    /// Whether the held-out problems fit in the task's problem space is checked by
    /// `SyntheticData.write`, which throws naming the keys.
    public func problems() -> [String] {
        var out: [String] = []
        if !Self.tasks.contains(task) {
            out.append("task: unknown task \(String(reflecting: task)) (valid: \(Self.tasks.joined(separator: ", ")))")
        }
        let counts: [(CodingKeys, Int)] = [(.pretrainExamples, pretrainExamples), (.sftExamples, sftExamples),
                                           (.preferencePairs, preferencePairs), (.validationExamples, validationExamples),
                                           (.evalPrompts, evalPrompts)]
        for (key, value) in counts where value < 1 {
            out.append("\(key.rawValue): must be at least 1, got \(value)")
        }
        if task == "chatterbot" && source == nil {
            out.append("source: required for task chatterbot (a ChatterBot corpus directory, e.g. assets/chatterbot/english)")
        }
        if task != "chatterbot" && source != nil {
            out.append("source: only used by task chatterbot")
        }
        if !(1...Self.maxOperandLimit).contains(maxOperand) {
            out.append("max_operand: must be in 1...\(Self.maxOperandLimit), got \(maxOperand)")
        }
        if !(0...1).contains(sloppyDemonstrations) {
            out.append("sloppy_demonstrations: must be in 0...1, got \(sloppyDemonstrations)")
        }
        if task == "chatterbot" && sloppyDemonstrations != 0 {
            out.append("sloppy_demonstrations: only used by the generated tasks (arithmetic, reverse, sort, mix)")
        }
        return out
    }
}

/// One file `SyntheticData.write` produced.
public struct SyntheticDataFile: Sendable, Equatable {
    /// The file's name, one of `SyntheticData.fileNames`.
    public var name: String
    /// Where it was written.
    public var url: URL
    /// Its lines: one example, record or pair each.
    public var count: Int
}

/// What `SyntheticData.write` wrote.
public struct SyntheticDataSummary: Sendable, Equatable {
    /// The output directory.
    public var directory: URL
    /// The files, in the order of `SyntheticData.fileNames`.
    public var files: [SyntheticDataFile]

    /// The file named `name`, if written.
    public subscript(name: String) -> SyntheticDataFile? { files.first { $0.name == name } }
}

/// A synthetic instruction task whose answers a program can check, generated without downloads.
///
/// Tasks: `arithmetic` ("What is 47 + 38?" -> "85"; subtraction never goes below zero),
/// `reverse` ("Reverse the letters: p l a n t" -> "t n a l p"; random lowercase words of 3-6
/// letters, spelled out so that every letter is its own token whatever the tokenizer merges),
/// `sort` ("Sort the digits: 5 2 9 1" -> "1 2 5 9"; 3-6 digits) and `mix` (an even mix).
///
/// The held-out problems (eval prompts and validation records) are distinct from each other and
/// never appear in a training file. Training files draw from the rest of the problem space with
/// replacement, so a problem may repeat when the counts are large for the space.
public enum SyntheticData {
    /// The files `write` produces, in order.
    public static let fileNames = ["pretrain.txt", "sft.jsonl", "sft_valid.jsonl", "prefs.jsonl", "prefs_valid.jsonl", "eval.jsonl"]

    /// Generates the task and writes its files into `directory` (created if needed), each
    /// atomically:
    ///
    /// - `pretrain.txt`: one solved problem a paragraph, in plain prose ("47 + 38 = 85"), each
    ///   followed by a blank line, so `RecordSet` reads every problem as its own document.
    /// - `sft.jsonl`, `sft_valid.jsonl`: conversational records, a user prompt and the answer.
    /// - `prefs.jsonl`, `prefs_valid.jsonl`: conversational preference pairs; `rejected` is a near
    ///   miss, never the correct answer.
    /// - `eval.jsonl`: prompt-only records with the correct answer in an extra `answer` field.
    ///
    /// The output depends only on `config`.
    ///
    /// - Throws: `DatasetError.invalidConfiguration` naming the keys when `config.problems()` is
    ///   not empty or the held-out problems do not fit the problem space; `DatasetError.fileAccess`
    ///   when a file cannot be written.
    public static func write(_ config: SyntheticDataConfig, to directory: URL) throws(DatasetError) -> SyntheticDataSummary {
        let contents = config.task == "chatterbot" ? try ChatCorpusTask.generate(config) : try generate(config)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw DatasetError.fileAccess(file: directory.path, reason: "cannot create the directory (\(error.localizedDescription))")
        }
        var files: [SyntheticDataFile] = []
        for (name, lines) in contents {
            let url = directory.appendingPathComponent(name)
            let text = lines.joined(separator: "\n") + "\n"
            do {
                try AtomicFile.write(Data(text.utf8), to: url)
            } catch {
                throw DatasetError.fileAccess(file: url.path, reason: "cannot be written (\(error))")
            }
            files.append(SyntheticDataFile(name: name, url: url, count: lines.count))
        }
        return SyntheticDataSummary(directory: directory, files: files)
    }

    /// The correct answer to a prompt of any task, or nil when the prompt is not one of the task
    /// phrasings. Surrounding whitespace is ignored. (Judging a reply against it is Evaluation's
    /// `SyntheticTaskJudge`.)
    public static func answer(to prompt: String) -> String? {
        let text = prompt.trimmingCharacters(in: .whitespacesAndNewlines)
        if let body = text.without(prefix: SyntheticProblem.arithmeticPrefix), body.hasSuffix("?") {
            let parts = body.dropLast().split(separator: " ")
            guard parts.count == 3, let a = number(parts[0]), let b = number(parts[2]) else { return nil }
            switch parts[1] {
            case "+": return String(a + b)
            case "-": return String(a - b)
            default: return nil
            }
        }
        if let body = text.without(prefix: SyntheticProblem.reversePrefix) {
            let letters = body.split(whereSeparator: \.isWhitespace)
            guard !letters.isEmpty, letters.allSatisfy({ $0.count == 1 && $0.first!.isASCII && $0.first!.isLetter }) else { return nil }
            return letters.reversed().joined(separator: " ")
        }
        if let body = text.without(prefix: SyntheticProblem.sortPrefix) {
            let items = body.split(whereSeparator: \.isWhitespace)
            guard !items.isEmpty, items.allSatisfy({ $0.count == 1 && $0.first!.isASCII && $0.first!.isNumber }) else { return nil }
            return items.map(String.init).sorted().joined(separator: " ")
        }
        return nil
    }

    /// A non-negative decimal of 1-18 ASCII digits (so sums cannot overflow).
    private static func number(_ text: Substring) -> Int? {
        guard (1...18).contains(text.count), text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(text)
    }

    // MARK: Generation

    /// Random-stream ids, one per file, so each file's draws are independent of the others'.
    private enum Stream: UInt64 {
        case eval = 1, validation, pretrain, sft, prefs, prefsValidation, sloppy
    }

    /// The lines of every file, in `fileNames` order.
    static func generate(_ config: SyntheticDataConfig) throws(DatasetError) -> [(name: String, lines: [String])] {
        let problems = config.problems()
        guard problems.isEmpty else { throw DatasetError.invalidConfiguration(problems.joined(separator: "\n")) }
        let kinds = config.task == "mix" ? SyntheticTaskKind.allCases : [SyntheticTaskKind(rawValue: config.task)!]
        var pool = ProblemPool(kinds: kinds, maxOperand: config.maxOperand)

        // Check capacity for the held-out problems of each task before drawing any.
        let evalShares = evenSplit(config.evalPrompts, kinds.count)
        let validationShares = evenSplit(config.validationExamples, kinds.count)
        for (k, kind) in kinds.enumerated() {
            let wanted = evalShares[k] + validationShares[k]
            let capacity = kind.heldOutCapacity(maxOperand: config.maxOperand)
            guard wanted <= capacity else {
                throw DatasetError.invalidConfiguration(tooSmallMessage(kind: kind, wanted: wanted, capacity: capacity, config: config))
            }
        }

        func rng(_ stream: Stream) -> RNG { RNG(seed: config.seed, stream: stream.rawValue) }
        var evalRNG = rng(.eval), validationRNG = rng(.validation)
        let eval = pool.drawHeldOut(evalShares, &evalRNG)
        let validation = pool.drawHeldOut(validationShares, &validationRNG)

        var pretrainRNG = rng(.pretrain), sftRNG = rng(.sft), prefsRNG = rng(.prefs), prefsValidationRNG = rng(.prefsValidation)
        let pretrain = pool.drawTraining(evenSplit(config.pretrainExamples, kinds.count), &pretrainRNG)
        let sft = pool.drawTraining(evenSplit(config.sftExamples, kinds.count), &sftRNG)
        let prefs = pool.drawTraining(evenSplit(config.preferencePairs, kinds.count), &prefsRNG)

        func pair(_ problem: SyntheticProblem, _ rng: inout RNG) -> PreferenceRecord {
            let misses = problem.nearMisses()
            let wrong = misses[rng.int(below: misses.count)]
            return PreferenceRecord(prompt: [.user(problem.prompt)], chosen: [.assistant(problem.answer)], rejected: [.assistant(wrong)])
        }
        func conversation(_ problem: SyntheticProblem) -> ConversationRecord {
            ConversationRecord(messages: [.user(problem.prompt), .assistant(problem.answer)])
        }
        // Its own stream, drawn only when the share is above 0: the default files stay byte for byte.
        var sloppyRNG = rng(.sloppy)
        func demonstration(_ problem: SyntheticProblem) -> ConversationRecord {
            guard config.sloppyDemonstrations > 0, let short = problem.withoutLastItem(fromItems: 5),
                  Double(sloppyRNG.uniform()) < config.sloppyDemonstrations else { return conversation(problem) }
            return ConversationRecord(messages: [.user(problem.prompt), .assistant(short)])
        }
        return [
            // A blank line after each problem makes it its own document: pretraining sees EOS after
            // every answer and learns to stop, and a validation split can hold whole problems out.
            ("pretrain.txt", pretrain.map { $0.statement + "\n" }),
            ("sft.jsonl", try jsonLines(sft.map(demonstration))),
            ("sft_valid.jsonl", try jsonLines(validation.map(conversation))),
            ("prefs.jsonl", try jsonLines(prefs.map { pair($0, &prefsRNG) })),
            ("prefs_valid.jsonl", try jsonLines(validation.map { pair($0, &prefsValidationRNG) })),
            ("eval.jsonl", try jsonLines(eval.map { EvalRecord(prompt: [.user($0.prompt)], answer: $0.answer) })),
        ]
    }

    private static func tooSmallMessage(kind: SyntheticTaskKind, wanted: Int, capacity: Int, config: SyntheticDataConfig) -> String {
        let share = config.task == "mix" ? " (the \(kind.rawValue) share of the mix)" : ""
        let limit = kind == .arithmetic ? " with max_operand \(config.maxOperand)" : ""
        let message = "eval_prompts + validation_examples: \(wanted) held-out \(kind.rawValue) problems\(share) do not fit\(limit), "
            + "which allows at most \(capacity) (half of the problem space is kept for training)"
        if kind == .arithmetic,
           let needed = (config.maxOperand...SyntheticDataConfig.maxOperandLimit).first(where: { kind.heldOutCapacity(maxOperand: $0) >= wanted }) {
            return message + "; raise max_operand to at least \(needed) or lower eval_prompts / validation_examples"
        }
        return message + "; lower eval_prompts / validation_examples"
    }

    /// `n` split into `parts` counts that differ by at most one, larger first.
    private static func evenSplit(_ n: Int, _ parts: Int) -> [Int] {
        (0..<parts).map { n / parts + ($0 < n % parts ? 1 : 0) }
    }

    /// One JSON line per record, keys sorted.
    static func jsonLines(_ records: [some Encodable]) throws(DatasetError) -> [String] {
        let encoder = JSONLinesEncoder()
        do {
            return try records.map { try encoder.line($0) }
        } catch {
            throw DatasetError.invalidConfiguration("a generated record cannot be written as JSON: \(error)")
        }
    }
}

// MARK: - Records of the generated JSONL files

/// `{"messages": [...]}`: a conversational SFT record.
struct ConversationRecord: Encodable {
    let messages: [ChatMessage]
}

/// `{"prompt", "chosen", "rejected"}`: a conversational preference pair.
struct PreferenceRecord: Encodable {
    let prompt: [ChatMessage]
    let chosen: [ChatMessage]
    let rejected: [ChatMessage]
}

/// `{"prompt", "answer"}`: a prompt-only eval record with its correct answer.
struct EvalRecord: Encodable {
    let prompt: [ChatMessage]
    let answer: String
}

// MARK: - Tasks and problems

/// The three tasks (`mix` is all of them).
enum SyntheticTaskKind: String, CaseIterable, Sendable {
    case arithmetic, reverse, sort

    /// Lengths of reversed words and of sorted digit lists.
    static let lengths = 3...6

    /// Sizes of the task's families, the sub-spaces a draw picks uniformly between: `+` and `-`
    /// for arithmetic, one per length for the others.
    func familySizes(maxOperand m: Int) -> [Int] {
        switch self {
        case .arithmetic: return [(m + 1) * (m + 1), (m + 1) * (m + 2) / 2]
        case .reverse: return Self.lengths.map { power(26, $0) }
        case .sort: return Self.lengths.map { power(10, $0) }
        }
    }

    /// The most held-out problems the task allows: half the smallest family times the number of
    /// families, so training keeps at least half of every family on average.
    func heldOutCapacity(maxOperand: Int) -> Int {
        let sizes = familySizes(maxOperand: maxOperand)
        return sizes.count * sizes.min()! / 2
    }

    /// A uniformly drawn problem of `family`.
    func draw(family: Int, maxOperand m: Int, _ rng: inout RNG) -> SyntheticProblem {
        switch self {
        case .arithmetic:
            var a = rng.int(below: m + 1), b = rng.int(below: m + 1)
            let plus = family == 0
            if !plus && a < b { swap(&a, &b) }
            return SyntheticProblem(family: family, payload: .arithmetic(a, plus, b))
        case .reverse:
            let letters = (0..<Self.lengths.lowerBound + family).map { _ in UInt8(ascii: "a") + UInt8(rng.int(below: 26)) }
            return SyntheticProblem(family: family, payload: .reverse(String(decoding: letters, as: UTF8.self)))
        case .sort:
            let digits = (0..<Self.lengths.lowerBound + family).map { _ in rng.int(below: 10) }
            return SyntheticProblem(family: family, payload: .sort(digits))
        }
    }
}

private func power(_ base: Int, _ exponent: Int) -> Int {
    (0..<exponent).reduce(1) { acc, _ in acc * base }
}

/// One problem: its prompt, answer, pretraining sentence and wrong answers.
struct SyntheticProblem: Sendable {
    enum Payload: Sendable {
        /// a + b (true) or a - b (false), with a >= b for subtraction.
        case arithmetic(Int, Bool, Int)
        /// A lowercase word.
        case reverse(String)
        /// Digits 0-9 in the given order.
        case sort([Int])
    }

    static let arithmeticPrefix = "What is "
    static let reversePrefix = "Reverse the letters:"

    /// "plant" as "p l a n t".
    static func spaced<S: Sequence>(_ letters: S) -> String where S.Element == Character { letters.map(String.init).joined(separator: " ") }
    static let sortPrefix = "Sort the digits:"

    /// The family the problem was drawn from.
    var family: Int
    var payload: Payload

    var kind: SyntheticTaskKind {
        switch payload {
        case .arithmetic: return .arithmetic
        case .reverse: return .reverse
        case .sort: return .sort
        }
    }

    /// The user's instruction; it determines the problem, so it is also the problem's key.
    var prompt: String {
        switch payload {
        case let .arithmetic(a, plus, b): return "\(Self.arithmeticPrefix)\(a) \(plus ? "+" : "-") \(b)?"
        case let .reverse(word): return "\(Self.reversePrefix) \(Self.spaced(word))"
        case let .sort(digits): return "\(Self.sortPrefix) \(Self.list(digits))"
        }
    }

    /// The only correct answer.
    var answer: String {
        switch payload {
        case let .arithmetic(a, plus, b): return String(plus ? a + b : a - b)
        case let .reverse(word): return Self.spaced(word.reversed())
        case let .sort(digits): return Self.list(digits.sorted())
        }
    }

    /// The solved problem as a plain sentence, for pretraining.
    var statement: String {
        switch payload {
        case let .arithmetic(a, plus, b): return "\(a) \(plus ? "+" : "-") \(b) = \(answer)"
        case let .reverse(word): return "\(Self.spaced(word)) reversed is \(answer)"
        case let .sort(digits): return "\(Self.list(digits)) sorted is \(answer)"
        }
    }

    /// The answer without its last item, for a sort or reversal of at least `fromItems` items (nil
    /// otherwise): `sloppy_demonstrations`' habit.
    func withoutLastItem(fromItems: Int) -> String? {
        switch payload {
        case .arithmetic: return nil
        case let .reverse(word): return word.count >= fromItems ? Self.spaced(word.reversed().dropLast()) : nil
        case let .sort(digits): return digits.count >= fromItems ? Self.list(Array(digits.sorted().dropLast())) : nil
        }
    }

    /// Plausible wrong answers, never empty and never the correct one.
    func nearMisses() -> [String] {
        let correct = answer
        var out: [String] = []
        switch payload {
        case let .arithmetic(a, plus, b):
            let value = plus ? a + b : a - b
            var numbers = [value + 1, value - 1, value + 10, value - 10, plus ? abs(a - b) : a + b]
            var digits = Array(String(value))
            if digits.count >= 2 {
                digits.swapAt(digits.count - 1, digits.count - 2)
                if digits.first != "0", let swapped = Int(String(digits)) { numbers.append(swapped) }
            }
            out = numbers.filter { $0 >= 0 }.map(String.init)
        case let .reverse(word):
            let reversed = Array(word.reversed())
            out.append(Self.spaced(word))  // not reversed at all
            out.append(Self.spaced(reversed.dropLast()))  // a letter lost
            if let i = (0..<reversed.count - 1).first(where: { reversed[$0] != reversed[$0 + 1] }) {
                var swapped = reversed
                swapped.swapAt(i, i + 1)
                out.append(Self.spaced(swapped))
            }
            var ends = Array(word)  // only the first and last letters exchanged
            ends.swapAt(0, ends.count - 1)
            out.append(Self.spaced(ends))
        case let .sort(digits):
            let sorted = digits.sorted()
            out.append(Self.list(digits))  // unsorted
            out.append(Self.list(sorted.reversed()))  // descending
            out.append(Self.list(Array(sorted.dropLast())))  // a digit lost
            if let i = (0..<sorted.count - 1).last(where: { sorted[$0] != sorted[$0 + 1] }) {
                var swapped = sorted
                swapped.swapAt(i, i + 1)
                out.append(Self.list(swapped))
            }
        }
        return out.filter { $0 != correct }
    }

    private static func list(_ digits: [Int]) -> String { digits.map(String.init).joined(separator: " ") }
}

/// Draws problems, keeping held-out problems unique and out of every training draw.
struct ProblemPool {
    let kinds: [SyntheticTaskKind]
    let maxOperand: Int
    /// Prompts of the held-out problems.
    private(set) var heldOut: Set<String> = []
    /// Family sizes and held-out counts, per kind.
    private var sizes: [[Int]]
    private var held: [[Int]]

    init(kinds: [SyntheticTaskKind], maxOperand: Int) {
        self.kinds = kinds
        self.maxOperand = maxOperand
        sizes = kinds.map { $0.familySizes(maxOperand: maxOperand) }
        held = sizes.map { [Int](repeating: 0, count: $0.count) }
    }

    /// `counts[k]` new distinct problems of `kinds[k]` each, none held out before, in a shuffled
    /// order; they are held out from now on.
    mutating func drawHeldOut(_ counts: [Int], _ rng: inout RNG) -> [SyntheticProblem] {
        var out: [SyntheticProblem] = []
        for (k, count) in counts.enumerated() {
            for _ in 0..<count {
                let problem = draw(k, &rng)
                heldOut.insert(problem.prompt)
                held[k][problem.family] += 1
                out.append(problem)
            }
        }
        seededShuffle(&out, using: &rng)
        return out
    }

    /// `counts[k]` problems of `kinds[k]` each, none held out (repeats allowed), in a shuffled order.
    func drawTraining(_ counts: [Int], _ rng: inout RNG) -> [SyntheticProblem] {
        var out: [SyntheticProblem] = []
        for (k, count) in counts.enumerated() {
            for _ in 0..<count { out.append(draw(k, &rng)) }
        }
        seededShuffle(&out, using: &rng)
        return out
    }

    /// A problem of `kinds[k]` that is not held out: a family with problems left, uniformly, then
    /// a problem of it, redrawn until not held out. The capacity check in `generate` keeps every
    /// family at least half free on average, so redraws are few.
    private func draw(_ k: Int, _ rng: inout RNG) -> SyntheticProblem {
        let open = sizes[k].indices.filter { held[k][$0] < sizes[k][$0] }
        let family = open[rng.int(below: open.count)]
        while true {
            let problem = kinds[k].draw(family: family, maxOperand: maxOperand, &rng)
            if !heldOut.contains(problem.prompt) { return problem }
        }
    }
}

extension String {
    /// The rest of the string after `prefix`, or nil when it does not start with it.
    fileprivate func without(prefix: String) -> Substring? {
        hasPrefix(prefix) ? dropFirst(prefix.count) : nil
    }
}
