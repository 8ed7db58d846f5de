import Evaluation
import Foundation
import Testing

/// Hand-computed values of BLEU, chrF, ROUGE and SQuAD (the fixture tests compare to the packages).
@Suite struct TextMetricsTests {
    @Test func the13aTokenizerSplitsSymbolsButNotNumbers() {
        #expect(Tokenizer13a.tokenize("Hello, world!") == "Hello , world !")
        #expect(Tokenizer13a.tokenize("Pi is 3.14, or 3,14.") == "Pi is 3.14 , or 3,14 .")
        #expect(Tokenizer13a.tokenize("pages 2-3 of a-b") == "pages 2 - 3 of a-b")
        #expect(Tokenizer13a.tokenize("fish &amp; chips &lt;3") == "fish & chips < 3")
        #expect(Tokenizer13a.tokenize("  spaced\tout\n") == "spaced out")
    }

    @Test func bleuOfIdenticalTextIs100() {
        let s = BLEU.sentence(hypothesis: "the quick brown fox jumps", reference: "the quick brown fox jumps")
        #expect(abs(s.score - 100) < 1e-9)
        #expect(s.precisions == [100, 100, 100, 100])
        #expect(s.brevityPenalty == 1)
        let c = BLEU.corpus(hypotheses: ["a b c d", "e f g h i"], references: ["a b c d", "e f g h i"])
        #expect(abs(c.score - 100) < 1e-9)
    }

    @Test func bleuOfAnEmptyHypothesisIsZero() {
        let s = BLEU.sentence(hypothesis: "", reference: "An empty hypothesis scores zero.")
        #expect(s.score == 0)
        #expect(s.brevityPenalty == 0)
        #expect(s.statistics.hypothesisLength == 0)
        #expect(s.statistics.referenceLength == 6)
    }

    /// Precisions 6/7, 4/6, 2/5, 1/4 and a brevity penalty of exp(1 - 8/7).
    @Test func sentenceBLEUByHand() {
        let s = BLEU.sentence(hypothesis: "The cat sat on the mat.", reference: "The cat is sitting on the mat.")
        #expect(s.statistics.matches == [6, 4, 2, 1])
        #expect(s.statistics.totals == [7, 6, 5, 4])
        let want = exp(1 - 8.0 / 7) * pow(6.0 / 7 * 4 / 6 * 2 / 5 * 1 / 4, 0.25) * 100
        #expect(abs(s.score - want) < 1e-9)
        #expect(s.description == "BLEU = 42.38 85.7/66.7/40.0/25.0 (BP = 0.867 ratio = 0.875 hyp_len = 7 ref_len = 8)")
    }

    /// "a b c" against "a b d": precisions 2/3, 1/2 and 0/1 smoothed to 1/(2*1); the sentence score
    /// stops at order 3 (no 4-grams); the corpus score keeps order 4, whose empty count makes it 0.
    @Test func expSmoothingAndEffectiveOrderByHand() {
        let s = BLEU.sentence(hypothesis: "a b c", reference: "a b d")
        #expect(abs(s.precisions[2] - 50) < 1e-12)
        #expect(abs(s.score - pow(200.0 / 3 * 50 * 50, 1.0 / 3)) < 1e-9)
        #expect(BLEU.corpus(hypotheses: ["a b c"], references: ["a b d"]).score < 1e-9)
    }

    /// Orders 1 and 2 only (the hypothesis has no 3-gram): P = (1 + 1)/2, R = (2/3 + 1/2)/2 = 7/12,
    /// F2 = 5 P R / (4 P + R) = 35/55.
    @Test func chrFByHand() {
        #expect(abs(ChrF.sentence(hypothesis: "ab", reference: "abc") - 100 * 35.0 / 55) < 1e-9)
        #expect(abs(ChrF.sentence(hypothesis: "same words", reference: "same  words") - 100) < 1e-9)
        #expect(ChrF.sentence(hypothesis: "", reference: "something") == 0)
    }

    @Test func rougeNAndLByHand() {
        let s = RougeScorer().score(target: "The cat sat.", prediction: "the CAT")
        #expect(s.rouge1 == RougeScore(precision: 1, recall: 2.0 / 3))
        #expect(s.rouge2 == RougeScore(precision: 1, recall: 0.5))
        #expect(s.rougeL == RougeScore(precision: 1, recall: 2.0 / 3))
        #expect(RougeScorer().score(target: "", prediction: "anything").rougeL == .zero)
        #expect(RougeScorer().tokenize("Don't-stop 3.5%") == ["don", "t", "stop", "3", "5"])
        #expect(RougeScorer(useStemmer: true).tokenize("running runs ran") == ["run", "run", "ran"])
    }

    /// Lin (2004), section 3.2: reference w1..w5 against candidate sentences "w1 w3 w8 w9 w5" and
    /// "w1 w2 w6 w7 w8"; the union LCS is w1 w2 w3 w5, so 4 hits of 5 reference and 10 candidate
    /// words, where the LCS of the joined texts is w1 w3 w5.
    @Test func rougeLsumIsTheUnionLCSOfThePaper() {
        let s = RougeScorer().score(target: "w1 w2 w3 w4 w5", prediction: "w1 w3 w8 w9 w5\nw1 w2 w6 w7 w8")
        #expect(s.rougeLsum == RougeScore(precision: 0.4, recall: 0.8))
        #expect(s.rougeL == RougeScore(precision: 0.3, recall: 0.6))
    }

    @Test func squadNormalizesAndScoresTokens() {
        #expect(SquadMetrics.normalize("The Cat, an   animal!") == "cat animal")
        #expect(SquadMetrics.normalize("theater of a-n") == "theater of")
        #expect(SquadMetrics.exactMatch(prediction: "The  cat.", reference: "cat") == 1)
        #expect(SquadMetrics.exactMatch(prediction: "cats", reference: "cat") == 0)
        #expect(abs(SquadMetrics.f1(prediction: "the cat sat", reference: "a cat sat down") - 0.8) < 1e-12)
        #expect(SquadMetrics.f1(prediction: "the", reference: "") == 1)
        #expect(SquadMetrics.f1(prediction: "cat", reference: "") == 0)
    }
}
