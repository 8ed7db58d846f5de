import Checkpoints
import Datasets
import Foundation
import Generation
import TensorCore
import Tokenizers

/// One prompt of a rollout: the record's prompt and the ids the policy continues.
public struct RolloutPrompt: Sendable, Hashable {
    /// The prompt as the record wrote it (what judges are given).
    public var source: TextOrChat
    /// `ids` decoded with special tokens: the prompt as the model sees it (template applied).
    public var text: String
    /// The prompt's token ids, generation prompt included; never empty.
    public var ids: [Int32]
    /// Whether its start was cut so that the prompt and a full response fit the model's context.
    public var truncated: Bool

    /// A prompt from its parts.
    public init(source: TextOrChat, text: String, ids: [Int32], truncated: Bool = false) {
        self.source = source
        self.text = text
        self.ids = ids
        self.truncated = truncated
    }
}

/// How rollouts are sampled (the defaults are TRL's).
public struct RolloutOptions: Sendable, Equatable, Codable {
    /// Sampling temperature; log-probs are those of logits / temperature. 0 is greedy.
    public var temperature: Float
    /// Keep only the k most likely tokens; nil: all.
    public var topK: Int?
    /// Nucleus sampling mass; nil: all tokens.
    public var topP: Float?
    /// Most new tokens per response (TRL's `response_length`).
    public var responseLength: Int
    /// Responses per prompt (TRL's `num_generations`); rows are prompt-major.
    public var samplesPerPrompt: Int
    /// The seed every row's generator is derived from (see `RolloutEngine.rng`).
    public var seed: UInt64
    /// Rows per generator call; nil: all rows in one call. Never changes the tokens.
    public var generationBatchSize: Int?
    /// false: a text prompt is encoded as plain text, as SFT encodes a text prompt-completion
    /// record; true: as a user turn of the chat template with the generation prompt, for a policy
    /// that SFT trained on conversations.
    public var textPromptsAsChat: Bool

    /// Options with TRL's defaults: temperature 0.7, no top-k/top-p, 53 tokens, one sample.
    public init(temperature: Float = 0.7, topK: Int? = nil, topP: Float? = nil, responseLength: Int = 53,
                samplesPerPrompt: Int = 1, seed: UInt64 = 0, generationBatchSize: Int? = nil,
                textPromptsAsChat: Bool = false) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.responseLength = responseLength
        self.samplesPerPrompt = samplesPerPrompt
        self.seed = seed
        self.generationBatchSize = generationBatchSize
        self.textPromptsAsChat = textPromptsAsChat
    }
}

/// The sampled responses of one rollout phase, in TRL's layout: `rows = prompts · samplesPerPrompt`,
/// prompt-major (prompt 0's samples first).
///
/// Padding uses `padId`, which is never EOS (see `RolloutEngine.rolloutPadId`); it may be the
/// sentinel `vocabularySize`, which must not be embedded: a trainer replaces pads by token 0 before a
/// forward pass and masks with `id != padId`, as TRL does.
public struct RolloutBatch: Sendable {
    /// The log-prob at positions after a response's stop (TRL's `INVALID_LOGPROB`, as Alignment's
    /// `invalidLogProb`).
    public static let invalidLogProb: Float = 1.0

    /// Number of responses.
    public var rows: Int
    /// Query length: the longest prompt of the batch.
    public var contextLength: Int
    /// Response length R (`RolloutOptions.responseLength`).
    public var responseLength: Int
    /// [rows · contextLength] prompt ids, left-padded with `padId`.
    public var queries: [Int32]
    /// [rows · responseLength] sampled ids; every position after the stop token (which is kept)
    /// holds `padId`.
    public var responses: [Int32]
    /// [rows · responseLength] log-probs of the sampled tokens under logits / temperature (before
    /// top-k/top-p); `invalidLogProb` after the stop.
    public var logProbs: [Float]
    /// Why each response ended: `.stopToken` (a stop token, kept) or `.maxTokens` (R tokens).
    public var stopReasons: [StopReason]
    /// Which of `prompts` each row answers (the group of RLOO and GRPO).
    public var promptIndex: [Int]
    /// The prompt's index in the dataset (the one the row's generator is seeded with).
    public var datasetIndex: [Int]
    /// Which sample of its prompt each row is, from 0.
    public var sampleIndex: [Int]
    /// Each response decoded up to and including its stop, special tokens skipped: the text judges score.
    public var responseTexts: [String]
    /// The prompts of the batch.
    public var prompts: [RolloutPrompt]
    /// The pad id of `queries` and `responses`.
    public var padId: Int32
    /// The model's EOS id.
    public var eosId: Int32
    /// Every id that ends a response (EOS and the template's end-of-turn token).
    public var stopTokenIds: [Int32]

