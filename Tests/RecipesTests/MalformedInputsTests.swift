import Foundation
import Testing

/// One case of `Tests/Fixtures/malformed/cases.json` (written by `make_cases.py` beside it).
struct MalformedCase: Decodable, CustomTestStringConvertible, Sendable {
    struct Base: Decodable, Sendable {
        /// The case's directory, completed with `files` of fixture model `from`.
        var dir: String
        var from: String
        var files: [String]
    }

    var name: String
    var args: [String]
    /// Substrings the error output must contain: the file, the line, key or byte offset, what was expected.
    var expect: [String]
    var base: Base?
    /// Paths (relative to the work directory) the failed command must not leave behind.
    var absent: [String]?

    var testDescription: String { name }
}

private let malformedFolder = recipesTestFixtures.appendingPathComponent("malformed")

private let malformedCases: [MalformedCase] = {
    guard let data = FileManager.default.contents(atPath: malformedFolder.appendingPathComponent("cases.json").path),
          let cases = try? JSONDecoder().decode([MalformedCase].self, from: data) else { return [] }
    return cases
}()

/// A scratch copy of the corpus with the tiny Llama fixture beside it as `tiny/`, made once: every
/// case runs in it, so nothing a command writes can reach the repository.
private let malformedWorkDirectory: URL? = {
    let fm = FileManager.default
    let dir = fm.temporaryDirectory.appendingPathComponent("rein-malformed-\(UUID().uuidString)")
    do {
        try fm.copyItem(at: malformedFolder, to: dir)
        try copyFixtureModel("hf-tiny-llama", to: dir.appendingPathComponent("tiny"))
        for c in malformedCases {
            guard let base = c.base else { continue }
            for file in base.files where !fm.fileExists(atPath: dir.appendingPathComponent("\(base.dir)/\(file)").path) {
                try fm.copyItem(at: recipesTestFixtures.appendingPathComponent("\(base.from)/\(file)"),
                                to: dir.appendingPathComponent("\(base.dir)/\(file)"))
            }
        }
        return dir
    } catch {
        return nil
    }
}()

/// Text a Swift runtime trap or a crash handler prints.
private let crashMarkers = ["Fatal error", "Illegal instruction", "Segmentation fault", "Stack dump", "Trace/breakpoint",
                            "Precondition failed", "Assertion failed", "Current stack trace", "Aborted"]

@Suite(.serialized) struct MalformedInputsTests {
    @Test func theCorpusHasAtLeastSixtyCasesOverEveryCommand() {
        #expect(malformedCases.count >= 60)
        let commands = Set(malformedCases.map { $0.args[0] })
        #expect(commands.isSuperset(of: ["check", "train", "run", "generate", "convert", "eval", "tokenize"]), "\(commands)")
    }

    @Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"), arguments: malformedCases)
    func eachMalformedInputGetsItsMessageAndNoCrash(_ c: MalformedCase) throws {
        let dir = try #require(malformedWorkDirectory)
        let started = Date()
        let (status, reason, output) = try runReinCapturingAll(c.args, in: dir)
        let seconds = Date().timeIntervalSince(started)
        #expect(reason == .exit, "\(c.name): killed by signal \(status)\n\(output)")
        #expect(status != 0, "\(c.name): exit status 0\n\(output)")
        for marker in crashMarkers {
            #expect(!output.contains(marker), "\(c.name): \(marker)\n\(output)")
        }
        for expected in c.expect {
            #expect(output.contains(expected), "\(c.name): no \"\(expected)\" in\n\(output)")
        }
        for path in c.absent ?? [] {
            #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent(path).path),
                    "\(c.name): left \(path) behind")
        }
        #expect(seconds < 30, "\(c.name): took \(seconds) s")
    }
}

/// Runs `rein ARGS` in `directory`: exit status (or signal), reason, and stdout and stderr together.
private func runReinCapturingAll(_ arguments: [String], in directory: URL) throws -> (Int32, Process.TerminationReason, String) {
    let process = Process()
    process.executableURL = reinBinary
    process.arguments = arguments
    process.currentDirectoryURL = directory
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return (process.terminationStatus, process.terminationReason, text)
}
