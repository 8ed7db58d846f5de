import Foundation
import TensorCore

// The critic-free advantage estimators (GRPO and RLOO) behind one seam, with TRL 1.16's formulas
// and logged metric names. Formulas: RLHF.md (critic-free section) and the rl-advantages fixture's
// README. Groups are consecutive blocks of `groupSize` rows (a prompt repeated G times); every std
// is unbiased (divides by count - 1) and its epsilon, 1e-4, is added to the std.

/// A setting or a batch the critic-free code cannot use, with what was wrong.
public enum CriticFreeError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Rows that do not split into groups of `groupSize`, or a group too small for a std.
    case badGroupSize(rows: Int, groupSize: Int)
    /// An array whose length does not fit the batch.
    case badShape(what: String, count: Int, expected: Int)
    /// A mask entry other than 0 or 1.
    case badMask(index: Int, value: Float)
    /// A setting value this implementation does not know.
    case unknownSetting(name: String, value: String)
    /// A setting that the chosen method needs and was not given, or one out of range.
    case badSetting(name: String, reason: String)

    public var description: String {
        switch self {
        case let .badGroupSize(rows, g):
            "\(rows) rows do not split into groups of \(g) (num_generations must be at least 2 and divide the batch)"
        case let .badShape(what, count, expected): "\(what) has \(count) values, expected \(expected)"
        case let .badMask(index, value): "completion mask entry \(index) is \(value); it must be 0 or 1"
        case let .unknownSetting(name, value): "unknown \(name) '\(value)'"
        case let .badSetting(name, reason): "\(name): \(reason)"
        }
    }
}

/// How GRPO scales the group-centred rewards (TRL's `scale_rewards`).
public enum RewardScaling: String, Sendable, Equatable, CaseIterable {
    /// Divide by the group's std (+1e-4).
    case group
    /// Divide by the std of the whole batch (+1e-4); the mean subtracted is still the group's.
    case batch
    /// No division (Dr. GRPO).
    case none

    /// A TRL value: `group`, `batch`, `none`, or the booleans TRL 1.16 still accepts (true = group).
    public init(setting: String) throws(CriticFreeError) {
        switch setting.lowercased() {
        case "group", "true": self = .group
        case "batch": self = .batch
        case "none", "false": self = .none
        default: throw .unknownSetting(name: "scale_rewards", value: setting)
        }
    }
}

/// Which critic-free advantage a rollout gets; the one place GRPO and RLOO differ before the loss.
public enum AdvantageEstimator: Sendable, Equatable {
    /// Group-relative: A = (r - mean_group) / (std + 1e-4), the KL (if any) goes into the loss.
    case grpo(scaleRewards: RewardScaling)
    /// Leave-one-out: A = r - mean of the other G-1 rewards of the group, the KL goes into the reward;
    /// optionally whitened over the batch.
    case rloo(normalizeAdvantages: Bool)
}

/// The per-token log-probs of a batch of completions that the advantages and losses read: the row
/// count and padded width, the completion mask, the generation-time (`old`) and reference log-probs.
/// Padding positions may hold any finite value; they are masked out.
public struct CompletionLogProbs: Sendable {
    /// Completions (N).
    public let rows: Int
    /// Padded completion width (T).
    public let width: Int
    /// N·T flags, 1 on completion tokens (EOS included), 0 on padding.
    public let mask: [Float]
    /// N·T log-probs at generation time; nil means "the current policy's, detached" (ratio 1, as
    /// TRL does with one iteration per generation).
    public let old: [Float]?
    /// N·T reference-model log-probs (needed when beta != 0).
    public let ref: [Float]?
    /// N·T per-token entropies, only for the `entropy` metric.
    public let entropies: [Float]?

    public init(rows: Int, width: Int, mask: [Float], old: [Float]?, ref: [Float]? = nil,
                entropies: [Float]? = nil) throws(CriticFreeError) {
        let n = rows * width
        guard rows >= 0, width >= 0 else { throw .badShape(what: "completion batch", count: rows, expected: width) }
        guard mask.count == n else { throw .badShape(what: "completion mask", count: mask.count, expected: n) }
        for (i, v) in mask.enumerated() where v != 0 && v != 1 { throw .badMask(index: i, value: v) }
        for (name, a) in [("old log-probs", old), ("reference log-probs", ref), ("entropies", entropies)] {
            if let a, a.count != n { throw .badShape(what: name, count: a.count, expected: n) }
        }
        self.rows = rows
        self.width = width
        self.mask = mask
        self.old = old
        self.ref = ref
        self.entropies = entropies
    }

    /// Rows `range` (a micro-batch).
    public func slice(rows range: Range<Int>) throws(CriticFreeError) -> CompletionLogProbs {
        guard range.lowerBound >= 0, range.upperBound <= rows else {
            throw .badShape(what: "micro-batch rows \(range)", count: range.upperBound, expected: rows)
        }
        let r = range.lowerBound * width..<range.upperBound * width
        return try CompletionLogProbs(rows: range.count, width: width, mask: Array(mask[r]), old: old.map { Array($0[r]) },
                                      ref: ref.map { Array($0[r]) }, entropies: entropies.map { Array($0[r]) })
    }

    /// Completion tokens in the batch (the sum of the mask).
    public var tokenCount: Int { mask.reduce(0) { $0 + ($1 != 0 ? 1 : 0) } }

    /// Completion tokens of each row.
    public var rowLengths: [Int] {
        (0..<rows).map { r in (0..<width).reduce(0) { $0 + (mask[r * width + $1] != 0 ? 1 : 0) } }
    }

