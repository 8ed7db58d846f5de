import Tokenizers

/// Token ids and the positions the loss falls on.
public struct TokenizedExample: Sendable, Hashable, Codable {
    /// The token ids.
    public var ids: [Int32]
    /// One flag per id: true where the token is a training target (the collator turns false into
    /// the ignored label -100).
    public var lossMask: [Bool]

    /// Creates an example; `ids` and `lossMask` must have the same length.
    public init(ids: [Int32], lossMask: [Bool]) {
        precondition(ids.count == lossMask.count, "ids (\(ids.count)) and lossMask (\(lossMask.count)) differ in length")
        self.ids = ids
        self.lossMask = lossMask
    }

    /// Number of tokens.
    public var count: Int { ids.count }
}

/// A preference pair: one prompt shared by two responses.
///
/// The responses hold only what follows the prompt, with the loss mask on the response tokens
/// (and the EOS or end-of-turn token that closes them); `chosenSequence` and `rejectedSequence`
/// are what the model reads.
public struct TokenizedPair: Sendable, Hashable, Codable {
    /// The prompt's ids, identical in both sequences.
    public var prompt: [Int32]
    /// The preferred response.
    public var chosen: TokenizedExample
    /// The dispreferred response.
    public var rejected: TokenizedExample
    /// The record's margin, if it had one.
    public var margin: Double?

    /// Creates a pair.
    public init(prompt: [Int32], chosen: TokenizedExample, rejected: TokenizedExample, margin: Double? = nil) {
        self.prompt = prompt
        self.chosen = chosen
        self.rejected = rejected
        self.margin = margin
    }

    /// Prompt + chosen response, the loss on the response only.
    public var chosenSequence: TokenizedExample { TokenizedExample(prompt: prompt, response: chosen) }
    /// Prompt + rejected response, the loss on the response only.
    public var rejectedSequence: TokenizedExample { TokenizedExample(prompt: prompt, response: rejected) }
}

extension TokenizedExample {
    /// `prompt` (no loss) followed by `response` (its own mask).
    init(prompt: [Int32], response: TokenizedExample) {
        self.init(ids: prompt + response.ids, lossMask: [Bool](repeating: false, count: prompt.count) + response.lossMask)
    }
}

/// What happens to a sequence longer than `maxLength`.
public enum OverflowPolicy: String, Sendable, Codable {
    /// Cut it (see `ExampleBuilder` for which end).
    case truncate
    /// Leave it out.
    case drop
}

/// How many records became examples, and how many were cut or left out.
public struct LengthStats: Sendable, Hashable, Codable {
    /// Examples returned, truncated ones included.
    public var kept = 0
    /// Examples cut to `maxLength`.
    public var truncated = 0
    /// Records left out: too long under `.drop`, nothing left to train on after truncation, or an
    /// empty prompt.
    public var dropped = 0

    /// Creates zero counts.
    public init() {}
}

/// Turns records into token ids with loss masks.
///
/// - Language modeling: the text's tokens + EOS; the loss on every token.
/// - Prompt-completion: prompt + completion + EOS; the loss on the completion and EOS.
/// - Conversational: the chat template's ids; the loss on the assistant replies and the
///   end-of-turn token closing each (the template's `assistantMask`). No EOS is added: a chat model
///   stops on its end-of-turn token, which generation should list as a stop token.
/// - Preference: prompt + response (+ EOS for text responses) for chosen and rejected, with the
///   same prompt ids; the loss on the response only.
/// - Conversational prompt-completion and preference records: the prompt is rendered with the
///   generation prompt and each response after it; the ids are exactly the template's ids of the
///   whole conversation, and the prompt is the part both conversations share.
///
/// Text is encoded as plain text (`allowSpecial: false`), as the chat template encodes message
/// text: a record cannot forge control tokens such as `<|endoftext|>`. No BOS is added.
///
/// `maxLength` bounds every sequence. With `.truncate`, language-modeling and SFT examples lose
/// their end; a preference pair loses the start of its prompt first (TRL's `keep_end`), so both
/// responses survive whole when they fit, and then the ends of the responses; a generation prompt
/// keeps its end. An example with no loss position left is dropped. With `.drop`, longer records
/// are left out. `LengthStats` counts both.
public struct ExampleBuilder: Sendable {
    /// Encodes text.
    public let tokenizer: Tokenizer
    /// Renders messages.
    public let template: ChatTemplate
    /// Appended to text completions and responses so the model learns to stop.
    public let eosTokenID: Int32
    /// Longest sequence kept; nil for no limit (pretraining text to be packed).
    public let maxLength: Int?
    /// What happens to longer sequences.
    public let overflow: OverflowPolicy

