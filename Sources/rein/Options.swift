import ArgumentParser
import Checkpoints
import Foundation
import Generation
import NN
import TensorCore

/// `--model PATH`, loaded with a one-line summary on stderr.
struct ModelOption: ParsableArguments {
    @Option(help: ArgumentHelp("A Hugging Face model directory or a .gguf file.", valueName: "path"))
    var model: String

    @Option(help: "Weights for the forward passes: fp32, or an inference copy in bf16 or q8_0 (GGUF's 8-bit blocks).")
    var precision: WeightPrecision = .fp32

    func load() throws -> LanguageModel {
        let clock = ContinuousClock()
        let start = clock.now
        let lm = try LanguageModel.load(model)
        lm.model.setInferencePrecision(precision, scope: .everyForward)
        let c = lm.model.config
        let copy = lm.model.inferenceWeights.map { w in
            "; \(precision.rawValue) copy \(fmt(Double(w.byteCount) / 1e6, 0, 0)) MB"
                + (w.keptInFP32.isEmpty ? "" : " (\(w.keptInFP32.count) matrices kept fp32: inputs not a multiple of 32)")
        } ?? ""
        Terminal.note("loaded \(model): \(c.family.rawValue), \(c.layers) layers, "
                      + "\(fmt(Double(lm.model.arena.parameterCount) / 1e6, 0, 1))M parameters, "
                      + "context \(c.maxPositions)\(copy) (\(fmt(seconds(clock.now - start), 0, 2)) s)")
        return lm
    }
}

extension WeightPrecision: ExpressibleByArgument {}

/// `--threads N`, for the commands that run a model.
struct ThreadOptions: ParsableArguments {
    @Option(help: "Threads for OpenBLAS and Rein's kernels (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1 (got \(threads))") }
    }

    func apply() { Threads.set(threads ?? ProcessInfo.processInfo.activeProcessorCount) }
}

/// How replies are sampled, shared by `generate` and `chat`. Greedy unless a temperature is given.
struct SamplingOptionGroup: ParsableArguments {
    @Option(help: "Most new tokens per reply.")
    var maxNewTokens = 256

    @Option(help: "Sampling temperature; 0 picks the most likely token (greedy).")
    var temperature: Float = 0

    @Option(help: "Sample among the K most likely tokens only (needs --temperature > 0).")
    var topK: Int?

    @Option(help: "Sample among the most likely tokens whose probabilities add up to P (needs --temperature > 0).")
    var topP: Float?

    @Option(help: "Seed of the sampling random numbers.")
    var seed: UInt64 = 0

    @Option(help: ArgumentHelp("Stop once the reply contains this text, which is not printed (repeatable).", valueName: "text"))
    var stop: [String] = []

    func validate() throws {
        guard maxNewTokens >= 1 else { throw ValidationError("--max-new-tokens must be at least 1 (got \(maxNewTokens))") }
        guard temperature >= 0 && temperature.isFinite else {
            throw ValidationError("--temperature must be 0 (greedy) or positive (got \(temperature))")
        }
        if let topK, topK < 1 { throw ValidationError("--top-k must be at least 1 (got \(topK))") }
        if let topP, !(topP > 0 && topP <= 1) { throw ValidationError("--top-p must be in (0, 1] (got \(topP))") }
        if temperature == 0 && (topK != nil || topP != nil) {
            throw ValidationError("--top-k and --top-p need --temperature > 0 (temperature 0 is greedy)")
        }
        if stop.contains("") { throw ValidationError("--stop needs a non-empty text") }
    }

    /// The generator's options, ending at `stopTokens` (EOS, end of turn) and the `--stop` texts.
    func options(stopTokens: [Int32]) -> SamplingOptions {
        SamplingOptions(temperature: temperature, topK: topK, topP: topP, maxNewTokens: maxNewTokens,
                        stopTokens: stopTokens, stopStrings: stop)
    }
}
