import Checkpoints
import Foundation

/// A tiny fixture checkpoint (`Tests/Fixtures/hf-tiny-*`), found next to this file.
func fixtureModel(_ name: String) throws -> LanguageModel {
    try LanguageModel.load(fixtureDirectory(name).path)
}

func fixtureDirectory(_ name: String) -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent(name)
}

/// A scratch directory that deletes itself.
final class Scratch {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("rein-evaluation-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }

    /// Writes `text` to `name` and returns its URL.
    @discardableResult
    func write(_ name: String, _ text: String) throws -> URL {
        let url = directory.appendingPathComponent(name)
        try Data(text.utf8).write(to: url)
        return url
    }
}
