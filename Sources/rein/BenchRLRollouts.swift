import Checkpoints
import Datasets
import Dispatch
import Evaluation
import Foundation
import Generation
import TensorCore

/// `rein bench rl --rollout-model DIR --rollout-prompts FILE`: the rollout engine's continuous
/// batching against fixed batches of the same size, on a trained policy's own prompts.
struct RolloutBatchingBench {
    let model: String
    let promptsFile: String
    let slots: Int
    let samplesPerPrompt: Int
    let rows: Int
    let responseLength: Int
    let temperature: Float
    let refillWhenFree: Int?
    let repeats: Int

    struct Timing {
        var seconds: [Double] = []
        var tokens = 0
    }

    func run() throws {
        let lm = try LanguageModel.load(model)
        let set: RecordSet
        do {
            set = try RecordSet.read(URL(fileURLWithPath: promptsFile))
        } catch {
            throw CLIError("--rollout-prompts: \(error)")
        }
        let options = RolloutOptions(temperature: temperature, responseLength: responseLength, samplesPerPrompt: samplesPerPrompt,
                                     seed: 1, generationBatchSize: slots)
        var continuous = try RolloutEngine(lm: lm, options: options)
        var fixed = continuous
        continuous.continuousBatching = true
        continuous.refillWhenFree = refillWhenFree
        fixed.continuousBatching = false
        let all = try continuous.prompts(set.records, file: promptsFile)
        let count = max(1, min(all.count, (rows + samplesPerPrompt - 1) / samplesPerPrompt))
        let prompts = Array(all.prefix(count))
        print("")
        print("rollouts: \(lm.source), \(prompts.count) prompts x \(samplesPerPrompt) samples = \(prompts.count * samplesPerPrompt) rows, "
              + "\(slots) rows per batch, up to \(responseLength) tokens at temperature \(fmt(Double(temperature), 0, 2)), "
              + "medians of \(repeats) (after one untimed run each)")
        var timings = [Timing(), Timing()]
        var lengths: [Int] = []
        var mismatched = 0
        for round in 0...repeats {
            var batches: [RolloutBatch] = []
            for (k, engine) in [fixed, continuous].enumerated() {
                let t0 = DispatchTime.now().uptimeNanoseconds
                let batch = try engine.generate(prompts, step: round)
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
                let tokens = (0..<batch.rows).reduce(0) { $0 + batch.responseTokens(row: $1).count }
                if round > 0 {
                    timings[k].seconds.append(seconds)
                    timings[k].tokens = tokens
                }
                batches.append(batch)
            }
            mismatched += (0..<batches[0].rows).filter { batches[0].responseTokens(row: $0) != batches[1].responseTokens(row: $0) }.count
            if round == repeats { lengths = (0..<batches[1].rows).map { batches[1].responseTokens(row: $0).count } }
        }
        let sorted = lengths.sorted()
        print("response tokens: mean \(fmt(Double(lengths.reduce(0, +)) / Double(max(1, lengths.count)), 0, 2)), "
              + "min \(sorted.first ?? 0), median \(sorted.isEmpty ? 0 : sorted[sorted.count / 2]), max \(sorted.last ?? 0)")
        print("path                      s/rollout    tokens/s")
        var rates: [Double] = []
        for (name, t) in zip(["fixed batches", "continuous batching"], timings) {
            let s = RLMeasurement.median(t.seconds)
            let rate = Double(t.tokens) / max(s, 1e-12)
            rates.append(rate)
            print("\(name.padding(toLength: 24, withPad: " ", startingAt: 0))  \(fmt(s, 9, 3))  \(fmt(rate, 10, 1))")
        }
        print("continuous / fixed: \(fmt(rates[1] / max(rates[0], 1e-12), 0, 2))x; rows whose tokens differ between the paths: "
              + "\(mismatched) of \(prompts.count * samplesPerPrompt * (repeats + 1))")
    }
}
