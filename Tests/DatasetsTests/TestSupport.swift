import Foundation
import Tokenizers

/// Test data locations, found from this file's path.
enum TestFiles {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures")
    static let tinyTokenizer = fixtures.appendingPathComponent("hf-tiny-gpt2/tokenizer.json")

    /// A fresh scratch directory; the caller removes it.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("rein-datasets-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// A scratch directory that writes files and deletes itself.
final class Scratch {
    let directory: URL

    init() throws {
        directory = try TestFiles.temporaryDirectory()
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Writes `lines` joined by "\n" (with a final newline) and returns the file's URL.
    func write(_ name: String, _ lines: [String]) throws -> URL {
        try write(name, Data((lines.joined(separator: "\n") + "\n").utf8))
    }

    func write(_ name: String, _ data: Data) throws -> URL {
        let url = directory.appendingPathComponent(name)
        try data.write(to: url)
        return url
    }
}

/// The tiny GPT-2 fixture tokenizer (no tokenizer_config.json, so no EOS/PAD ids of its own):
/// <|endoftext|> = 0, <|im_start|> = 1, <|im_end|> = 2, <|pad|> = 3.
enum Tiny {
    static let tokenizer: Tokenizer = try! Tokenizer(tokenizerJSON: TestFiles.tinyTokenizer)
    static let eos: Int32 = 0
    static let imEnd: Int32 = 2
    static let pad: Int32 = 3
}

/// One line per token, "1" where the mask is set, for reading a failing test.
func show(_ ids: [Int32], _ mask: [Bool], _ tokenizer: Tokenizer = Tiny.tokenizer) -> String {
    zip(ids, mask).map { id, flag in "\(flag ? "1" : "0") \(String(reflecting: tokenizer.decode([id])))" }
        .joined(separator: "\n")
}

/// The decoded text of each maximal run of set mask positions.
func maskedRuns(_ ids: [Int32], _ mask: [Bool], _ tokenizer: Tokenizer = Tiny.tokenizer) -> [String] {
    var runs: [[Int32]] = []
    var previous = false
    for (id, flag) in zip(ids, mask) {
        if flag { if previous { runs[runs.count - 1].append(id) } else { runs.append([id]) } }
        previous = flag
    }
    return runs.map { tokenizer.decode($0) }
}
