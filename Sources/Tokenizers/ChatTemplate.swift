/// One message of a conversation.
public struct ChatMessage: Sendable, Hashable, Codable {
    /// "system", "user" or "assistant" (other roles are rendered by name).
    public var role: String
    /// The message text.
    public var content: String

    /// Creates a message.
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }

    /// A system message.
    public static func system(_ content: String) -> ChatMessage { ChatMessage(role: "system", content: content) }
    /// A user message.
    public static func user(_ content: String) -> ChatMessage { ChatMessage(role: "user", content: content) }
    /// An assistant message.
    public static func assistant(_ content: String) -> ChatMessage { ChatMessage(role: "assistant", content: content) }
}

/// Token ids of a rendered conversation and the mask SFT trains on.
public struct ChatEncoding: Sendable, Equatable {
    /// The ids, equal to encoding the rendered text with special tokens allowed.
    public var ids: [Int32]
    /// One flag per id: true exactly on the tokens of assistant replies and on the end-of-turn
    /// token that closes each assistant turn. A token that straddles the start of a reply (such as
    /// " A" after "Assistant:") counts as part of the reply, as in `transformers`'
    /// `return_assistant_tokens_mask`.
    public var assistantMask: [Bool]
}

/// How a conversation is laid out as text.
public struct ChatTemplate: Sendable, Hashable {
    /// The two layouts Rein renders.
    public enum Style: Sendable, Hashable {
        /// `<|im_start|>role\ncontent<|im_end|>\n` per message; the generation prompt is
        /// `<|im_start|>assistant\n` (SmolLM2, Qwen).
        case chatML
        /// `User: content\n`, `Assistant: content<end of turn>\n`; the generation prompt is
        /// `Assistant:` and the reply starts with its space.
        case plain
    }

    /// The layout.
    public var style: Style
    /// The special token that closes an assistant turn (`<|im_end|>` for ChatML).
    public var endOfTurn: String
    /// A system message put first when the conversation does not start with one (SmolLM2's own
    /// template adds "You are a helpful AI assistant named SmolLM, trained by Hugging Face").
    public var defaultSystemPrompt: String?

    /// Creates a template.
    public init(style: Style, endOfTurn: String, defaultSystemPrompt: String? = nil) {
        self.style = style
        self.endOfTurn = endOfTurn
        self.defaultSystemPrompt = defaultSystemPrompt
    }

    /// ChatML without a default system prompt.
    public static let chatML = ChatTemplate(style: .chatML, endOfTurn: "<|im_end|>")

    /// SmolLM2-Instruct's own template (from its GGUF metadata): ChatML with a default system prompt.
    public static let smolLM2 = ChatTemplate(
        style: .chatML, endOfTurn: "<|im_end|>",
        defaultSystemPrompt: "You are a helpful AI assistant named SmolLM, trained by Hugging Face")

    /// "User: ... / Assistant: ..." turns, each reply closed by `endOfTurn`.
    public static func plain(endOfTurn: String = "<|endoftext|>") -> ChatTemplate {
        ChatTemplate(style: .plain, endOfTurn: endOfTurn)
    }

    private static let chatMLStart = "<|im_start|>"

    /// The built-in layout a Jinja chat template (a GGUF's `tokenizer.chat_template`, a
    /// `tokenizer_config.json`'s `chat_template`) renders like: ChatML when it writes
    /// `<|im_start|>`, nil otherwise.
    ///
    /// A string literal of the template that is a whole system turn, `<|im_start|>system` and a
    /// line break, text, `<|im_end|>`, is the system message the template puts first when a
    /// conversation has none (SmolLM2's "You are a helpful AI assistant named SmolLM, trained by
    /// Hugging Face"); that text becomes `defaultSystemPrompt`.
    public init?(jinja: String) {
        let start = Array(Self.chatMLStart.unicodeScalars), scalars = Array(jinja.unicodeScalars)
        guard scalars.indices.contains(where: { Self.matches(scalars, at: $0, start) }) else { return nil }
        let end = "<|im_end|>", head = Array((Self.chatMLStart + "system").unicodeScalars), close = Array(end.unicodeScalars)
        var system: String?
        for literal in Self.stringLiterals(inTagsOf: jinja) {
            let u = Array(literal.unicodeScalars)
            guard Self.matches(u, at: 0, head) else { continue }
            var k = head.count
            if k < u.count, u[k] == "\r" { k += 1 }
            guard k < u.count, u[k] == "\n" else { continue }
            k += 1
            guard let stop = (k..<u.count).first(where: { Self.matches(u, at: $0, close) }) else { continue }
            var text = String.UnicodeScalarView()
            text.append(contentsOf: u[k..<stop])
            system = String(text)
            break
        }
        self.init(style: .chatML, endOfTurn: end, defaultSystemPrompt: system)
    }

    /// The string literals inside the `{{ ... }}` and `{% ... %}` tags of a Jinja template, with
    /// their escapes (`\n`, `\t`, `\\`, quotes) decoded.
    static func stringLiterals(inTagsOf template: String) -> [String] {
        let scalars = Array(template.unicodeScalars)
        var out: [String] = []
        var i = 0, inTag = false
        func at(_ k: Int, _ text: String) -> Bool { matches(scalars, at: k, Array(text.unicodeScalars)) }
        while i < scalars.count {
            if !inTag {
                if at(i, "{{") || at(i, "{%") { inTag = true; i += 2 } else { i += 1 }
                continue
            }
            if at(i, "}}") || at(i, "%}") { inTag = false; i += 2; continue }
            let quote = scalars[i]
            guard quote == "'" || quote == "\"" else { i += 1; continue }
            var literal = String.UnicodeScalarView()
            i += 1
            while i < scalars.count, scalars[i] != quote {
                if scalars[i] == "\\", i + 1 < scalars.count {
                    let next = scalars[i + 1]
                    switch next {
                    case "n": literal.append("\n")
                    case "t": literal.append("\t")
                    case "r": literal.append("\r")
                    default: literal.append(next)
                    }
                    i += 2
                } else {
                    literal.append(scalars[i])
                    i += 1
                }
            }
            out.append(String(literal))
            i += 1
        }
        return out
    }

