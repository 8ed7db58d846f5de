/// Precision, recall and F1 of one ROUGE type.
public struct RougeScore: Sendable, Hashable, Codable {
    public var precision: Double
    public var recall: Double
    public var fmeasure: Double

    public init(precision: Double, recall: Double) {
        self.precision = precision
        self.recall = recall
        fmeasure = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
    }

    /// All zero, what rouge-score gives when either side has no tokens.
    public static let zero = RougeScore(precision: 0, recall: 0)
}

/// ROUGE-1, ROUGE-2, ROUGE-L and ROUGE-Lsum of one prediction against its target.
public struct RougeScores: Sendable, Hashable, Codable {
    public var rouge1: RougeScore
    public var rouge2: RougeScore
    public var rougeL: RougeScore
    public var rougeLsum: RougeScore

    public init(rouge1: RougeScore, rouge2: RougeScore, rougeL: RougeScore, rougeLsum: RougeScore) {
        self.rouge1 = rouge1
        self.rouge2 = rouge2
        self.rougeL = rougeL
        self.rougeLsum = rougeLsum
    }

    /// The four types by rouge-score's names, in its order.
    public var byName: [(name: String, score: RougeScore)] {
        [("rouge1", rouge1), ("rouge2", rouge2), ("rougeL", rougeL), ("rougeLsum", rougeLsum)]
    }
}

/// ROUGE as Google's `rouge-score` 0.1.2 computes it: text lowercased, every run of characters
/// other than `[a-z0-9]` a separator, tokens longer than three letters Porter-stemmed (nltk's
/// default rules) when asked; ROUGE-N on clipped n-gram counts, ROUGE-L on the longest common
/// subsequence, ROUGE-Lsum on the union LCS of each target line against every prediction line
/// (lines split on newlines, hits not counted twice).
public struct RougeScorer: Sendable {
    /// Whether tokens longer than three characters are stemmed.
    public let useStemmer: Bool
    private let stemmer = PorterStemmer()

    /// A scorer, stemming tokens with `useStemmer` (rouge-score's `use_stemmer`).
    public init(useStemmer: Bool = false) {
        self.useStemmer = useStemmer
    }

    /// rouge-score's tokens of `text`.
    public func tokenize(_ text: String) -> [String] { tokens(text).map { TextScalars.string($0) } }

    /// The scores of `prediction` against `target` (rouge-score's `score(target, prediction)`).
    public func score(target: String, prediction: String) -> RougeScores {
        var vocabulary = TokenIDs()
        let t = vocabulary.ids(tokens(target)), p = vocabulary.ids(tokens(prediction))
        let targetLines = lines(target).map { vocabulary.ids(tokens($0)) }
        let predictionLines = lines(prediction).map { vocabulary.ids(tokens($0)) }
        let bits = PackedNGrams.bits(distinct: vocabulary.count)
        return RougeScores(rouge1: Self.ngramScore(t, p, n: 1, bits: bits), rouge2: Self.ngramScore(t, p, n: 2, bits: bits),
                           rougeL: Self.lcsScore(t, p), rougeLsum: Self.summaryLCSScore(targetLines, predictionLines))
    }

    /// Lowercase, `[^a-z0-9]+` -> space, split, stem (tokens of more than 3 characters).
    func tokens(_ text: String) -> [ArraySlice<UInt32>] {
        var words: [ArraySlice<UInt32>] = []
        var current: [UInt32] = []
        func flush() {
            guard !current.isEmpty else { return }
            words.append(useStemmer && current.count > 3 ? stemmer.stem(scalars: current)[...] : current[...])
            current.removeAll(keepingCapacity: true)
        }
        // Lowercased first: Python's lower() turns some non-ASCII letters into ASCII (KELVIN SIGN -> k).
        for v in TextScalars.lowercased(text) {
            if (v >= 0x61 && v <= 0x7A) || TextScalars.isDigit(v) { current.append(v) } else { flush() }
        }
        flush()
        return words
    }

