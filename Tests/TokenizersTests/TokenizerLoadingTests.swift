import Foundation
import Testing
@testable import Tokenizers

@Suite struct TokenizerLoadingTests {
    static let fixtureText = try! String(contentsOf: TestFiles.tinyTokenizer, encoding: .utf8)
    static let byteLevelPreTokenizer = "\"pre_tokenizer\": {\n    \"type\": \"ByteLevel\",\n    \"add_prefix_space\": false,\n"
        + "    \"trim_offsets\": true,\n    \"use_regex\": true\n  },"

    struct FixtureLayoutChanged: Error {}

    /// The fixture with its pre_tokenizer section replaced.
    static func fixture(preTokenizer: String) throws -> Data {
        let replaced = fixtureText.replacingOccurrences(of: byteLevelPreTokenizer, with: "\"pre_tokenizer\": \(preTokenizer),")
        guard replaced != fixtureText else { throw FixtureLayoutChanged() }
        return Data(replaced.utf8)
    }

    /// Writes `content` to a scratch file named `name`, calls `body` with its URL, then removes it.
    static func withFile(_ name: String, _ content: String, _ body: (URL) throws -> Void) throws {
        let dir = try TestFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent(name)
        try Data(content.utf8).write(to: url)
        try body(url)
    }

    /// Expects loading `content` as tokenizer.json to fail with a message naming the file and `problem`.
    static func expectFailure(_ content: String, mentions problem: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        try withFile("broken-tokenizer.json", content) { url in
            do throws(TokenizerError) {
                _ = try Tokenizer(tokenizerJSON: url)
                Issue.record("loaded a malformed file", sourceLocation: sourceLocation)
            } catch {
                #expect(error.description.contains(url.path), sourceLocation: sourceLocation)
                #expect(error.description.contains(problem), "\(error)", sourceLocation: sourceLocation)
            }
        }
    }

    @Test func malformedTokenizerJSONNamesTheFileAndTheProblem() throws {
        try Self.expectFailure("this is not JSON", mentions: "not valid JSON at line 1, column 1")
        try Self.expectFailure("{\"model\": {\"vocab\": {\"a\": 0}}\n,", mentions: "line 2")
        try Self.expectFailure("{\"model\": {\"type\": \"BPE\", \"merges\": []}}", mentions: "missing required field 'model.vocab'")
        try Self.expectFailure("{}", mentions: "missing required field 'model'")
        try Self.expectFailure("[1, 2]", mentions: "must be an object")
        try Self.expectFailure("""
            {"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"], ["a", "zz"]]},
             "pre_tokenizer": {"type": "ByteLevel"}}
            """, mentions: "merge 2 needs the token \"zz\", which is not in the vocabulary")
        try Self.expectFailure("""
            {"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}, "pre_tokenizer": {"type": "ByteLevel"}}
            """, mentions: "merge 1 needs the token \"ab\"")
        try Self.expectFailure("""
            {"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a  b"]}, "pre_tokenizer": {"type": "ByteLevel"}}
            """, mentions: "merge 1 is not two tokens")
        try Self.expectFailure("""
            {"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}}, "pre_tokenizer": {"type": "ByteLevel"}}
            """, mentions: "gives id 0 to both")
        try Self.expectFailure("""
            {"model": {"type": "BPE", "vocab": {"a": -3}}, "pre_tokenizer": {"type": "ByteLevel"}}
            """, mentions: "field 'model.vocab'")
        try Self.expectFailure("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", mentions: "unsupported model type \"WordPiece\"")
        try Self.expectFailure("""
            {"model": {"vocab": {"a": 0}}, "normalizer": {"type": "NFKC"}, "pre_tokenizer": {"type": "ByteLevel"}}
            """, mentions: "unsupported normalizer NFKC")
        try Self.expectFailure("""
            {"model": {"vocab": {"a": 0}}, "pre_tokenizer": {"type": "Whitespace"}}
            """, mentions: "unsupported pre-tokenizer Whitespace")
        try Self.expectFailure("{\"model\": {\"vocab\": {\"a\": 0}}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"added_tokens\": [{\"id\": \"x\"}]}",
                               mentions: "field 'added_tokens[0].id' must be an integer")
        try Self.expectFailure("{\"model\": \"\u{1}\"}", mentions: "control character")
    }

