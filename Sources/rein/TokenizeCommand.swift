import ArgumentParser
import Checkpoints
import Foundation
import Tokenizers

/// `rein tokenize`: text to ids and back.
struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Encode text to token ids, or decode ids to text (--decode).",
        discussion: "Without TEXT arguments, the text (or ids) is read from stdin."
    )

    @Option(help: ArgumentHelp("A tokenizer.json, a directory holding one (or vocab.json + merges.txt), or a .gguf file.",
                               valueName: "path"))
    var tokenizer: String

    @Argument(help: "The text to encode (arguments joined by spaces), or with --decode the ids (spaces or commas between).")
    var text: [String] = []

    @Flag(help: "Decode ids to text.")
    var decode = false

    @Flag(help: "Treat special tokens as special: match text such as <|im_end|> as one token, and print them when decoding.")
    var special = false

    @Flag(help: "Print each token on its own line: its id and its text.")
    var verbose = false

    func run() throws {
        let tokenizer = try LanguageModel.loadTokenizer(self.tokenizer)
        var input = text.joined(separator: " ")
        if text.isEmpty {
            input = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            if input.hasSuffix("\n") { input.removeLast() }
        }
        let ids = decode ? try parseIds(input, vocabularySize: tokenizer.vocabularySize) : tokenizer.encode(input, allowSpecial: special)
        if verbose {
            for id in ids { print("\(id)\t\(tokenText(id, tokenizer))") }
            if !decode { Terminal.note("\(ids.count) tokens") }
        } else if decode {
            print(tokenizer.decode(ids, skipSpecial: !special))
        } else {
            print(ids.map(String.init).joined(separator: " "))
        }
    }

    /// Ids separated by spaces or commas (brackets allowed, so JSON arrays paste as they are).
    func parseIds(_ input: String, vocabularySize: Int) throws -> [Int32] {
        let words = input.split(whereSeparator: { $0.isWhitespace || $0 == "," || $0 == "[" || $0 == "]" })
        return try words.map { word in
            guard let id = Int32(word) else { throw CLIError("--decode: '\(word)' is not a token id") }
            guard id >= 0 && Int(id) < vocabularySize else {
                throw CLIError("--decode: id \(id) is outside the vocabulary (0..<\(vocabularySize))")
            }
            return id
        }
    }

    /// A token's text, quoted so spaces and newlines show; bytes of a partial character in hex.
    func tokenText(_ id: Int32, _ tokenizer: Tokenizer) -> String {
        let bytes = tokenizer.decodeBytes([id])
        let text = String(validating: bytes, as: UTF8.self).map { String(reflecting: $0) }
            ?? "<" + bytes.map { String(format: "0x%02X", $0) }.joined(separator: " ") + ">"
        return tokenizer.isSpecial(id) ? text + " (special)" : text
    }
}
