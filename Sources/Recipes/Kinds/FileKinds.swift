import Datasets
import Foundation
import TensorCore
import Store
import Tokenizers
import Store
import Yams

/// What a kind that writes files gets: its settings (paths resolved) and its output directory.
public struct WriteContext {
    public let settings: StageSettings
    public let output: URL
    /// Resolves a path or `stage:ID/FILE` written in the recipe.
    public let resolve: (String) throws -> String
    /// The stage's models by role, resolved to files (a kind that samples from a policy).
    public var models: [String: StartingModel] = [:]
    /// Shows a line of progress.
    public var note: (String) -> Void = { _ in }
    /// The stage's id and content hash (for a `rate` stage, the hash of what makes its candidates,
    /// recorded with the task it makes).
    public var stageId = ""
    public var hash = ""
    /// The models by role as the recipe names them (`stage:sft`).
    public var modelReferences: [String: String] = [:]
    /// The run's store, and its path as the recipe gives it (for commands printed to the user).
    public var store: RunStore?
    public var storeDisplay: String?
    /// The run's id, and the stage's label `RECIPE/ID` (a comparison stores its verdicts there).
    public var runId: Int64?
    public var stageName = ""
}

/// Settings of a `tokenizer` stage.
public struct TokenizerStageConfig: Codable, Equatable, Sendable {
    /// The text the tokenizer is trained on.
    public var data: String?
    /// The vocabulary size to learn.
    public var vocabSize: Int = 512
    /// Where the tokenizer is written (default: the stage's directory under the recipe's output_dir).
    public var outputDir: String?
    /// Special tokens, given ids 0, 1, ...: an end-of-text token and a padding token by default.
    public var specialTokens: [String] = ["<|endoftext|>", "<|pad|>"]
    /// Merge only pairs seen at least this many times.
    public var minFrequency: Int = 2
    /// `gpt2` (numbers kept whole) or `smollm2` (digits split one by one, better for arithmetic).
    public var preTokenizer: String = "gpt2"

    enum CodingKeys: String, CodingKey, CaseIterable {
        case data, vocabSize = "vocab_size", outputDir = "output_dir", specialTokens = "special_tokens"
        case minFrequency = "min_frequency", preTokenizer = "pre_tokenizer"
    }

    /// The defaults above.
    public init() {}

    /// Decodes, keeping the defaults for absent keys.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        data = try c.decodeIfPresent(String.self, forKey: .data)
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? 512
        outputDir = try c.decodeIfPresent(String.self, forKey: .outputDir)
        specialTokens = try c.decodeIfPresent([String].self, forKey: .specialTokens) ?? ["<|endoftext|>", "<|pad|>"]
        minFrequency = try c.decodeIfPresent(Int.self, forKey: .minFrequency) ?? 2
        preTokenizer = try c.decodeIfPresent(String.self, forKey: .preTokenizer) ?? "gpt2"
    }

    /// Every key a tokenizer stage may have.
    public static var keys: [String] { CodingKeys.allCases.map(\.rawValue) }
}

extension StageKinds {
    /// Rein's synthetic task with checkable answers, or a ChatterBot corpus as question/answer records.
    static let data = StageKindDefinition(
        kind: .data, implemented: true,
        keys: [
            KeySpec("task", .choice(SyntheticDataConfig.tasks)),
            KeySpec("pretrain_examples", .integer(.atLeast(1))),
            KeySpec("sft_examples", .integer(.atLeast(1))),
            KeySpec("preference_pairs", .integer(.atLeast(1))),
            KeySpec("validation_examples", .integer(.atLeast(1))),
            KeySpec("eval_prompts", .integer(.atLeast(1))),
            KeySpec("seed", .integer(.atLeast(0))),
            KeySpec("max_operand", .integer(.closed(1, Double(SyntheticDataConfig.maxOperandLimit)))),
            KeySpec("sloppy_demonstrations", .number(.closed(0, 1))),
            KeySpec("source", .file),
        ],
        roles: [], producesModel: false, files: SyntheticData.fileNames,
        decode: { .data(try YAMLDecoder().decode(SyntheticDataConfig.self, from: $0)) },
        validate: { settings in
            guard case .data(let d) = settings else { return [] }
            return d.problems().map { problem in
                let key = String(problem.prefix { $0 != ":" })
                return (key, String(problem.dropFirst(key.count + 1)).trimmingCharacters(in: .whitespaces))
            }
        },
        write: { c in
            guard case .data(var config) = c.settings else { throw RunnerError("data: wrong settings") }
            config.source = try config.source.map(c.resolve)
            let summary = try SyntheticData.write(config, to: c.output)
            return Dictionary(uniqueKeysWithValues: summary.files.map { ("data/\($0.name)", Double($0.count)) })
        })

    /// Byte-level BPE trained on a text.
    static let tokenizer = StageKindDefinition(
        kind: .tokenizer, implemented: true,
        keys: [
            KeySpec("data", .file, required: "required (the text to train the tokenizer on)"),
            KeySpec("vocab_size", .integer(.atLeast(257))),
            KeySpec("output_dir", .string),
            KeySpec("special_tokens", .strings),
            KeySpec("min_frequency", .integer(.atLeast(1))),
            KeySpec("pre_tokenizer", .choice(["gpt2", "smollm2"])),
        ],
        roles: [], producesModel: false,
        decode: { .tokenizer(try YAMLDecoder().decode(TokenizerStageConfig.self, from: $0)) },
        validate: { settings in
            guard case .tokenizer(let t) = settings else { return [] }
            var out: [(String, String)] = []
            let minimum = 256 + t.specialTokens.count
            if t.vocabSize < minimum {
                out.append(("vocab_size", "must be at least \(minimum) (256 bytes + \(t.specialTokens.count) special tokens), got \(t.vocabSize)"))
            }
            if t.specialTokens.contains("") { out.append(("special_tokens", "tokens must be non-empty")) }
            return out
        },
        write: { c in
            guard case .tokenizer(let config) = c.settings else { throw RunnerError("tokenizer: wrong settings") }
            return try trainTokenizer(config, data: try c.resolve(config.data!), output: c.output)
        })

    static func trainTokenizer(_ config: TokenizerStageConfig, data path: String, output: URL) throws -> [String: Double] {
        let texts = try TextCorpus.texts(of: path)
        let preTokenizer: PreTokenizer = config.preTokenizer == "smollm2" ? .smolLM2 : .gpt2
        let trainer = BPETrainer(vocabularySize: config.vocabSize, minFrequency: config.minFrequency,
                                 specialTokens: config.specialTokens, preTokenizer: preTokenizer)
        let tokenizer = try trainer.train(on: texts)
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        try AtomicFile.write(tokenizer.tokenizerJSON(), to: output.appendingPathComponent("tokenizer.json"))
        let bytes = texts.reduce(0) { $0 + $1.utf8.count }
        let sample = texts.prefix(2000)
        let sampleBytes = sample.reduce(0) { $0 + $1.utf8.count }
        let tokens = sample.reduce(0) { $0 + tokenizer.encode($1).count }
        var facts = ["tokenizer/vocab_size": Double(tokenizer.vocabularySize), "tokenizer/corpus_bytes": Double(bytes)]
        if tokens > 0 { facts["tokenizer/bytes_per_token"] = Double(sampleBytes) / Double(tokens) }
        return facts
    }
}
