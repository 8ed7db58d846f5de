import Foundation

// VADER (Hutto & Gilbert, ICWSM 2014): a rule-based sentiment scorer, matching what
// vaderSentiment 3.3.2's `SentimentIntensityAnalyzer.polarity_scores` returns, quirks included
// (they are what TRL's sentiment example and everyone comparing with it measure).
//
// Text is handled as Unicode scalars (the package iterates code points): words are compared as
// their lowercase UTF-8 bytes, never as `String`s, whose equality is canonical equivalence.

/// What `VaderAnalyzer.polarityScores` returns: the shares of negative, neutral and positive
/// weight (rounded to 3 places) and the normalized sum in [-1, 1] (rounded to 4 places).
public struct VaderScores: Sendable, Hashable, CustomStringConvertible {
    public var neg: Double
    public var neu: Double
    public var pos: Double
    /// The summed valence `x` after all rules, as `x / sqrt(x² + 15)`.
    public var compound: Double

    public init(neg: Double, neu: Double, pos: Double, compound: Double) {
        self.neg = neg
        self.neu = neu
        self.pos = pos
        self.compound = compound
    }

    public var description: String { "neg \(neg), neu \(neu), pos \(pos), compound \(compound)" }

    /// `x` rounded to `places` decimals the way Python's `round(x, places)` does: to the decimal
    /// nearest the double's exact value, a tie going to the even last digit (0.0625 -> 0.062).
    public static func round(_ x: Double, places: Int) -> Double {
        guard x.isFinite, places >= 0, places <= 15 else { return x }
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let magnitude = Swift.abs(x)
        // floor(magnitude * scale) from the exact product: fused multiply-adds give exact signs.
        var floor = (magnitude * scale).rounded(.down)
        if (-floor).addingProduct(magnitude, scale) < 0 {
            floor -= 1
        } else if (-(floor + 1)).addingProduct(magnitude, scale) >= 0 {
            floor += 1
        }
        let aboveHalf = (-(floor + 0.5)).addingProduct(magnitude, scale)
        let digits: Double
        if aboveHalf > 0 {
            digits = floor + 1
        } else if aboveHalf < 0 {
            digits = floor
        } else {
            digits = floor.truncatingRemainder(dividingBy: 2) == 0 ? floor : floor + 1
        }
        let rounded = digits / scale
        return x < 0 ? -rounded : rounded
    }
}

/// VADER's word valences (`vader_lexicon.txt`: token TAB mean TAB sd TAB ratings) and, optionally,
/// its emoji descriptions (`emoji_utf8_lexicon.txt`: emoji TAB description).
public struct VaderLexicon: Sendable {
    /// Token (as written in the file, UTF-8) -> mean valence.
    let valences: [[UInt8]: Double]
    /// Single-scalar emoji -> its description. (The package looks emoji up one code point at a time,
    /// so entries of several scalars can never match and are not kept.)
    let emoji: [UInt32: [Unicode.Scalar]]

    /// The number of distinct tokens with a valence.
    public var wordCount: Int { valences.count }
    /// True when emoji descriptions were loaded; without them emoji are ordinary characters.
    public var hasEmoji: Bool { !emoji.isEmpty }

    /// The file names in a VADER asset directory.
    public static let lexiconFileName = "vader_lexicon.txt"
    public static let emojiFileName = "emoji_utf8_lexicon.txt"

    /// Parses the texts of the two files; `source` and `emojiSource` name them in errors.
    ///
    /// - Throws: `EvaluationError` naming `source:line` for a line without a token and a value, or
    ///   whose value is not a finite number, and `emojiSource:line` for an emoji line without a
    ///   description.
    public init(lexicon: String, source: String = "vader lexicon", emoji: String? = nil,
                emojiSource: String = "emoji lexicon") throws {
        var valences: [[UInt8]: Double] = [:]
        valences.reserveCapacity(8192)
        try Self.forEachEntry(lexicon, source: source) { fields, line in
            let token = Array(String(String.UnicodeScalarView(fields[0])).utf8)
            let text = String(String.UnicodeScalarView(Self.trimmed(fields[1])))
            guard let value = Double(text), value.isFinite else {
                throw EvaluationError("\(source):\(line): the valence \(String(reflecting: text)) is not a number")
            }
            valences[token] = value
        }
        var emojiMap: [UInt32: [Unicode.Scalar]] = [:]
        if let emoji {
            try Self.forEachEntry(emoji, source: emojiSource) { fields, _ in
                if fields[0].count == 1 {
                    emojiMap[fields[0].first!.value] = Array(fields[1])
                }
            }
        }
        self.valences = valences
        self.emoji = emojiMap
    }

