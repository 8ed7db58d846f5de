import ArgumentParser
import Checkpoints
import Foundation
import Generation
import TensorCore
import Tokenizers

/// `rein chat`: a conversation read from stdin, one user turn per line.
struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Chat with a model: each line read from stdin is a user turn; replies stream to stdout.",
        discussion: """
        /reset clears the conversation, /exit or end of input quits. Works with piped input too. When \
        the conversation no longer fits in the model's context (with room for --max-new-tokens), the \
        oldest turns are dropped.
        """
    )

    @OptionGroup var model: ModelOption

    @Option(help: "A system message kept at the start of the conversation.")
    var system: String?

    @OptionGroup var sampling: SamplingOptionGroup
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        threads.apply()
        let lm = try model.load()
        let interactive = Terminal.stdinIsTerminal
        if interactive { Terminal.note("/reset clears the conversation, /exit or Ctrl-D quits.") }
        let context = lm.model.config.maxPositions
        let options = sampling.options(stopTokens: lm.stopTokenIds)
        var rng = RNG(seed: sampling.seed)
        var history: [ChatMessage] = []
        while true {
            if interactive { Terminal.write("> ") }
            guard let line = readLine() else {
                if interactive { Terminal.write("\n") }
                return
            }
            let input = line.trimmingCharacters(in: .whitespaces)
            switch input {
            case "": continue
            case "/exit": return
            case "/reset":
                history = []
                Terminal.note("(conversation cleared)")
                continue
            default: break
            }
            let messages = (system.map { [ChatMessage.system($0)] } ?? []) + history + [.user(input)]
            let (encoding, dropped) = try lm.chatTemplate.encodeForReply(messages, with: lm.tokenizer, limit: context,
                                                                         reserve: sampling.maxNewTokens)
            guard encoding.ids.count < context else {
                Terminal.note("(not sent: the message needs \(encoding.ids.count) tokens, the model's context is \(context))")
                continue
            }
            if dropped > 0 {
                history.removeFirst(dropped)
                Terminal.note("(dropped the \(dropped) oldest messages to fit the model's context of \(context) tokens)")
            }
            let (reply, elapsed) = lm.reply(to: encoding.ids, options: options, rng: &rng, stream: true)
            Terminal.write("\n")
            Terminal.note("[" + replySummary(reply, seconds: elapsed) + "]")
            history += [.user(input), .assistant(reply.text)]
        }
    }
}
