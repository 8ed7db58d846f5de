import Foundation

/// Statistics of judgements: proportions with intervals and agreement between raters.
public enum Agreement {
    /// The 95% Wilson score interval of `successes` out of `n` (z = 1.959964); nil for n = 0.
    ///
    /// center = (p + z²/2n) / (1 + z²/n), half-width = z √(p(1-p)/n + z²/4n²) / (1 + z²/n).
    public static func wilson(successes: Double, n: Double, z: Double = 1.959964) -> (low: Double, high: Double)? {
        guard n > 0 else { return nil }
        let p = successes / n, z2 = z * z
        let denominator = 1 + z2 / n
        let center = (p + z2 / (2 * n)) / denominator
        let half = z * (p * (1 - p) / n + z2 / (4 * n * n)).squareRoot() / denominator
        return (max(0, center - half), min(1, center + half))
    }

    /// Cohen's kappa of two raters' labels of the same items, `(p_o - p_e) / (1 - p_e)` with `p_e` from each
    /// rater's own label shares; nil without items or when chance agreement is 1 (both always said one label).
    public static func cohenKappa(_ pairs: [(String, String)]) -> Double? {
        guard !pairs.isEmpty else { return nil }
        let n = Double(pairs.count)
        let observed = Double(pairs.filter { $0.0 == $0.1 }.count) / n
        var first: [String: Double] = [:], second: [String: Double] = [:]
        for (x, y) in pairs {
            first[x, default: 0] += 1
            second[y, default: 0] += 1
        }
        let chance = first.reduce(0.0) { $0 + $1.value / n * (second[$1.key] ?? 0) / n }
        guard chance < 1 else { return nil }
        return (observed - chance) / (1 - chance)
    }

    /// Krippendorff's alpha for nominal labels: `units` holds each item's labels (any number of raters;
    /// items with fewer than two labels are not pairable and left out). From the coincidence matrix
    /// o_ck = Σ_u (ordered c-k pairs in u) / (m_u - 1): alpha = 1 - (n - 1) Σ_{c≠k} o_ck / Σ_{c≠k} n_c n_k.
    /// Nil when nothing is pairable or every label is the same (no expected disagreement).
    public static func krippendorffAlphaNominal(_ units: [[String]]) -> Double? {
        var coincidences: [String: [String: Double]] = [:]
        for unit in units where unit.count >= 2 {
            let weight = 1 / Double(unit.count - 1)
            for i in unit.indices {
                for j in unit.indices where j != i {
                    coincidences[unit[i], default: [:]][unit[j], default: 0] += weight
                }
            }
        }
        let totals = coincidences.mapValues { $0.values.reduce(0, +) }
        let n = totals.values.reduce(0, +)
        guard n > 1 else { return nil }
        var observed = 0.0
        for (c, row) in coincidences { for (k, o) in row where k != c { observed += o } }
        var expected = 0.0
        for (c, nc) in totals { for (k, nk) in totals where k != c { expected += nc * nk } }
        guard expected > 0 else { return nil }
        return 1 - (n - 1) * observed / expected
    }

    /// The median of `values` (the mean of the middle two for an even count); nil when empty.
    public static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted(), mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }
}
