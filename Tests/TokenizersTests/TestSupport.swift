import Foundation
import Tokenizers

/// Locations of test data, found from this file's path (never Bundle.module).
enum TestFiles {
    /// The fixtures shared by the test targets (Tests/Fixtures).
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures")
    static let repoRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let assets = repoRoot.appendingPathComponent("assets")

    static let tinyTokenizer = fixtures.appendingPathComponent("hf-tiny-gpt2/tokenizer.json")
    static let gpt2Vocab = assets.appendingPathComponent("gpt2/vocab.json")
    static let gpt2Merges = assets.appendingPathComponent("gpt2/merges.txt")
    static let chatterbot = assets.appendingPathComponent("chatterbot/english")

    static var hasGPT2: Bool {
        FileManager.default.fileExists(atPath: gpt2Vocab.path) && FileManager.default.fileExists(atPath: gpt2Merges.path)
    }

    static func json(_ name: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(contentsOf: fixtures.appendingPathComponent(name)))
    }

    /// A scratch directory removed by the caller.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("rein-tokenizers-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Loaded once and shared by tests (Tokenizer is Sendable).
enum SharedTokenizers {
    static let tiny: Tokenizer = try! Tokenizer(tokenizerJSON: TestFiles.tinyTokenizer)
    static let gpt2: Tokenizer? = TestFiles.hasGPT2
        ? try? Tokenizer(vocabJSON: TestFiles.gpt2Vocab, merges: TestFiles.gpt2Merges) : nil
}

/// Text that exercises every class of the pre-tokenizer and every UTF-8 length.
let unicodeSamples: [String] = [
    "",
    " ",
    "Hello world",
    "emoji 🤗🎉👩‍👩‍👧 and CJK 漢字かな한국어",
    "e\u{301} vs \u{e9}: combining marks stay as they are",
    "line one\r\nline two\r\n\r\n",
    "   leading, trailing and    inner   runs\t\t \n ",
    "I'm you're they've we'll she'd it's 'S 'Tis",
    "Numbers 1234567890 ٣٤٥ ½ Ⅻ and 3.14159",
    "\u{0}\u{1}\u{7F} control bytes and \u{FEFF}BOM, NBSP\u{A0}here, ideographic\u{3000}space",
    "<|endoftext|> and <|im_start|> inside text",
    "Ünïcödé café naïve résumé Ελληνικά русский עברית العربية",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math letters 𝟙𝟚𝟛 and a lone \u{FFFD}",
]
