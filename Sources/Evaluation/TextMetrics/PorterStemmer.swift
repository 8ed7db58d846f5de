/// The Porter stemmer (Porter, "An algorithm for suffix stripping", 1980) as nltk implements it.
///
/// rouge-score builds `nltk.stem.porter.PorterStemmer()`, whose default mode is
/// `NLTK_EXTENSIONS`: Porter's published rules plus a table of irregular forms (`dying` -> `die`),
/// words of one or two letters left alone, `-ies`/`-ied` on four-letter words kept as `-ie`
/// (`dies` -> `die`), `y` -> `i` only after a consonant that is not the whole stem, the
/// `-alli` rule applied first and re-run, `-bli` for `-abli`, and `-fulli`, `-logi` in step 2.
/// `.original` is `ORIGINAL_ALGORITHM`, the rules as published.
public struct PorterStemmer: Sendable {
    /// Which rule set.
    public enum Mode: Sendable {
        /// nltk's default, the one rouge-score uses.
        case nltkExtensions
        /// The published algorithm.
        case original
    }

    /// The rule set in use.
    public let mode: Mode

    /// A stemmer with `mode`'s rules.
    public init(mode: Mode = .nltkExtensions) {
        self.mode = mode
    }

    /// The stem of `word`, lowercased first (as nltk's `stem(word)`).
    public func stem(_ word: String) -> String {
        TextScalars.string(stem(scalars: TextScalars.of(word.lowercased())))
    }

    /// The stem of a lowercase word given as scalar values.
    func stem(scalars word: [UInt32]) -> [UInt32] {
        if mode == .nltkExtensions {
            if let irregular = Self.irregularForms[word] { return irregular }
            if word.count <= 2 { return word }
        }
        guard !word.isEmpty else { return word }
        var w = step1a(word)
        w = step1b(w)
        w = step1c(w)
        w = step2(w)
        w = step3(w)
        w = step4(w)
        w = step5a(w)
        return step5b(w)
    }

    // MARK: letters

    private static func s(_ text: String) -> [UInt32] { TextScalars.of(text) }
    private static let y: UInt32 = 0x79

    @inline(__always)
    private static func isVowel(_ c: UInt32) -> Bool { c == 0x61 || c == 0x65 || c == 0x69 || c == 0x6F || c == 0x75 }

    /// Porter's consonant: not a, e, i, o, u, and not a `y` after a consonant.
    private static func consonantFlags(_ w: ArraySlice<UInt32>) -> [Bool] {
        var flags: [Bool] = []
        flags.reserveCapacity(w.count)
        for c in w {
            if isVowel(c) { flags.append(false) } else if c == y { flags.append(flags.last.map { !$0 } ?? true) } else { flags.append(true) }
        }
        return flags
    }

    private static func isConsonant(_ w: [UInt32], _ i: Int) -> Bool { consonantFlags(w[0...i]).last! }

    /// m in [C](VC)^m[V]: the vowel-to-consonant transitions.
    private static func measure(_ w: ArraySlice<UInt32>) -> Int {
        let flags = consonantFlags(w)
        var m = 0
        for i in flags.indices.dropFirst() where !flags[i - 1] && flags[i] { m += 1 }
        return m
    }

    private static func measure(_ w: [UInt32]) -> Int { measure(w[...]) }
    private static func containsVowel(_ w: [UInt32]) -> Bool { consonantFlags(w[...]).contains(false) }

    /// *d: ends with a double consonant.
    private static func endsDoubleConsonant(_ w: [UInt32]) -> Bool {
        w.count >= 2 && w[w.count - 1] == w[w.count - 2] && isConsonant(w, w.count - 1)
    }

