import Foundation

/// Encoding throughput, for `rein bench`.
public enum TokenizerBenchmark {
    /// Throughput of one measurement.
    public struct Result: Sendable, CustomStringConvertible {
        /// Median throughput over the warm repetitions, in megabytes (10⁶ bytes of UTF-8) per second.
        public var mbPerSecond: Double
        /// Throughput of the first pass, started with an empty word cache.
        public var coldMBPerSecond: Double
        /// Median tokens per second over the warm repetitions.
        public var tokensPerSecond: Double
        /// UTF-8 bytes encoded per pass.
        public var bytes: Int
        /// Tokens produced per pass.
        public var tokens: Int
        /// Median seconds of one warm pass.
        public var medianSeconds: Double

        /// One line: warm and cold MB/s, tokens/s and pass size.
        public var description: String {
            String(format: "%.1f MB/s (cold %.1f MB/s), %.2fM tokens/s, %d bytes -> %d tokens per pass",
                   mbPerSecond, coldMBPerSecond, tokensPerSecond / 1e6, bytes, tokens)
        }
    }

    /// Times encoding `lines` one call per line on the calling thread: one cold pass after
    /// clearing the word cache, then `repetitions` warm passes whose median is reported.
    public static func encodeThroughput(tokenizer: Tokenizer, lines: [String], repetitions: Int = 5,
                                        allowSpecial: Bool = false) -> Result {
        let bytes = lines.reduce(0) { $0 + $1.utf8.count }
        var tokens = 0
        func pass() -> Double {
            let clock = ContinuousClock()
            var count = 0
            let elapsed = clock.measure {
                for line in lines { count &+= tokenizer.encode(line, allowSpecial: allowSpecial).count }
            }
            tokens = count
            return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        }
        tokenizer.clearCache()
        let cold = pass()
        var times = (0..<max(repetitions, 1)).map { _ in pass() }
        times.sort()
        let median = times[times.count / 2]
        return Result(mbPerSecond: Double(bytes) / median / 1e6, coldMBPerSecond: Double(bytes) / cold / 1e6,
                      tokensPerSecond: Double(tokens) / median, bytes: bytes, tokens: tokens, medianSeconds: median)
    }
}