    /// [rows · (contextLength + responseLength)]: each query followed by its response.
    public func queryResponses() -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(rows * (contextLength + responseLength))
        for r in 0..<rows {
            out += queries[(r * contextLength)..<((r + 1) * contextLength)]
            out += responses[(r * responseLength)..<((r + 1) * responseLength)]
        }
        return out
    }

    /// Row `row`'s response tokens up to and including its stop token (no padding).
    public func responseTokens(row: Int) -> [Int32] {
        let slice = responses[(row * responseLength)..<((row + 1) * responseLength)]
        return Array(slice.prefix { $0 != padId })
    }

    /// One judge item per row: the prompt as written and the response text.
    public var judgeItems: [JudgeItem] {
        (0..<rows).map { JudgeItem(prompt: prompts[promptIndex[$0]].source, response: responseTexts[$0]) }
    }
}

/// Samples responses to prompts from a policy for PPO, RLOO, GRPO and `rein compare`.
///
/// Sampling follows TRL: temperature (default 0.7), no top-k/top-p unless set, at most
/// `responseLength` new tokens, stop at the model's stop tokens (`lm.stopTokenIds`). Only sampled
/// tokens can stop a response: an EOS inside a prompt neither stops nor counts.
///
/// Every row samples from its own generator, `rng(seed:step:prompt:sample:)` of the seed, the step,
/// the prompt's dataset index and the sample index, so a rollout does not depend on the batch size,
/// the generation batch size or the prompts' order, and a resumed run regenerates the same samples.
public struct RolloutEngine {
    /// The policy.
    public let lm: LanguageModel
    /// How it samples.
    public let options: RolloutOptions
    /// The id that pads queries and responses (see `rolloutPadId`).
    public let padId: Int32
    /// The model's EOS id.
    public let eosId: Int32
    /// Ids that end a response.
    public let stopTokenIds: [Int32]
    /// The longest prompt kept: the model's context minus `responseLength` (longer prompts lose their start).
    public let maxPromptLength: Int
    /// true (the default): continuous batching, `generationBatchSize` (else all rows) being the
    /// slots, the samples of a prompt sharing its prefill; false: fixed chunks of
    /// `generationBatchSize` rows, each decoded until its longest response ends (the baseline of
    /// `rein bench rl --rollouts`). The tokens are the same either way.
    public var continuousBatching = true
    /// Free slots that refill continuous batching (nil: a quarter of the slots).
    public var refillWhenFree: Int?
    private let builder: ExampleBuilder
    private let generator: Generator

    /// An engine sampling from `lm`.
    ///
    /// - Throws: `EvaluationError` when the model has no EOS, an option is out of range, or
    ///   `responseLength` leaves no room for a prompt in the model's context.
    public init(lm: LanguageModel, options: RolloutOptions) throws {
        guard let eos = lm.eosTokenId else {
            throw EvaluationError("\(lm.source): neither the tokenizer nor config.json names an EOS token, which ends every response")
        }
        let context = lm.model.config.maxPositions
        guard options.responseLength >= 1 else {
            throw EvaluationError("response_length: expected at least 1, found \(options.responseLength)")
        }
        guard options.responseLength < context else {
            throw EvaluationError("response_length: \(options.responseLength) leaves no room for a prompt in "
                                  + "\(lm.source)'s context of \(context) tokens")
        }
        guard options.temperature >= 0, options.temperature.isFinite else {
            throw EvaluationError("temperature: expected a finite number >= 0, found \(options.temperature)")
        }
        if let k = options.topK, k < 1 { throw EvaluationError("top_k: expected at least 1, found \(k)") }
        if let p = options.topP, !(p > 0 && p <= 1) { throw EvaluationError("top_p: expected a number in (0, 1], found \(p)") }
        guard options.samplesPerPrompt >= 1 else {
            throw EvaluationError("num_generations: expected at least 1, found \(options.samplesPerPrompt)")
        }
        if let size = options.generationBatchSize, size < 1 {
            throw EvaluationError("generation batch size: expected at least 1, found \(size)")
        }
        do {
            builder = try ExampleBuilder(tokenizer: lm.tokenizer, template: lm.chatTemplate, eosTokenID: eos)
        } catch {
            throw EvaluationError("\(lm.source): \(error)")
        }
        self.lm = lm
        self.options = options
        eosId = eos
        stopTokenIds = lm.stopTokenIds
        padId = Self.rolloutPadId(padTokenId: lm.tokenizer.padTokenID, stopTokenIds: lm.stopTokenIds,
                                  vocabularySize: lm.model.config.vocabSize)
        maxPromptLength = context - options.responseLength
        generator = lm.makeGenerator()
    }

