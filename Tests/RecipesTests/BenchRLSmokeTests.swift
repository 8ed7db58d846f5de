import Foundation
import Testing

/// `rein bench rl --quick` through the real binary: the tiny shape, one update per method.
@Test(.enabled(if: reinBinary != nil, "the rein executable is built by swift test"))
func benchRLQuickRunsEveryMethod() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let process = Process()
    process.executableURL = reinBinary
    process.arguments = ["bench", "rl", "--quick", "--json", "--threads", "1"]
    process.currentDirectoryURL = dir
    let output = Pipe(), errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    #expect(process.terminationStatus == 0, "\(message)")
    let records = text.split(separator: "\n").compactMap {
        try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
    }
    let measured = records.filter { $0["kind"] as? String == "rein" }
    #expect(measured.compactMap { $0["trainer"] as? String }.sorted() == ["grpo", "ppo", "rloo"])
    for record in measured {
        #expect(record["size"] as? String == "tiny")
        #expect(record["steps_timed"] as? Int == 1)
        #expect(((record["episodes_per_s"] as? Double) ?? 0) > 0)
        #expect(record["trl_measured"] as? Bool == false)
    }
    #expect(records.contains { $0["kind"] as? String == "rein_roofline" })
}
