import Checkpoints
import Datasets
import Foundation
import Generation
import TensorCore

/// Held-out prompts with known answers: a policy's greedy exact-match accuracy.
public struct ExactMatchSet {
    /// Prompt ids (with the generation prompt), the prompts' text, and the answers.
    public let prompts: [[Int32]]
    public let promptTexts: [String]
    public let answers: [String]
    public var count: Int { prompts.count }

    /// Reads a `PromptAnswerRecord` file: JSONL lines `{"prompt": TEXT or [messages], "answer": TEXT}`
    /// (other fields ignored), prompts tokenized by `builder` with the generation prompt.
    ///
    /// - Throws: the first bad line's `DatasetError` (`file:line: missing field 'answer' ...`).
    public init(path: String, builder: ExampleBuilder) throws {
        try self.init(records: try PromptAnswerRecord.read(URL(fileURLWithPath: path)), builder: builder, source: path)
    }

    /// The set of `records`, prompts tokenized by `builder` with the generation prompt.
    ///
    /// - Throws: `EvaluationError` naming `source` and the record when a prompt has no tokens
    ///   (there is nothing to generate from).
    public init(records: [PromptAnswerRecord], builder: ExampleBuilder, source: String = "prompts") throws {
        var prompts: [[Int32]] = [], answers: [String] = [], texts: [String] = []
        for (k, record) in records.enumerated() {
            let ids = try builder.prompt(for: .prompt(record.prompt))
            guard !ids.isEmpty else {
                throw EvaluationError("\(source): record \(k + 1): prompt: is empty, so there is nothing to generate from")
            }
            prompts.append(ids)
            answers.append(record.answer)
            texts.append(JudgeItem(prompt: record.prompt, response: "").promptText)
        }
        self.prompts = prompts
        self.answers = answers
        promptTexts = texts
    }

    /// The fraction of correct samples.
    public static func accuracy(_ samples: [Sample]) -> Double {
        samples.isEmpty ? 0 : Double(samples.filter(\.correct).count) / Double(samples.count)
    }

    /// One greedy reply and whether it is right.
    public struct Sample: Sendable {
        public var prompt: String
        public var reply: String
        public var answer: String
        public var tokens: Int
        public var stopReason: String
        public var correct: Bool { reply == answer }
    }

    /// The greedy reply to every prompt (generated with `lm.makeGenerator()`, so padded with the
    /// one pad rule), trimmed, with its length and why it stopped.
    public func samples(_ lm: LanguageModel, maxNewTokens: Int, batchSize: Int = 32) -> [Sample] {
        Autograd.withoutGrad {
            let generator = lm.makeGenerator()
            let options = SamplingOptions(temperature: 0, maxNewTokens: maxNewTokens, stopTokens: lm.stopTokenIds)
            var rng = RNG(seed: 0)
            var out: [Sample] = []
            for start in stride(from: 0, to: prompts.count, by: batchSize) {
                let end = min(start + batchSize, prompts.count)
                let generated = generator.generate(prompts: Array(prompts[start..<end]), options: options, rng: &rng)
                for (i, g) in generated.enumerated() {
                    out.append(Sample(prompt: promptTexts[start + i], reply: g.text.trimmingCharacters(in: .whitespacesAndNewlines),
                                      answer: answers[start + i], tokens: g.tokens.count, stopReason: g.stopReason.rawValue))
                }
            }
            return out
        }
    }
}
