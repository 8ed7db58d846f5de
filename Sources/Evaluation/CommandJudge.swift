import Datasets
import Foundation
import TensorCore

/// A user's program as the judge: one process per `scores` call, run directly (no shell).
///
/// Its stdin gets one JSON line per item, `{"prompt":P,"response":"..."}`, where P is the prompt's
/// text or, for a conversation, its messages as `[{"role":"...","content":"..."}, ...]`; stdin is
/// then closed. It must print one finite number per line to stdout, in the items' order, and exit
/// with status 0 within `timeout` seconds (else it is killed). Every error names the command.
///
/// Foundation sees the program end only when every process it started has ended too, so a
/// background process left running counts against the timeout (and is not killed).
///
/// Creating a judge makes the process ignore SIGPIPE, so a program that exits without reading its
/// input yields an error instead of ending Rein.
public struct CommandJudge: RewardFunction, Sendable {
    public let name: String
    /// The program's resolved path.
    public let executable: String
    /// Its arguments.
    public let arguments: [String]
    /// Seconds a call may take before the program is killed.
    public let timeout: Double

    /// A judge running `executable` (a path, or a name looked up in `PATH`) with `arguments`.
    ///
    /// - Throws: `EvaluationError` when the program is not found or not executable, or `timeout`
    ///   is not a positive number.
    public init(executable: String, arguments: [String] = [], timeout: Double = 60, name: String = "command") throws {
        let display = ([executable] + arguments).joined(separator: " ")
        guard timeout > 0, timeout.isFinite else {
            throw EvaluationError("command judge `\(display)`: timeout: expected a positive number of seconds, found \(timeout)")
        }
        self.executable = try Self.resolve(executable, display: display)
        self.arguments = arguments
        self.timeout = timeout
        self.name = name
        _ = ignoreSIGPIPE
    }

    /// The command as typed, for messages.
    public var commandLine: String { ([executable] + arguments).joined(separator: " ") }

    /// The stdin line of one item (no line ending).
    public static func line(for item: JudgeItem) -> String {
        "{\"prompt\":\(promptJSON(item.prompt)),\"response\":\(JSONText.quoted(item.response))}"
    }

    /// A prompt as JSON: its text, or its messages as `[{"role":"...","content":"..."}, ...]`.
    public static func promptJSON(_ prompt: TextOrChat) -> String {
        switch prompt {
        case let .text(text):
            return JSONText.quoted(text)
        case let .chat(messages):
            return "[" + messages.map { "{\"role\":\(JSONText.quoted($0.role)),\"content\":\(JSONText.quoted($0.content))}" }
                .joined(separator: ",") + "]"
        }
    }

