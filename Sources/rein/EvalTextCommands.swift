import ArgumentParser
import Evaluation
import Foundation
import Recipes
import TensorCore

/// Texts of a file: one a line, or the string `field` of each record of a `.jsonl` file.
enum TextLines {
    static func read(_ path: String, field: String) throws -> [String] {
        if URL(fileURLWithPath: path).pathExtension.lowercased() == "jsonl" {
            return try TextCorpus.jsonlTexts(path, field: field)
        }
        var lines = String(decoding: try TextCorpus.contents(path), as: UTF8.self)
            .unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false)
            .map { line -> String in
                var scalars = String.UnicodeScalarView(line)
                if scalars.last == "\r" { scalars.removeLast() }
                return String(scalars)
            }
        if lines.last == "" { lines.removeLast() }  // the newline that ends the last line
        return lines
    }

    /// "3 lines" for a text file, "3 records" for JSONL.
    static func describe(_ n: Int, in path: String) -> String {
        count(n, URL(fileURLWithPath: path).pathExtension.lowercased() == "jsonl" ? "record" : "line")
    }
}

/// `--predictions F --references F`, read and paired one to one.
struct TextPairOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The texts to score: one a line, or a .jsonl file.", valueName: "file"))
    var predictions: String

    @Option(help: ArgumentHelp("Their references, paired by line.", valueName: "file"))
    var references: String

    @Option(help: ArgumentHelp("The string field of .jsonl records.", valueName: "name"))
    var field = "text"

    @Option(help: ArgumentHelp("The field of --predictions records (default: --field).", valueName: "name"))
    var predictionField: String?

    @Option(help: ArgumentHelp("The field of --references records (default: --field).", valueName: "name"))
    var referenceField: String?

    @Flag(help: "Print one JSON object: the corpus figures and one object per pair.")
    var json = false

    /// The pairs, or an error naming both files and their counts when they do not pair up.
    func read() throws -> (predictions: [String], references: [String]) {
        let p = try TextLines.read(predictions, field: predictionField ?? field)
        let r = try TextLines.read(references, field: referenceField ?? field)
        guard p.count == r.count else {
            throw CLIError("\(predictions) has \(TextLines.describe(p.count, in: predictions)) but \(references) has "
                           + "\(TextLines.describe(r.count, in: references)); predictions and references pair up one to one")
        }
        guard !p.isEmpty else { throw CLIError("\(predictions): no texts to score") }
        return (p, r)
    }
}

/// Prints `value` as one line of JSON (sorted keys).
private func printJSON(_ value: some Encodable) throws {
    Terminal.write(try JSONLinesEncoder().line(value) + "\n")
}

/// `rein eval bleu`: corpus BLEU with sacrebleu's defaults.
struct EvalBLEU: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bleu",
        abstract: "Corpus BLEU of predictions against references, as sacrebleu 2.6.0 with its defaults.",
        discussion: """
        13a tokenization, case-sensitive, n-grams up to 4, exp smoothing, one reference per prediction; counts and \
        lengths are summed over the corpus. --json adds each pair's sentence BLEU (effective order, sacrebleu's \
        sentence_bleu).
        """
    )

    @OptionGroup var texts: TextPairOptions

    struct Figures: Encodable {
        let score: Double
        let precisions: [Double]
        let bp: Double
        let sys_len: Int
        let ref_len: Int
        let counts: [Int]
        let totals: [Int]

        init(_ s: BLEUScore) {
            score = s.score
            precisions = s.precisions
            bp = s.brevityPenalty
            sys_len = s.statistics.hypothesisLength
            ref_len = s.statistics.referenceLength
            counts = s.statistics.matches
            totals = s.statistics.totals
        }
    }

    struct Report: Encodable {
        let metric = "bleu"
        let signature = BLEU.corpusSignature
        let sentence_signature = BLEU.sentenceSignature
        let corpus: Figures
        let lines: [Figures]
    }

    func run() throws {
        let (predictions, references) = try texts.read()
        let corpus = BLEU.corpus(hypotheses: predictions, references: references)
        guard texts.json else {
            print(corpus.description)
            print("signature: \(BLEU.corpusSignature)")
            return
        }
        let lines = zip(predictions, references).map { Figures(BLEU.sentence(hypothesis: $0, reference: $1)) }
        try printJSON(Report(corpus: Figures(corpus), lines: lines))
    }
}

