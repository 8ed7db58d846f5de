import Foundation
import Testing
import Store

// `rein report` as a user runs it: the file it writes, and its messages for an unknown run and an
// output directory that does not exist.

/// The `rein` executable next to the test binary (`swift test` builds every product).
private let rein: URL? = {
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = dir.appendingPathComponent("rein")
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    return nil
}()

/// Runs `rein ARGS` in `directory`: exit status, stdout, stderr.
private func runRein(_ arguments: [String], in directory: URL) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = rein
    process.arguments = arguments
    process.currentDirectoryURL = directory
    let out = directory.appendingPathComponent("out-\(UUID().uuidString)"), err = directory.appendingPathComponent("err-\(UUID().uuidString)")
    _ = FileManager.default.createFile(atPath: out.path, contents: nil)
    _ = FileManager.default.createFile(atPath: err.path, contents: nil)
    process.standardOutput = try FileHandle(forWritingTo: out)
    process.standardError = try FileHandle(forWritingTo: err)
    try process.run()
    process.waitUntilExit()
    return (process.terminationStatus, try String(contentsOf: out, encoding: .utf8), try String(contentsOf: err, encoding: .utf8))
}

@Suite struct ReportCommandTests {
    @Test(.enabled(if: rein != nil, "the rein executable is built by swift test"))
    func writesTheReportOfARunNamedOrById() throws {
        let tiny = try TinyRun()
        let dir = tiny.directory.url
        let byName = try runRein(["report", "tiny-ppo", "--store", tiny.store.path, "-o", "tiny.html"], in: dir)
        #expect(byName.status == 0, "\(byName.stderr)")
        #expect(byName.stdout.hasPrefix("wrote tiny.html: run \(tiny.run.id!) (tiny-ppo), 2 stages, "), "\(byName.stdout)")
        let html = try String(contentsOf: dir.appendingPathComponent("tiny.html"), encoding: .utf8)
        #expect(html.hasPrefix("<!DOCTYPE html>") && html.contains("data-stage=\"ppo\""))
        let byId = try runRein(["report", String(tiny.run.id!), "--store", tiny.store.path, "--output", "by-id.html"], in: dir)
        #expect(byId.status == 0, "\(byId.stderr)")
        #expect(try String(contentsOf: dir.appendingPathComponent("by-id.html"), encoding: .utf8) == html)
    }

    @Test(.enabled(if: rein != nil, "the rein executable is built by swift test"))
    func unknownRunsAndMissingDirectoriesAreClearErrors() throws {
        let tiny = try TinyRun()
        let dir = tiny.directory.url
        let unknown = try runRein(["report", "nope", "--store", tiny.store.path, "-o", "r.html"], in: dir)
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("no run with id or name 'nope'") && unknown.stderr.contains("tiny-ppo"), "\(unknown.stderr)")
        let missing = try runRein(["report", "tiny-ppo", "--store", tiny.store.path, "-o", "no/such/dir/r.html"], in: dir)
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("-o no/such/dir/r.html: the directory no/such/dir does not exist"), "\(missing.stderr)")
        let directory = try runRein(["report", "tiny-ppo", "--store", tiny.store.path, "-o", "."], in: dir)
        #expect(directory.status != 0 && directory.stderr.contains("is a directory"), "\(directory.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("r.html").path))
    }
}
