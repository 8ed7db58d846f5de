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

/// Progress of a long loop on stderr: a bar redrawn in place on a terminal, otherwise a plain line
/// every few seconds (so logs stay readable).
struct ProgressReporter {
    let total: Int
    let unit: String
    private let clock = ContinuousClock()
    private let start: ContinuousClock.Instant
    private var lastLine: ContinuousClock.Instant
    private let redraw = Terminal.stderrIsTerminal

    init(total: Int, unit: String) {
        self.total = total
        self.unit = unit
        start = clock.now
        lastLine = start
    }

    /// Seconds since the reporter was made.
    var elapsed: Double { seconds(clock.now - start) }

    /// Reports `done` of `total`; the final call (done == total) always prints.
    mutating func update(_ done: Int) {
        let now = clock.now
        let finished = done >= total
        let rate = Double(done) / max(seconds(now - start), 1e-9)
        let fraction = total == 0 ? 1 : Double(done) / Double(total)
        let counts = "\(done)/\(total) \(unit), \(Int(rate.rounded())) \(unit)/s"
        if redraw {
            guard finished || seconds(now - lastLine) >= 0.1 else { return }
            lastLine = now
            let width = 30, filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            Terminal.writeError("\r[\(bar)] \(fmt(fraction * 100, 3, 0))% \(counts)" + (finished ? "\n" : ""))
        } else if finished || seconds(now - lastLine) >= 5 {
            lastLine = now
            Terminal.note("\(fmt(fraction * 100, 0, 0))% \(counts)")
        }
    }
}

/// "1 text", "3 texts".
func count(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }

/// A duration in seconds.
func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}
