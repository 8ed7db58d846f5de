import Datasets
import Foundation
import Testing

@Test func chatterbotCorpusBecomesQuestionAnswerRecordsAndOffTopicPairs() throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rein-chatterbot-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: dir) }
    try FileManager.default.createDirectory(at: dir.appendingPathComponent("corpus"), withIntermediateDirectories: true)
    var yml = "categories:\n- greetings\nconversations:\n"
    for i in 0..<40 { yml += "- - Question \(i)?\n  - 'Answer ''\(i)'''\n" }
    yml += "- - Hello\n  - Hi\n  - How are you?\n"
    try Data(yml.utf8).write(to: dir.appendingPathComponent("corpus/a.yml"))
    var config = SyntheticDataConfig(task: "chatterbot", sftExamples: 1000, preferencePairs: 1000, validationExamples: 4, evalPrompts: 4)
    #expect(config.problems() == ["source: required for task chatterbot (a ChatterBot corpus directory, e.g. assets/chatterbot/english)"])
    config.source = dir.appendingPathComponent("corpus").path
    let summary = try SyntheticData.write(config, to: dir.appendingPathComponent("out"))
    // 40 one-turn conversations and one of three utterances (two pairs): 42 pairs, 8 held out.
    #expect(summary["sft.jsonl"]?.count == 34)
    #expect(summary["sft_valid.jsonl"]?.count == 4 && summary["eval.jsonl"]?.count == 4)
    let sft = try RecordSet.read(dir.appendingPathComponent("out/sft.jsonl"))
    #expect(sft.format == .conversational)
    let text = try String(contentsOf: dir.appendingPathComponent("out/sft.jsonl"), encoding: .utf8)
    #expect(text.contains(#"{"content":"How are you?","role":"user"}"#) == false)   // the last turn answers nothing
    #expect(text.contains(#"{"content":"How are you?","role":"assistant"}"#))       // but answers the turn before
    #expect(text.contains(#"Answer '7'"#))                                          // YAML '' unquoted
    let prefs = try RecordSet.read(dir.appendingPathComponent("out/prefs.jsonl"))
    #expect(prefs.format == .preference && prefs.records.count == 34)
    for record in prefs.records {
        guard case let .preference(_, chosen, rejected, _) = record else { Issue.record("\(record)"); continue }
        #expect(chosen != rejected)
    }
    config.source = dir.appendingPathComponent("missing").path
    #expect(throws: DatasetError.self) { try SyntheticData.write(config, to: dir.appendingPathComponent("out2")) }
}
