import Evaluation
import Foundation
import Testing

/// `Tests/Fixtures/metrics/text_metrics.json`: hypothesis/reference pairs scored by sacrebleu 2.6.0
/// (BLEU, chrF, the 13a tokenization, signatures), rouge-score 0.1.2 (with and without stemming)
/// and the SQuAD evaluation script.
struct TextMetricsFixture: Decodable {
    struct CorpusBLEU: Decodable {
        let score: Double
        let counts: [Int]
        let totals: [Int]
        let bp: Double
        let sys_len: Int
        let ref_len: Int
    }

    struct Case: Decodable {
        let hypothesis: String
        let reference: String
        let sentence_bleu: Double
        let sentence_chrf: Double
        let tokenized_13a: String
        let squad_em: Double
        let squad_f1: Double
        let rouge1, rouge2, rougeL, rougeLsum: RougeScore
        let rouge1_stem, rouge2_stem, rougeL_stem, rougeLsum_stem: RougeScore
    }

    let bleu_signature: String
    let chrf_signature: String
    let corpus_bleu: CorpusBLEU
    let corpus_chrf: Double
    let cases: [Case]

    /// The `text_metrics*.json` files of `Tests/Fixtures/metrics`: the project's fixture and
    /// `text_metrics_edge.json` (made by `make_edge_cases.py` beside it), one layout.
    static let files: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: fixtureDirectory("metrics").path)) ?? []
        return names.filter { $0.hasPrefix("text_metrics") && $0.hasSuffix(".json") }.sorted()
    }()

    static func load(_ name: String) throws -> TextMetricsFixture {
        let url = fixtureDirectory("metrics").appendingPathComponent(name)
        return try JSONDecoder().decode(TextMetricsFixture.self, from: Data(contentsOf: url))
    }
}

@Suite struct TextMetricsFixtureTests {
    @Test func bothFixtureFilesAreThere() {
        #expect(TextMetricsFixture.files == ["text_metrics.json", "text_metrics_edge.json"])
    }

    @Test(arguments: TextMetricsFixture.files)
    func signaturesMatchSacrebleu(_ file: String) throws {
        let fixture = try TextMetricsFixture.load(file)
        #expect(BLEU.corpusSignature == fixture.bleu_signature)
        #expect(ChrF.signature == fixture.chrf_signature)
        #expect(BLEU.sentenceSignature == fixture.bleu_signature.replacingOccurrences(of: "eff:no", with: "eff:yes"))
    }

    @Test(arguments: TextMetricsFixture.files)
    func corpusBLEUAndChrFMatchSacrebleu(_ file: String) throws {
        let fixture = try TextMetricsFixture.load(file)
        #expect(!fixture.cases.isEmpty)
        let hyps = fixture.cases.map(\.hypothesis), refs = fixture.cases.map(\.reference)
        let bleu = BLEU.corpus(hypotheses: hyps, references: refs)
        let want = fixture.corpus_bleu
        #expect(abs(bleu.score - want.score) < 1e-4, "corpus BLEU \(bleu.score), sacrebleu \(want.score)")
        #expect(bleu.statistics.matches == want.counts)
        #expect(bleu.statistics.totals == want.totals)
        #expect(bleu.statistics.hypothesisLength == want.sys_len)
        #expect(bleu.statistics.referenceLength == want.ref_len)
        #expect(abs(bleu.brevityPenalty - want.bp) < 1e-12)
        let chrf = ChrF.corpus(hypotheses: hyps, references: refs)
        #expect(abs(chrf - fixture.corpus_chrf) < 1e-4, "corpus chrF \(chrf), sacrebleu \(fixture.corpus_chrf)")
    }

    @Test(arguments: TextMetricsFixture.files)
    func everyCaseMatchesSacrebleuTheTokenizerAndSquad(_ file: String) throws {
        let fixture = try TextMetricsFixture.load(file)
        #expect(!fixture.cases.isEmpty)
        var failures: [String] = []
        for c in fixture.cases {
            let label = String(reflecting: c.hypothesis)
            let tokens = Tokenizer13a.tokenize(c.hypothesis)
            if tokens != c.tokenized_13a { failures.append("\(label): 13a \(String(reflecting: tokens)), want \(String(reflecting: c.tokenized_13a))") }
            let bleu = BLEU.sentence(hypothesis: c.hypothesis, reference: c.reference).score
            if abs(bleu - c.sentence_bleu) >= 1e-4 { failures.append("\(label): sentence BLEU \(bleu), want \(c.sentence_bleu)") }
            let chrf = ChrF.sentence(hypothesis: c.hypothesis, reference: c.reference)
            if abs(chrf - c.sentence_chrf) >= 1e-4 { failures.append("\(label): sentence chrF \(chrf), want \(c.sentence_chrf)") }
            let em = SquadMetrics.exactMatch(prediction: c.hypothesis, reference: c.reference)
            if em != c.squad_em { failures.append("\(label): SQuAD EM \(em), want \(c.squad_em)") }
            let f1 = SquadMetrics.f1(prediction: c.hypothesis, reference: c.reference)
            if f1 != c.squad_f1 { failures.append("\(label): SQuAD F1 \(f1), want \(c.squad_f1)") }
        }
        #expect(failures.isEmpty, "\(failures.count) of \(fixture.cases.count) cases:\n\(failures.joined(separator: "\n"))")
    }

    @Test(arguments: TextMetricsFixture.files)
    func everyCaseMatchesRougeScoreWithAndWithoutStemming(_ file: String) throws {
        let fixture = try TextMetricsFixture.load(file)
        #expect(!fixture.cases.isEmpty)
        let plain = RougeScorer(useStemmer: false), stemmed = RougeScorer(useStemmer: true)
        var failures: [String] = []
        func check(_ label: String, _ name: String, _ got: RougeScore, _ want: RougeScore) {
            if abs(got.precision - want.precision) > 1e-6 || abs(got.recall - want.recall) > 1e-6 || abs(got.fmeasure - want.fmeasure) > 1e-6 {
                failures.append("\(label) \(name): got \(got), want \(want)")
            }
        }
        for c in fixture.cases {
            let label = String(reflecting: c.hypothesis)
            let p = plain.score(target: c.reference, prediction: c.hypothesis)
            let s = stemmed.score(target: c.reference, prediction: c.hypothesis)
            check(label, "rouge1", p.rouge1, c.rouge1)
            check(label, "rouge2", p.rouge2, c.rouge2)
            check(label, "rougeL", p.rougeL, c.rougeL)
            check(label, "rougeLsum", p.rougeLsum, c.rougeLsum)
            check(label, "rouge1_stem", s.rouge1, c.rouge1_stem)
            check(label, "rouge2_stem", s.rouge2, c.rouge2_stem)
            check(label, "rougeL_stem", s.rougeL, c.rougeL_stem)
            check(label, "rougeLsum_stem", s.rougeLsum, c.rougeLsum_stem)
        }
        #expect(failures.isEmpty, "\(failures.count) mismatches:\n\(failures.joined(separator: "\n"))")
    }
}
