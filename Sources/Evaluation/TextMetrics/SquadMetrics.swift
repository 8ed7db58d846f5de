/// Exact match and token F1 of an answer against a gold answer, as the official SQuAD (v1.1 and
/// v2.0) evaluation scripts compute them, after their normalization: lowercase, ASCII punctuation
/// removed, the articles a, an and the removed, whitespace collapsed.
public enum SquadMetrics {
    /// The normalized answer (the script's `normalize_answer`).
    public static func normalize(_ text: String) -> String {
        words(text).map { TextScalars.string($0) }.joined(separator: " ")
    }

    /// 1 when the normalized answers are equal, else 0.
    public static func exactMatch(prediction: String, reference: String) -> Double {
        words(prediction) == words(reference) ? 1 : 0
    }

    /// The harmonic mean of token precision and recall over the normalized tokens (clipped
    /// counts); when either side has no tokens, 1 if both have none, else 0.
    public static func f1(prediction: String, reference: String) -> Double {
        let p = words(prediction), g = words(reference)
        if p.isEmpty || g.isEmpty { return p.isEmpty && g.isEmpty ? 1 : 0 }
        var goldLeft: [ArraySlice<UInt32>: Int] = [:]
        for w in g { goldLeft[w, default: 0] += 1 }
        var same = 0
        for w in p { if let c = goldLeft[w], c > 0 { same += 1; goldLeft[w] = c - 1 } }
        guard same > 0 else { return 0 }
        let precision = Double(same) / Double(p.count), recall = Double(same) / Double(g.count)
        return 2 * precision * recall / (precision + recall)
    }

    /// The normalized tokens: lowercase, drop punctuation, blank out articles, split on whitespace.
    static func words(_ text: String) -> [ArraySlice<UInt32>] {
        var s: [UInt32] = []
        for c in TextScalars.lowercased(text) where !isPunctuation(c) { s.append(c) }
        // \b(a|an|the)\b: an article is a whole run of word characters.
        var i = 0
        while i < s.count {
            guard isWordCharacter(s[i]) else { i += 1; continue }
            var j = i
            while j < s.count && isWordCharacter(s[j]) { j += 1 }
            if isArticle(s[i..<j]) { for k in i..<j { s[k] = 0x20 } }
            i = j
        }
        return TextScalars.splitOnSpace(s)
    }

    /// Python's `string.punctuation`.
    private static func isPunctuation(_ c: UInt32) -> Bool {
        switch c {
        case 0x21...0x2F, 0x3A...0x40, 0x5B...0x60, 0x7B...0x7E: return true
        default: return false
        }
    }

    /// Python's Unicode `\w`: letters, numbers and the underscore.
    private static func isWordCharacter(_ c: UInt32) -> Bool {
        if c < 0x80 {
            return (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || TextScalars.isDigit(c) || c == 0x5F
        }
        guard let u = Unicode.Scalar(c) else { return false }
        switch u.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .decimalNumber, .letterNumber, .otherNumber:
            return true
        default:
            return false
        }
    }

    private static func isArticle(_ w: ArraySlice<UInt32>) -> Bool {
        switch w.count {
        case 1: return w.first == 0x61
        case 2: return w.elementsEqual([0x61, 0x6E])
        case 3: return w.elementsEqual([0x74, 0x68, 0x65])
        default: return false
        }
    }
}