    /// Whether `scalars` holds `text` at offset `k`.
    private static func matches(_ scalars: [Unicode.Scalar], at k: Int, _ text: [Unicode.Scalar]) -> Bool {
        k >= 0 && k + text.count <= scalars.count && scalars[k..<(k + text.count)].elementsEqual(text)
    }

    /// A piece of the rendered conversation: text, or a special token.
    private enum Piece {
        case text(String, reply: Bool)
        case special(String, reply: Bool)
    }

    private func pieces(_ messages: [ChatMessage], addGenerationPrompt: Bool) -> [Piece] {
        var messages = messages
        // As the Jinja templates do: inside the loop over messages, so not for an empty conversation.
        if let system = defaultSystemPrompt, let first = messages.first, first.role != "system" {
            messages.insert(.system(system), at: 0)
        }
        var out: [Piece] = []
        for message in messages {
            let isReply = message.role == "assistant"
            switch style {
            case .chatML:
                out.append(.special(Self.chatMLStart, reply: false))
                out.append(.text(message.role + "\n", reply: false))
                out.append(.text(message.content, reply: isReply))
                out.append(.special(endOfTurn, reply: isReply))
                out.append(.text("\n", reply: false))
            case .plain:
                let name = Self.displayName(message.role)
                if isReply {
                    out.append(.text(name + ":", reply: false))
                    out.append(.text(" " + message.content, reply: true))
                    out.append(.special(endOfTurn, reply: true))
                    out.append(.text("\n", reply: false))
                } else {
                    out.append(.text(name + ": " + message.content + "\n", reply: false))
                }
            }
        }
        if addGenerationPrompt {
            switch style {
            case .chatML:
                out.append(.special(Self.chatMLStart, reply: false))
                out.append(.text("assistant\n", reply: false))
            case .plain:
                out.append(.text("Assistant:", reply: false))
            }
        }
        return out
    }

    private static func displayName(_ role: String) -> String {
        guard let first = role.unicodeScalars.first else { return role }
        return String(first).uppercased() + String(role.unicodeScalars.dropFirst())
    }

    /// The conversation as text, special tokens written out (what `apply_chat_template(...,
    /// tokenize=False)` returns for the same layout).
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool = false) -> String {
        var text = ""
        for piece in pieces(messages, addGenerationPrompt: addGenerationPrompt) {
            switch piece {
            case let .text(s, _), let .special(s, _): text += s
            }
        }
        return text
    }

    /// Ids and assistant mask of the conversation.
    ///
    /// Special tokens come only from the template: message text is encoded as plain text, so a
    /// message containing "<|im_end|>" cannot end its turn early. Text between two special tokens
    /// is encoded as one stretch, so the ids equal `tokenizer.encode(render(...))` whenever the
    /// messages hold no special-token text.
    ///
    /// - Throws: `TokenizerError.missingSpecialToken` when the tokenizer lacks a token the
    ///   template needs.
    public func encode(_ messages: [ChatMessage], with tokenizer: Tokenizer,
                       addGenerationPrompt: Bool = false) throws(TokenizerError) -> ChatEncoding {
        var result = ChatEncoding(ids: [], assistantMask: [])
        var stretch: [UInt8] = []
        var replyRanges: [Range<Int>] = []  // byte ranges of reply text inside `stretch`

        func flush() {
            guard !stretch.isEmpty else { return }
            let (ids, ends) = tokenizer.encodeStretchWithEnds(stretch)
            var start = 0
            for (id, end) in zip(ids, ends) {
                let overlapsReply = replyRanges.contains { $0.lowerBound < end && start < $0.upperBound }
                result.ids.append(id)
                result.assistantMask.append(overlapsReply)
                start = end
            }
            stretch.removeAll(keepingCapacity: true)
            replyRanges.removeAll()
        }

        for piece in pieces(messages, addGenerationPrompt: addGenerationPrompt) {
            switch piece {
            case let .text(text, reply):
                let start = stretch.count
                stretch.append(contentsOf: text.utf8)
                if reply && stretch.count > start { replyRanges.append(start..<stretch.count) }
            case let .special(content, reply):
                guard let id = tokenizer.addedTokenID(content) else { throw TokenizerError.missingSpecialToken(content) }
                flush()
                result.ids.append(id)
                result.assistantMask.append(reply)
            }
        }
        flush()
        return result
    }
}

extension Tokenizer {
    /// Encodes text with no special-token matching and returns, for each id, the end offset of its
    /// bytes in `text` (a virtual prefix space, when the pre-tokenizer adds one, is not counted).
    func encodeStretchWithEnds(_ text: [UInt8]) -> (ids: [Int32], ends: [Int]) {
        var ids: [Int32] = []
        text.withUnsafeBufferPointer { encode($0, allowSpecial: false, into: &ids) }
        var position = preTokenizer.addPrefixSpace && text.first != 0x20 && !text.isEmpty ? -1 : 0
        let ends = ids.map { id -> Int in
            position += byteLength(of: id)
            return max(position, 0)
        }
        return (ids, ends)
    }
}