    /// The rollout pad id, never a stop token (PAD ≠ EOS): the tokenizer's pad token when it has one
    /// that is in the vocabulary and ends nothing, else the sentinel `vocabularySize`, which no
    /// embedding holds. Generation itself pads with `lm.generationPadId`; the batch is translated.
    public static func rolloutPadId(padTokenId: Int32?, stopTokenIds: [Int32], vocabularySize: Int) -> Int32 {
        if let pad = padTokenId, pad >= 0, Int(pad) < vocabularySize, !stopTokenIds.contains(pad) { return pad }
        return Int32(clamping: vocabularySize)
    }

    /// The generator of one row: a fixed SplitMix64 mix of the seed, the step, the prompt's dataset
    /// index and the sample index.
    public static func rng(seed: UInt64, step: Int, prompt: Int, sample: Int) -> RNG {
        var h = RNG.mix(seed ^ 0x524F_4C4C_4F55_5453)   // "ROLLOUTS"
        for value in [step, prompt, sample] {
            h = RNG.mix(h ^ UInt64(bitPattern: Int64(value)))
        }
        return RNG(seed: h)
    }

    /// The prompts of `records`, tokenized as `ExampleBuilder.prompt(for:)` does (text as is unless
    /// `textPromptsAsChat`; messages with the template's generation prompt), so a policy sees them
    /// as SFT trained it. Prompt-only records give their prompt; prompt-completion and preference
    /// records give their prompt too (the rest is ignored). A prompt longer than `maxPromptLength`
    /// keeps its end.
    ///
    /// - Throws: `EvaluationError` naming `file` and the record (1-based) for a record without a
    ///   prompt (language-modeling text), a conversation that does not end with a user turn, or an
    ///   empty prompt.
    public func prompts(_ records: [DatasetRecord], file: String) throws -> [RolloutPrompt] {
        var out: [RolloutPrompt] = []
        out.reserveCapacity(records.count)
        for (k, record) in records.enumerated() {
            out.append(try prompt(record, file: file, number: k + 1))
        }
        return out
    }

    /// The prompt of one record, `number` (1-based) naming it in errors; see `prompts(_:file:)`.
    public func prompt(_ record: DatasetRecord, file: String, number: Int) throws -> RolloutPrompt {
        func failure(_ field: String, _ reason: String) -> EvaluationError {
            EvaluationError("\(file): record \(number): \(field): \(reason)")
        }
        let source: TextOrChat, field: String
        switch record {
        case let .prompt(prompt):
            source = prompt
            if case .chat = prompt { field = "messages" } else { field = "prompt" }
        case let .promptCompletion(prompt, _), let .preference(prompt, _, _, _):
            source = prompt
            field = "prompt"
        case let .conversation(messages):
            source = .chat(messages)
            field = "messages"
        case .text:
            throw failure("text", "is language-modeling text, which has no prompt to generate from")
        }
        var input = source
        switch source {
        case let .chat(messages):
            let role = messages.last?.role ?? "(none)"
            guard role == "user" else {
                throw failure("\(field)[\(messages.count - 1)].role", "is \"\(role)\"; a prompt must end with a user turn")
            }
        case let .text(text):
            if options.textPromptsAsChat { input = .chat([.user(text)]) }
        }
        var ids: [Int32]
        do {
            ids = try builder.prompt(for: .prompt(input))
        } catch {
            throw failure(field, "\(error)")
        }
        guard !ids.isEmpty else { throw failure(field, "is empty, so there is nothing to generate from") }
        let truncated = ids.count > maxPromptLength
        if truncated { ids = Array(ids.suffix(maxPromptLength)) }
        return RolloutPrompt(source: source, text: lm.tokenizer.decode(ids), ids: ids, truncated: truncated)
    }

