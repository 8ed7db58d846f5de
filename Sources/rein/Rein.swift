import ArgumentParser
import TensorCore

@main
struct Rein: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rein",
        abstract: "RLHF alignment on your own machine: pretrain, SFT, reward models and DPO (PPO, RLOO and GRPO are coming).",
        version: "0.1.0",
        subcommands: [RunRecipe.self, Runs.self, Check.self, Generate.self, Chat.self, Tokenize.self, Eval.self, Convert.self,
                      TokenizerCommand.self, Train.self, DataCommand.self, Rate.self, CompareCommand.self, ReportCommand.self, Bench.self]
    )
}