    /// Reads the lexicon file and, when given, the emoji file.
    ///
    /// - Throws: `EvaluationError` naming the file when it cannot be read or is not UTF-8, and
    ///   `file:line` for a malformed line.
    public init(lexiconFile: String, emojiFile: String? = nil) throws {
        try self.init(lexicon: Self.read(lexiconFile), source: lexiconFile,
                      emoji: try emojiFile.map(Self.read), emojiSource: emojiFile ?? "")
    }

    /// The lexicon of an asset directory (`assets/vader`): `vader_lexicon.txt`, which must exist,
    /// and `emoji_utf8_lexicon.txt` when it is there.
    public init(directory: String) throws {
        let base = URL(fileURLWithPath: directory)
        let lexicon = base.appendingPathComponent(Self.lexiconFileName).path
        let emoji = base.appendingPathComponent(Self.emojiFileName).path
        try self.init(lexiconFile: lexicon,
                      emojiFile: FileManager.default.fileExists(atPath: emoji) ? emoji : nil)
    }

    /// The valence of `word` exactly as it appears in the lexicon (lowercase it first to look up
    /// running text the way the analyzer does), or nil.
    public func valence(of word: String) -> Double? {
        valences[Array(word.utf8)]
    }

    private static func read(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw EvaluationError("vader: cannot read \(path)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw EvaluationError("vader: \(path) is not UTF-8 text")
        }
        return text
    }

    /// Calls `body` with the first two tab-separated fields of each non-blank line (trimmed of
    /// surrounding whitespace first) and the line's 1-based number.
    private static func forEachEntry(
        _ text: String, source: String,
        _ body: ([ArraySlice<Unicode.Scalar>], Int) throws -> Void
    ) throws {
        let scalars = Array(text.unicodeScalars)
        var lineNumber = 0
        var start = 0
        while start <= scalars.count {
            var end = start
            while end < scalars.count && scalars[end] != "\n" { end += 1 }
            lineNumber += 1
            let line = trimmed(scalars[start..<end])
            if !line.isEmpty {
                let fields = line.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false)
                guard fields.count >= 2, !fields[0].isEmpty else {
                    throw EvaluationError("\(source):\(lineNumber): expected a token, a tab and a value")
                }
                try body(Array(fields[0..<2]), lineNumber)
            }
            start = end + 1
        }
    }

    static func trimmed(_ s: ArraySlice<Unicode.Scalar>) -> ArraySlice<Unicode.Scalar> {
        var a = s.startIndex, b = s.endIndex
        while a < b && isPythonSpace(s[a].value) { a += 1 }
        while b > a && isPythonSpace(s[b - 1].value) { b -= 1 }
        return s[a..<b]
    }
}

/// Whitespace as Python's `str.split()` / `str.strip()` see it.
@inline(__always)
func isPythonSpace(_ v: UInt32) -> Bool {
    switch v {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
        return true
    default:
        return false
    }
}

/// ASCII punctuation (Python's `string.punctuation`).
@inline(__always)
private func isASCIIPunctuation(_ v: UInt32) -> Bool {
    switch v {
    case 0x21...0x2F, 0x3A...0x40, 0x5B...0x60, 0x7B...0x7E: return true
    default: return false
    }
}

/// The VADER rules over a lexicon.
public struct VaderAnalyzer: Sendable {
    public let lexicon: VaderLexicon