    /// Creates a builder.
    ///
    /// - Parameter eosTokenID: defaults to the tokenizer's EOS.
    /// - Throws: `DatasetError.invalidConfiguration` when there is no EOS or `maxLength` < 1.
    public init(tokenizer: Tokenizer, template: ChatTemplate = .chatML, eosTokenID: Int32? = nil,
                maxLength: Int? = nil, overflow: OverflowPolicy = .truncate) throws(DatasetError) {
        guard let eos = eosTokenID ?? tokenizer.eosTokenID else {
            throw DatasetError.invalidConfiguration(
                "the tokenizer has no EOS token; pass eosTokenID (completions end with EOS so the model learns to stop)")
        }
        if let maxLength, maxLength < 1 {
            throw DatasetError.invalidConfiguration("max_length \(maxLength) must be at least 1")
        }
        self.tokenizer = tokenizer
        self.template = template
        self.eosTokenID = eos
        self.maxLength = maxLength
        self.overflow = overflow
    }

    // MARK: One record, full length

    /// The SFT / language-modeling example of a text, prompt-completion or conversational record.
    public func example(for record: DatasetRecord) throws(DatasetError) -> TokenizedExample {
        switch record {
        case let .text(text):
            let ids = encode(text) + [eosTokenID]
            return TokenizedExample(ids: ids, lossMask: [Bool](repeating: true, count: ids.count))
        case let .promptCompletion(prompt, completion):
            let (promptIDs, responses) = try promptAndResponses(prompt, [completion])
            return TokenizedExample(prompt: promptIDs, response: responses[0])
        case let .conversation(messages):
            let encoding = try encodeChat(messages, generationPrompt: false)
            return TokenizedExample(ids: encoding.ids, lossMask: encoding.assistantMask)
        case .preference, .prompt:
            throw wrongKind(record, expected: "language_modeling, prompt_completion or conversational")
        }
    }

    /// The pair of a preference record.
    public func pair(for record: DatasetRecord) throws(DatasetError) -> TokenizedPair {
        guard case let .preference(prompt, chosen, rejected, margin) = record else {
            throw wrongKind(record, expected: "preference")
        }
        let (promptIDs, responses) = try promptAndResponses(prompt, [chosen, rejected])
        return TokenizedPair(prompt: promptIDs, chosen: responses[0], rejected: responses[1], margin: margin)
    }

    /// The generation prompt of a prompt-only, prompt-completion or preference record: text as is,
    /// messages rendered with the template's generation prompt.
    public func prompt(for record: DatasetRecord) throws(DatasetError) -> [Int32] {
        switch record {
        case let .prompt(prompt), let .promptCompletion(prompt, _), let .preference(prompt, _, _, _):
            switch prompt {
            case let .text(text): return encode(text)
            case let .chat(messages): return try encodeChat(messages, generationPrompt: true).ids
            }
        case .text, .conversation:
            throw wrongKind(record, expected: "prompt_only, prompt_completion or preference")
        }
    }

    // MARK: Many records, fitted to maxLength

    /// SFT / language-modeling examples of `records`, fitted to `maxLength`.
    public func examples(_ records: [DatasetRecord]) throws(DatasetError) -> (examples: [TokenizedExample], stats: LengthStats) {
        var stats = LengthStats()
        var out: [TokenizedExample] = []
        out.reserveCapacity(records.count)
        for record in records {
            if let example = fit(try example(for: record), &stats) { out.append(example) }
        }
        return (out, stats)
    }

    /// Preference pairs of `records`, fitted to `maxLength`.
    public func pairs(_ records: [DatasetRecord]) throws(DatasetError) -> (pairs: [TokenizedPair], stats: LengthStats) {
        var stats = LengthStats()
        var out: [TokenizedPair] = []
        out.reserveCapacity(records.count)
        for record in records {
            if let pair = fit(try pair(for: record), &stats) { out.append(pair) }
        }
        return (out, stats)
    }

    /// Generation prompts of `records`, fitted to `maxLength` by keeping their end.
    public func prompts(_ records: [DatasetRecord]) throws(DatasetError) -> (prompts: [[Int32]], stats: LengthStats) {
        var stats = LengthStats()
        var out: [[Int32]] = []
        out.reserveCapacity(records.count)
        for record in records {
            var ids = try prompt(for: record)
            if let maxLength, ids.count > maxLength {
                if overflow == .drop {
                    stats.dropped += 1
                    continue
                }
                ids = Array(ids.suffix(maxLength))
                stats.truncated += 1
            }
            guard !ids.isEmpty else {
                stats.dropped += 1
                continue
            }
            stats.kept += 1
            out.append(ids)
        }
        return (out, stats)
    }

