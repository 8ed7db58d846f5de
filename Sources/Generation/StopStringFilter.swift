/// Streams generated text while holding back whatever may still turn out to be the start of a
/// stop string, so the streamed text is exactly the final ``GeneratedSequence/text``: it never
/// shows (part of) the stop string that ends it.
///
/// ```swift
/// var filter = StopStringFilter(stopStrings: ["\nUser:"])
/// print(filter.push(chunk), terminator: "")   // per decoded chunk
/// print(filter.finish())                        // after the last token
/// ```
public struct StopStringFilter: Sendable {
    /// The strings that end the text.
    public let stopStrings: [String]
    /// True once a stop string has appeared; later chunks are dropped.
    public private(set) var stopped = false
    private var pending = ""

    /// A filter for `stopStrings` (empty strings are ignored).
    public init(stopStrings: [String]) {
        self.stopStrings = stopStrings.filter { !$0.isEmpty }
    }

    /// Takes the next chunk of text and returns the part that is safe to show now.
    public mutating func push(_ chunk: String) -> String {
        guard !stopped else { return "" }
        pending += chunk
        if let cut = stopStrings.compactMap({ pending.firstRange(of: $0)?.lowerBound }).min() {
            stopped = true
            defer { pending = "" }
            return String(pending[..<cut])
        }
        // Hold the longest suffix that is a proper prefix of some stop string.
        var held = 0
        for stop in stopStrings {
            for k in stride(from: min(stop.count - 1, pending.count), to: held, by: -1)
            where pending.hasSuffix(stop.prefix(k)) {
                held = k
                break
            }
        }
        let shown = String(pending.dropLast(held))
        pending = String(pending.suffix(held))
        return shown
    }

    /// The text still held back when generation ended without a stop string.
    public mutating func finish() -> String {
        defer { pending = "" }
        return stopped ? "" : pending
    }
}