    /// Samples `samplesPerPrompt` responses to each prompt for update `step`.
    ///
    /// - Parameter promptIndices: each prompt's index in the dataset (`PromptOrder.next`), which seeds
    ///   its rows; nil: 0, 1, 2, ...
    /// - Throws: `EvaluationError` when `promptIndices` does not match `prompts`, or a prompt is
    ///   empty or longer than `maxPromptLength`.
    public func generate(_ prompts: [RolloutPrompt], step: Int, promptIndices: [Int]? = nil) throws -> RolloutBatch {
        let indices = promptIndices ?? Array(prompts.indices)
        guard indices.count == prompts.count else {
            throw EvaluationError("rollout: \(indices.count) prompt indices for \(prompts.count) prompts")
        }
        for (k, prompt) in prompts.enumerated() where prompt.ids.isEmpty || prompt.ids.count > maxPromptLength {
            throw EvaluationError("rollout: prompt \(k + 1) has \(prompt.ids.count) tokens; expected 1 to \(maxPromptLength) "
                                  + "(the context minus response_length)")
        }
        let S = options.samplesPerPrompt, R = options.responseLength
        let rows = prompts.count * S
        let ctx = prompts.map(\.ids.count).max() ?? 0
        var batch = RolloutBatch(
            rows: rows, contextLength: ctx, responseLength: R,
            queries: [Int32](repeating: padId, count: rows * ctx),
            responses: [Int32](repeating: padId, count: rows * R),
            logProbs: [Float](repeating: RolloutBatch.invalidLogProb, count: rows * R),
            stopReasons: [StopReason](repeating: .maxTokens, count: rows),
            promptIndex: (0..<rows).map { $0 / S }, datasetIndex: (0..<rows).map { indices[$0 / S] },
            sampleIndex: (0..<rows).map { $0 % S }, responseTexts: [String](repeating: "", count: rows),
            prompts: prompts, padId: padId, eosId: eosId, stopTokenIds: stopTokenIds)
        let sampling = SamplingOptions(temperature: options.temperature, topK: options.topK, topP: options.topP,
                                       maxNewTokens: R, stopTokens: stopTokenIds)
        let chunk = continuousBatching ? max(rows, 1) : options.generationBatchSize ?? max(rows, 1)
        let slots = BatchingOptions(slots: min(options.generationBatchSize ?? rows, max(rows, 1)), refillWhenFree: refillWhenFree)
        for start in stride(from: 0, to: rows, by: chunk) {
            let end = min(start + chunk, rows)
            var rngs = (start..<end).map {
                Self.rng(seed: options.seed, step: step, prompt: batch.datasetIndex[$0], sample: batch.sampleIndex[$0])
            }
            let rowPrompts = (start..<end).map { prompts[$0 / S].ids }
            let generated = continuousBatching
                ? generator.generate(prompts: rowPrompts, options: sampling, rngs: &rngs, batching: slots)
                : generator.generate(prompts: rowPrompts, options: sampling, rngs: &rngs)
            for (offset, sequence) in generated.enumerated() {
                let r = start + offset
                let ids = prompts[r / S].ids
                batch.queries.replaceSubrange((r * ctx + ctx - ids.count)..<((r + 1) * ctx), with: ids)
                let n = min(sequence.tokens.count, R)
                batch.responses.replaceSubrange((r * R)..<(r * R + n), with: sequence.tokens.prefix(n))
                batch.logProbs.replaceSubrange((r * R)..<(r * R + n), with: sequence.logProbs.prefix(n))
                batch.stopReasons[r] = sequence.stopReason
                batch.responseTexts[r] = sequence.text
            }
        }
        return batch
    }
}

/// A resumable order over a dataset's prompts: each epoch a seeded shuffle (Datasets'
/// `EpochBatches`), handed out a batch at a time.
///
/// A batch that runs past the end of an epoch continues into the next, freshly shuffled, epoch.
/// `position` is what a checkpoint stores; `restore` continues exactly where it left off.
public struct PromptOrder: Sendable {
    /// Where the order stands: the epoch and how many of its prompts were handed out.
    public struct Position: Sendable, Hashable, Codable {
        public var epoch: Int
        public var offset: Int
        public init(epoch: Int, offset: Int) {
            self.epoch = epoch
            self.offset = offset
        }
    }

    /// Number of prompts.
    public let count: Int
    private var order: EpochBatches

    /// An order over `count` prompts, shuffled per epoch from `seed` (file order when `shuffle` is false).
    ///
    /// - Throws: `EvaluationError` when there are no prompts.
    public init(count: Int, seed: UInt64, shuffle: Bool = true) throws {
        guard count > 0 else { throw EvaluationError("prompts: there are no prompts to order") }
        self.count = count
        order = try EpochBatches(count: count, batchSize: 1, seed: seed, shuffle: shuffle)
    }

    /// The position of the next prompt.
    public var position: Position {
        Position(epoch: order.position.epoch, offset: order.position.batchIndex)
    }

    /// Continues from a saved position.
    ///
    /// - Throws: `EvaluationError` when it lies outside an epoch of `count` prompts.
    public mutating func restore(_ saved: Position) throws {
        var target = order.position
        target.epoch = saved.epoch
        target.batchIndex = saved.offset
        do {
            try order.restore(target)
        } catch {
            throw EvaluationError("prompt order: the saved position (epoch \(saved.epoch), offset \(saved.offset)) "
                                  + "is outside an epoch of \(count) prompts")
        }
    }

    /// The dataset indices of the next `size` prompts.
    public mutating func next(_ size: Int) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(max(size, 0))
        for _ in 0..<max(size, 0) { out += order.next() }
        return out
    }
}