    // The package's empirically derived constants.
    /// A booster word's push away from zero (a dampener's is its negative).
    public static let boosterIncrement = 0.293
    /// An ALL-CAPS word's push away from zero, when the text is not all caps.
    public static let capsIncrement = 0.733
    /// The factor a negation applies.
    public static let negationScalar = -0.74
    /// Per exclamation mark, counting at most four.
    public static let exclamationIncrement = 0.292
    /// Per question mark when there are two or three; more than three count `questionCap`.
    public static let questionIncrement = 0.18
    public static let questionCap = 0.96
    /// The `alpha` of `x / sqrt(x² + alpha)`.
    public static let normalizationAlpha = 15.0

    public init(lexicon: VaderLexicon) {
        self.lexicon = lexicon
    }

    /// An analyzer over the lexicon of an asset directory (see `VaderLexicon(directory:)`).
    public init(directory: String) throws {
        self.init(lexicon: try VaderLexicon(directory: directory))
    }

    /// `x / sqrt(x² + 15)`, clamped to [-1, 1].
    public static func normalize(_ x: Double) -> Double {
        let n = x / (x * x + normalizationAlpha).squareRoot()
        return min(1, max(-1, n))
    }

    /// The sentiment of `text` as vaderSentiment 3.3.2 scores it.
    public func polarityScores(_ text: String) -> VaderScores {
        let scalars = expandingEmoji(text)
        var exclamations = 0, questions = 0
        for s in scalars {
            if s == "!" { exclamations += 1 } else if s == "?" { questions += 1 }
        }
        let words = tokens(scalars)
        if words.isEmpty { return VaderScores(neg: 0, neu: 0, pos: 0, compound: 0) }

        var upper = 0
        for w in words where w.isUpper { upper += 1 }
        let capsDiffer = upper > 0 && upper < words.count

        var sentiments: [Double] = []
        sentiments.reserveCapacity(words.count)
        for i in words.indices {
            if words[i].booster != nil
                || (i + 1 < words.count && words[i].lower == Word.kind && words[i + 1].lower == Word.of) {
                sentiments.append(0)
            } else {
                sentiments.append(valence(at: i, words, capsDiffer: capsDiffer))
            }
        }
        applyBut(words, &sentiments)

        var emphasis = Double(min(exclamations, 4)) * Self.exclamationIncrement
        if questions > 1 {
            emphasis += questions <= 3 ? Double(questions) * Self.questionIncrement : Self.questionCap
        }
        var sum = 0.0
        for s in sentiments { sum += s }
        if sum > 0 { sum += emphasis } else if sum < 0 { sum -= emphasis }
        let compound = Self.normalize(sum)

        // Each scored word weighs 1 + |valence|; each neutral word 1.
        var positive = 0.0, negative = 0.0, neutral = 0
        for s in sentiments {
            if s > 0 { positive += s + 1 }
            if s < 0 { negative += s - 1 }
            if s == 0 { neutral += 1 }
        }
        if positive > Swift.abs(negative) {
            positive += emphasis
        } else if positive < Swift.abs(negative) {
            negative -= emphasis
        }
        let total = positive + Swift.abs(negative) + Double(neutral)
        return VaderScores(
            neg: VaderScores.round(Swift.abs(negative / total), places: 3),
            neu: VaderScores.round(Swift.abs(Double(neutral) / total), places: 3),
            pos: VaderScores.round(Swift.abs(positive / total), places: 3),
            compound: VaderScores.round(compound, places: 4))
    }

    // MARK: - Words

    /// One whitespace-separated token after punctuation trimming.
    struct Word {
        /// The lowercase token, UTF-8.
        var lower: [UInt8]
        /// Python's `isupper`: some cased letter, none lowercase or titlecase.
        var isUpper: Bool
        /// Its lexicon valence, when it has one.
        var valence: Double?
        /// Its booster/dampener increment, when it is one.
        var booster: Double?
        /// A negation word, or a word containing "n't".
        var negates: Bool