    @Test func invalidUTF8AndMissingFilesAreReported() throws {
        let dir = try TestFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("latin1.json")
        try Data([0x7B, 0x22, 0xE9, 0x22, 0x3A, 0x30, 0x7D]).write(to: url)
        #expect(throws: TokenizerError.invalidUTF8(file: url.path, offset: 2)) { try Tokenizer(tokenizerJSON: url) }
        let missing = dir.appendingPathComponent("absent.json")
        do throws(TokenizerError) {
            _ = try Tokenizer(tokenizerJSON: missing)
            Issue.record("loaded a missing file")
        } catch {
            #expect(error.description.hasPrefix(missing.path + ": cannot be read"))
        }
    }

    @Test func gpt2StyleFilesReportBadLines() throws {
        let dir = try TestFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let vocab = dir.appendingPathComponent("vocab.json")
        let merges = dir.appendingPathComponent("merges.txt")
        try Data(#"{"a": 0, "b": 1, "ab": 2, "<|endoftext|>": 3}"#.utf8).write(to: vocab)
        try Data("#version: 0.2\na b\n".utf8).write(to: merges)
        let tokenizer = try Tokenizer(vocabJSON: vocab, merges: merges)
        #expect(tokenizer.encode("ab<|endoftext|>") == [2, 3])
        #expect(tokenizer.eosTokenID == 3)

        try Data("#version: 0.2\na b\nab\n".utf8).write(to: merges)
        #expect(throws: TokenizerError.malformedMerge(file: merges.path, location: "line 3", text: "ab")) {
            try Tokenizer(vocabJSON: vocab, merges: merges)
        }
        try Data("a c\n".utf8).write(to: merges)
        #expect(throws: TokenizerError.unknownMergeToken(file: merges.path, location: "line 1", token: "c")) {
            try Tokenizer(vocabJSON: vocab, merges: merges)
        }
        try Data("[\"a\"]".utf8).write(to: vocab)
        do throws(TokenizerError) {
            _ = try Tokenizer(vocabJSON: vocab, merges: merges)
            Issue.record("loaded a vocab.json that is an array")
        } catch {
            #expect(error.description == "\(vocab.path): field '(top level)' must be an object of token to id, found an array")
        }
    }

    @Test func digitsSequenceMatchesHuggingFace() throws {
        let digits = """
            {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true},
              {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]}
            """
        let tokenizer = try Tokenizer(tokenizerJSONData: try Self.fixture(preTokenizer: digits))
        #expect(tokenizer.preTokenizer == .smolLM2)
        // Ids from Hugging Face `tokenizers` 0.23 with the same file.
        #expect(tokenizer.encode("I have 123 apples and 4.5 pears")
            == [44, 367, 446, 224, 20, 21, 22, 264, 83, 83, 301, 86, 305, 224, 23, 17, 24, 276, 72, 307, 86])
        #expect(tokenizer.encode("Call 555-0199 at 10:30")
            == [38, 319, 79, 224, 24, 24, 24, 16, 19, 20, 28, 28, 264, 87, 224, 20, 19, 29, 22, 19])
        #expect(SharedTokenizers.tiny.encode("Call 555-0199 at 10:30")
            == [38, 319, 79, 224, 24, 24, 24, 16, 19, 20, 28, 28, 264, 87, 486, 29, 22, 19])
    }

    @Test func splitThenByteLevelEqualsByteLevelAlone() throws {
        let pattern = "\"" + gpt2Pattern.replacingOccurrences(of: "\\", with: "\\\\") + "\""
        let split = """
            {"type": "Sequence", "pretokenizers": [
              {"type": "Split", "pattern": {"Regex": \(pattern)}, "behavior": "Isolated", "invert": false},
              {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}
            """
        let tokenizer = try Tokenizer(tokenizerJSONData: try Self.fixture(preTokenizer: split))
        #expect(tokenizer.preTokenizer == .gpt2)
        for text in unicodeSamples {
            #expect(tokenizer.encode(text) == SharedTokenizers.tiny.encode(text))
        }
        let other = #"{"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Removed"}"#
        #expect(throws: TokenizerError.self) { try Tokenizer(tokenizerJSONData: try Self.fixture(preTokenizer: other)) }
    }

    @Test func tokenizerConfigBesideGivesSpecialIDs() throws {
        let dir = try TestFiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: TestFiles.tinyTokenizer, to: dir.appendingPathComponent("tokenizer.json"))
        try Data(#"{"bos_token": "<|im_start|>", "eos_token": {"content": "<|im_end|>"}, "pad_token": "<|pad|>"}"#.utf8)
            .write(to: dir.appendingPathComponent("tokenizer_config.json"))
        let tokenizer = try Tokenizer(tokenizerJSON: dir.appendingPathComponent("tokenizer.json"))
        #expect(tokenizer.bosTokenID == 1 && tokenizer.eosTokenID == 2 && tokenizer.padTokenID == 3)
        #expect(SharedTokenizers.tiny.eosTokenID == nil)
    }

    @Test func ggufArraysBuildTheSameTokenizer() throws {
        let tiny = SharedTokenizers.tiny
        let tokens = (0..<Int32(tiny.vocabularySize)).map { tiny.token(forID: $0)! }
        let merges = tiny.merges.map { tiny.token(forID: $0.left)! + " " + tiny.token(forID: $0.right)! }
        let types = tokens.indices.map { $0 < 4 ? Int32(3) : 1 }
        let gguf = try Tokenizer(ggufTokens: tokens, merges: merges, tokenTypes: types, preTokenizer: .gpt2,
                                 bosTokenID: 1, eosTokenID: 2, padTokenID: 3)
        #expect(gguf.addedTokens == tiny.addedTokens)
        #expect(gguf.eosTokenID == 2)
        for text in unicodeSamples { #expect(gguf.encode(text) == tiny.encode(text)) }

        #expect(throws: TokenizerError.unknownMergeToken(file: "GGUF metadata", location: "tokenizer.ggml.merges entry 2", token: "zz")) {
            try Tokenizer(ggufTokens: tokens, merges: [merges[0], "zz a"])
        }
        #expect(throws: TokenizerError.self) { try Tokenizer(ggufTokens: tokens, merges: merges, tokenTypes: [1]) }
        #expect(throws: TokenizerError.self) { try Tokenizer(ggufTokens: tokens, merges: merges, eosTokenID: 99_999) }
    }

    @Test func arraysInitializerBuildsFromStrings() throws {
        let tokenizer = try Tokenizer(tokens: ["a", "b", "ab", nil, "<s>"], merges: [(0, 1)],
                                      addedTokens: [AddedToken(id: 4, content: "<s>")])
        #expect(tokenizer.encode("<s>abab") == [4, 2, 2])
        #expect(tokenizer.decode([4, 2], skipSpecial: true) == "ab")
        // A string listed twice resolves to its last id, as in llama.cpp.
        let repeated = try Tokenizer(ggufTokens: ["a", "b", "ab", "a"], merges: ["a b"])
        #expect(repeated.id(forToken: "a") == 3 && repeated.encode("aab") == [3, 2])
        #expect(throws: TokenizerError.unknownMergeToken(file: "vocabulary", location: "merge 1", token: "id 3")) {
            try Tokenizer(tokens: ["a", "b", "ab", nil], merges: [(0, 3)])
        }
    }
}
