import Evaluation
import Foundation
import Testing

/// `assets/vader` from `scripts/fetch-assets.sh` (git-ignored).
private let vaderAssets = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("assets/vader").path
private let haveVaderLexicon = FileManager.default.fileExists(atPath: vaderAssets + "/vader_lexicon.txt")

private struct VaderFixture: Decodable {
    struct Case: Decodable {
        var text: String
        var neg: Double
        var neu: Double
        var pos: Double
        var compound: Double
    }
    var cases: [Case]
}

/// A small lexicon with round values, to check the rules by hand.
private func tinyAnalyzer(emoji: String? = nil) throws -> VaderAnalyzer {
    let lexicon = "good\t1.9\t0.9\t[2, 2]\nbad\t-2.5\t0.6\t[-3, -2]\nhappy\t2.7\t0.8\t[3, 3]\n:)\t2.0\t1.1\t[2]\n"
    return VaderAnalyzer(lexicon: try VaderLexicon(lexicon: lexicon, source: "tiny.txt", emoji: emoji))
}

private func normalized(_ x: Double) -> Double { x / (x * x + 15).squareRoot() }

@Suite struct VaderTests {
    @Test func oneLexiconWordScoresItsNormalizedValence() throws {
        let vader = try tinyAnalyzer()
        let scores = vader.polarityScores("good")
        #expect(scores == VaderScores(neg: 0, neu: 0, pos: 1, compound: VaderScores.round(normalized(1.9), places: 4)))
        #expect(scores.compound == 0.4404)  // 1.9 / sqrt(1.9² + 15) = 0.44036...
        // Unknown words are neutral: 2.9 of positive weight against 2 neutral words.
        let sentence = vader.polarityScores("The movie: good.")
        #expect(sentence.neu == VaderScores.round(2 / 4.9, places: 3))
        #expect(sentence.pos == VaderScores.round(2.9 / 4.9, places: 3))
        #expect(sentence.compound == 0.4404)
        #expect(vader.polarityScores("") == VaderScores(neg: 0, neu: 0, pos: 0, compound: 0))
        #expect(vader.polarityScores("nothing known here") == VaderScores(neg: 0, neu: 1, pos: 0, compound: 0))
    }