        static let but = bytes("but"), no = bytes("no"), or = bytes("or"), nor = bytes("nor")
        static let kind = bytes("kind"), of = bytes("of"), least = bytes("least"), at = bytes("at")
        static let very = bytes("very"), never = bytes("never"), so = bytes("so"), this = bytes("this")
        static let without = bytes("without"), doubt = bytes("doubt")
    }

    /// The text with each single-scalar emoji replaced by its description, a space put before the
    /// description unless a space precedes it (and none after, as the package does).
    private func expandingEmoji(_ text: String) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.utf8.count)
        if !lexicon.hasEmoji {
            out.append(contentsOf: text.unicodeScalars)
            return out
        }
        var afterSpace = true
        for s in text.unicodeScalars {
            if let description = lexicon.emoji[s.value] {
                if !afterSpace { out.append(" ") }
                out.append(contentsOf: description)
                afterSpace = false
            } else {
                out.append(s)
                afterSpace = s == " "
            }
        }
        return out
    }

    /// Splits on whitespace and trims leading/trailing ASCII punctuation from each token, unless
    /// that leaves two scalars or fewer (an emoticon such as ":)" or ":-D" stays whole).
    private func tokens(_ scalars: [Unicode.Scalar]) -> [Word] {
        var words: [Word] = []
        var i = 0
        let n = scalars.count
        while i < n {
            while i < n && isPythonSpace(scalars[i].value) { i += 1 }
            if i == n { break }
            var end = i
            while end < n && !isPythonSpace(scalars[end].value) { end += 1 }
            var a = i, b = end
            while a < b && isASCIIPunctuation(scalars[a].value) { a += 1 }
            while b > a && isASCIIPunctuation(scalars[b - 1].value) { b -= 1 }
            if b - a <= 2 { a = i; b = end }
            words.append(word(scalars[a..<b]))
            i = end
        }
        return words
    }

    private func word(_ token: ArraySlice<Unicode.Scalar>) -> Word {
        var lower: [UInt8] = []
        lower.reserveCapacity(token.count)
        var cased = false, noLower = true
        for s in token {
            let v = s.value
            if v < 0x80 {
                if v >= 0x41 && v <= 0x5A {
                    cased = true
                    lower.append(UInt8(v + 0x20))
                } else {
                    if v >= 0x61 && v <= 0x7A { noLower = false }
                    lower.append(UInt8(v))
                }
                continue
            }
            let p = s.properties
            if p.isLowercase || p.generalCategory == .titlecaseLetter {
                noLower = false
            } else if p.isUppercase {
                cased = true
            }
            // Full lowercase mappings, as Python's str.lower (its context-dependent final sigma
            // aside, which no lexicon entry can tell apart).
            for m in p.lowercaseMapping.unicodeScalars {
                UTF8.encode(m) { lower.append($0) }
            }
        }
        return Word(lower: lower, isUpper: cased && noLower,
                    valence: lexicon.valences[lower], booster: boosters[lower],
                    negates: negations.contains(lower) || containsNT(lower))
    }

    // MARK: - Rules

    /// The valence of the lexicon word at `i` after the rules that look at its neighbours
    /// (0 for a word not in the lexicon).
    private func valence(at i: Int, _ w: [Word], capsDiffer: Bool) -> Double {
        guard let base = w[i].valence else { return 0 }
        var v = base
        // "no" before another lexicon word negates it rather than counting itself.
        if w[i].lower == Word.no && i + 1 < w.count && w[i + 1].valence != nil {
            v = 0
        }
        if (i > 0 && w[i - 1].lower == Word.no) || (i > 1 && w[i - 2].lower == Word.no)
            || (i > 2 && w[i - 3].lower == Word.no && (w[i - 1].lower == Word.or || w[i - 1].lower == Word.nor)) {
            v = base * Self.negationScalar
        }
        if w[i].isUpper && capsDiffer {
            if v > 0 { v += Self.capsIncrement } else { v -= Self.capsIncrement }
        }
        // The three preceding words, nearest first, when they are not lexicon words themselves.
        for distance in 1...3 where i >= distance && w[i - distance].valence == nil {
            var s = boost(w[i - distance], valence: v, capsDiffer: capsDiffer)
            if s != 0 {
                if distance == 2 { s *= 0.95 } else if distance == 3 { s *= 0.9 }
            }
            v += s
            v = negation(v, distance: distance, at: i, w)
            if distance == 3 { v = idioms(v, at: i, w) }
        }
        return least(v, at: i, w)
    }

    /// The push of booster/dampener `word` on a word of valence `valence`.
    private func boost(_ word: Word, valence: Double, capsDiffer: Bool) -> Double {
        guard let increment = word.booster else { return 0 }
        var s = valence < 0 ? -increment : increment
        if word.isUpper && capsDiffer {
            if valence > 0 { s += Self.capsIncrement } else { s -= Self.capsIncrement }
        }
        return s
    }

    /// Negation by the word `distance` before `i`, with "never so/this" (x1.25) and "without
    /// doubt" (no change) as exceptions.
    private func negation(_ v: Double, distance: Int, at i: Int, _ w: [Word]) -> Double {
        func soOrThis(_ k: Int) -> Bool { w[k].lower == Word.so || w[k].lower == Word.this }
        switch distance {
        case 1:
            return w[i - 1].negates ? v * Self.negationScalar : v
        case 2:
            if w[i - 2].lower == Word.never && soOrThis(i - 1) { return v * 1.25 }
            if w[i - 2].lower == Word.without && w[i - 1].lower == Word.doubt { return v }
            return w[i - 2].negates ? v * Self.negationScalar : v
        default:
            // As in the package, "so" or "this" right before the word boosts it whatever precedes.
            if (w[i - 3].lower == Word.never && soOrThis(i - 2)) || soOrThis(i - 1) { return v * 1.25 }
            if w[i - 3].lower == Word.without && (w[i - 2].lower == Word.doubt || w[i - 1].lower == Word.doubt) {
                return v
            }
            return w[i - 3].negates ? v * Self.negationScalar : v
        }
    }

    /// Fixed phrases around word `i` (i >= 3) that replace its valence, then the two-word
    /// dampeners ("kind of", "sort of", "just enough") in the three words before it.
    private func idioms(_ v: Double, at i: Int, _ w: [Word]) -> Double {
        func phrase(_ range: ClosedRange<Int>) -> [UInt8] {
            var out = w[range.lowerBound].lower
            for k in range.dropFirst() {
                out.append(0x20)
                out.append(contentsOf: w[k].lower)
            }
            return out
        }
        var v = v
        for range in [(i - 1)...i, (i - 2)...i, (i - 2)...(i - 1), (i - 3)...(i - 1), (i - 3)...(i - 2)] {
            if let value = specialCases[phrase(range)] {
                v = value
                break
            }
        }
        if i + 1 < w.count, let value = specialCases[phrase(i...(i + 1))] { v = value }
        if i + 2 < w.count, let value = specialCases[phrase(i...(i + 2))] { v = value }
        for range in [(i - 3)...(i - 1), (i - 3)...(i - 2), (i - 2)...(i - 1)] {
            if let increment = boosters[phrase(range)] { v += increment }
        }
        return v
    }

    /// "least" right before the word negates it, except in "at least" and "very least".
    private func least(_ v: Double, at i: Int, _ w: [Word]) -> Double {
        guard i > 0, w[i - 1].valence == nil, w[i - 1].lower == Word.least else { return v }
        if i > 1 && (w[i - 2].lower == Word.at || w[i - 2].lower == Word.very) { return v }
        return v * Self.negationScalar
    }

    /// The first "but" halves what precedes it and multiplies what follows by 1.5. As in the
    /// package, each value is located by its first equal value in the list, so repeated values
    /// scale the first of them again instead of themselves.
    private func applyBut(_ w: [Word], _ sentiments: inout [Double]) {
        guard let but = w.firstIndex(where: { $0.lower == Word.but }) else { return }
        for k in sentiments.indices {
            let s = sentiments[k]
            if s == 0 { continue }  // zero scaled stays zero, wherever it is found
            let first = sentiments.firstIndex(of: s)!
            if first < but {
                sentiments[first] = s * 0.5
            } else if first > but {
                sentiments[first] = s * 1.5
            }
        }
    }
}

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

