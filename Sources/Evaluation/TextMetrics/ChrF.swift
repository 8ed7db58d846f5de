/// The character n-gram counts chrF is computed from, for one segment or summed over a corpus:
/// for each order n = 1...6, the hypothesis n-grams, the reference n-grams and the clipped matches.
public struct ChrFStatistics: Sendable, Hashable {
    /// Hypothesis n-grams per order.
    public var hypothesis = [Int](repeating: 0, count: ChrF.charOrder)
    /// Reference n-grams per order.
    public var reference = [Int](repeating: 0, count: ChrF.charOrder)
    /// Matching n-grams per order.
    public var matches = [Int](repeating: 0, count: ChrF.charOrder)

    public init() {}

    /// The element-wise sum.
    public static func + (a: ChrFStatistics, b: ChrFStatistics) -> ChrFStatistics {
        var s = a
        for n in 0..<ChrF.charOrder {
            s.hypothesis[n] += b.hypothesis[n]
            s.reference[n] += b.reference[n]
            s.matches[n] += b.matches[n]
        }
        return s
    }
}

/// chrF as sacrebleu 2.6.0 computes it with its defaults: character n-grams of orders 1...6 over
/// the text with whitespace removed, no word n-grams, beta = 2, case-sensitive, and the precision
/// and recall averaged over the orders both sides have (`eps_smoothing=False`) before the F-score.
public enum ChrF {
    /// The longest character n-gram order.
    public static let charOrder = 6
    /// Recall weighs beta^2 = 4 times precision.
    public static let beta = 2.0
    /// sacrebleu's signature of the defaults.
    public static let signature = "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0"

    /// The counts of one hypothesis against its reference.
    public static func statistics(hypothesis: String, reference: String) -> ChrFStatistics {
        var ids: [UInt32: Int32] = [:]
        func dense(_ text: String) -> [Int32] {
            var out: [Int32] = []
            out.reserveCapacity(text.utf8.count)
            for u in text.unicodeScalars where !TextScalars.isPythonSpace(u.value) {
                if let id = ids[u.value] { out.append(id) } else {
                    let id = Int32(ids.count)
                    ids[u.value] = id
                    out.append(id)
                }
            }
            return out
        }
        let hyp = dense(hypothesis), ref = dense(reference)
        let bits = PackedNGrams.bits(distinct: ids.count)
        var s = ChrFStatistics()
        for n in 1...charOrder {
            let c = PackedNGrams.count(hyp, ref, order: n, bits: bits) ?? {
                let h = NGramCounts(hyp, order: n), r = NGramCounts(ref, order: n)
                return (h.total, r.total, h.matches(in: r))
            }()
            // As sacrebleu: hypothesis n-grams count only where the reference has n-grams of the order.
            s.hypothesis[n - 1] = c.b > 0 ? c.a : 0
            s.reference[n - 1] = c.b
            s.matches[n - 1] = c.matches
        }
        return s
    }

    /// Corpus chrF (counts summed over the segments) in 0...100.
    public static func corpus(hypotheses: [String], references: [String]) -> Double {
        precondition(hypotheses.count == references.count, "ChrF.corpus: \(hypotheses.count) hypotheses but \(references.count) references")
        var total = ChrFStatistics()
        for (h, r) in zip(hypotheses, references) { total = total + statistics(hypothesis: h, reference: r) }
        return score(total)
    }

    /// Sentence chrF in 0...100.
    public static func sentence(hypothesis: String, reference: String) -> Double {
        score(statistics(hypothesis: hypothesis, reference: reference))
    }

    /// The score of counts.
    public static func score(_ s: ChrFStatistics) -> Double {
        var precision = 0.0, recall = 0.0
        var orders = 0
        for n in 0..<charOrder where s.hypothesis[n] > 0 && s.reference[n] > 0 {
            precision += Double(s.matches[n]) / Double(s.hypothesis[n])
            recall += Double(s.matches[n]) / Double(s.reference[n])
            orders += 1
        }
        guard orders > 0 else { return 0 }
        precision /= Double(orders)
        recall /= Double(orders)
        guard precision + recall > 0 else { return 0 }
        let b2 = beta * beta
        return 100 * (1 + b2) * precision * recall / (b2 * precision + recall)
    }
}
