import Datasets
import Evaluation
import Foundation
import Testing
import Tokenizers

@Suite struct RuleJudgesTests {
    @Test func syntheticJudgeScoresTheTaskAnswer() {
        let judge = SyntheticTaskJudge()
        // Moved from the Datasets tests with the checker.
        #expect(SyntheticTaskJudge.isCorrect(prompt: "What is 47 + 38?", response: " 85\n"))
        #expect(!SyntheticTaskJudge.isCorrect(prompt: "What is 47 + 38?", response: "84"))
        #expect(!SyntheticTaskJudge.isCorrect(prompt: "What is 47 + 38?", response: "85."))
        #expect(!SyntheticTaskJudge.isCorrect(prompt: "What is 47 + 38?", response: "The answer is 85"))
        #expect(SyntheticTaskJudge.isCorrect(prompt: "Sort the digits: 5 2 9 1", response: "1 2 5 9"))
        #expect(!SyntheticTaskJudge.isCorrect(prompt: "Sort the digits: 5 2 9 1", response: "1 2  5 9"))
        #expect(!SyntheticTaskJudge.isCorrect(prompt: "Tell me a story", response: ""))

        let items = [
            JudgeItem(prompt: "What is 47 + 38?", response: "85"),
            JudgeItem(prompt: "What is 47 + 38?", response: "86"),
            JudgeItem(prompt: .chat([ChatMessage(role: "system", content: "Answer."),
                                     ChatMessage(role: "user", content: "Reverse the letters: a b c")]), response: " c b a "),
            JudgeItem(prompt: "Tell me a story", response: "Once"),
        ]
        #expect(judge.scores(items) == [1, 0, 1, 0])
        #expect(judge.name == "synthetic_task")
    }

    @Test func syntheticJudgeAcceptsChosenAndRejectsRejectedOfGeneratedPairs() throws {
        let scratch = try Scratch()
        let config = SyntheticDataConfig(task: "mix", pretrainExamples: 10, sftExamples: 10, preferencePairs: 30,
                                         validationExamples: 6, evalPrompts: 6, seed: 11)
        _ = try SyntheticData.write(config, to: scratch.directory)
        var chosen: [JudgeItem] = [], rejected: [JudgeItem] = []
        for record in try RecordSet.read(scratch.directory.appendingPathComponent("prefs.jsonl")).records {
            guard case let .preference(prompt, .chat(good), .chat(bad), _) = record else {
                Issue.record("\(record)")
                continue
            }
            chosen.append(JudgeItem(prompt: prompt, response: good[0].content))
            rejected.append(JudgeItem(prompt: prompt, response: bad[0].content))
        }
        #expect(chosen.count == 30)
        let judge = SyntheticTaskJudge()
        #expect(judge.scores(chosen) == [Double](repeating: 1, count: 30))
        #expect(judge.scores(rejected) == [Double](repeating: 0, count: 30))
    }

    @Test func regexJudgeMatchesOrCounts() throws {
        let items = [
            JudgeItem(prompt: "p", response: "abc 12 and 345"),
            JudgeItem(prompt: "p", response: "no digits"),
            JudgeItem(prompt: "p", response: "7"),
        ]
        let match = try RegexJudge(pattern: #"\d+"#)
        #expect(match.scores(items) == [1, 0, 1])
        let count = try RegexJudge(pattern: #"\d+"#, mode: .count)
        #expect(count.scores(items) == [2, 0, 1])
        // Matches do not overlap: "aaaa" holds two "aa".
        #expect(try RegexJudge(pattern: "aa", mode: .count).scores([JudgeItem(prompt: "", response: "aaaa")]) == [2])
        // Only the response is searched, never the prompt.
        #expect(try RegexJudge(pattern: "secret").scores([JudgeItem(prompt: "secret", response: "public")]) == [0])
        #expect(match.name == "regex")
    }

    @Test func regexJudgeRejectsABadPatternClearly() {
        #expect(throws: EvaluationError.self) { try RegexJudge(pattern: "(ab") }
        do {
            _ = try RegexJudge(pattern: "(ab")
            Issue.record("an unclosed group was accepted")
        } catch {
            #expect("\(error)".hasPrefix("regex judge: invalid pattern \"(ab\": "), "\(error)")
        }
        #expect(throws: EvaluationError("regex judge: the pattern is empty")) { try RegexJudge(pattern: "") }
    }

    @Test func lengthJudgeCountsCharactersOrWords() throws {
        let items = [
            JudgeItem(prompt: "p", response: "h\u{E9}llo w\u{F6}rld"),
            JudgeItem(prompt: "p", response: "  a  b\nc  "),
            JudgeItem(prompt: "p", response: "e\u{301}"),  // e + combining accent: one character
            JudgeItem(prompt: "p", response: ""),
        ]
        #expect(try LengthJudge(unit: .characters).scores(items) == [11, 10, 1, 0])
        #expect(try LengthJudge(unit: .words).scores(items) == [2, 3, 1, 0])
        #expect(try LengthJudge(unit: .words, target: 2).scores(items) == [0, -1, -1, -2])
        #expect(try LengthJudge(unit: .characters, target: 10).scores(items) == [-1, 0, -9, -10])
        #expect(throws: EvaluationError("length judge: target: expected at least 0, found -1")) {
            try LengthJudge(target: -1)
        }
    }

    @Test func singleScoreConvenienceAgreesWithTheBatch() throws {
        let judge = try LengthJudge(unit: .words)
        #expect(try judge.score(prompt: "q", response: "one two three") == 3)
    }
}
