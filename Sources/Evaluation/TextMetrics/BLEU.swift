import Foundation

/// sacrebleu's default tokenizer, `13a` (the one of mteval-v13a.pl): HTML entities unescaped,
/// ASCII symbols split off, periods and commas split off unless between digits, a dash split off
/// after a digit.
public enum Tokenizer13a {
    /// The tokens of `line` joined by single spaces, as sacrebleu's `Tokenizer13a()(line)`.
    public static func tokenize(_ line: String) -> String {
        tokens(TextScalars.of(line)).map { TextScalars.string($0) }.joined(separator: " ")
    }

    private static let skipped = TextScalars.of("<skipped>")
    private static let entities: [([UInt32], [UInt32])] = [("&quot;", "\""), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">")]
        .map { (TextScalars.of($0.0), TextScalars.of($0.1)) }

    /// The tokens of a line given as scalar values.
    static func tokens(_ line: [UInt32]) -> [ArraySlice<UInt32>] {
        let space: UInt32 = 0x20, newline: UInt32 = 0x0A
        var s = TextScalars.replacing(line, skipped, with: [])
        s = TextScalars.replacing(s, [0x2D, newline], with: [])
        for i in s.indices where s[i] == newline { s[i] = space }
        if s.contains(0x26) {
            for (entity, text) in entities { s = TextScalars.replacing(s, entity, with: text) }
        }

        // ([\{-\~\[-\` -\&\(-\+\:-\@\/]) -> " \1 "
        var padded: [UInt32] = [space]
        padded.reserveCapacity(s.count * 2 + 2)
        for c in s {
            if isSplitSymbol(c) { padded.append(space); padded.append(c); padded.append(space) } else { padded.append(c) }
        }
        padded.append(space)

        let isPeriodOrComma: (UInt32) -> Bool = { $0 == 0x2E || $0 == 0x2C }
        let isNotDigit: (UInt32) -> Bool = { !TextScalars.isDigit($0) }
        // ([^0-9])([\.,]) -> "\1 \2 "; ([\.,])([^0-9]) -> " \1 \2"; ([0-9])(-) -> "\1 \2 "
        var t = substitutePairs(padded, isNotDigit, isPeriodOrComma, leadingSpace: false)
        t = substitutePairs(t, isPeriodOrComma, isNotDigit, leadingSpace: true)
        t = substitutePairs(t, TextScalars.isDigit, { $0 == 0x2D }, leadingSpace: false)
        return TextScalars.splitOnSpace(t)
    }

    /// The class `[{-~[-` -&(-+:-@/]`: ASCII symbols and space, but not `'`, `,`, `-`, `.`.
    @inline(__always)
    private static func isSplitSymbol(_ c: UInt32) -> Bool {
        switch c {
        case 0x7B...0x7E, 0x5B...0x60, 0x20...0x26, 0x28...0x2B, 0x3A...0x40, 0x2F: return true
        default: return false
        }
    }

    /// `re.sub` of a two-scalar pattern `(a)(b)`: matches are found left to right and do not
    /// overlap; each becomes `a b ` (or ` a b` with `leadingSpace`).
    private static func substitutePairs(_ s: [UInt32], _ first: (UInt32) -> Bool, _ second: (UInt32) -> Bool,
                                        leadingSpace: Bool) -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(s.count + s.count / 2)
        var i = 0
        while i < s.count {
            if i + 1 < s.count && first(s[i]) && second(s[i + 1]) {
                if leadingSpace { out.append(0x20) }
                out.append(s[i]); out.append(0x20); out.append(s[i + 1])
                if !leadingSpace { out.append(0x20) }
                i += 2
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return out
    }
}

/// The counts BLEU is computed from, for one segment or summed over a corpus.
public struct BLEUStatistics: Sendable, Hashable {
    /// Hypothesis tokens (sacrebleu's `sys_len`).
    public var hypothesisLength = 0
    /// Reference tokens (`ref_len`).
    public var referenceLength = 0
    /// Clipped n-gram matches for n = 1...4 (`counts`).
    public var matches = [Int](repeating: 0, count: BLEU.maxOrder)
    /// Hypothesis n-grams for n = 1...4 (`totals`).
    public var totals = [Int](repeating: 0, count: BLEU.maxOrder)

    public init() {}

    /// The element-wise sum: the statistics of two corpora joined.
    public static func + (a: BLEUStatistics, b: BLEUStatistics) -> BLEUStatistics {
        var s = a
        s.hypothesisLength += b.hypothesisLength
        s.referenceLength += b.referenceLength
        for n in 0..<BLEU.maxOrder {
            s.matches[n] += b.matches[n]
            s.totals[n] += b.totals[n]
        }
        return s
    }
}

/// A BLEU score and the figures sacrebleu reports with it.
public struct BLEUScore: Sendable, Hashable, CustomStringConvertible {
    /// BLEU in 0...100.
    public var score: Double
    /// The n-gram precisions in percent, n = 1...4 (smoothed where a count is zero).
    public var precisions: [Double]
    /// The brevity penalty.
    public var brevityPenalty: Double
    /// The counts the score came from.
    public var statistics: BLEUStatistics

