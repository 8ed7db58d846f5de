import ArgumentParser
import Foundation
import Recipes
import Store

/// `rein compare`: which policy is better, by how much, at what KL.
struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare policies: judges, win rates with intervals, rankings, KL to a reference.",
        discussion: """
        Each policy samples its responses to the prompts once per seed and sampling options; the store \
        keeps them, so a second comparison (another judge, more policies) reuses them. Policies: \
        stage:ID (a completed stage of --run; stage:ID@STEP for a model it exported at a step, \
        with export_steps), hf:DIR, gguf:FILE or a path, NAME=SPEC to name one, and \
        the baselines best_of_n[:N] (the reward model's best of N samples of --reference; N = 1, 4, 16 \
        when not given) and in_context[:K] (--reference given K solved examples from --examples before \
        each prompt). Judges: reward_model (with its stored normalization), synthetic_task, exact_match \
        (the prompt records' "answer"), length[:N], regex:PATTERN, vader[:DIR], command:PROGRAM (one \
        score per line) and pairwise_command:PROGRAM (a verdict a, b or tie per pair; each pair is shown \
        in both orders, and orders that disagree count as a tie). A judge failure on an item is recorded \
        as a failure, never as a win. Everything lands in the store (rein report comparison:ID draws it).
        """
    )

    @Option(help: ArgumentHelp("The run store (SQLite file) to read stages from and write the comparison to.", valueName: "file"))
    var store: String

    @Option(name: .customLong("run"), help: ArgumentHelp("The run whose stages stage:ID names (id or name); the comparison joins it.", valueName: "run"))
    var runReference: String?

    @Option(name: .customLong("policy"), help: ArgumentHelp("A policy (repeatable, or comma-separated).", valueName: "spec"))
    var policies: [String] = []

    @Option(name: .customLong("judge"), help: ArgumentHelp("A judge (repeatable, or comma-separated).", valueName: "judge"))
    var judges: [String] = []

    @Option(name: .customLong("checkpoints"), help: ArgumentHelp("An RL stage of --run (stage:ID) whose exported steps (export_steps) join the frontier, measured on these prompts (repeatable).", valueName: "stage"))
    var checkpointStages: [String] = []

    @Option(help: ArgumentHelp("Prompt records (.jsonl, or stage:ID/FILE of --run).", valueName: "file"))
    var prompts: String

    @Option(help: ArgumentHelp("The reward model (stage:ID or a directory): the reward_model judge and best-of-n.", valueName: "model"))
    var rewardModel: String?

    @Option(help: ArgumentHelp("The policy KL is measured against and baselines sample (default: the first policy).", valueName: "model"))
    var reference: String?

    @Option(help: ArgumentHelp("Solved examples {prompt, answer} for in_context (default: --prompts).", valueName: "file"))
    var examples: String?

    @Option(help: ArgumentHelp("A held-out text (.txt or .jsonl) whose perplexity measures forgetting.", valueName: "file"))
    var forgetting: String?

    @Option(help: "Sampling temperature.") var temperature: Double = 0.7
    @Option(help: "Sample among the K most likely tokens only.") var topK: Int?
    @Option(help: "Sample among the most likely tokens whose probabilities add up to P.") var topP: Double?
    @Option(help: "Most new tokens per response.") var responseLength: Int = 64
    @Option(help: "Responses per policy and prompt.") var samplesPerPrompt: Int = 1
    @Option(help: "Seed of the sampling, the in-context examples and the bootstrap.") var seed: UInt64 = 0
    @Option(help: "Use only the first N prompts.") var maxPrompts: Int?
    @Option(help: "Bootstrap resamples per interval.") var bootstrap: Int = 2000
    @Option(help: "The judge on the frontier's y axis (default: the first one that is not reward_model).") var gold: String?
    @Option(help: "A label for the comparison.") var name: String?

    @Flag(help: "Print the summary as one JSON document instead of tables.")
    var json = false

    @OptionGroup var threads: ThreadOptions

    func validate() throws {
        guard temperature > 0, temperature.isFinite else { throw ValidationError("--temperature must be positive (got \(temperature))") }
        if let topK, topK < 0 { throw ValidationError("--top-k must be at least 0 (got \(topK))") }
        if let topP, !(topP > 0 && topP <= 1) { throw ValidationError("--top-p must be in (0, 1] (got \(topP))") }
        guard responseLength >= 1 else { throw ValidationError("--response-length must be at least 1 (got \(responseLength))") }
        guard samplesPerPrompt >= 1 else { throw ValidationError("--samples-per-prompt must be at least 1 (got \(samplesPerPrompt))") }
        if let maxPrompts, maxPrompts < 1 { throw ValidationError("--max-prompts must be at least 1 (got \(maxPrompts))") }
        guard bootstrap >= 100 else { throw ValidationError("--bootstrap must be at least 100 (got \(bootstrap))") }
        guard !split(policies).isEmpty else { throw ValidationError("give the policies to compare: --policy SPEC (twice or more)") }
        guard !split(judges).isEmpty else { throw ValidationError("give at least one judge: --judge reward_model, synthetic_task, ...") }
    }

    func split(_ values: [String]) -> [String] {
        values.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }.filter { !$0.isEmpty }
    }

    func run() throws {
        threads.apply()
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: store, isDirectory: &isDirectory), !isDirectory.boolValue else {
            throw CLIError("\(store): no such store file")
        }
        let opened = try OpenedStore(path: store)
        var lookup: ComparePolicies.StageLookup?
        var runId: Int64?
        if let runReference {
            let info = try resolveRun(runReference, in: [opened])
            let store = opened.store
            lookup = ComparePolicies.StageLookup(runName: info.run.name, stages: info.stages,
                                                 checkpoints: { try store.checkpoints(stageId: $0) })
            runId = info.run.id
        }
        do {
            let referencePath = try reference.map { try ComparePolicies.modelPath($0, role: "--reference", stages: lookup) }
            let modelSpecs = split(policies).filter { !$0.contains("best_of_n") && !$0.contains("in_context") }
            let firstModel = try modelSpecs.first.flatMap { try ComparePolicies.resolve($0, stages: lookup, reference: nil).first?.modelPath }
            let resolved = try ComparePolicies.resolve(split(policies), stages: lookup, reference: referencePath ?? firstModel)
            var options = CompareOptions()
            options.temperature = temperature
            options.topK = topK
            options.topP = topP
            options.responseLength = responseLength
            options.samplesPerPrompt = samplesPerPrompt
            options.seed = seed
            options.maxPrompts = maxPrompts
            options.bootstrap = bootstrap
            options.gold = gold
            let promptsPath = try ComparePolicies.filePath(prompts, role: "--prompts", stages: lookup)
            let label = name ?? (runReference.map { "\($0)/compare" } ?? "compare")
            if runId == nil {
                let commandLine = (["rein"] + CommandLine.arguments.dropFirst()).joined(separator: " ")
                runId = try opened.store.createRun(name: label, recipe: commandLine, seed: Int64(bitPattern: seed)).id
            }
            let request = CompareRequest(
                name: label, runId: runId!, policies: resolved, judges: split(judges), prompts: promptsPath, promptsLabel: prompts,
                rewardModel: try rewardModel.map { try ComparePolicies.modelPath($0, role: "--reward-model", stages: lookup) },
                reference: referencePath, inContextExamples: try examples.map { try ComparePolicies.filePath($0, role: "--examples", stages: lookup) },
                forgetting: try forgetting.map { try ComparePolicies.filePath($0, role: "--forgetting", stages: lookup) },
                options: options, checkpoints: try ComparePolicies.checkpoints(split(checkpointStages), stages: lookup))
            let engine = CompareEngine(store: opened.store, request: request)
            var bars: [String: ProgressReporter] = [:]
            engine.progress = { label, done, total in
                if bars[label] == nil { Terminal.note(label); bars[label] = ProgressReporter(total: total, unit: "items") }
                bars[label]?.update(done)
            }
            engine.note = { Terminal.note($0) }
            let summary = try engine.run()
            if runReference == nil { _ = try? opened.store.setRunStatus(runId!, .completed) }
            if json {
                Terminal.write(try jsonDocument(summary))
            } else {
                Terminal.write(summary.textLines().joined(separator: "\n") + "\n")
                Terminal.note("stored as comparison \(summary.sessionId) in \(store); rein report comparison:\(summary.sessionId) -o FILE.html draws it")
            }
        } catch let error as CompareError {
            if runReference == nil, let runId { _ = try? opened.store.setRunStatus(runId, .failed) }
            throw CLIError(error.description)
        }
    }
}
