import Datasets
import Foundation
import Testing

@Suite struct ChatterBotCorpusTests {
    static let sample = TestFiles.fixtures.appendingPathComponent("chatterbot/sample.yml")

    @Test func readsQuotesFoldedLinesBlocksAndPlainTextsAsYAMLDoes() throws {
        let conversations = try ChatterBotCorpus.conversations(file: Self.sample)
        #expect(conversations == [
            ["What's your name?", "I'm Rein, a 'framework'."],  // '' inside a single-quoted scalar is one quote
            ["Tell me something long.", "This answer is a plain scalar folded over two lines.",
             "A quoted scalar that is folded too."],             // continuation lines fold into one space
            ["Can you show code?", "line one\n  indented line two\n"],
            ["yes", "42"],                                        // kept as written, not a boolean or number
        ])
        #expect(try ChatterBotCorpus.utterances(at: Self.sample) == conversations.flatMap { $0 })
    }

    @Test func theCorpusTaskPairsTheSameUtterances() throws {
        let scratch = try Scratch()
        let corpus = scratch.directory.appendingPathComponent("corpus")
        try FileManager.default.createDirectory(at: corpus, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Self.sample, to: corpus.appendingPathComponent("sample.yml"))
        var config = SyntheticDataConfig(task: "chatterbot", sftExamples: 100, preferencePairs: 100, validationExamples: 1, evalPrompts: 1)
        config.source = corpus.path
        let out = scratch.directory.appendingPathComponent("out")
        _ = try SyntheticData.write(config, to: out)
        var pairs: [String] = []
        for name in ["sft.jsonl", "sft_valid.jsonl"] {
            for record in try RecordSet.read(out.appendingPathComponent(name)).records {
                guard case let .conversation(messages) = record else { Issue.record("\(record)"); continue }
                pairs.append(messages.map(\.content).joined(separator: " -> "))
            }
        }
        // 5 pairs, a quarter of them (one) held out for validation, the rest in sft.jsonl.
        let expected = ["What's your name? -> I'm Rein, a 'framework'.",
                        "Tell me something long. -> This answer is a plain scalar folded over two lines.",
                        "This answer is a plain scalar folded over two lines. -> A quoted scalar that is folded too.",
                        "Can you show code? -> line one\n  indented line two\n", "yes -> 42"]
        #expect(pairs.sorted() == expected.sorted())
    }

    @Test func errorsNameTheFileAndLine() throws {
        let scratch = try Scratch()
        let unterminated = try scratch.write("bad.yml", ["conversations:", "- - 'unterminated", "  - fine"])
        #expect {
            try ChatterBotCorpus.conversations(file: unterminated)
        } throws: { error in
            guard case let .invalidYAML(file, line, _, _) = error as? DatasetError else { return false }
            return file == unterminated.path && line >= 2 && (error as! DatasetError).description.hasPrefix("\(unterminated.path):\(line): ")
        }
        let mapped = try scratch.write("mapped.yml", ["categories:", "- x", "conversations:", "- - Hi", "  - Hello", "- question: Hi"])
        #expect(throws: DatasetError.wrongType(file: mapped.path, line: 6, field: "conversations[1]",
                                               expected: "a list of utterances", found: "a mapping")) {
            try ChatterBotCorpus.conversations(file: mapped)
        }
        let nested = try scratch.write("nested.yml", ["conversations:", "- - Hi", "  - - Hello"])
        #expect(throws: DatasetError.wrongType(file: nested.path, line: 3, field: "conversations[0][1]",
                                               expected: "a text", found: "a list")) {
            try ChatterBotCorpus.conversations(file: nested)
        }
        // A conversation written as one text (its "- " missing) is one utterance.
        let flat = try scratch.write("flat.yml", ["conversations:", "- - Hi", "  - Hello", "- Just a question?", "  - Its answer"])
        #expect(try ChatterBotCorpus.conversations(file: flat) == [["Hi", "Hello"], ["Just a question? - Its answer"]])
        let none = try scratch.write("none.yml", ["categories:", "- x"])
        #expect(throws: DatasetError.missingField(file: none.path, line: 1, field: "conversations", expected: "a list of conversations")) {
            try ChatterBotCorpus.conversations(file: none)
        }
        #expect(throws: DatasetError.self) { try ChatterBotCorpus.files(at: scratch.directory.appendingPathComponent("missing")) }
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: realCorpus.path), "assets/chatterbot is missing: run scripts/fetch-assets.sh"))
    func theRealCorpusReads() throws {
        let files = try ChatterBotCorpus.files(at: realCorpus)
        #expect(files.count >= 10)
        for file in files {
            let conversations = try ChatterBotCorpus.conversations(file: file)
            #expect(!conversations.isEmpty, "\(file.lastPathComponent)")
            #expect(conversations.allSatisfy { !$0.isEmpty }, "\(file.lastPathComponent)")
        }
        // Block scalars keep their lines: the code answers of coding.yml are whole programs.
        let coding = try ChatterBotCorpus.conversations(file: realCorpus.appendingPathComponent("coding.yml"))
        #expect(coding.contains { $0.count == 2 && $0[1].contains("\n") && $0[1].contains("def ") })
    }
}

private let realCorpus = TestFiles.fixtures.appendingPathComponent("../../assets/chatterbot/english").standardizedFileURL
