import Datasets
import Foundation
import Testing

@Suite struct JSONLReaderTests {
    @Test func skipModeCountsBadLinesAndKeepsTheFirstReasons() throws {
        let scratch = try Scratch()
        let url = try scratch.write("prefs.jsonl", [
            #"{"prompt": "Q1", "chosen": "a", "rejected": "b"}"#,
            #"{"prompt": "Q2", "chosen": "a"}"#,
            "",
            #"{"prompt": 3, "chosen": "a", "rejected": "b"}"#,
            #"not json"#,
            #"{"prompt": "Q5", "chosen": "a", "rejected": "b", "margin": 1.5}"#,
            "   ",
            #"{"prompt": "Q7", "chosen": "a", "rejected": "b"}"#,
        ])
        #expect(throws: DatasetError.missingField(file: url.path, line: 2, field: "rejected",
                                                  expected: "a string (like 'prompt')")) {
            try RecordSet.read(url)
        }
        let set = try RecordSet.read(url, onBadRecord: .skip)
        #expect(set.format == .preference)
        #expect(set.records.count == 3)
        #expect(set.stats.records == 3)
        #expect(set.stats.skipped == 3)
        print(set.stats.skipReasons.map(\.description).joined(separator: "\n"))
        #expect(set.stats.skipReasons.map(\.description).map { $0.split(separator: ":")[1] } == ["2", "4", "5"])
        #expect(set.records[1] == .preference(prompt: .text("Q5"), chosen: .text("a"), rejected: .text("b"), margin: 1.5))
    }

    @Test func skipModeDetectsTheFormatFromTheFirstValidRecord() throws {
        let scratch = try Scratch()
        let url = try scratch.write("lm.jsonl", [#"{"nothing": 1}"#, #"{"text": "a"}"#, #"{"text": "b"}"#])
        let set = try RecordSet.read(url, onBadRecord: .skip)
        #expect(set.format == .languageModeling)
        #expect(set.records == [.text("a"), .text("b")])
        #expect(set.stats.skipped == 1)
    }

    @Test func streamingReaderReportsLineNumbers() throws {
        let scratch = try Scratch()
        let url = try scratch.write("lm.jsonl", ["", #"{"text": "a"}"#, "", "", #"{"text": "b"}"#])
        let reader = try JSONLReader(url: url)
        #expect(try reader.next() == .text("a"))
        #expect(reader.lineNumber == 2)
        #expect(try reader.next() == .text("b"))
        #expect(reader.lineNumber == 5)
        #expect(try reader.next() == nil)
        #expect(reader.format == .languageModeling)
    }

    @Test func linesLongerThanAChunkAndCRLFEndings() throws {
        // 3 MiB over a few hundred lines: lines straddle the reader's 1 MiB chunks.
        let scratch = try Scratch()
        var lines: [String] = []
        for k in 0..<300 {
            lines.append(#"{"text": "\#(String(repeating: Character(UnicodeScalar(UInt8(97 + k % 26))), count: 10_000 + k))"}"#)
        }
        lines.append(#"{"text": "\#(String(repeating: "é", count: 600_000))"}"#)
        let url = try scratch.write("big.jsonl", Data(lines.joined(separator: "\r\n").utf8))
        let set = try RecordSet.read(url)
        #expect(set.records.count == 301)
        for k in [0, 1, 104, 299] {
            guard case let .text(text) = set.records[k] else { Issue.record("not text"); continue }
            #expect(text.count == 10_000 + k && text.first == Character(UnicodeScalar(UInt8(97 + k % 26))))
        }
        #expect(set.records[300] == .text(String(repeating: "é", count: 600_000)))
    }

    @Test func textFilesHoldOneDocumentPerParagraph() throws {
        let scratch = try Scratch()
        let url = try scratch.write("corpus.txt", Data("\n\nFirst line\nsecond line\r\n\r\n  \nSecond doc\n\n\nThird doc".utf8))
        let set = try RecordSet.read(url)
        #expect(set.format == .languageModeling)
        #expect(set.records == [.text("First line\nsecond line"), .text("Second doc"), .text("Third doc")])
        #expect(throws: DatasetError.self) { try RecordSet.read(url, format: .preference) }
    }

    @Test func emptyFilesAndMissingFiles() throws {
        let scratch = try Scratch()
        let empty = try scratch.write("empty.jsonl", ["", ""])
        #expect(throws: DatasetError.noRecords(file: empty.path, skipped: 0)) { try RecordSet.read(empty) }
        let allBad = try scratch.write("bad.jsonl", ["{", "}"])
        #expect(throws: DatasetError.noRecords(file: allBad.path, skipped: 2)) { try RecordSet.read(allBad, onBadRecord: .skip) }
        let missing = scratch.directory.appendingPathComponent("missing.jsonl")
        do {
            _ = try RecordSet.read(missing)
            Issue.record("no error")
        } catch {
            #expect(error.description.hasPrefix("\(missing.path): cannot be opened"))
        }
    }

    @Test func splitsFromARatioOrASecondFile() throws {
        let scratch = try Scratch()
        let train = try scratch.write("train.jsonl", (0..<50).map { #"{"text": "doc \#($0)"}"# })
        let byRatio = try RecordSet.readSplits(train: train, validationFraction: 0.1, seed: 7)
        #expect(byRatio.train.records.count == 45 && byRatio.validation.records.count == 5)
        #expect(Set(byRatio.train.records + byRatio.validation.records).count == 50)
        let again = try RecordSet.readSplits(train: train, validationFraction: 0.1, seed: 7)
        #expect(again.validation.records == byRatio.validation.records)

        let validation = try scratch.write("valid.jsonl", [#"{"text": "held out"}"#])
        let byFile = try RecordSet.readSplits(train: train, validation: validation, seed: 7)
        #expect(byFile.train.records.count == 50 && byFile.validation.records == [.text("held out")])
        let wrongFormat = try scratch.write("valid2.jsonl", [#"{"prompt": "Q", "completion": "A"}"#])
        #expect(throws: DatasetError.missingField(file: wrongFormat.path, line: 1, field: "text", expected: "a string")) {
            try RecordSet.readSplits(train: train, validation: wrongFormat, seed: 7)
        }
    }
}
