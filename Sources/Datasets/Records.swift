import Tokenizers

/// The record layouts of a dataset file (TRL's conventions, one JSON object a line).
public enum DatasetFormat: String, Sendable, Codable, CaseIterable {
    /// `{"text": "..."}`: pretraining text; the loss falls on every token.
    case languageModeling = "language_modeling"
    /// `{"prompt": ..., "completion": ...}`: both strings, or both message lists.
    case promptCompletion = "prompt_completion"
    /// `{"messages": [{"role": ..., "content": ...}, ...]}` with at least one assistant turn.
    case conversational
    /// `{"prompt": ..., "chosen": ..., "rejected": ...}`: all strings or all message lists, with an
    /// optional numeric `"margin"`.
    case preference
    /// `{"prompt": ...}` (a string or messages) or `{"messages": [...]}` ending with a user turn:
    /// prompts for generation (RL).
    case promptOnly = "prompt_only"
}

/// A field that holds plain text (the standard variant) or a list of messages (the conversational
/// variant, rendered with a chat template).
public enum TextOrChat: Sendable, Hashable {
    /// Plain text.
    case text(String)
    /// Messages, never empty.
    case chat([ChatMessage])
}

/// One record of a dataset file.
public enum DatasetRecord: Sendable, Hashable {
    /// Language modeling text.
    case text(String)
    /// A prompt and the completion the model learns; both are text, or both are messages.
    case promptCompletion(prompt: TextOrChat, completion: TextOrChat)
    /// A conversation; the model learns its assistant turns.
    case conversation([ChatMessage])
    /// A prompt with a preferred and a dispreferred response (all text or all messages) and an
    /// optional margin for the reward model's loss.
    case preference(prompt: TextOrChat, chosen: TextOrChat, rejected: TextOrChat, margin: Double?)
    /// A prompt to generate from; messages end with a user turn.
    case prompt(TextOrChat)

    /// The format this record belongs to.
    public var format: DatasetFormat {
        switch self {
        case .text: return .languageModeling
        case .promptCompletion: return .promptCompletion
        case .conversation: return .conversational
        case .preference: return .preference
        case .prompt: return .promptOnly
        }
    }
}

/// The roles a message may have.
let validRoles: Set<String> = ["system", "user", "assistant"]

/// Validates one parsed JSONL line against a format, building errors that name the file, the line
/// and the field.
struct RecordParser {
    let file: String
    let line: Int
    let object: JSONValue

    /// The format the record's fields point to: preference fields win over completion, which wins
    /// over text; a message list is a prompt when it ends with a user turn.
    func detectFormat() throws(DatasetError) -> DatasetFormat {
        guard case let .object(members) = object else {
            throw DatasetError.wrongType(file: file, line: line, field: "(record)", expected: "a JSON object", found: object.typeName)
        }
        func has(_ key: String) -> Bool {
            if let value = object[key], !value.isNull { return true }
            return false
        }
        if has("chosen") || has("rejected") { return .preference }
        if has("completion") { return .promptCompletion }
        if has("text") { return .languageModeling }
        if has("messages") {
            if case let .array(list)? = object["messages"], case let .string(role)? = list.last?["role"], role == "user" {
                return .promptOnly
            }
            return .conversational
        }
        if has("prompt") { return .promptOnly }
        throw DatasetError.unknownFormat(file: file, line: line, fields: members.map(\.key))
    }

