/// "Did you mean": the one edit-distance suggester of Rein (recipe keys, stage references, kinds,
/// `--from`, `rein train` config keys).
public enum Suggestions {
    /// Levenshtein distance over bytes.
    public static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.utf8), b = Array(b.utf8)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = previous
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }

    /// The candidate nearest to `word` when it is close enough to be a likely typo: at most
    /// max(2, a third of the word's length) edits away.
    public static func nearest(to word: String, in candidates: [String]) -> String? {
        guard let best = candidates.min(by: { distance(word, $0) < distance(word, $1) }) else { return nil }
        return distance(word, best) <= max(2, word.count / 3) ? best : nil
    }
}
