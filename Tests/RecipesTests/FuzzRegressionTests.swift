import Foundation
import Testing

/// The `rein-fuzz` executable beside `rein`: without libFuzzer it replays the inputs it is given.
private let fuzzReplayBinary: URL? = reinBinary.map { $0.deletingLastPathComponent().appendingPathComponent("rein-fuzz") }
    .flatMap { FileManager.default.isExecutableFile(atPath: $0.path) ? $0 : nil }

/// `Tests/Fixtures/fuzz-regressions/TARGET/*`: inputs that crashed, hung or over-allocated a parser
/// once (see docs/reliability.md), and the seeds of each fuzz target.
private let regressionInputs: [(target: String, file: URL)] = {
    let fm = FileManager.default
    var out: [(String, URL)] = []
    for folder in ["fuzz-regressions", "fuzz-seeds"] {
        let root = recipesTestFixtures.appendingPathComponent(folder)
        for target in ((try? fm.contentsOfDirectory(atPath: root.path)) ?? []).sorted() {
            let dir = root.appendingPathComponent(target)
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: dir.path, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            for name in ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).sorted() {
                out.append((target, dir.appendingPathComponent(name)))
            }
        }
    }
    return out
}()

@Suite struct FuzzRegressionTests {
    @Test func everyFuzzTargetHasSeeds() {
        let targets = Set(regressionInputs.map(\.target))
        #expect(targets.isSuperset(of: ["safetensors", "gguf", "tokenizer", "jsonl", "recipe", "config"]), "\(targets)")
    }

    /// Each input through its target's parser in one `rein-fuzz` process per target: it must end
    /// normally (no trap, no signal) and report every file.
    @Test(.enabled(if: fuzzReplayBinary != nil, "rein-fuzz is built by swift test"),
          arguments: ["safetensors", "gguf", "tokenizer", "jsonl", "recipe", "config"])
    func replayedInputsDoNotCrash(target: String) throws {
        let files = regressionInputs.filter { $0.target == target }.map(\.file.path)
        try #require(!files.isEmpty)
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("rein-fuzz-replay-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let process = Process()
        process.executableURL = fuzzReplayBinary
        process.arguments = files
        process.environment = ["REIN_FUZZ_TARGET": target, "REIN_FUZZ_SCRATCH": scratch.path]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 0, "\(target): \(text.suffix(2000))")
        #expect(!text.contains("Fatal error"), "\(text.suffix(2000))")
        for file in files { #expect(text.contains("\(file): ok"), "\(file) not replayed") }
    }
}