    /// The non-empty lines of `text` split on "\n" (rouge-score's Lsum sentences).
    private func lines(_ text: String) -> [String] {
        text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: true).map { String(String.UnicodeScalarView($0)) }
    }

    static func ngramScore(_ target: [Int32], _ prediction: [Int32], n: Int, bits: Int) -> RougeScore {
        let c = PackedNGrams.count(target, prediction, order: n, bits: bits) ?? {
            let t = NGramCounts(target, order: n), p = NGramCounts(prediction, order: n)
            return (t.total, p.total, t.matches(in: p))
        }()
        return RougeScore(precision: Double(c.matches) / Double(max(c.b, 1)), recall: Double(c.matches) / Double(max(c.a, 1)))
    }

    static func lcsScore(_ target: [Int32], _ prediction: [Int32]) -> RougeScore {
        guard !target.isEmpty, !prediction.isEmpty else { return .zero }
        let table = LCSTable(target, prediction)
        let length = Double(table[target.count, prediction.count])
        return RougeScore(precision: length / Double(prediction.count), recall: length / Double(target.count))
    }

    /// Summary-level LCS (Lin 2004, section 3.2) as ROUGE-1.5.5 and rouge-score count it.
    static func summaryLCSScore(_ target: [[Int32]], _ prediction: [[Int32]]) -> RougeScore {
        let m = target.reduce(0) { $0 + $1.count }, n = prediction.reduce(0) { $0 + $1.count }
        guard m > 0, n > 0 else { return .zero }
        var targetLeft: [Int32: Int] = [:], predictionLeft: [Int32: Int] = [:]
        for line in target { for t in line { targetLeft[t, default: 0] += 1 } }
        for line in prediction { for t in line { predictionLeft[t, default: 0] += 1 } }
        var hits = 0
        for line in target {
            var union = Set<Int>()
            for candidate in prediction { union.formUnion(LCSTable(line, candidate).matchedIndices(line, candidate)) }
            for i in union.sorted() {
                let t = line[i]
                if let c = predictionLeft[t], c > 0, let r = targetLeft[t], r > 0 {
                    hits += 1
                    predictionLeft[t] = c - 1
                    targetLeft[t] = r - 1
                }
            }
        }
        return RougeScore(precision: Double(hits) / Double(n), recall: Double(hits) / Double(m))
    }
}

/// The dynamic-programming table of LCS lengths of every pair of prefixes.
struct LCSTable {
    private var cells: [Int32]
    private let columns: Int

    /// Row i, column j holds the LCS length of `a[..<i]` and `b[..<j]`.
    init(_ a: [Int32], _ b: [Int32]) {
        let rows = a.count + 1, cols = b.count + 1
        columns = cols
        cells = [Int32](repeating: 0, count: rows * cols)
        cells.withUnsafeMutableBufferPointer { t in
            for i in 1..<rows {
                let ai = a[i - 1]
                for j in 1..<cols {
                    t[i &* cols &+ j] = ai == b[j - 1]
                        ? t[(i &- 1) &* cols &+ j &- 1] &+ 1
                        : Swift.max(t[(i &- 1) &* cols &+ j], t[i &* cols &+ j &- 1])
                }
            }
        }
    }

    subscript(i: Int, j: Int) -> Int { Int(cells[i * columns + j]) }

    /// The indices into `a` of one LCS, read back from the end as rouge-score does: a match is
    /// taken, otherwise the step goes left when that cell is strictly larger, else up.
    func matchedIndices(_ a: [Int32], _ b: [Int32]) -> [Int] {
        var i = a.count, j = b.count
        var out: [Int] = []
        while i > 0 && j > 0 {
            if a[i - 1] == b[j - 1] {
                out.append(i - 1)
                i -= 1
                j -= 1
            } else if self[i, j - 1] > self[i - 1, j] {
                j -= 1
            } else {
                i -= 1
            }
        }
        return out.reversed()
    }
}
