import ArgumentParser
import Datasets
import Foundation

/// `rein data ...`: making datasets.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Make datasets.",
        subcommands: [DataGenerate.self]
    )
}

/// `rein data generate`: the synthetic instruction task, with answers a program can check.
struct DataGenerate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Write a synthetic task with checkable answers: pretraining text, SFT records, preference pairs and eval prompts.",
        discussion: """
        Tasks: arithmetic ("What is 47 + 38?" -> "85"), reverse ("Reverse the word: plant" -> "tnalp"), \
        sort ("Sort the digits: 5 2 9 1" -> "1 2 5 9") and mix (an even mix of the three). Writes \
        \(SyntheticData.fileNames.joined(separator: ", ")) into DIR. The held-out problems (eval and \
        validation) never appear in a training file. The same settings always write the same files.
        """
    )

    @Option(help: "arithmetic, reverse, sort or mix.")
    var task = SyntheticDataConfig().task

    @Option(help: ArgumentHelp("The directory to write into (created if needed).", valueName: "dir"))
    var out: String

    @Option(help: "Seed of the generator.")
    var seed = SyntheticDataConfig().seed

    @Option(help: "Lines of pretrain.txt.")
    var pretrainExamples = SyntheticDataConfig().pretrainExamples

    @Option(help: "Records of sft.jsonl.")
    var sftExamples = SyntheticDataConfig().sftExamples

    @Option(help: "Pairs of prefs.jsonl.")
    var preferencePairs = SyntheticDataConfig().preferencePairs

    @Option(help: "Records of sft_valid.jsonl and prefs_valid.jsonl (held out).")
    var validationExamples = SyntheticDataConfig().validationExamples

    @Option(help: "Prompts of eval.jsonl (held out).")
    var evalPrompts = SyntheticDataConfig().evalPrompts

    @Option(help: "Largest arithmetic operand (at most \(SyntheticDataConfig.maxOperandLimit)).")
    var maxOperand = SyntheticDataConfig().maxOperand

    @Option(help: "Share of the SFT demonstrations of 5- and 6-item sorts and reversals that drop the last item (0 to 1).")
    var sloppyDemonstrations = SyntheticDataConfig().sloppyDemonstrations

    private var config: SyntheticDataConfig {
        SyntheticDataConfig(task: task, pretrainExamples: pretrainExamples, sftExamples: sftExamples,
                            preferencePairs: preferencePairs, validationExamples: validationExamples,
                            evalPrompts: evalPrompts, seed: seed, maxOperand: maxOperand,
                            sloppyDemonstrations: sloppyDemonstrations)
    }

    func validate() throws {
        let problems = config.problems()
        guard problems.isEmpty else { throw ValidationError(problems.map(Self.flagNames).joined(separator: "\n")) }
    }

    func run() throws {
        let summary: SyntheticDataSummary
        do {
            summary = try SyntheticData.write(config, to: URL(fileURLWithPath: out))
        } catch {
            throw CLIError(Self.flagNames(error.description))
        }
        print("wrote \(count(summary.files.count, "file")) to \(out) (task \(task), seed \(seed)):")
        let width = summary.files.map(\.name.count).max() ?? 0
        let digits = summary.files.map { String($0.count).count }.max() ?? 0
        for file in summary.files {
            let name = file.name.padding(toLength: width, withPad: " ", startingAt: 0)
            let lines = String(repeating: " ", count: digits - String(file.count).count) + String(file.count)
            print("  \(name)  \(lines) \(file.count == 1 ? "line" : "lines")")
        }
    }

    /// A message about config keys, with the keys written as this command's flags
    /// (`eval_prompts` -> `--eval-prompts`; `task` and `seed` only where a line starts with them).
    private static func flagNames(_ message: String) -> String {
        message.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            var text = String(line)
            for key in SyntheticDataConfig.keys {
                let flag = "--" + key.replacingOccurrences(of: "_", with: "-")
                if key.contains("_") {
                    text = text.replacingOccurrences(of: key, with: flag)
                } else if text.hasPrefix(key + ":") {
                    text = flag + text.dropFirst(key.count)
                }
            }
            return text
        }.joined(separator: "\n")
    }
}