/// `rein eval chrf`: corpus chrF with sacrebleu's defaults.
struct EvalChrF: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chrf",
        abstract: "Corpus chrF of predictions against references, as sacrebleu 2.6.0 with its defaults.",
        discussion: "Character 6-grams, no word n-grams, beta 2, whitespace removed, case-sensitive. --json adds each pair's sentence chrF."
    )

    @OptionGroup var texts: TextPairOptions

    struct Line: Encodable { let score: Double }

    struct Report: Encodable {
        let metric = "chrf"
        let signature = ChrF.signature
        let score: Double
        let lines: [Line]
    }

    func run() throws {
        let (predictions, references) = try texts.read()
        let score = ChrF.corpus(hypotheses: predictions, references: references)
        guard texts.json else {
            print("chrF2 = \(String(format: "%.2f", score))")
            print("signature: \(ChrF.signature)")
            return
        }
        let lines = zip(predictions, references).map { Line(score: ChrF.sentence(hypothesis: $0, reference: $1)) }
        try printJSON(Report(score: score, lines: lines))
    }
}

/// `rein eval rouge`: ROUGE-1/2/L/Lsum as rouge-score.
struct EvalRouge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rouge",
        abstract: "ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum of predictions against references, as rouge-score 0.1.2.",
        discussion: """
        Text is lowercased and split on everything but [a-z0-9]; ROUGE-Lsum splits texts into sentences on newlines \
        (inside .jsonl strings). The corpus figures are the means of the pairs' precision, recall and F-measure.
        """
    )

    @OptionGroup var texts: TextPairOptions

    @Flag(help: "Porter-stem tokens longer than 3 characters (rouge-score's use_stemmer).")
    var stem = false

    struct Report: Encodable {
        let metric = "rouge"
        let stemmed: Bool
        let rouge1, rouge2, rougeL, rougeLsum: RougeScore
        let lines: [RougeScores]
    }

    func run() throws {
        let (predictions, references) = try texts.read()
        let scorer = RougeScorer(useStemmer: stem)
        let lines = zip(predictions, references).map { scorer.score(target: $1, prediction: $0) }
        func mean(_ pick: (RougeScores) -> RougeScore) -> RougeScore {
            let n = Double(lines.count)
            var score = RougeScore.zero
            for line in lines {
                let s = pick(line)
                score.precision += s.precision / n
                score.recall += s.recall / n
                score.fmeasure += s.fmeasure / n
            }
            return score
        }
        let means = RougeScores(rouge1: mean(\.rouge1), rouge2: mean(\.rouge2), rougeL: mean(\.rougeL), rougeLsum: mean(\.rougeLsum))
        guard texts.json else {
            print("mean of \(count(lines.count, "pair"))\(stem ? ", stemmed" : ""):")
            print("             precision  recall  F-measure")
            for (name, s) in means.byName {
                print("\(name.padding(toLength: 11, withPad: " ", startingAt: 0))  \(fmt(s.precision, 9, 4))  \(fmt(s.recall, 6, 4))  \(fmt(s.fmeasure, 9, 4))")
            }
            return
        }
        try printJSON(Report(stemmed: stem, rouge1: means.rouge1, rouge2: means.rouge2, rougeL: means.rougeL,
                             rougeLsum: means.rougeLsum, lines: lines))
    }
}

