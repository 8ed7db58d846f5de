import Foundation

/// An error a user caused (a missing file, a malformed line): `rein` prints its one-line message and
/// exits with status 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String

    init(_ message: String) { description = message }
}

/// Unbuffered writes to stdout and stderr, so streamed tokens and progress appear as they are made.
enum Terminal {
    /// Writes `text` to stdout.
    static func write(_ text: String) {
        guard !text.isEmpty else { return }
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    /// Writes `text` to stderr.
    static func writeError(_ text: String) {
        guard !text.isEmpty else { return }
        FileHandle.standardError.write(Data(text.utf8))
    }

    /// Writes one line to stderr.
    static func note(_ line: String) { writeError(line + "\n") }

    static var stdinIsTerminal: Bool { isatty(0) != 0 }
    static var stderrIsTerminal: Bool { isatty(2) != 0 }
}

/// "1 text", "3 texts".
func count(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }
