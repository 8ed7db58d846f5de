import Foundation

/// Deterministic number and date texts for the report: the same input always gives the same
/// bytes, whatever the machine's locale or time zone. `number` and `duration` are also the
/// terminal's (`rein runs`, through `ReportText`), so a figure reads the same in both.
public enum Format {
    /// An SVG coordinate: at most two decimals, trailing zeros dropped, never `-0`.
    static func coordinate(_ x: Double) -> String {
        guard x.isFinite else { return "0" }
        let hundredths = (x * 100).rounded()
        if hundredths == 0 { return "0" }
        var text = String(format: "%.2f", hundredths / 100)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }

    /// The value a mark carries in `data-value`: the shortest text that reads back as the same
    /// Double (JavaScript's `parseFloat` included), `nan`/`inf`/`-inf` for the non-finite ones.
    static func exact(_ x: Double) -> String {
        if x.isNaN { return "nan" }
        if x.isInfinite { return x > 0 ? "inf" : "-inf" }
        return x.description
    }

    /// A number for a reader, in few characters (as `rein runs show` prints metrics): whole numbers
    /// as integers, 4 significant digits between 0.001 and 1000, no decimals up to 1e6, scientific
    /// otherwise.
    public static func number(_ x: Double) -> String {
        if x.isNaN { return "nan" }
        if x.isInfinite { return x > 0 ? "inf" : "-inf" }
        let a = abs(x)
        if x == x.rounded(), a < 1e15 { return String(Int64(x)) }
        if a >= 1e-3, a < 1000 { return String(format: "%.4g", x) }
        if a >= 1000, a < 1e6 { return String(format: "%.0f", x) }
        let text = String(format: "%.3e", x)
        guard let e = text.firstIndex(of: "e") else { return text }
        var mantissa = text[..<e]
        while mantissa.hasSuffix("0") { mantissa.removeLast() }
        if mantissa.hasSuffix(".") { mantissa.removeLast() }
        return String(mantissa) + text[e...]
    }

    /// An optional number, `–` when absent.
    static func number(_ x: Double?) -> String { x.map { number($0) } ?? "–" }

    /// A share in [0, 1] as a percentage with one decimal: `62.5%`.
    static func percent(_ share: Double) -> String {
        guard share.isFinite else { return number(share) }
        return String(format: "%.1f%%", share * 100)
    }

    /// A tick label for a tick `step` apart from its neighbours: as many decimals as the step needs.
    static func tick(_ x: Double, step: Double) -> String {
        guard x.isFinite, step.isFinite, step > 0 else { return number(x) }
        // Tiny or huge ticks in the compact scientific form: 0.000105 would crowd the axis.
        if abs(x) >= 1e6 || step < 1e-4 { return number(x) }
        // Steps are 1, 2 or 5 times a power of ten: 10^k needs max(0, -k) decimals.
        let decimals = max(0, -Int((log10(step) + 1e-9).rounded(.down)))
        let text = String(format: "%.\(min(decimals, 8))f", x)
        return text.hasPrefix("-") && Double(text) == 0 ? String(text.dropFirst()) : text
    }

    /// A duration in seconds: `4.2s`, `42s`, `4m31s`, `1h02m`, `2d03h` (as `rein runs show` prints them).
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds > 0 else { return "0s" }
        if seconds < 9.95 { return String(format: "%.1fs", seconds) }
        let s = Int(seconds.rounded())
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(two(s % 60))s" }
        if s < 86400 { return "\(s / 3600)h\(two(s / 60 % 60))m" }
        return "\(s / 86400)d\(two(s / 3600 % 24))h"
    }

    /// A date in UTC to the minute: `2026-12-01 17:25 UTC`.
    static func date(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute], from: date)
        return String(format: "%04d-%02d-%02d %02d:%02d UTC", c.year ?? 0, c.month ?? 0, c.day ?? 0, c.hour ?? 0, c.minute ?? 0)
    }
}
