import Foundation
import Testing
import Checkpoints
import Tokenizers

@Suite struct TokenizerFilesTests {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    var fixture: URL { root.appendingPathComponent("Tests/Fixtures/hf-tiny-llama") }

    @Test func directoryAndTokenizerJSONGiveTheSameTokenizer() throws {
        let fromDirectory = try LanguageModel.loadTokenizer(fixture.path)
        let fromFile = try LanguageModel.loadTokenizer(fixture.appendingPathComponent("tokenizer.json").path)
        let text = "Hello <|im_end|> world"
        #expect(fromDirectory.encode(text) == fromFile.encode(text))
        #expect(fromDirectory.id(forToken: "<|im_end|>") == 2)
    }

    @Test func missingPathsAreNamed() {
        let missing = root.appendingPathComponent("no-such-tokenizer").path
        #expect { try LanguageModel.loadTokenizer(missing) } throws: { "\($0)".contains(missing) }
        // A directory without any tokenizer file names what it looked for.
        let empty = root.appendingPathComponent("Tests/Fixtures").path
        #expect { try LanguageModel.loadTokenizer(empty) } throws: { "\($0)".contains("vocab.json and merges.txt") }
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: smolLM2GGUFPath), "needs assets/smollm2"))
    func ggufMetadataGivesTheGoldenIds() throws {
        let tokenizer = try LanguageModel.loadTokenizer(smolLM2GGUFPath)
        let text = "The quick brown fox jumps over the lazy dog."
        #expect(tokenizer.encode(text) == [504, 2365, 6354, 16438, 27003, 690, 260, 23790, 2767, 30])
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: gpt2AssetsPath + "/merges.txt"), "needs assets/gpt2"))
    func vocabAndMergesDirectory() throws {
        let tokenizer = try LanguageModel.loadTokenizer(gpt2AssetsPath)
        #expect(tokenizer.encode("Hello world") == [15496, 995])
    }
}

/// GPT-2's vocab.json and merges.txt from `scripts/fetch-assets.sh` (git-ignored).
let gpt2AssetsPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("assets/gpt2").path
