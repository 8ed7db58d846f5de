import Checkpoints
import Evaluation
import Foundation
import Generation
import Recipes
import TensorCore

extension LanguageModel {
    /// Generates one reply to `prompt`, writing its text to stdout as it comes when `stream` is set.
    func reply(to prompt: [Int32], options: SamplingOptions, rng: inout RNG, stream: Bool) -> (GeneratedSequence, Double) {
        var decoder = tokenizer.makeStreamingDecoder(skipSpecial: true)
        var filter = StopStringFilter(stopStrings: options.stopStrings)
        let clock = ContinuousClock()
        let start = clock.now
        let result = makeGenerator().generate(prompts: [prompt], options: options, rng: &rng,
                                        onToken: stream ? { _, token in Terminal.write(filter.push(decoder.append(token))) } : nil)[0]
        let elapsed = seconds(clock.now - start)
        if stream { Terminal.write(filter.push(decoder.finish()) + filter.finish()) }
        return (result, elapsed)
    }
}

/// "12 tokens in 0.4s (30.0 tokens/s), stop: eos" for the stderr summary of a reply.
func replySummary(_ result: GeneratedSequence, seconds: Double) -> String {
    let n = result.tokens.count
    return "\(n) tokens in \(ReportText.duration(seconds)) (\(fmt(Double(n) / max(seconds, 1e-9), 0, 1)) tokens/s), stop: \(result.stopReason.rawValue)"
}