    /// *o: ends consonant-vowel-consonant, the last not w, x or y (nltk: or is a two-letter vowel-consonant word).
    private func endsCVC(_ w: [UInt32]) -> Bool {
        let n = w.count
        if n >= 3 {
            let f = Self.consonantFlags(w[...])
            let last = w[n - 1]
            if f[n - 3] && !f[n - 2] && f[n - 1] && last != 0x77 && last != 0x78 && last != Self.y { return true }
        }
        if mode == .nltkExtensions && n == 2 {
            let f = Self.consonantFlags(w[...])
            return !f[0] && f[1]
        }
        return false
    }

    private static func endsWith(_ w: [UInt32], _ suffix: [UInt32]) -> Bool {
        w.count >= suffix.count && w[(w.count - suffix.count)...].elementsEqual(suffix)
    }

    // MARK: rules

    /// One rule: a suffix (nil for *d, a double consonant), its replacement, and a condition on the stem.
    private struct Rule: Sendable {
        var suffix: [UInt32]?
        var replacement: [UInt32]
        var condition: (@Sendable ([UInt32]) -> Bool)?

        init(_ suffix: String?, _ replacement: String, _ condition: (@Sendable ([UInt32]) -> Bool)? = nil) {
            self.suffix = suffix.map(PorterStemmer.s)
            self.replacement = PorterStemmer.s(replacement)
            self.condition = condition
        }
    }

    /// The first rule whose suffix the word has decides: its replacement if the condition holds,
    /// otherwise the word unchanged.
    private static func apply(_ rules: [Rule], to w: [UInt32]) -> [UInt32] {
        for rule in rules {
            let stem: [UInt32]
            if let suffix = rule.suffix {
                guard endsWith(w, suffix) else { continue }
                stem = Array(w.dropLast(suffix.count))
            } else {
                guard endsDoubleConsonant(w) else { continue }
                stem = Array(w.dropLast(2))
            }
            if rule.condition?(stem) ?? true { return stem + rule.replacement }
            return w
        }
        return w
    }

    private static let positiveMeasure: @Sendable ([UInt32]) -> Bool = { measure($0) > 0 }
    private static let measureAbove1: @Sendable ([UInt32]) -> Bool = { measure($0) > 1 }

    private static let irregularForms: [[UInt32]: [UInt32]] = {
        let table = [
            "sky": ["sky", "skies"], "die": ["dying"], "lie": ["lying"], "tie": ["tying"], "news": ["news"],
            "inning": ["innings", "inning"], "outing": ["outings", "outing"], "canning": ["cannings", "canning"],
            "howe": ["howe"], "proceed": ["proceed"], "exceed": ["exceed"], "succeed": ["succeed"],
        ]
        var pool: [[UInt32]: [UInt32]] = [:]
        for (stem, forms) in table { for form in forms { pool[s(form)] = s(stem) } }
        return pool
    }()

    private func step1a(_ w: [UInt32]) -> [UInt32] {
        if mode == .nltkExtensions && w.count == 4 && Self.endsWith(w, Self.s("ies")) { return Array(w.dropLast(3)) + Self.s("ie") }
        return Self.apply(Self.step1aRules, to: w)
    }

    private static let step1aRules = [Rule("sses", "ss"), Rule("ies", "i"), Rule("ss", "ss"), Rule("s", "")]

    private func step1b(_ w: [UInt32]) -> [UInt32] {
        if mode == .nltkExtensions && Self.endsWith(w, Self.s("ied")) {
            return Array(w.dropLast(3)) + Self.s(w.count == 4 ? "ie" : "i")
        }
        if Self.endsWith(w, Self.s("eed")) {
            let stem = Array(w.dropLast(3))
            return Self.measure(stem) > 0 ? stem + Self.s("ee") : w
        }
        var stem: [UInt32]?
        for suffix in ["ed", "ing"] where Self.endsWith(w, Self.s(suffix)) {
            let candidate = Array(w.dropLast(suffix.count))
            if Self.containsVowel(candidate) { stem = candidate; break }
        }
        guard let stem, let last = stem.last else { return stem ?? w }
        let rules = [
            Rule("at", "ate"), Rule("bl", "ble"), Rule("iz", "ize"),
            Rule(nil, TextScalars.string([last])) { _ in last != 0x6C && last != 0x73 && last != 0x7A },
            Rule("", "e") { Self.measure($0) == 1 && self.endsCVC($0) },
        ]
        return Self.apply(rules, to: stem)
    }

