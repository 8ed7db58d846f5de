import Foundation
import TensorCore
import Tokenizers

/// Question/answer records from a ChatterBot corpus (`task: chatterbot`): each conversation's
/// consecutive utterances become (user, assistant) turns. Preference pairs prefer the corpus reply
/// over a reply taken from another conversation (an off-topic answer), so the rule that labels
/// them is "the reply answers this question".
enum ChatCorpusTask {
    /// The (question, answer) pairs of one ChatterBot `.yml` file: each pair of consecutive
    /// utterances of a conversation, both non-empty.
    static func pairs(file: URL) throws(DatasetError) -> [(String, String)] {
        var out: [(String, String)] = []
        for turns in try ChatterBotCorpus.conversations(file: file) where turns.count >= 2 {
            for i in 0..<(turns.count - 1) where !turns[i].isEmpty && !turns[i + 1].isEmpty { out.append((turns[i], turns[i + 1])) }
        }
        return out
    }

    /// The files of the task, in `SyntheticData.fileNames` order.
    static func generate(_ config: SyntheticDataConfig) throws(DatasetError) -> [(String, [String])] {
        let problems = config.problems()
        guard problems.isEmpty else { throw DatasetError.invalidConfiguration(problems.joined(separator: "; ")) }
        let source = URL(fileURLWithPath: config.source!)
        let files = try ChatterBotCorpus.files(at: source)
        var all: [(String, String)] = []
        for file in files { all += try pairs(file: file) }
        guard all.count >= 4 else {
            throw DatasetError.invalidConfiguration("source: \(source.path) holds \(all.count) question/answer pairs; at least 4 are needed")
        }
        var rng = RNG(seed: config.seed)
        seededShuffle(&all, using: &rng)
        // Held out first (validation and eval), the rest for training; counts are capped by the corpus.
        let heldOut = min(config.validationExamples + config.evalPrompts, all.count / 4)
        let validationCount = min(config.validationExamples, heldOut / 2 + heldOut % 2)
        let validation = Array(all[0..<validationCount])
        let eval = Array(all[validationCount..<heldOut])
        let training = Array(all[heldOut...])
        func conversation(_ p: (String, String)) -> ConversationRecord {
            ConversationRecord(messages: [.user(p.0), .assistant(p.1)])
        }
        func pair(_ p: (String, String), _ rng: inout RNG) -> PreferenceRecord {
            var other = training[rng.int(below: training.count)].1
            var tries = 0
            while other == p.1 && tries < 8 { other = training[rng.int(below: training.count)].1; tries += 1 }
            return PreferenceRecord(prompt: [.user(p.0)], chosen: [.assistant(p.1)],
                                    rejected: [.assistant(other + (other == p.1 ? " (off topic)" : ""))])
        }
        let sftRecords = (0..<min(config.sftExamples, training.count)).map { conversation(training[$0]) }
        var pairRNG = RNG(seed: config.seed, stream: 1)
        let prefRecords = (0..<min(config.preferencePairs, training.count)).map { pair(training[$0 % training.count], &pairRNG) }
        let prefValid = validation.map { pair($0, &pairRNG) }
        let text = training.prefix(config.pretrainExamples).map { "\($0.0)\n\($0.1)\n" }
        return [
            ("pretrain.txt", Array(text)),
            ("sft.jsonl", try SyntheticData.jsonLines(sftRecords)),
            ("sft_valid.jsonl", try SyntheticData.jsonLines(validation.map(conversation))),
            ("prefs.jsonl", try SyntheticData.jsonLines(prefRecords)),
            ("prefs_valid.jsonl", try SyntheticData.jsonLines(prefValid)),
            ("eval.jsonl", try SyntheticData.jsonLines(eval.map { EvalRecord(prompt: [.user($0.0)], answer: $0.1) })),
        ]
    }
}