/// `rein eval f1`: SQuAD exact match and token F1.
struct EvalSquadF1: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "f1",
        abstract: "SQuAD exact match and token F1 of predicted answers against reference answers.",
        discussion: """
        Answers are normalized as the official SQuAD script does (lowercase, punctuation and the articles a, an, the \
        removed, whitespace collapsed). As there, the corpus figures are percentages; with --json each pair has \
        "exact" (0 or 1) and "f1" (0 to 1).
        """
    )

    @OptionGroup var texts: TextPairOptions

    struct Line: Encodable {
        let exact: Double
        let f1: Double
    }

    struct Report: Encodable {
        let metric = "squad"
        let exact: Double
        let f1: Double
        let total: Int
        let lines: [Line]
    }

    func run() throws {
        let (predictions, references) = try texts.read()
        let lines = zip(predictions, references).map {
            Line(exact: SquadMetrics.exactMatch(prediction: $0, reference: $1), f1: SquadMetrics.f1(prediction: $0, reference: $1))
        }
        let n = Double(lines.count)
        let exact = 100 * lines.reduce(0) { $0 + $1.exact } / n
        let f1 = 100 * lines.reduce(0) { $0 + $1.f1 } / n
        guard texts.json else {
            print("exact match: \(fmt(exact, 0, 2))  F1: \(fmt(f1, 0, 2))  (\(count(lines.count, "pair")))")
            return
        }
        try printJSON(Report(exact: exact, f1: f1, total: lines.count, lines: lines))
    }
}

/// `rein eval sentiment`: VADER scores of texts.
struct EvalSentiment: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sentiment",
        abstract: "VADER sentiment (neg, neu, pos, compound) of texts, as vaderSentiment 3.3.2.",
        discussion: """
        The corpus figures are the means, and how many texts are positive (compound >= 0.05), negative \
        (compound <= -0.05) and neutral, VADER's usual thresholds.
        """
    )

    @Option(help: ArgumentHelp("The texts: one a line, or a .jsonl file.", valueName: "file"))
    var data: String

    @Option(help: ArgumentHelp("The string field of .jsonl records.", valueName: "name"))
    var field = "text"

    @Option(help: ArgumentHelp("The directory of vader_lexicon.txt (and emoji_utf8_lexicon.txt).", valueName: "dir"))
    var lexicon = "assets/vader"

    @Flag(help: "Print one JSON object: the means and one object per text.")
    var json = false

    struct Line: Encodable {
        let neg, neu, pos, compound: Double
        init(_ s: VaderScores) { neg = s.neg; neu = s.neu; pos = s.pos; compound = s.compound }
    }

    struct Report: Encodable {
        let metric = "vader"
        let neg, neu, pos, compound: Double
        let positive, negative, neutral: Int
        let lines: [Line]
    }

    func run() throws {
        let texts = try TextLines.read(data, field: field)
        guard !texts.isEmpty else { throw CLIError("\(data): no texts to score") }
        let vader = try VaderAnalyzer(directory: lexicon)
        let lines = texts.map { Line(vader.polarityScores($0)) }
        let n = Double(lines.count)
        func mean(_ pick: (Line) -> Double) -> Double { lines.reduce(0) { $0 + pick($1) } / n }
        let positive = lines.filter { $0.compound >= 0.05 }.count, negative = lines.filter { $0.compound <= -0.05 }.count
        let report = Report(neg: mean(\.neg), neu: mean(\.neu), pos: mean(\.pos), compound: mean(\.compound),
                            positive: positive, negative: negative, neutral: lines.count - positive - negative, lines: lines)
        guard json else {
            print("mean of \(count(lines.count, "text")): neg \(fmt(report.neg, 0, 4))  neu \(fmt(report.neu, 0, 4))  "
                  + "pos \(fmt(report.pos, 0, 4))  compound \(fmt(report.compound, 0, 4))")
            print("positive \(positive), negative \(negative), neutral \(report.neutral)")
            return
        }
        try printJSON(report)
    }
}