    // MARK: Internals

    private func encode(_ text: String) -> [Int32] {
        tokenizer.encode(text, allowSpecial: false)
    }

    private func encodeChat(_ messages: [ChatMessage], generationPrompt: Bool) throws(DatasetError) -> ChatEncoding {
        do {
            return try template.encode(messages, with: tokenizer, addGenerationPrompt: generationPrompt)
        } catch {
            throw DatasetError.invalidConfiguration("the chat template cannot be used with this tokenizer: \(error)")
        }
    }

    /// A prompt and the responses that follow it, all text or all messages.
    private func promptAndResponses(_ prompt: TextOrChat,
                                     _ responses: [TextOrChat]) throws(DatasetError) -> ([Int32], [TokenizedExample]) {
        var texts: [String] = []
        var conversations: [[ChatMessage]] = []
        for response in responses {
            switch (prompt, response) {
            case let (.text, .text(text)): texts.append(text)
            case let (.chat(head), .chat(messages)): conversations.append(head + messages)
            default:
                throw DatasetError.invalidConfiguration("a record mixes text and messages; its prompt and responses must be all one kind")
            }
        }
        switch prompt {
        case let .text(promptText):
            let out = texts.map { text -> TokenizedExample in
                let ids = encode(text) + [eosTokenID]
                return TokenizedExample(ids: ids, lossMask: [Bool](repeating: true, count: ids.count))
            }
            return (encode(promptText), out)
        case let .chat(promptMessages):
            // The prompt with its generation header, then each whole conversation. Their common
            // prefix is the shared prompt; it is shorter than the header only when the tokenizer
            // merges tokens across the boundary between header and reply.
            let head = try encodeChat(promptMessages, generationPrompt: true).ids
            var encodings: [ChatEncoding] = []
            for conversation in conversations { encodings.append(try encodeChat(conversation, generationPrompt: false)) }
            var shared = head.count
            for encoding in encodings {
                shared = min(shared, zip(head, encoding.ids).prefix { $0 == $1 }.count)
            }
            let out = encodings.map {
                TokenizedExample(ids: Array($0.ids[shared...]), lossMask: Array($0.assistantMask[shared...]))
            }
            return (Array(head[..<shared]), out)
        }
    }

    private func fit(_ example: TokenizedExample, _ stats: inout LengthStats) -> TokenizedExample? {
        guard let maxLength, example.count > maxLength else {
            stats.kept += 1
            return example
        }
        guard overflow == .truncate else {
            stats.dropped += 1
            return nil
        }
        let cut = TokenizedExample(ids: Array(example.ids.prefix(maxLength)), lossMask: Array(example.lossMask.prefix(maxLength)))
        guard cut.lossMask.contains(true) else {
            stats.dropped += 1
            return nil
        }
        stats.truncated += 1
        stats.kept += 1
        return cut
    }

    private func fit(_ pair: TokenizedPair, _ stats: inout LengthStats) -> TokenizedPair? {
        let responseLength = max(pair.chosen.count, pair.rejected.count)
        guard let maxLength, pair.prompt.count + responseLength > maxLength else {
            stats.kept += 1
            return pair
        }
        guard overflow == .truncate else {
            stats.dropped += 1
            return nil
        }
        let prompt = Array(pair.prompt.suffix(max(0, maxLength - responseLength)))
        let room = maxLength - prompt.count
        func cut(_ response: TokenizedExample) -> TokenizedExample {
            TokenizedExample(ids: Array(response.ids.prefix(room)), lossMask: Array(response.lossMask.prefix(room)))
        }
        let fitted = TokenizedPair(prompt: prompt, chosen: cut(pair.chosen), rejected: cut(pair.rejected), margin: pair.margin)
        guard fitted.chosen.lossMask.contains(true), fitted.rejected.lossMask.contains(true) else {
            stats.dropped += 1
            return nil
        }
        stats.truncated += 1
        stats.kept += 1
        return fitted
    }

    private func wrongKind(_ record: DatasetRecord, expected: String) -> DatasetError {
        DatasetError.invalidConfiguration("\(record.format.rawValue) records cannot be used here; expected \(expected) records")
    }
}