    /// sacrebleu's one-line report: `BLEU = 42.38 85.7/66.7/40.0/25.0 (BP = 0.867 ratio = ...)`.
    public var description: String {
        let ratio = statistics.referenceLength > 0 ? Double(statistics.hypothesisLength) / Double(statistics.referenceLength) : 0
        let p = precisions.map { String(format: "%.1f", $0) }.joined(separator: "/")
        return "BLEU = \(String(format: "%.2f", score)) \(p) (BP = \(String(format: "%.3f", brevityPenalty)) "
            + "ratio = \(String(format: "%.3f", ratio)) hyp_len = \(statistics.hypothesisLength) ref_len = \(statistics.referenceLength))"
    }
}

/// BLEU as sacrebleu 2.6.0 computes it with its defaults: one reference, the 13a tokenizer,
/// case-sensitive, n-grams up to 4, `exp` smoothing (a zero count gets precision 1/(2^k total) for
/// the k-th such order). The corpus score sums the counts (and lengths, for the brevity penalty)
/// over all segments; the sentence score uses the effective order (the geometric mean stops at the
/// longest n-gram order the hypothesis has).
public enum BLEU {
    /// The longest n-gram order.
    public static let maxOrder = 4
    /// sacrebleu's signature of the corpus score.
    public static let corpusSignature = "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"
    /// sacrebleu's signature of the sentence score (`effective_order=True`).
    public static let sentenceSignature = "nrefs:1|case:mixed|eff:yes|tok:13a|smooth:exp|version:2.6.0"

    /// The counts of one hypothesis against its reference.
    public static func statistics(hypothesis: String, reference: String) -> BLEUStatistics {
        var vocabulary = TokenIDs()
        let hyp = vocabulary.ids(Tokenizer13a.tokens(rstripped(hypothesis)))
        let ref = vocabulary.ids(Tokenizer13a.tokens(rstripped(reference)))
        var s = BLEUStatistics()
        s.hypothesisLength = hyp.count
        s.referenceLength = ref.count
        let bits = PackedNGrams.bits(distinct: vocabulary.count)
        for n in 1...maxOrder {
            if let c = PackedNGrams.count(hyp, ref, order: n, bits: bits) {
                s.totals[n - 1] = c.a
                s.matches[n - 1] = c.matches
            } else {
                let h = NGramCounts(hyp, order: n)
                s.totals[n - 1] = h.total
                s.matches[n - 1] = h.matches(in: NGramCounts(ref, order: n))
            }
        }
        return s
    }

    /// Corpus BLEU of hypotheses against their references (equal counts).
    public static func corpus(hypotheses: [String], references: [String]) -> BLEUScore {
        precondition(hypotheses.count == references.count, "BLEU.corpus: \(hypotheses.count) hypotheses but \(references.count) references")
        var total = BLEUStatistics()
        for (h, r) in zip(hypotheses, references) { total = total + statistics(hypothesis: h, reference: r) }
        return score(total, effectiveOrder: false)
    }

    /// Sentence BLEU with the effective order, sacrebleu's `sentence_bleu`.
    public static func sentence(hypothesis: String, reference: String) -> BLEUScore {
        score(statistics(hypothesis: hypothesis, reference: reference), effectiveOrder: true)
    }

    /// The score of summed counts.
    public static func score(_ s: BLEUStatistics, effectiveOrder: Bool) -> BLEUScore {
        let sys = Double(s.hypothesisLength), ref = Double(s.referenceLength)
        let bp = s.hypothesisLength >= s.referenceLength ? 1.0 : (s.hypothesisLength > 0 ? exp(1 - ref / sys) : 0.0)
        var precisions = [Double](repeating: 0, count: maxOrder)
        guard s.matches.contains(where: { $0 > 0 }) else {
            return BLEUScore(score: 0, precisions: precisions, brevityPenalty: bp, statistics: s)
        }
        var order = maxOrder
        var smoothing = 1.0
        for n in 0..<maxOrder {
            guard s.totals[n] > 0 else { break }
            if effectiveOrder { order = n + 1 }
            if s.matches[n] == 0 {
                smoothing *= 2
                precisions[n] = 100 / (smoothing * Double(s.totals[n]))
            } else {
                precisions[n] = 100 * Double(s.matches[n]) / Double(s.totals[n])
            }
        }
        // sacrebleu takes log(0) as -9999999999, which makes the score 0 (to rounding).
        let logSum = precisions[0..<order].reduce(0.0) { $0 + ($1 == 0 ? -9_999_999_999 : log($1)) }
        return BLEUScore(score: bp * exp(logSum / Double(order)), precisions: precisions, brevityPenalty: bp, statistics: s)
    }

    /// Python's `str.rstrip()`: sacrebleu strips trailing whitespace before tokenizing.
    static func rstripped(_ text: String) -> [UInt32] {
        var s = TextScalars.of(text)
        while let last = s.last, TextScalars.isPythonSpace(last) { s.removeLast() }
        return s
    }
}
