import Datasets
import Foundation
import Testing
import Tokenizers

@Suite struct SyntheticTaskTests {
    /// A small mix, fast to write.
    static let small = SyntheticDataConfig(task: "mix", pretrainExamples: 300, sftExamples: 90, preferencePairs: 60,
                                           validationExamples: 24, evalPrompts: 30, seed: 7)

    /// Every file of a written directory, by name.
    func contents(_ directory: URL) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in SyntheticData.fileNames {
            out[name] = try Data(contentsOf: directory.appendingPathComponent(name))
        }
        return out
    }

    /// The user prompt of an SFT, preference or prompt-only record.
    func prompt(of record: DatasetRecord) -> String? {
        switch record {
        case let .conversation(messages): return messages.first { $0.role == "user" }?.content
        case let .preference(.chat(messages), _, _, _), let .prompt(.chat(messages)): return messages.last?.content
        default: return nil
        }
    }

    /// The prompt a pretraining sentence solves, and the answer it states.
    func promptAndAnswer(ofSentence line: String) -> (prompt: String, answer: String)? {
        if let range = line.range(of: " reversed is ") {
            return ("Reverse the letters: " + line[..<range.lowerBound], String(line[range.upperBound...]))
        }
        if let range = line.range(of: " sorted is ") {
            return ("Sort the digits: " + line[..<range.lowerBound], String(line[range.upperBound...]))
        }
        if let range = line.range(of: " = ") {
            return ("What is " + line[..<range.lowerBound] + "?", String(line[range.upperBound...]))
        }
        return nil
    }

    /// Prompts of every training file (pretraining sentences turned into prompts) and of the
    /// held-out ones.
    func trainingAndHeldOutPrompts(_ directory: URL) throws -> (training: [String], heldOut: [String]) {
        let lines = try String(contentsOf: directory.appendingPathComponent("pretrain.txt"), encoding: .utf8)
            .split(separator: "\n").map(String.init)
        var training = lines.compactMap { promptAndAnswer(ofSentence: $0)?.prompt }
        #expect(training.count == lines.count)
        func prompts(_ name: String) throws -> [String] {
            let set = try RecordSet.read(directory.appendingPathComponent(name))
            let prompts = set.records.compactMap(prompt(of:))
            #expect(prompts.count == set.records.count, "\(name)")
            return prompts
        }
        training += try prompts("sft.jsonl") + prompts("prefs.jsonl")
        let heldOut = try prompts("eval.jsonl") + prompts("sft_valid.jsonl")
        return (training, heldOut)
    }

    @Test func sameConfigWritesIdenticalBytesAndAnotherSeedDoesNot() throws {
        let scratch = try Scratch()
        let a = scratch.directory.appendingPathComponent("a"), b = scratch.directory.appendingPathComponent("b")
        let c = scratch.directory.appendingPathComponent("c")
        _ = try SyntheticData.write(Self.small, to: a)
        _ = try SyntheticData.write(Self.small, to: b)
        var other = Self.small
        other.seed = 8
        _ = try SyntheticData.write(other, to: c)
        let (first, second, third) = (try contents(a), try contents(b), try contents(c))
        for name in SyntheticData.fileNames {
            #expect(first[name] == second[name], "\(name)")
            #expect(first[name] != third[name], "\(name)")
        }
        // Pins the generator: a change to the RNG or the phrasing changes these lines.
        let eval = String(decoding: first["eval.jsonl"]!, as: UTF8.self)
        #expect(eval.split(separator: "\n").first == #"{"answer":"3 5 6 7 9","prompt":[{"content":"Sort the digits: 7 9 5 6 3","role":"user"}]}"#)
    }

    @Test func sloppyDemonstrationsDropTheLastItemOfLongListsInSFTOnly() throws {
        let scratch = try Scratch()
        func written(_ share: Double, _ name: String) throws -> [String: Data] {
            var config = Self.small
            config.sftExamples = 600
            config.sloppyDemonstrations = share
            let dir = scratch.directory.appendingPathComponent(name)
            _ = try SyntheticData.write(config, to: dir)
            return try contents(dir)
        }
        let clean = try written(0, "clean"), all = try written(1, "all"), some = try written(0.5, "some")
        // Only sft.jsonl changes; a share of 0 is the default's bytes.
        var defaults = Self.small
        defaults.sftExamples = 600
        let plain = scratch.directory.appendingPathComponent("plain")
        _ = try SyntheticData.write(defaults, to: plain)
        #expect(try contents(plain) == clean)
        for name in SyntheticData.fileNames where name != "sft.jsonl" {
            #expect(all[name] == clean[name], "\(name)")
            #expect(some[name] == clean[name], "\(name)")
        }
        func demonstrations(_ files: [String: Data]) throws -> [(prompt: String, answer: String)] {
            let text = String(decoding: files["sft.jsonl"]!, as: UTF8.self)
            return try text.split(separator: "\n").map { line in
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                let messages = try #require(object["messages"] as? [[String: String]])
                return (try #require(messages.first?["content"]), try #require(messages.last?["content"]))
            }
        }
        let right = try demonstrations(clean), allSloppy = try demonstrations(all), someSloppy = try demonstrations(some)
        #expect(right.count == 600 && allSloppy.count == 600)
        var long = 0, changed = 0
        for (k, (prompt, answer)) in right.enumerated() {
            #expect(allSloppy[k].prompt == prompt && someSloppy[k].prompt == prompt)
            #expect(SyntheticData.answer(to: prompt) == answer)
            let items = answer.split(separator: " ")
            let isList = !prompt.hasPrefix("What is")
            if isList && items.count >= 5 {
                long += 1
                // Share 1: every long list loses exactly its last item.
                #expect(allSloppy[k].answer == items.dropLast().joined(separator: " "), "\(prompt)")
                if someSloppy[k].answer != answer {
                    changed += 1
                    #expect(someSloppy[k].answer == allSloppy[k].answer)
                }
            } else {
                #expect(allSloppy[k].answer == answer && someSloppy[k].answer == answer, "\(prompt)")
            }
        }
        // Half of the long lists, within 4 standard deviations of a binomial.
        #expect(long > 100)
        let sd = (Double(long) * 0.25).squareRoot()
        #expect(abs(Double(changed) - Double(long) / 2) < 4 * sd, "\(changed) of \(long)")
        var bad = Self.small
        bad.sloppyDemonstrations = 1.5
        #expect(bad.problems().contains { $0.hasPrefix("sloppy_demonstrations:") })
    }

    @Test func summaryListsEveryFileWithItsLineCount() throws {
        let scratch = try Scratch()
        let summary = try SyntheticData.write(Self.small, to: scratch.directory.appendingPathComponent("out"))
        #expect(summary.files.map(\.name) == SyntheticData.fileNames)
        let expected = ["pretrain.txt": 300, "sft.jsonl": 90, "sft_valid.jsonl": 24, "prefs.jsonl": 60,
                        "prefs_valid.jsonl": 24, "eval.jsonl": 30]
        for file in summary.files {
            #expect(file.count == expected[file.name], "\(file.name)")
            let text = try String(contentsOf: file.url, encoding: .utf8)
            #expect(text.hasSuffix("\n"))
            // pretrain.txt separates its problems by blank lines; the JSONL files hold one record a line.
            let lines = text.split(separator: "\n", omittingEmptySubsequences: file.name == "pretrain.txt").count
            #expect(lines == (file.name == "pretrain.txt" ? file.count : file.count + 1), "\(file.name)")
        }
        #expect(summary["eval.jsonl"]?.url == scratch.directory.appendingPathComponent("out/eval.jsonl"))
        // Nothing else (no temporary files) is left in the directory.
        let names = try FileManager.default.contentsOfDirectory(atPath: summary.directory.path).sorted()
        #expect(names == SyntheticData.fileNames.sorted())
    }

    @Test(arguments: [
        SyntheticTaskTests.small,
        // A space of 155 problems with 55 held out: training covers nearly all the rest, so any
        // leak would show.
        SyntheticDataConfig(task: "arithmetic", pretrainExamples: 600, sftExamples: 300, preferencePairs: 300,
                            validationExamples: 25, evalPrompts: 30, seed: 3, maxOperand: 9),
    ])
    func heldOutProblemsAreDistinctAndNeverTrainedOn(config: SyntheticDataConfig) throws {
        let scratch = try Scratch()
        _ = try SyntheticData.write(config, to: scratch.directory)
        let (training, heldOut) = try trainingAndHeldOutPrompts(scratch.directory)
        #expect(Set(heldOut).count == config.evalPrompts + config.validationExamples)
        #expect(Set(training).isDisjoint(with: heldOut))
        // prefs_valid holds the same problems as sft_valid.
        let sftValid = try RecordSet.read(scratch.directory.appendingPathComponent("sft_valid.jsonl")).records.compactMap(prompt(of:))
        let prefsValid = try RecordSet.read(scratch.directory.appendingPathComponent("prefs_valid.jsonl")).records.compactMap(prompt(of:))
        #expect(sftValid == prefsValid)
    }

    @Test func answersAreCorrectAndRejectedAnswersAreNot() throws {
        let scratch = try Scratch()
        _ = try SyntheticData.write(Self.small, to: scratch.directory)
        for name in ["sft.jsonl", "sft_valid.jsonl"] {
            for record in try RecordSet.read(scratch.directory.appendingPathComponent(name)).records {
                guard case let .conversation(messages) = record, messages.count == 2 else {
                    Issue.record("\(name): \(record)")
                    continue
                }
                #expect(SyntheticData.answer(to: messages[0].content) == messages[1].content, "\(messages)")
            }
        }
        for name in ["prefs.jsonl", "prefs_valid.jsonl"] {
            for record in try RecordSet.read(scratch.directory.appendingPathComponent(name)).records {
                guard case let .preference(.chat(prompt), .chat(chosen), .chat(rejected), nil) = record,
                      prompt.count == 1, chosen.count == 1, rejected.count == 1 else {
                    Issue.record("\(name): \(record)")
                    continue
                }
                #expect(SyntheticData.answer(to: prompt[0].content) == chosen[0].content, "\(record)")
                #expect(SyntheticData.answer(to: prompt[0].content) != rejected[0].content.trimmingCharacters(in: .whitespacesAndNewlines), "\(record)")
                #expect(!rejected[0].content.isEmpty)
            }
        }
        let lines = try String(contentsOf: scratch.directory.appendingPathComponent("pretrain.txt"), encoding: .utf8)
        for line in lines.split(separator: "\n") {
            let solved = promptAndAnswer(ofSentence: String(line))
            #expect(solved.map { SyntheticData.answer(to: $0.prompt) == $0.answer } == true, "\(line)")
        }
        // eval.jsonl's extra "answer" field is the correct answer.
        let evalText = try String(contentsOf: scratch.directory.appendingPathComponent("eval.jsonl"), encoding: .utf8)
        for line in evalText.split(separator: "\n") {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            let prompt = (object?["prompt"] as? [[String: String]])?.first?["content"]
            let answer = object?["answer"] as? String
            #expect(prompt.flatMap(SyntheticData.answer(to:)) == answer, "\(line)")
            #expect(answer != nil)
        }
    }

    @Test func answersHandWrittenPrompts() {
        let cases: [(String, String?)] = [
            ("What is 47 + 38?", "85"),
            ("What is 90 - 90?", "0"),
            ("What is 0 + 0?", "0"),
            ("  What is 120 - 7?\n", "113"),
            ("What is 3 - 5?", "-2"),
            ("Reverse the letters: p l a n t", "t n a l p"),
            ("Reverse the letters: a b a", "a b a"),
            ("Sort the digits: 5 2 9 1", "1 2 5 9"),
            ("Sort the digits: 3 3 0", "0 3 3"),
            ("What is 4 * 5?", nil),
            ("What is 4 + ?", nil),
            ("What is 4 + 5", nil),
            ("What is x + 5?", nil),
            ("Reverse the letters: two words", nil),
            ("Reverse the letters: ", nil),
            ("Sort the digits: 12 3", nil),
            ("Sort the digits:", nil),
            ("Tell me a story", nil),
            ("", nil),
        ]
        for (prompt, answer) in cases {
            #expect(SyntheticData.answer(to: prompt) == answer, "\(String(reflecting: prompt))")
        }
        // Judging replies against these answers is tested with Evaluation's SyntheticTaskJudge.
    }

    @Test func filesParseAsTheirRecordKinds() throws {
        let scratch = try Scratch()
        _ = try SyntheticData.write(Self.small, to: scratch.directory)
        let expected: [(String, DatasetFormat)] = [
            ("pretrain.txt", .languageModeling), ("sft.jsonl", .conversational), ("sft_valid.jsonl", .conversational),
            ("prefs.jsonl", .preference), ("prefs_valid.jsonl", .preference), ("eval.jsonl", .promptOnly),
        ]
        for (name, format) in expected {
            // Read strictly: a malformed line would throw.
            let set = try RecordSet.read(scratch.directory.appendingPathComponent(name), onBadRecord: .fail)
            #expect(set.format == format, "\(name)")
            #expect(set.stats.skipped == 0)
        }
        let eval = try RecordSet.read(scratch.directory.appendingPathComponent("eval.jsonl"), format: .promptOnly)
        #expect(eval.records.count == 30)
        for record in eval.records {
            guard case let .prompt(.chat(messages)) = record else {
                Issue.record("\(record)")
                continue
            }
            #expect(messages.map(\.role) == ["user"])
        }
        // pretrain.txt separates problems by blank lines: one document each.
        let pretrain = try RecordSet.read(scratch.directory.appendingPathComponent("pretrain.txt"))
        #expect(pretrain.records.count == 300)
        for record in pretrain.records {
            guard case let .text(text) = record else {
                Issue.record("\(record)")
                return
            }
            #expect(!text.contains("\n") && !text.contains("User:") && !text.contains("Assistant:"))
        }
    }

    @Test func sftAndPreferenceRecordsTrainOnTheAnswerWithThePlainTemplate() throws {
        let scratch = try Scratch()
        _ = try SyntheticData.write(Self.small, to: scratch.directory)
        let builder = try ExampleBuilder(tokenizer: Tiny.tokenizer, template: .plain(), eosTokenID: Tiny.eos, maxLength: 64)
        let sft = try RecordSet.read(scratch.directory.appendingPathComponent("sft.jsonl"))
        let (examples, stats) = try builder.examples(sft.records)
        #expect(stats.truncated == 0 && stats.dropped == 0)
        for (record, example) in zip(sft.records, examples) {
            guard case let .conversation(messages) = record else { continue }
            #expect(maskedRuns(example.ids, example.lossMask) == [" \(messages[1].content)<|endoftext|>"])
        }
        let prefs = try RecordSet.read(scratch.directory.appendingPathComponent("prefs.jsonl"))
        let (pairs, pairStats) = try builder.pairs(prefs.records)
        #expect(pairs.count == prefs.records.count && pairStats.truncated == 0)
    }

    @Test func mixIsEvenAcrossTheTasks() throws {
        let scratch = try Scratch()
        _ = try SyntheticData.write(Self.small, to: scratch.directory)
        let prompts = try RecordSet.read(scratch.directory.appendingPathComponent("sft.jsonl")).records.compactMap(prompt(of:))
        let counts = ["What is ", "Reverse the letters: ", "Sort the digits: "].map { prefix in prompts.filter { $0.hasPrefix(prefix) }.count }
        #expect(counts == [30, 30, 30])
        // Shuffled, not in blocks of one task.
        #expect(prompts.prefix(10).contains { !$0.hasPrefix("What is ") })
    }

    @Test(arguments: ["arithmetic", "reverse", "sort"])
    func singleTasksProduceOnlyTheirOwnProblems(task: String) throws {
        let scratch = try Scratch()
        var config = Self.small
        config.task = task
        config.maxOperand = 20
        _ = try SyntheticData.write(config, to: scratch.directory)
        let (training, heldOut) = try trainingAndHeldOutPrompts(scratch.directory)
        let prefix = ["arithmetic": "What is ", "reverse": "Reverse the letters: ", "sort": "Sort the digits: "][task]!
        #expect((training + heldOut).allSatisfy { $0.hasPrefix(prefix) })
        for prompt in training + heldOut {
            let answer = SyntheticData.answer(to: prompt)
            switch task {
            case "arithmetic":
                let operands = prompt.dropFirst(prefix.count).dropLast().split(separator: " ")
                #expect(operands.count == 3 && operands.allSatisfy { $0 == "+" || $0 == "-" || (Int($0) ?? 99) <= 20 }, "\(prompt)")
                #expect((Int(answer ?? "") ?? -1) >= 0, "\(prompt)")
            case "reverse":
                let letters = prompt.dropFirst(prefix.count).split(separator: " ")
                #expect((3...6).contains(letters.count) && letters.allSatisfy { $0.count == 1 && ("a"..."z").contains($0.first!) }, "\(prompt)")
            default:
                let digits = prompt.dropFirst(prefix.count).split(separator: " ")
                #expect((3...6).contains(digits.count), "\(prompt)")
            }
        }
    }

    @Test func configDecodesDefaultsForAbsentKeys() throws {
        let empty = try JSONDecoder().decode(SyntheticDataConfig.self, from: Data("{}".utf8))
        #expect(empty == SyntheticDataConfig())
        #expect(empty.task == "arithmetic" && empty.seed == 1234 && empty.maxOperand == 99)
        let json = #"{"task": "mix", "sft_examples": 50, "eval_prompts": 10, "seed": 99}"#
        let config = try JSONDecoder().decode(SyntheticDataConfig.self, from: Data(json.utf8))
        var expected = SyntheticDataConfig()
        expected.task = "mix"
        expected.sftExamples = 50
        expected.evalPrompts = 10
        expected.seed = 99
        #expect(config == expected)
        // Encoding uses the same keys, so a config round-trips.
        let again = try JSONDecoder().decode(SyntheticDataConfig.self, from: JSONEncoder().encode(config))
        #expect(again == config)
        #expect(SyntheticDataConfig.keys == ["task", "pretrain_examples", "sft_examples", "preference_pairs",
                                             "validation_examples", "eval_prompts", "seed", "max_operand", "sloppy_demonstrations", "source"])
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(SyntheticDataConfig.self, from: Data(#"{"sft_examples": "many"}"#.utf8))
        }
    }

    @Test func problemsNameEveryBadKey() throws {
        #expect(SyntheticDataConfig().problems().isEmpty)
        let bad = SyntheticDataConfig(task: "division", pretrainExamples: 0, sftExamples: -1, preferencePairs: 0,
                                      validationExamples: 0, evalPrompts: 0, maxOperand: 0)
        let problems = bad.problems()
        let keys = problems.map { String($0.prefix { $0 != ":" }) }
        #expect(keys == ["task", "pretrain_examples", "sft_examples", "preference_pairs", "validation_examples",
                         "eval_prompts", "max_operand"])
        #expect(problems[0] == #"task: unknown task "division" (valid: arithmetic, reverse, sort, mix, chatterbot)"#)
        #expect(problems[2] == "sft_examples: must be at least 1, got -1")
        #expect(SyntheticDataConfig(maxOperand: 10_000).problems() == ["max_operand: must be in 1...9999, got 10000"])
        // write refuses a config with problems and creates nothing.
        let scratch = try Scratch()
        let out = scratch.directory.appendingPathComponent("out")
        #expect(throws: DatasetError.self) { try SyntheticData.write(bad, to: out) }
        #expect(!FileManager.default.fileExists(atPath: out.path))
    }

    @Test func heldOutProblemsThatDoNotFitTheSpaceAreAnError() throws {
        let scratch = try Scratch()
        let out = scratch.directory.appendingPathComponent("out")
        // max_operand 3: 16 sums and 10 differences; at most 10 may be held out.
        let arithmetic = SyntheticDataConfig(validationExamples: 5, evalPrompts: 10, maxOperand: 3)
        do {
            _ = try SyntheticData.write(arithmetic, to: out)
            Issue.record("no error")
        } catch {
            print(error.description)
            #expect(error.description.contains("eval_prompts + validation_examples: 15 held-out arithmetic problems"))
            #expect(error.description.contains("raise max_operand to at least 4"))
        }
        // Sorting 3-6 digits: 4 lengths, 1000 lists of 3, so at most 2000 held out.
        let sort = SyntheticDataConfig(task: "sort", validationExamples: 1000, evalPrompts: 1001)
        do {
            _ = try SyntheticData.write(sort, to: out)
            Issue.record("no error")
        } catch {
            #expect(error.description.contains("eval_prompts + validation_examples: 2001 held-out sort problems"))
            #expect(error.description.contains("at most 2000"))
        }
        #expect(!FileManager.default.fileExists(atPath: out.path))
        // Exactly at the limit it works.
        _ = try SyntheticData.write(SyntheticDataConfig(pretrainExamples: 50, sftExamples: 20, preferencePairs: 20,
                                                        validationExamples: 4, evalPrompts: 6, maxOperand: 3), to: out)
    }

    @Test func theSmallestSpaceStillSeparatesHeldOutProblems() throws {
        // max_operand 1: 0+0, 0+1, 1+0, 1+1, 0-0, 1-0, 1-1; three may be held out.
        let config = SyntheticDataConfig(pretrainExamples: 40, sftExamples: 40, preferencePairs: 40,
                                         validationExamples: 1, evalPrompts: 2, seed: 5, maxOperand: 1)
        let scratch = try Scratch()
        _ = try SyntheticData.write(config, to: scratch.directory)
        let (training, heldOut) = try trainingAndHeldOutPrompts(scratch.directory)
        #expect(Set(heldOut).count == 3)
        #expect(Set(training).isDisjoint(with: heldOut))
        #expect(Set(training).count == 4)
    }
}