    /// Σ_t x·m over the valid tokens of each row, accumulated in Double.
    func maskedRowSums(_ x: [Float]) -> [Double] {
        let T = width
        var out = [Double](repeating: 0, count: rows)
        x.withUnsafeBufferPointer { xp in
            mask.withUnsafeBufferPointer { mp in
                var r = 0
                while r < rows {
                    var s = 0.0, t = 0
                    let base = r &* T
                    while t < T { if mp[base &+ t] != 0 { s += Double(xp[base &+ t]) }; t &+= 1 }
                    out[r] = s
                    r &+= 1
                }
            }
        }
        return out
    }

    /// Σ x·m / Σ m over the whole batch (TRL's masked batch mean), 0 for an empty batch.
    func maskedMean(_ x: [Float]) -> Double {
        let total = maskedRowSums(x).reduce(0, +)
        return total / Double(max(tokenCount, 1))
    }
}

/// Advantages of one generation batch, and the metrics TRL logs while computing them.
public struct AdvantageResult: Sendable {
    /// One advantage per completion (N).
    public var advantages: [Float]
    /// The rewards the advantages were computed from: the raw ones, or for RLOO with beta != 0 the
    /// KL-penalized r - beta·Σ_t (old - ref)·m.
    public var shapedRewards: [Float]
    /// `reward`, `reward_std` (of the raw rewards), `frac_reward_zero_std`, and for RLOO with
    /// beta != 0 `kl` (token mean of old - ref).
    public var metrics: [String: Double]
}

/// Mean and unbiased std (NaN for fewer than two values) of a slice, in Double.
@inline(__always)
func meanAndUnbiasedStd(_ x: UnsafeBufferPointer<Double>) -> (mean: Double, std: Double) {
    let n = x.count
    var s = 0.0
    for v in x { s += v }
    let mean = s / Double(n)
    var q = 0.0
    for v in x { q += (v - mean) * (v - mean) }
    return (mean, n > 1 ? (q / Double(n &- 1)).squareRoot() : .nan)
}

/// torch.isclose(std, 0) with its default tolerances: |std| <= 1e-8.
@inline(__always)
func isCloseToZero(_ v: Double) -> Bool { abs(v) <= 1e-8 }

extension AdvantageEstimator {
    /// The advantages of `rewards` (N = groups × `groupSize`, consecutive groups).
    ///
    /// - Parameters:
    ///   - beta: RLOO's KL coefficient in the reward (ignored by GRPO, whose KL is in the loss).
    ///   - logProbs: the batch's mask and old/reference log-probs; RLOO with beta != 0 needs both.
    public func advantages(rewards: [Float], groupSize: Int, beta: Float = 0,
                           logProbs: CompletionLogProbs? = nil) throws(CriticFreeError) -> AdvantageResult {
        let N = rewards.count, G = groupSize
        guard G >= 2, N > 0, N % G == 0 else { throw .badGroupSize(rows: N, groupSize: G) }
        var r = rewards.map(Double.init)
        var metrics: [String: Double] = [:]
        let raw = r.withUnsafeBufferPointer { meanAndUnbiasedStd($0) }
        metrics["reward"] = raw.mean
        metrics["reward_std"] = raw.std

        var adv = [Double](repeating: 0, count: N)
        var zeroStdRows = 0
        switch self {
        case let .grpo(scaling):
            let batchStd = raw.std
            r.withUnsafeBufferPointer { rp in
                var g = 0
                while g < N {
                    let (mean, groupStd) = meanAndUnbiasedStd(UnsafeBufferPointer(rebasing: rp[g..<g &+ G]))
                    let std = scaling == .batch ? batchStd : groupStd
                    if isCloseToZero(std) { zeroStdRows &+= G }
                    var i = g
                    while i < g &+ G {
                        let centred = rp[i] - mean
                        adv[i] = scaling == RewardScaling.none ? centred : centred / (std + 1e-4)
                        i &+= 1
                    }
                    g &+= G
                }
            }
        case let .rloo(normalize):
            if beta != 0 {
                guard let lp = logProbs, let old = lp.old, let ref = lp.ref else {
                    throw .badSetting(name: "beta", reason: "RLOO with beta != 0 needs the old and reference log-probs")
                }
                guard lp.rows == N else { throw .badShape(what: "log-prob rows", count: lp.rows, expected: N) }
                var diff = [Float](repeating: 0, count: old.count)
                var i = 0
                while i < old.count { diff[i] = old[i] - ref[i]; i &+= 1 }
                let kl = lp.maskedRowSums(diff)
                for k in 0..<N { r[k] -= Double(beta) * Double(Float(kl[k])) }
                metrics["kl"] = lp.maskedMean(diff)
            }
            r.withUnsafeBufferPointer { rp in
                var g = 0
                while g < N {
                    let group = UnsafeBufferPointer(rebasing: rp[g..<g &+ G])
                    let std = meanAndUnbiasedStd(group).std
                    if isCloseToZero(std) { zeroStdRows &+= G }
                    var total = 0.0
                    for v in group { total += v }
                    var i = g
                    while i < g &+ G {
                        adv[i] = rp[i] - (total - rp[i]) / Double(G &- 1)
                        i &+= 1
                    }
                    g &+= G
                }
            }
            if normalize {
                let (mean, std) = adv.withUnsafeBufferPointer { meanAndUnbiasedStd($0) }
                for k in 0..<N { adv[k] = (adv[k] - mean) / (std + 1e-4) }
            }
        }
        metrics["frac_reward_zero_std"] = Double(zeroStdRows) / Double(N)
        return AdvantageResult(advantages: adv.map { Float($0) }, shapedRewards: r.map { Float($0) }, metrics: metrics)
    }
}
