import ArgumentParser
import DataParallel
import Foundation
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

    /// Joins the MPI job when started by `mpirun`; after an error on any process of a job, ends
    /// the whole job (MPI_Abort) so that no process waits in a collective forever.
    static func main() {
        do { try ProcessGroup.start() } catch {
            Terminal.note("error: \(error)")
            Foundation.exit(1)
        }
        let world = ProcessGroup.world
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if world.isDistributed && code != .success {
                Terminal.note("rank \(world.rank) of \(world.size): " + fullMessage(for: error))
                ProcessGroup.abortIfDistributed(code: code.rawValue)
            }
            ProcessGroup.finish()
            exit(withError: error)
        }
        ProcessGroup.finish()
    }
}
