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

/// A terminal in raw mode (no echo, no line editing, no signals from keys): one key at a time, for
/// `rein rate`. `restore()` puts back the settings it found; so does `deinit`.
final class RawTerminal {
    private var saved = termios()
    private var active = false

    /// The terminal's size in cells, from stdout (nil when stdout is not a terminal).
    static func size() -> (columns: Int, rows: Int)? {
        var w = winsize()
        guard withUnsafeMutablePointer(to: &w, { ioctl(1, UInt(TIOCGWINSZ), $0) }) == 0, w.ws_col > 0 else { return nil }
        return (Int(w.ws_col), Int(w.ws_row))
    }

    /// Switches stdin to raw mode and the screen to the alternate buffer with the cursor hidden.
    init() throws {
        guard tcgetattr(0, &saved) == 0 else { throw CLIError("cannot read the terminal's settings") }
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ECHO | ICANON | ISIG | IEXTEN)
        raw.c_iflag &= ~tcflag_t(IXON | ICRNL | BRKINT | INPCK | ISTRIP)
        raw.c_cc.6 = 1  // VMIN: a read waits for one byte
        raw.c_cc.5 = 0  // VTIME
        guard tcsetattr(0, TCSAFLUSH, &raw) == 0 else { throw CLIError("cannot put the terminal in raw mode") }
        active = true
        Terminal.write("\u{1B}[?1049h\u{1B}[?25l")
    }

    /// Back to the settings and screen found at `init`.
    func restore() {
        guard active else { return }
        active = false
        Terminal.write("\u{1B}[?25h\u{1B}[?1049l")
        tcsetattr(0, TCSAFLUSH, &saved)
    }

    deinit { restore() }

    /// One key: a character, or `left`, `right`, `up`, `down`, `pageup`, `pagedown`, `enter`, `backspace`,
    /// `escape`; nil at the end of input (the terminal closed).
    func readKey() -> String? {
        guard let byte = readByte(timeout: -1) else { return nil }
        switch byte {
        case 0x0D, 0x0A: return "enter"
        case 0x7F, 0x08: return "backspace"
        case 0x03: return "ctrl-c"
        case 0x04: return "ctrl-d"
        case 0x1B:
            guard let next = readByte(timeout: 50) else { return "escape" }
            guard next == UInt8(ascii: "[") || next == UInt8(ascii: "O") else { return "escape" }
            var sequence: [UInt8] = []
            while let b = readByte(timeout: 50) {
                sequence.append(b)
                if (0x40...0x7E).contains(b) { break }
            }
            switch String(decoding: sequence, as: UTF8.self) {
            case "A": return "up"
            case "B": return "down"
            case "C": return "right"
            case "D": return "left"
            case "5~": return "pageup"
            case "6~": return "pagedown"
            default: return "escape"
            }
        default:
            // A UTF-8 character: its lead byte says how many bytes follow.
            var bytes = [byte]
            let extra = byte >= 0xF0 ? 3 : byte >= 0xE0 ? 2 : byte >= 0xC0 ? 1 : 0
            for _ in 0..<extra { if let b = readByte(timeout: 50) { bytes.append(b) } }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// A byte from stdin, waiting at most `timeout` ms (-1: forever); nil on timeout or end of input.
    private func readByte(timeout: Int32) -> UInt8? {
        var fds = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
        while true {
            let ready = poll(&fds, 1, timeout)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { return nil }
            var byte: UInt8 = 0
            let n = read(0, &byte, 1)
            if n < 0 && errno == EINTR { continue }
            return n == 1 ? byte : nil
        }
    }
}