    /// The record, validated as `format`.
    func record(as format: DatasetFormat) throws(DatasetError) -> DatasetRecord {
        guard case .object = object else {
            throw DatasetError.wrongType(file: file, line: line, field: "(record)", expected: "a JSON object", found: object.typeName)
        }
        switch format {
        case .languageModeling:
            return .text(try string("text"))
        case .promptCompletion:
            let prompt = try textOrChat("prompt")
            let completion = try textOrChat("completion", like: prompt, as: "prompt")
            return .promptCompletion(prompt: prompt, completion: completion)
        case .conversational:
            let messages = try messageList(try required("messages", expected: "a list of messages"), field: "messages")
            guard messages.contains(where: { $0.role == "assistant" }) else {
                throw DatasetError.invalidValue(file: file, line: line, field: "messages",
                                                reason: "has no assistant message, so there is nothing to train on")
            }
            return .conversation(messages)
        case .preference:
            let prompt = try textOrChat("prompt")
            let chosen = try textOrChat("chosen", like: prompt, as: "prompt")
            let rejected = try textOrChat("rejected", like: prompt, as: "prompt")
            var margin: Double?
            switch object["margin"] {
            case nil, .null?: margin = nil
            case let .integer(value)?: margin = Double(value)
            case let .double(value)?: margin = value
            case let other?:
                throw DatasetError.wrongType(file: file, line: line, field: "margin", expected: "a number", found: other.typeName)
            }
            return .preference(prompt: prompt, chosen: chosen, rejected: rejected, margin: margin)
        case .promptOnly:
            let usesMessages = (object["prompt"] ?? .null).isNull && object["messages"] != nil
            let field = usesMessages ? "messages" : "prompt"
            let prompt = try textOrChat(field)
            if case let .chat(messages) = prompt, let last = messages.last, last.role != "user" {
                throw DatasetError.invalidValue(file: file, line: line, field: "\(field)[\(messages.count - 1)].role",
                                                reason: "is \"\(last.role)\"; a prompt must end with a user turn")
            }
            return .prompt(prompt)
        }
    }

    /// The record as a prompt with its reference answer: the prompt as in a prompt-only record
    /// (`prompt`, or `messages` ending with a user turn) and `answer` a string.
    func promptAnswer() throws(DatasetError) -> PromptAnswerRecord {
        guard case .prompt(let prompt) = try record(as: .promptOnly) else {
            preconditionFailure("record(as: .promptOnly) returns a prompt")
        }
        return PromptAnswerRecord(prompt: prompt, answer: try string("answer"))
    }

    private func required(_ field: String, expected: String) throws(DatasetError) -> JSONValue {
        guard let value = object[field], !value.isNull else {
            throw DatasetError.missingField(file: file, line: line, field: field, expected: expected)
        }
        return value
    }

    private func string(_ field: String) throws(DatasetError) -> String {
        let value = try required(field, expected: "a string")
        guard case let .string(text) = value else {
            throw DatasetError.wrongType(file: file, line: line, field: field, expected: "a string", found: value.typeName)
        }
        return text
    }

    /// A string or a non-empty message list; when `like` is given, the same kind as that field.
    private func textOrChat(_ field: String, like other: TextOrChat? = nil, as otherName: String = "") throws(DatasetError) -> TextOrChat {
        let expected: String
        switch other {
        case .text?: expected = "a string (like '\(otherName)')"
        case .chat?: expected = "a list of messages (like '\(otherName)')"
        case nil: expected = "a string or a list of messages"
        }
        let value = try required(field, expected: expected)
        switch (value, other) {
        case let (.string(text), nil), let (.string(text), .text?):
            return .text(text)
        case (.array, nil), (.array, .chat?):
            return .chat(try messageList(value, field: field))
        default:
            throw DatasetError.wrongType(file: file, line: line, field: field, expected: expected, found: value.typeName)
        }
    }

    private func messageList(_ value: JSONValue, field: String) throws(DatasetError) -> [ChatMessage] {
        guard case let .array(items) = value else {
            throw DatasetError.wrongType(file: file, line: line, field: field, expected: "a list of messages", found: value.typeName)
        }
        guard !items.isEmpty else {
            throw DatasetError.invalidValue(file: file, line: line, field: field, reason: "is an empty list; expected at least one message")
        }
        var messages: [ChatMessage] = []
        messages.reserveCapacity(items.count)
        for (k, item) in items.enumerated() {
            let path = "\(field)[\(k)]"
            guard case .object = item else {
                throw DatasetError.wrongType(file: file, line: line, field: path,
                                             expected: "a message object {\"role\", \"content\"}", found: item.typeName)
            }
            var texts: [String] = []
            for key in ["role", "content"] {
                guard let member = item[key], !member.isNull else {
                    throw DatasetError.missingField(file: file, line: line, field: "\(path).\(key)", expected: "a string")
                }
                guard case let .string(text) = member else {
                    throw DatasetError.wrongType(file: file, line: line, field: "\(path).\(key)", expected: "a string", found: member.typeName)
                }
                texts.append(text)
            }
            guard validRoles.contains(texts[0]) else {
                throw DatasetError.invalidValue(file: file, line: line, field: "\(path).role",
                                                reason: "is \(String(reflecting: texts[0])); expected \"system\", \"user\" or \"assistant\"")
            }
            messages.append(ChatMessage(role: texts[0], content: texts[1]))
        }
        return messages
    }
}
