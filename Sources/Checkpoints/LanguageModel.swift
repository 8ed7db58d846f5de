import Foundation
import NN
import TensorCore
import Tokenizers

/// A model with the tokenizer and chat template it was trained with.
public struct LanguageModel {
    /// The network.
    public let model: DecoderModel
    /// Its tokenizer.
    public let tokenizer: Tokenizer
    /// How conversations are rendered for it.
    public let chatTemplate: ChatTemplate
    /// Where it came from (a directory or a .gguf path).
    public let source: String

    /// A model, tokenizer and template put together.
    public init(model: DecoderModel, tokenizer: Tokenizer, chatTemplate: ChatTemplate, source: String) {
        self.model = model
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate
        self.source = source
    }

    /// The end-of-sequence id: the tokenizer's, else the model config's.
    public var eosTokenId: Int32? {
        tokenizer.eosTokenID ?? model.config.eosTokenId.map(Int32.init)
    }

    /// Token ids that end a reply: EOS and the template's end-of-turn token.
    public var stopTokenIds: [Int32] {
        var ids = Set<Int32>()
        if let eos = eosTokenId { ids.insert(eos) }
        if let endOfTurn = tokenizer.id(forToken: chatTemplate.endOfTurn) { ids.insert(endOfTurn) }
        return ids.sorted()
    }

    /// Loads a Hugging Face directory (config.json, weights, tokenizer.json) or a GGUF file (weights,
    /// tokenizer and chat template from its metadata).
    public static func load(_ path: String) throws -> LanguageModel {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CheckpointError.notFound(path: path, expected: "a Hugging Face model directory or a .gguf file")
        }
        if isDirectory.boolValue {
            let dir = URL(fileURLWithPath: path)
            let model = try ModelCheckpoint.loadHuggingFace(directory: dir)
            let tokenizerURL = dir.appendingPathComponent("tokenizer.json")
            guard FileManager.default.fileExists(atPath: tokenizerURL.path) else {
                throw CheckpointError.notFound(path: tokenizerURL.path, expected: "the model's tokenizer.json")
            }
            let tokenizer = try Tokenizer(tokenizerJSON: tokenizerURL)
            var jinja: String?
            if let data = FileManager.default.contents(atPath: dir.appendingPathComponent("tokenizer_config.json").path),
               let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] {
                jinja = json["chat_template"] as? String
            }
            try checkVocabulary(tokenizer, model, file: tokenizerURL.path)
            return LanguageModel(model: model, tokenizer: tokenizer, chatTemplate: template(jinja: jinja, tokenizer: tokenizer),
                                 source: path)
        }
        let gguf = try GGUFFile(url: URL(fileURLWithPath: path))
        let model = try ModelCheckpoint.loadGGUF(gguf)
        let tokenizer = try Self.tokenizer(gguf: gguf)
        try checkVocabulary(tokenizer, model, file: path)
        return LanguageModel(model: model, tokenizer: tokenizer,
                             chatTemplate: template(jinja: try? gguf.string("tokenizer.chat_template"), tokenizer: tokenizer),
                             source: path)
    }

    /// Every token id the tokenizer can produce must index the model's embedding (a larger model
    /// vocabulary, padded for speed, is fine).
    static func checkVocabulary(_ tokenizer: Tokenizer, _ model: DecoderModel, file: String) throws {
        if tokenizer.vocabularySize > model.config.vocabSize {
            throw CheckpointError.invalid(file: file, reason: "the tokenizer has \(tokenizer.vocabularySize) tokens but the model's "
                + "vocabulary is \(model.config.vocabSize): they do not belong together")
        }
    }

    /// The built-in template that renders like a Jinja chat template: ChatML, with the default
    /// system message the template inserts, when it uses `<|im_start|>` (see
    /// `ChatTemplate(jinja:)`); ChatML without one when there is no template but the tokenizer has
    /// that token; otherwise the plain "User:/Assistant:" layout.
    public static func template(jinja: String?, tokenizer: Tokenizer) -> ChatTemplate {
        if let jinja, let template = ChatTemplate(jinja: jinja) { return template }
        if tokenizer.id(forToken: "<|im_start|>") != nil { return .chatML }
        let eos = tokenizer.eosTokenID.flatMap { tokenizer.token(forID: $0) } ?? "<|endoftext|>"
        return .plain(endOfTurn: eos)
    }

    /// Writes the Hugging Face layout: config.json, model.safetensors, generation_config.json and
    /// tokenizer.json, which transformers loads as is.
    public func save(to directory: URL) throws {
        try ModelCheckpoint.saveHuggingFace(model, to: directory)
        try AtomicFile.write(tokenizer.tokenizerJSON(), to: directory.appendingPathComponent("tokenizer.json"))
    }
}