    /// Runs the program once over all `items`; an empty batch runs nothing.
    ///
    /// - Throws: `EvaluationError` naming the command when it cannot start, times out, exits with a
    ///   non-zero status or a signal (with the end of its stderr), prints a number of lines other
    ///   than `items.count`, or prints a line that is not a finite number.
    public func scores(_ items: [JudgeItem]) throws -> [Double] {
        if items.isEmpty { return [] }
        let input = Data(items.map { Self.line(for: $0) + "\n" }.joined().utf8)
        let (status, reason, output, errors) = try run(input: input)
        let stderrTail = Self.tail(errors)
        if reason == .uncaughtSignal {
            throw failure("was killed by signal \(status)" + stderrTail)
        }
        guard status == 0 else { throw failure("exited with status \(status)" + stderrTail) }
        var lines = String(decoding: output, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        guard lines.count == items.count else {
            throw failure("printed \(lines.count) line\(lines.count == 1 ? "" : "s") for \(items.count) item\(items.count == 1 ? "" : "s"); "
                          + "expected one number per line")
        }
        return try lines.enumerated().map { k, line in
            let text = line.trimmingCharacters(in: .whitespacesAndNewlines)
            guard let value = Double(text) else {
                throw failure("line \(k + 1) of its output is \(String(reflecting: String(line.prefix(200)))), not a number")
            }
            guard value.isFinite else {
                throw failure("line \(k + 1) of its output is \(text); scores must be finite numbers")
            }
            return value
        }
    }

    func failure(_ reason: String) -> EvaluationError {
        EvaluationError("command judge `\(commandLine)`: \(reason)")
    }

    /// Runs the program with `input` on stdin; stdin is written and both outputs are read on their
    /// own threads, so no pipe can fill up and block the others.
    func run(input: Data) throws -> (Int32, Process.TerminationReason, Data, Data) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        do {
            try process.run()
        } catch {
            throw failure("could not be started: \(error.localizedDescription)")
        }
        let collected = Collected()
        let io = DispatchGroup()
        let writer = stdin.fileHandleForWriting, outReader = stdout.fileHandleForReading, errReader = stderr.fileHandleForReading
        DispatchQueue.global().async(group: io) {
            // A program that exits without reading makes this fail (EPIPE); its status says why.
            try? writer.write(contentsOf: input)
            try? writer.close()
        }
        DispatchQueue.global().async(group: io) { collected.set(output: (try? outReader.readToEnd()) ?? Data()) }
        DispatchQueue.global().async(group: io) { collected.set(errors: (try? errReader.readToEnd()) ?? Data()) }

        let deadline = DispatchTime.now() + timeout
        let timedOut = exited.wait(timeout: deadline) == .timedOut
        if timedOut {
            kill(process.processIdentifier, SIGKILL)
            _ = exited.wait(timeout: .now() + 5)
        }
        // Output still open after the program exited means a process it started holds the pipe.
        let drained = io.wait(timeout: timedOut ? .now() + 1 : deadline) == .success
        if timedOut { throw failure("did not finish within its timeout of \(Self.seconds(timeout)) and was killed") }
        guard drained else {
            throw failure("exited, but its stdout or stderr stayed open past the timeout of \(Self.seconds(timeout)) "
                          + "(a background process it started may hold them)")
        }
        process.waitUntilExit()
        return (process.terminationStatus, process.terminationReason, collected.output, collected.errors)
    }

    /// The program's path: `command` itself when it names a path, else the first executable of that
    /// name in `PATH`.
    static func resolve(_ command: String, display: String) throws -> String {
        let files = FileManager.default
        func check(_ path: String) throws -> String {
            var isDirectory: ObjCBool = false
            guard files.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw EvaluationError("command judge `\(display)`: \(path) not found")
            }
            guard !isDirectory.boolValue, files.isExecutableFile(atPath: path) else {
                throw EvaluationError("command judge `\(display)`: \(path) is not an executable file")
            }
            return path
        }
        guard !command.isEmpty else { throw EvaluationError("command judge: the command is empty") }
        if command.contains("/") {
            return try check(URL(fileURLWithPath: command).standardizedFileURL.path)
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(command)"
            var isDirectory: ObjCBool = false
            if files.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue,
               files.isExecutableFile(atPath: candidate) {
                return candidate
            }
        }
        throw EvaluationError("command judge `\(display)`: \(command) not found in PATH")
    }

    /// The last lines of stderr, as a message suffix ("" when it printed nothing).
    static func tail(_ errors: Data, lines: Int = 5) -> String {
        let text = String(decoding: errors, as: UTF8.self)
        let last = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            .suffix(lines).map { $0.count > 300 ? String($0.prefix(300)) + "..." : $0 }
        return last.isEmpty ? "" : "; its stderr ends with:\n  " + last.joined(separator: "\n  ")
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value)) s" : "\(value) s"
    }
}

/// Output collected by the reader threads; read after they finish.
private final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var outputData = Data(), errorData = Data()
    var output: Data { lock.withLock { outputData } }
    var errors: Data { lock.withLock { errorData } }
    func set(output: Data) { lock.withLock { outputData = output } }
    func set(errors: Data) { lock.withLock { errorData = errors } }
}

/// Writing to a program that has exited raises SIGPIPE, which would end Rein; ignored once, on first use.
private let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()