    private func step1c(_ w: [UInt32]) -> [UInt32] {
        let rule = mode == .nltkExtensions
            ? Rule("y", "i") { $0.count > 1 && Self.isConsonant($0, $0.count - 1) }
            : Rule("y", "i") { Self.containsVowel($0) }
        return Self.apply([rule], to: w)
    }

    private func step2(_ w: [UInt32]) -> [UInt32] {
        if mode == .nltkExtensions && Self.endsWith(w, Self.s("alli")) && Self.measure(w.dropLast(4)) > 0 {
            return step2(Array(w.dropLast(4)) + Self.s("al"))
        }
        var rules = mode == .nltkExtensions ? Self.step2Rules : Self.step2OriginalRules
        if mode == .nltkExtensions {
            // The l of -logi stays with the stem, so geo-logi counts the measure of "geol".
            rules.append(Rule("logi", "log") { _ in Self.measure(w.dropLast(3)) > 0 })
        }
        return Self.apply(rules, to: w)
    }

    private static func makeStep2Rules(abli: Bool) -> [Rule] {
        let p = positiveMeasure
        return [
            Rule("ational", "ate", p), Rule("tional", "tion", p), Rule("enci", "ence", p), Rule("anci", "ance", p),
            Rule("izer", "ize", p), abli ? Rule("abli", "able", p) : Rule("bli", "ble", p), Rule("alli", "al", p),
            Rule("entli", "ent", p), Rule("eli", "e", p), Rule("ousli", "ous", p), Rule("ization", "ize", p),
            Rule("ation", "ate", p), Rule("ator", "ate", p), Rule("alism", "al", p), Rule("iveness", "ive", p),
            Rule("fulness", "ful", p), Rule("ousness", "ous", p), Rule("aliti", "al", p), Rule("iviti", "ive", p),
            Rule("biliti", "ble", p),
        ]
    }

    private static let step2OriginalRules = makeStep2Rules(abli: true)
    private static let step2Rules = makeStep2Rules(abli: false) + [Rule("fulli", "ful", positiveMeasure)]

    private func step3(_ w: [UInt32]) -> [UInt32] { Self.apply(Self.step3Rules, to: w) }

    private static let step3Rules = [
        Rule("icate", "ic", positiveMeasure), Rule("ative", "", positiveMeasure), Rule("alize", "al", positiveMeasure),
        Rule("iciti", "ic", positiveMeasure), Rule("ical", "ic", positiveMeasure), Rule("ful", "", positiveMeasure),
        Rule("ness", "", positiveMeasure),
    ]

    private func step4(_ w: [UInt32]) -> [UInt32] { Self.apply(Self.step4Rules, to: w) }

    private static let step4Rules: [Rule] = {
        let m = measureAbove1
        let ion = Rule("ion", "") { measure($0) > 1 && ($0.last == 0x73 || $0.last == 0x74) }
        return ["al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent"].map { Rule($0, "", m) }
            + [ion] + ["ou", "ism", "ate", "iti", "ous", "ive", "ize"].map { Rule($0, "", m) }
    }()

    /// (m>1) E -> ; (m=1 and not *o) E -> : both conditions are tried, unlike a rule list.
    private func step5a(_ w: [UInt32]) -> [UInt32] {
        guard w.last == 0x65 else { return w }
        let stem = Array(w.dropLast())
        let m = Self.measure(stem)
        if m > 1 || (m == 1 && !endsCVC(stem)) { return stem }
        return w
    }

    private func step5b(_ w: [UInt32]) -> [UInt32] {
        Self.apply([Rule("ll", "l") { _ in Self.measure(w.dropLast()) > 1 }], to: w)
    }
}
