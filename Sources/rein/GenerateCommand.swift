import ArgumentParser
import Checkpoints
import Foundation
import Generation
import TensorCore
import Tokenizers

/// `rein generate`: one completion of a prompt, streamed.
struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Continue a prompt (or answer it, with --chat), streaming the new text to stdout.",
        discussion: "A summary line (tokens, tokens/s, stop reason) goes to stderr. Greedy unless --temperature is given."
    )

    @OptionGroup var model: ModelOption

    @Option(help: "The prompt text (special tokens such as <|im_start|> are recognized).")
    var prompt: String

    @Flag(help: "Send the prompt as a user message through the model's chat template.")
    var chat = false

    @Option(help: "A system message before the prompt (needs --chat).")
    var system: String?

    @OptionGroup var sampling: SamplingOptionGroup
    @OptionGroup var threads: ThreadOptions

    @Flag(help: "Print one JSON object (text, tokens, log_probs, stop_reason, ...) instead of streaming.")
    var json = false

    func validate() throws {
        if system != nil && !chat { throw ValidationError("--system needs --chat") }
    }

    func run() throws {
        threads.apply()
        let lm = try model.load()
        var ids: [Int32]
        if chat {
            let messages = (system.map { [ChatMessage.system($0)] } ?? []) + [.user(prompt)]
            ids = try lm.chatTemplate.encode(messages, with: lm.tokenizer, addGenerationPrompt: true).ids
        } else {
            ids = lm.tokenizer.encode(prompt)
        }
        if ids.isEmpty {
            guard let bos = lm.tokenizer.bosTokenID ?? lm.eosTokenId else {
                throw CLIError("--prompt is empty and the tokenizer has no beginning-of-text token to start from")
            }
            ids = [bos]
        }
        let context = lm.model.config.maxPositions
        guard ids.count < context else {
            throw CLIError("the prompt is \(ids.count) tokens; the model's context of \(context) leaves no room to generate")
        }
        var rng = RNG(seed: sampling.seed)
        let (result, elapsed) = lm.reply(to: ids, options: sampling.options(stopTokens: lm.stopTokenIds), rng: &rng, stream: !json)
        if json {
            let output = GenerateOutput(text: result.text, tokens: result.tokens, logProbs: result.logProbs,
                                        stopReason: result.stopReason.rawValue, promptTokens: ids.count, seconds: elapsed)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
            Terminal.write(String(decoding: try encoder.encode(output), as: UTF8.self) + "\n")
        } else {
            Terminal.write("\n")
            Terminal.note("prompt \(ids.count) tokens; " + replySummary(result, seconds: elapsed))
        }
    }
}

/// What `rein generate --json` prints.
struct GenerateOutput: Encodable {
    var text: String
    var tokens: [Int32]
    var logProbs: [Float]
    var stopReason: String
    var promptTokens: Int
    var seconds: Double

    enum CodingKeys: String, CodingKey {
        case text, tokens, seconds
        case logProbs = "log_probs", stopReason = "stop_reason", promptTokens = "prompt_tokens"
    }
}
