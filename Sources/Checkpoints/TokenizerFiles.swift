import Foundation
import Tokenizers

extension LanguageModel {
    /// Loads only a tokenizer, from any of the places Rein finds one: a `tokenizer.json` file, a
    /// `.gguf` file (its `tokenizer.ggml.*` metadata; no weights are read), or a directory holding
    /// `tokenizer.json` or GPT-2's `vocab.json` + `merges.txt`.
    public static func loadTokenizer(_ path: String) throws -> Tokenizer {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CheckpointError.notFound(path: path, expected: "a tokenizer.json, a .gguf file or a directory holding a tokenizer")
        }
        let url = URL(fileURLWithPath: path)
        if isDirectory.boolValue {
            let json = url.appendingPathComponent("tokenizer.json")
            if FileManager.default.fileExists(atPath: json.path) { return try Tokenizer(tokenizerJSON: json) }
            let vocab = url.appendingPathComponent("vocab.json"), merges = url.appendingPathComponent("merges.txt")
            if FileManager.default.fileExists(atPath: vocab.path) && FileManager.default.fileExists(atPath: merges.path) {
                return try Tokenizer(vocabJSON: vocab, merges: merges)
            }
            throw CheckpointError.notFound(path: json.path, expected: "tokenizer.json, or vocab.json and merges.txt, in the directory")
        }
        if url.pathExtension.lowercased() == "gguf" { return try tokenizer(gguf: GGUFFile(url: url)) }
        return try Tokenizer(tokenizerJSON: url)
    }

    /// The tokenizer a GGUF file describes in its `tokenizer.ggml.*` metadata (BPE of the gpt2 kind).
    static func tokenizer(gguf: GGUFFile) throws -> Tokenizer {
        let preName = (try? gguf.string("tokenizer.ggml.pre")) ?? "gpt2"
        guard let pre = PreTokenizer(ggufName: preName) else {
            throw CheckpointError.unsupported(file: gguf.url.path,
                                              reason: "tokenizer.ggml.pre '\(preName)' is not supported (expected gpt2 or smollm)")
        }
        let id = { (key: String) in (try? gguf.int(key)).flatMap { Int32(exactly: $0) } }
        let types = try? gguf.ints("tokenizer.ggml.token_type")
        let tokenTypes = try types.map { values in
            try values.map { v in
                guard let t = Int32(exactly: v) else {
                    throw CheckpointError.invalid(file: gguf.url.path, reason: "metadata \"tokenizer.ggml.token_type\" holds \(v), not a token type")
                }
                return t
            }
        }
        return try Tokenizer(
            ggufTokens: try gguf.strings("tokenizer.ggml.tokens"), merges: try gguf.strings("tokenizer.ggml.merges"),
            tokenTypes: tokenTypes, preTokenizer: pre,
            bosTokenID: id("tokenizer.ggml.bos_token_id"), eosTokenID: id("tokenizer.ggml.eos_token_id"),
            padTokenID: id("tokenizer.ggml.padding_token_id"), unknownTokenID: id("tokenizer.ggml.unknown_token_id"))
    }
}