    @Test func negationScalesByMinusPoint74() throws {
        let vader = try tinyAnalyzer()
        let negated = 1.9 * -0.74
        for text in ["not good", "isn't good", "never good", "without any good"] {
            let words = Double(text.split(separator: " ").count)
            let scores = vader.polarityScores(text)
            #expect(scores.compound == VaderScores.round(normalized(negated), places: 4), "\(text)")
            #expect(scores.neg == VaderScores.round((1 - negated) / (1 - negated + words - 1), places: 3), "\(text)")
        }
        // "really" boosts first, then "not" two words away negates.
        #expect(vader.polarityScores("not really good").compound
            == VaderScores.round(normalized((1.9 + 0.293) * -0.74), places: 4))
        // A booster two words away counts 0.95 of itself.
        #expect(vader.polarityScores("really nice good").compound == VaderScores.round(normalized(1.9 + 0.293 * 0.95), places: 4))
        // "never so" intensifies instead, "without doubt" leaves the word alone.
        #expect(vader.polarityScores("never so good").compound == VaderScores.round(normalized((1.9 + 0.293) * 1.25), places: 4))
        #expect(vader.polarityScores("without doubt good").compound == 0.4404)
        // "least" negates, "at least" does not.
        #expect(vader.polarityScores("least bad").compound == VaderScores.round(normalized(-2.5 * -0.74), places: 4))
        #expect(vader.polarityScores("at least bad").compound == VaderScores.round(normalized(-2.5), places: 4))
    }

    @Test func punctuationBoostersCapsAndBut() throws {
        let vader = try tinyAnalyzer()
        // Three exclamation marks add 3 * 0.292; a fifth counts no more than a fourth.
        #expect(vader.polarityScores("good!!!").compound == VaderScores.round(normalized(1.9 + 3 * 0.292), places: 4))
        #expect(vader.polarityScores("good!!!!!").compound == vader.polarityScores("good!!!!").compound)
        // Two or three question marks add 0.18 each, more add 0.96; one adds nothing.
        #expect(vader.polarityScores("bad??").compound == VaderScores.round(normalized(-2.5 - 2 * 0.18), places: 4))
        #expect(vader.polarityScores("bad?????").compound == VaderScores.round(normalized(-2.5 - 0.96), places: 4))
        #expect(vader.polarityScores("bad?").compound == VaderScores.round(normalized(-2.5), places: 4))
        // Boosters push away from zero, dampeners toward it.
        #expect(vader.polarityScores("very good").compound == VaderScores.round(normalized(1.9 + 0.293), places: 4))
        #expect(vader.polarityScores("very bad").compound == VaderScores.round(normalized(-2.5 - 0.293), places: 4))
        #expect(vader.polarityScores("slightly good").compound == VaderScores.round(normalized(1.9 - 0.293), places: 4))
        // Caps count only when the text mixes case.
        #expect(vader.polarityScores("GOOD movie").compound == VaderScores.round(normalized(1.9 + 0.733), places: 4))
        #expect(vader.polarityScores("GOOD MOVIE").compound == 0.4404)
        // "but": halves before, 1.5 times after.
        #expect(vader.polarityScores("good but bad").compound == VaderScores.round(normalized(1.9 * 0.5 - 2.5 * 1.5), places: 4))
        // Emoticons survive punctuation trimming.
        #expect(vader.polarityScores("fine :)").compound == VaderScores.round(normalized(2.0), places: 4))
    }

    @Test func emojiBecomeTheirDescriptions() throws {
        let vader = try tinyAnalyzer(emoji: "😀\thappy face\n")
        #expect(vader.lexicon.hasEmoji)
        #expect(vader.polarityScores("so 😀").compound == vader.polarityScores("so happy face").compound)
        #expect(vader.polarityScores("x😀").compound == VaderScores.round(normalized(2.7), places: 4))
        #expect(try tinyAnalyzer().polarityScores("😀").compound == 0)
    }

    @Test func roundingIsPythons() {
        #expect(VaderScores.round(0.0625, places: 3) == 0.062)  // an exact tie goes to even
        #expect(VaderScores.round(0.0635, places: 3) == 0.064)  // 0.0635 is stored a little above
        #expect(VaderScores.round(0.44036, places: 4) == 0.4404)
        #expect(VaderScores.round(-0.0625, places: 3) == -0.062)
        #expect(VaderScores.round(0.9999, places: 3) == 1.0)
    }

    @Test func malformedLexiconLinesNameTheirFileAndLine() throws {
        #expect(throws: EvaluationError("tiny.txt:2: expected a token, a tab and a value")) {
            try VaderLexicon(lexicon: "good\t1.9\nbad\n", source: "tiny.txt")
        }
        #expect(throws: EvaluationError("tiny.txt:3: the valence \"high\" is not a number")) {
            try VaderLexicon(lexicon: "good\t1.9\n\nbad\thigh\n", source: "tiny.txt")
        }
        #expect(throws: EvaluationError("emoji.txt:1: expected a token, a tab and a value")) {
            try VaderLexicon(lexicon: "good\t1.9\n", emoji: "😀\n", emojiSource: "emoji.txt")
        }
        #expect(throws: EvaluationError.self) { try VaderLexicon(lexiconFile: "no/such/vader_lexicon.txt") }
        // Blank lines and CRLF endings are fine.
        let lexicon = try VaderLexicon(lexicon: "good\t1.9\t0.9\r\n\r\nbad\t-2.5\r\n", source: "crlf.txt")
        #expect(lexicon.wordCount == 2)
        #expect(lexicon.valence(of: "bad") == -2.5)
    }

    @Test func judgeScoresTheResponsesCompound() throws {
        let judge = VaderJudge(analyzer: try tinyAnalyzer())
        #expect(judge.name == "vader")
        let items = [JudgeItem(prompt: "bad bad bad", response: "good"), JudgeItem(prompt: "good", response: "not good")]
        #expect(judge.scores(items) == [0.4404, VaderScores.round(normalized(1.9 * -0.74), places: 4)])
    }

    @Test(.enabled(if: haveVaderLexicon, "assets/vader is missing: run scripts/fetch-assets.sh"))
    func everyFixtureCaseMatchesVaderSentiment332() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/vader/vader_cases.json")
        let fixture = try JSONDecoder().decode(VaderFixture.self, from: Data(contentsOf: url))
        #expect(fixture.cases.count == 270)
        let vader = try VaderAnalyzer(directory: vaderAssets)
        #expect(vader.lexicon.wordCount > 7000)
        var checked = 0, skipped = 0
        var failures: [String] = []
        for c in fixture.cases {
            if !vader.lexicon.hasEmoji && c.text.unicodeScalars.contains(where: { !$0.isASCII && $0.properties.isEmoji }) {
                skipped += 1
                continue
            }
            checked += 1
            let got = vader.polarityScores(c.text)
            let want = VaderScores(neg: c.neg, neu: c.neu, pos: c.pos, compound: c.compound)
            if Swift.abs(got.neg - want.neg) > 1e-9 || Swift.abs(got.neu - want.neu) > 1e-9
                || Swift.abs(got.pos - want.pos) > 1e-9 || Swift.abs(got.compound - want.compound) > 1e-9 {
                failures.append("\(String(reflecting: c.text)): got \(got), want \(want)")
            }
        }
        if skipped > 0 {
            print("vader fixture: skipped \(skipped) emoji cases: \(VaderLexicon.emojiFileName) is not in assets/vader (run scripts/fetch-assets.sh)")
        }
        print("vader fixture: \(checked - failures.count) of \(checked) cases match vaderSentiment 3.3.2")
        #expect(failures.isEmpty, "\(failures.count) mismatches:\n\(failures.joined(separator: "\n"))")
    }
}
