import Datasets
import Tokenizers

/// One reply to judge: the prompt it answers and the response text.
///
/// Judges work on text, not token ids: a policy and its judge may use different tokenizers, and a
/// reward-model judge tokenizes the pair itself, the way its reward stage did.
public struct JudgeItem: Sendable, Hashable {
    /// The prompt: plain text, or messages (the response is then the assistant turn after them).
    public var prompt: TextOrChat
    /// The reply being judged, as generated (judges trim it when their rule says so).
    public var response: String

    /// A plain-text prompt and its response.
    public init(prompt: String, response: String) {
        self.prompt = .text(prompt)
        self.response = response
    }

    /// A text or conversational prompt and its response.
    public init(prompt: TextOrChat, response: String) {
        self.prompt = prompt
        self.response = response
    }

    /// The prompt as one text: the text itself, or the content of the last message (the user's
    /// question) for a conversation. Rule judges read this.
    public var promptText: String {
        switch prompt {
        case .text(let text): return text
        case .chat(let messages): return messages.last?.content ?? ""
        }
    }
}

/// Something that scores replies: a reward model, a rule, a checker. PPO turns its scores into
/// rewards and `rein compare` into verdicts.
///
/// `scores` takes a whole batch so a model-backed judge can batch its forward passes; it returns
/// one score per item, in order. Higher is better.
public protocol RewardFunction {
    /// A short name for logs and metrics (`reward_model`, `synthetic_task`, `regex`, `length`).
    var name: String { get }
    /// One score per item, in the items' order.
    func scores(_ items: [JudgeItem]) throws -> [Double]
}

extension RewardFunction {
    /// The score of a single reply.
    public func score(prompt: String, response: String) throws -> Double {
        try scores([JudgeItem(prompt: prompt, response: response)])[0]
    }
}

/// Why a judge could not be built or could not score; every message names its source (a file,
/// a pattern, a key).
public struct EvaluationError: Error, CustomStringConvertible, Equatable, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
