import ArgumentParser
import Recipes

/// `rein check RECIPE`: validates a recipe and writes nothing.
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate a recipe: every problem is listed with its line; nothing is run or written."
    )

    @Argument(help: "The recipe YAML file.")
    var recipe: String

    func run() throws {
        do {
            let resolved = try Recipe.load(path: recipe)
            Terminal.write("ok: \(resolved.stages.count) stages (\(resolved.stages.map(\.id).joined(separator: ", ")))\n")
        } catch {
            Terminal.writeError(error.description + "\n")
            let count = error.problems.count
            Terminal.writeError("\(count) problem\(count == 1 ? "" : "s")\n")
            throw ExitCode.failure
        }
    }
}