private func containsNT(_ word: [UInt8]) -> Bool {
    guard word.count >= 3 else { return false }
    for k in 0...(word.count - 3) where word[k] == 0x6E && word[k + 1] == 0x27 && word[k + 2] == 0x74 {
        return true
    }
    return false
}

// The package's word lists (facts of the model, as published in vaderSentiment 3.3.2).

private let negations: Set<[UInt8]> = Set([
    "aint", "arent", "cannot", "cant", "couldnt", "darent", "didnt", "doesnt",
    "ain't", "aren't", "can't", "couldn't", "daren't", "didn't", "doesn't",
    "dont", "hadnt", "hasnt", "havent", "isnt", "mightnt", "mustnt", "neither",
    "don't", "hadn't", "hasn't", "haven't", "isn't", "mightn't", "mustn't",
    "neednt", "needn't", "never", "none", "nope", "nor", "not", "nothing", "nowhere",
    "oughtnt", "shant", "shouldnt", "uhuh", "wasnt", "werent",
    "oughtn't", "shan't", "shouldn't", "uh-uh", "wasn't", "weren't",
    "without", "wont", "wouldnt", "won't", "wouldn't", "rarely", "seldom", "despite",
].map(bytes))

private let boosters: [[UInt8]: Double] = {
    let up = [
        "absolutely", "amazingly", "awfully", "completely", "considerable", "considerably",
        "decidedly", "deeply", "effing", "enormous", "enormously", "entirely", "especially",
        "exceptional", "exceptionally", "extreme", "extremely", "fabulously", "flipping", "flippin",
        "frackin", "fracking", "fricking", "frickin", "frigging", "friggin", "fully", "fuckin",
        "fucking", "fuggin", "fugging", "greatly", "hella", "highly", "hugely", "incredible",
        "incredibly", "intensely", "major", "majorly", "more", "most", "particularly", "purely",
        "quite", "really", "remarkably", "so", "substantially", "thoroughly", "total", "totally",
        "tremendous", "tremendously", "uber", "unbelievably", "unusually", "utter", "utterly", "very",
    ]
    let down = [
        "almost", "barely", "hardly", "just enough", "kind of", "kinda", "kindof", "kind-of",
        "less", "little", "marginal", "marginally", "occasional", "occasionally", "partly",
        "scarce", "scarcely", "slight", "slightly", "somewhat", "sort of", "sorta", "sortof", "sort-of",
    ]
    var table: [[UInt8]: Double] = [:]
    for word in up { table[bytes(word)] = VaderAnalyzer.boosterIncrement }
    for word in down { table[bytes(word)] = -VaderAnalyzer.boosterIncrement }
    return table
}()

/// Phrases whose valence replaces that of the lexicon word inside them.
private let specialCases: [[UInt8]: Double] = [
    bytes("the shit"): 3, bytes("the bomb"): 3, bytes("bad ass"): 1.5, bytes("badass"): 1.5,
    bytes("bus stop"): 0, bytes("yeah right"): -2, bytes("kiss of death"): -1.5,
    bytes("to die for"): 3, bytes("beating heart"): 3.5,
]

/// A judge scoring each response's VADER `compound` (in [-1, 1]; the prompt is not read), the
/// sentiment reward of TRL's classic PPO example.
public struct VaderJudge: RewardFunction, Sendable {
    public let name = "vader"
    public let analyzer: VaderAnalyzer

    public init(analyzer: VaderAnalyzer) {
        self.analyzer = analyzer
    }

    /// A judge over the lexicon of an asset directory (`assets/vader`).
    public init(directory: String) throws {
        self.init(analyzer: try VaderAnalyzer(directory: directory))
    }

    public func scores(_ items: [JudgeItem]) -> [Double] {
        items.map { analyzer.polarityScores($0.response).compound }
    }
}
