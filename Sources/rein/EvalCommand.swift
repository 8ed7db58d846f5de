import ArgumentParser
import Checkpoints
import Foundation
import Datasets
import Evaluation
import Recipes

/// `rein eval ...`: measurements of a model on data.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a model on data, or score texts against references (BLEU, chrF, ROUGE, SQuAD F1, sentiment).",
        subcommands: [EvalPerplexity.self, EvalExactMatch.self, EvalBLEU.self, EvalChrF.self, EvalRouge.self, EvalSquadF1.self,
                      EvalSentiment.self]
    )
}

/// `rein eval perplexity`: mean NLL and perplexity on a text file or JSONL records.
struct EvalPerplexity: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity",
        abstract: "Mean negative log-likelihood per token and perplexity (exp of it) on a .txt or .jsonl file.",
        discussion: """
        A .txt file is one text; each line of a .jsonl file is an object whose "text" is one text. Each text \
        is tokenized and cut into windows of --max-length tokens; every token after a text's first is scored \
        once. With --stride below --max-length, windows overlap and the overlap is context only (the \
        Hugging Face sliding-window evaluation).
        """
    )

    @OptionGroup var model: ModelOption

    @Option(help: ArgumentHelp("A .txt or .jsonl file.", valueName: "file"))
    var data: String

    @Option(help: "Tokens per window (default: the model's context, at most 1024).")
    var maxLength: Int?

    @Option(help: "Windows per forward pass.")
    var batchSize = 4

    @Option(help: "Start a window every S tokens (default: --max-length, disjoint windows).")
    var stride: Int?

    @OptionGroup var threads: ThreadOptions

    func validate() throws {
        if let maxLength, maxLength < 2 { throw ValidationError("--max-length must be at least 2 (got \(maxLength))") }
        if batchSize < 1 { throw ValidationError("--batch-size must be at least 1 (got \(batchSize))") }
        if let stride, stride < 1 { throw ValidationError("--stride must be at least 1 (got \(stride))") }
        if let stride, let maxLength, stride > maxLength {
            throw ValidationError("--stride (\(stride)) must not exceed --max-length (\(maxLength))")
        }
    }

    func run() throws {
        threads.apply()
        let texts = try TextCorpus.texts(of: data, accepted: ["txt", "jsonl"])
        let lm = try model.load()
        let context = lm.model.config.maxPositions
        let length = maxLength ?? min(context, 1024)
        guard length <= context else { throw CLIError("--max-length \(length) exceeds the model's context of \(context)") }
        let step = stride ?? length
        guard step <= length else { throw CLIError("--stride (\(step)) must not exceed the window length (\(length))") }

        let windows = texts.flatMap {
            Perplexity.windows(of: lm.tokenizer.encode($0, allowSpecial: false), maxLength: length, stride: step)
        }
        let total = windows.reduce(0) { $0 + $1.targetCount }
        guard total > 0 else { throw CLIError("\(data): no text to score (every text is shorter than two tokens)") }
        Terminal.note("\(count(texts.count, "text")), \(count(windows.count, "window")) of at most \(length) tokens (stride \(step)), \(total) tokens to score")

        var progress = ProgressReporter(total: total, unit: "tokens")
        let result = Perplexity.evaluate(model: lm.model, windows: windows, batchSize: batchSize,
                                         padId: lm.generationPadId) { progress.update($0) }
        print("tokens evaluated: \(result.tokenCount)")
        print("mean NLL:         \(fmt(result.meanNLL, 0, 4)) nats/token")
        print("perplexity:       \(fmt(result.perplexity, 0, 3))")
        print("tokens/s:         \(fmt(Double(result.tokenCount) / progress.elapsed, 0, 1))")
    }
}

/// `rein eval exact-match`: greedy replies to held-out prompts against their answers.
struct EvalExactMatch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exact-match",
        abstract: "Greedy exact-match accuracy on JSONL prompts with answers ({\"prompt\": TEXT or messages, \"answer\": TEXT}).",
        discussion: "Messages are rendered with the model's chat template and its generation prompt. A reply counts when, trimmed, it equals the answer."
    )

    @OptionGroup var model: ModelOption

    @Option(help: ArgumentHelp("A .jsonl file of prompts with answers.", valueName: "file"))
    var data: String

    @Option(help: "The most tokens generated per prompt.")
    var maxNewTokens = 32

    @Option(help: "Print this many wrong replies.")
    var show = 5

    func run() throws {
        let lm = try LanguageModel.load(model.model)
        let builder = try ExampleBuilder(tokenizer: lm.tokenizer, template: lm.chatTemplate, eosTokenID: lm.eosTokenId ?? lm.tokenizer.id(forToken: "<|endoftext|>"))
        let set = try ExactMatchSet(path: data, builder: builder)
        let samples = set.samples(lm, maxNewTokens: maxNewTokens)
        for s in samples.lazy.filter({ !$0.correct }).prefix(show) {
            print("  \(s.prompt)  ->  \(s.reply.debugDescription)  (answer \(s.answer.debugDescription))")
        }
        let right = samples.filter(\.correct).count
        print("exact match: \(right)/\(samples.count) = \(String(format: "%.1f", 100 * Double(right) / Double(samples.count)))%")
    }
}
