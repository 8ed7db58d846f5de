import Foundation
import Recipes
import Training

/// A bar of `width` cells, `#` for the done fraction and `.` for the rest: `[#####.....]`.
func progressBar(_ fraction: Double, width: Int) -> String {
    let filled = max(0, min(width, Int((fraction.isFinite ? fraction : 1) * Double(width))))
    return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
}

/// Seconds left at the mean pace since `first`: `(now - first.time) / (step - first.step)` per
/// step for the `total - step` steps to go; nil before a second step was seen.
func secondsLeft(first: (step: Int, time: Date), step: Int, total: Int, now: Date) -> Double? {
    guard step > first.step else { return nil }
    return now.timeIntervalSince(first.time) / Double(step - first.step) * Double(max(total - step, 0))
}

/// A throughput in few characters: `12.5`, `340`, `12.3k`.
func rate(_ x: Double) -> String { x >= 10_000 ? fmt(x / 1000, 0, 1) + "k" : fmt(x, 0, x >= 100 ? 0 : 1) }

/// Training step lines on stderr, for `rein run` and `rein train`: on a terminal one line redrawn
/// in place (a bar, at most ten times a second); otherwise a plain line every `logEverySteps`
/// steps, or every 5 seconds without it. The last step always prints. The ETA is the mean step
/// time since the first step this view saw (a resumed run counts from where it resumed).
struct StepProgressView {
    /// Put before each line, e.g. `[sft] `.
    var prefix = ""
    /// In a log (not a terminal): print every this many steps instead of every 5 seconds.
    var logEverySteps: Int?
    private let tty = Terminal.stderrIsTerminal
    private var first: (step: Int, time: Date)?
    private var lastPrinted: (step: Int, time: Date)?
    /// Whether a redrawn line is on screen without its line break.
    private(set) var openLine = false

    init(prefix: String = "", logEverySteps: Int? = nil) {
        self.prefix = prefix
        self.logEverySteps = logEverySteps
    }

    /// Ends a redrawn line, so other output starts on a line of its own.
    mutating func endLine() {
        if openLine { Terminal.writeError("\n"); openLine = false }
    }

    /// Shows step `p`, when due.
    mutating func show(_ p: TrainingProgress, unit: String, now: Date = Date()) {
        if first == nil { first = (p.step, now) }
        let last = p.step >= p.maxSteps
        if !last, let printed = lastPrinted {
            if tty {
                guard now.timeIntervalSince(printed.time) >= 0.1 else { return }
            } else if let every = logEverySteps {
                guard p.step - printed.step >= every else { return }
            } else {
                guard now.timeIntervalSince(printed.time) >= 5 else { return }
            }
        }
        lastPrinted = (p.step, now)
        let fraction = p.maxSteps > 0 ? Double(p.step) / Double(p.maxSteps) : 1
        let eta = first.flatMap { secondsLeft(first: $0, step: p.step, total: p.maxSteps, now: now) }
        let line = prefix + Self.line(p, unit: unit, bar: tty ? progressBar(fraction, width: 20) : nil, eta: eta)
        if tty {
            Terminal.writeError("\r\u{1B}[K" + line + (last ? "\n" : ""))
            openLine = !last
        } else {
            Terminal.note(line)
        }
    }

    /// `[bar] step 3/10  loss 1.2345  lr 1.00e-04  340 tokens/s  eval 1.3  ETA 4m05s`.
    static func line(_ p: TrainingProgress, unit: String, bar: String?, eta: Double?) -> String {
        (bar.map { $0 + " " } ?? "") + "step \(p.step)/\(p.maxSteps)  loss \(fmt(p.loss, 0, 4))  "
            + "lr \(String(format: "%.2e", p.learningRate))  \(rate(p.itemsPerSecond)) \(unit)/s"
            + (p.evalLoss.map { "  eval \(fmt($0, 0, 4))" } ?? "") + (eta.map { "  ETA \(ReportText.duration($0))" } ?? "")
    }
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
            Terminal.writeError("\r\(progressBar(fraction, width: 30)) \(fmt(fraction * 100, 3, 0))% \(counts)" + (finished ? "\n" : ""))
        } else if finished || seconds(now - lastLine) >= 5 {
            lastLine = now
            Terminal.note("\(fmt(fraction * 100, 0, 0))% \(counts)")
        }
    }
}

/// A duration in seconds.
func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}
