import Evaluation
import Foundation
import TensorCore
import Testing

/// `rein eval bleu|rouge|f1 ... --json` run as a process: the numbers equal the library's, and bad
/// input is an error naming the files.
@Suite struct EvalTextProcessTests {
    static let predictions = ["The cat sat on the mat.", "It is raining today, isn't it?", "", "Running runners ran quickly; they run daily."]
    static let references = ["The cat is sitting on the mat.", "Is it raining today?", "An empty hypothesis scores zero.", "The runner runs quickly and ran daily."]

    /// A scratch directory with predictions.txt, references.txt (one text a line) and a JSONL copy of each.
    static func files() throws -> URL {
        let dir = try tempDirectory()
        try Data((predictions.joined(separator: "\n") + "\n").utf8).write(to: dir.appendingPathComponent("predictions.txt"))
        try Data((references.joined(separator: "\r\n") + "\r\n").utf8).write(to: dir.appendingPathComponent("references.txt"))
        let jsonl = predictions.map { "{\"answer\": \(JSONText.quoted($0)), \"id\": 1}" }.joined(separator: "\n")
        try Data(jsonl.utf8).write(to: dir.appendingPathComponent("predictions.jsonl"))
        return dir
    }

    // Decoded with JSONDecoder, which reads doubles exactly (Linux JSONSerialization can be 1 ulp off).
    struct BLEUFigures: Decodable {
        let score: Double
        let precisions: [Double]
        let bp: Double
        let sys_len: Int
        let ref_len: Int
    }

    struct BLEUReport: Decodable {
        let signature: String
        let corpus: BLEUFigures
        let lines: [BLEUFigures]
    }

    struct RougeReport: Decodable {
        let stemmed: Bool
        let rouge1: RougeScore
        let lines: [RougeScores]
    }

    @Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
    func bleuJSONEqualsTheLibrary() throws {
        let dir = try Self.files()
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try runReinCapturing(["eval", "bleu", "--predictions", "predictions.txt", "--references", "references.txt", "--json"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        let report = try JSONDecoder().decode(BLEUReport.self, from: Data(run.stdout.utf8))
        #expect(report.signature == BLEU.corpusSignature)
        let want = BLEU.corpus(hypotheses: Self.predictions, references: Self.references)
        #expect(report.corpus.score == want.score)
        #expect(report.corpus.precisions == want.precisions)
        #expect(report.corpus.bp == want.brevityPenalty)
        #expect(report.corpus.sys_len == want.statistics.hypothesisLength)
        #expect(report.corpus.ref_len == want.statistics.referenceLength)
        #expect(report.lines.count == Self.predictions.count)
        for (i, line) in report.lines.enumerated() {
            let s = BLEU.sentence(hypothesis: Self.predictions[i], reference: Self.references[i])
            #expect(line.score == s.score, "line \(i + 1)")
            #expect(line.precisions == s.precisions, "line \(i + 1)")
            #expect(line.bp == s.brevityPenalty, "line \(i + 1)")
        }

        // The text report is sacrebleu's line and the signature.
        let text = try runReinCapturing(["eval", "bleu", "--predictions", "predictions.txt", "--references", "references.txt"], in: dir)
        #expect(text.stdout == "\(want.description)\nsignature: \(BLEU.corpusSignature)\n")
    }

    @Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
    func stemmedRougeJSONFromJSONLEqualsTheLibrary() throws {
        let dir = try Self.files()
        defer { try? FileManager.default.removeItem(at: dir) }
        let run = try runReinCapturing(["eval", "rouge", "--stem", "--json", "--predictions", "predictions.jsonl",
                                        "--prediction-field", "answer", "--references", "references.txt"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        let report = try JSONDecoder().decode(RougeReport.self, from: Data(run.stdout.utf8))
        #expect(report.stemmed)
        let scorer = RougeScorer(useStemmer: true)
        let want = zip(Self.predictions, Self.references).map { scorer.score(target: $1, prediction: $0) }
        #expect(report.lines == want)
        let meanF = want.reduce(0) { $0 + $1.rouge1.fmeasure / Double(want.count) }
        #expect(abs(report.rouge1.fmeasure - meanF) < 1e-12)
        // Stemming matters here: "runners"/"runner" and "runs"/"run" match only stemmed.
        #expect(want[3].rouge1 != RougeScorer().score(target: Self.references[3], prediction: Self.predictions[3]).rouge1)
    }

    @Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
    func badInputNamesTheFilesLinesAndFields() throws {
        let dir = try Self.files()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("one\ntwo\nthree\n".utf8).write(to: dir.appendingPathComponent("short.txt"))
        let mismatch = try runReinForErrors(["eval", "bleu", "--predictions", "predictions.txt", "--references", "short.txt"], in: dir)
        #expect(mismatch.status != 0)
        #expect(mismatch.stderr.contains("predictions.txt has 4 lines but short.txt has 3 lines"), "\(mismatch.stderr)")

        let field = try runReinForErrors(["eval", "f1", "--predictions", "predictions.jsonl", "--references", "references.txt"], in: dir)
        #expect(field.status != 0)
        #expect(field.stderr.contains("predictions.jsonl:1: missing the field \"text\""), "\(field.stderr)")

        let missing = try runReinForErrors(["eval", "chrf", "--predictions", "nowhere.txt", "--references", "references.txt"], in: dir)
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("nowhere.txt: no such file"), "\(missing.stderr)")
    }
}
