import DataParallel
import Foundation
import TensorCore

// PPO's clipped surrogate and clipped value losses on one micro-batch, as TRL 1.9.2's PPOTrainer
// computes them (formulas: RLHF.md items 10-11 and the ppo-step fixture's README). The new
// log-probs and value predictions are Tensors so the loss backpropagates into the policy and the
// value head; everything from the rollout (old log-probs, old values, advantages, returns, masks)
// is a constant [n * length] Float / Bool array of the micro-batch's rows (see `gatherRows`).

/// Logits divided by TRL's sampling temperature, `temperature + 1e-7`: what the rollout's and the
/// training forward's log-probs are taken from (for policy and reference alike). Rein's tensor
/// division multiplies by the reciprocal, so results can differ from torch's division by an ulp.
public func temperatureScaledLogits(_ logits: Tensor, temperature: Double) -> Tensor {
    logits / Float(temperature + 1e-7)
}

/// The mean of `x` over the positions where `include` is true, as a differentiable scalar
/// (TRL's `masked_mean`: one mean over all included elements). 0 when nothing is included (TRL
/// would give NaN).
public func maskedMean(_ x: Tensor, include: [Bool]) throws(PPOMathError) -> Tensor {
    try checkCount("mask", include.count, x.count)
    var n = 0
    for f in include where f { n &+= 1 }
    let keep = Tensor(shape: x.shape, values: include.map { $0 ? 1 : 0 })
    let kept = `where`(keep, x, Tensor.zeros(x.shape))
    return n == 0 ? kept.sum() * 0 : kept.sum() / Float(n)
}

/// The clipped policy loss of one micro-batch and its pieces.
public struct PPOPolicyLoss {
    /// masked_mean(max(-A·ρ, -A·clip(ρ, 1-ε, 1+ε)), valid tokens), differentiable.
    public let loss: Tensor
    /// new - old log-probs (0 at padded positions, where both hold `invalidLogProb`).
    public let logProbsDiff: [Float]
    /// ρ = exp(logProbsDiff).
    public let ratio: [Float]
    /// -A·ρ and -A·clip(ρ).
    public let pgLosses: [Float]
    public let pgLosses2: [Float]
    /// Fraction of valid tokens where the clipped term is the larger (`pg_losses2 > pg_losses`).
    public let clipFraction: Float
    /// 0.5·mean(logProbsDiff²) over all positions, the padded ones included.
    public let approxKL: Float
    /// mean(ρ) over all positions, the padded ones included (ρ = 1 there).
    public let ratioMean: Float
}

/// PPO's clipped surrogate loss.
///
/// - Parameters:
///   - newLogProbs: `[n, length]` log-probs of the rollout's tokens under the current policy
///     (logits divided by temperature + 1e-7); padded positions are overwritten with
///     `invalidLogProb` here, so the raw output of `gatherLogProbs` can be passed.
///   - oldLogProbs: the rollout's masked log-probs of these rows.
///   - advantages: the rollout's whitened advantages of these rows.
///   - paddingMask: the rows' `PPOResponseMasks.paddingMask` (true = padded, not in the mean).
///   - cliprange: ε.
public func ppoPolicyLoss(newLogProbs: Tensor, oldLogProbs: [Float], advantages: [Float], paddingMask: [Bool],
                          cliprange: Float) throws(PPOMathError) -> PPOPolicyLoss {
    let n = newLogProbs.count, shape = newLogProbs.shape
    try checkCount("old log-probs", oldLogProbs.count, n)
    try checkCount("advantages", advantages.count, n)
    try checkCount("padding mask", paddingMask.count, n)
    let padded = Tensor(shape: shape, values: paddingMask.map { $0 ? 1 : 0 })
    let masked = `where`(padded, Tensor(shape: shape, repeating: invalidLogProb), newLogProbs)
    let diff = masked - Tensor(shape: shape, values: oldLogProbs)
    let ratio = exp(diff)
    let negA = Tensor(shape: shape, values: advantages.map { -$0 })
    let lo = Float(1 - Double(cliprange)), hi = Float(1 + Double(cliprange))
    let pg1 = negA * ratio
    let pg2 = negA * clamp(ratio, min: Swift.min(lo, hi), max: Swift.max(lo, hi))
    let loss = try maskedMean(maximum(pg1, pg2), include: paddingMask.map { !$0 })

    let d = diff.values, r = ratio.values, l1 = pg1.values, l2 = pg2.values
    var clipped = 0, valid = 0
    var sq: Double = 0, rs: Double = 0
    for i in 0..<n {
        sq += Double(d[i]) * Double(d[i])
        rs += Double(r[i])
        if !paddingMask[i] {
            valid &+= 1
            if l2[i] > l1[i] { clipped &+= 1 }
        }
    }
    let count = Double(Swift.max(n, 1))
    return PPOPolicyLoss(loss: loss, logProbsDiff: d, ratio: r, pgLosses: l1, pgLosses2: l2,
                         clipFraction: valid > 0 ? Float(Double(clipped) / Double(valid)) : 0,
                         approxKL: Float(0.5 * sq / count), ratioMean: Float(rs / count))
}

/// The clipped value loss of one micro-batch and its pieces.
public struct PPOValueLoss {
    /// 0.5·masked_mean(max((V - R)², (V_clip - R)²), positions up to sequence_length + 1).
    public let loss: Tensor
    /// The value predictions with 0 beyond sequence_length + 1.
    public let vpred: [Float]
    /// clamp(V, V_old - ε_v, V_old + ε_v).
    public let vpredClipped: [Float]
    /// (V - R)² and (V_clip - R)².
    public let vfLosses1: [Float]
    public let vfLosses2: [Float]
    /// Fraction of the included positions where the clipped error is the larger.
    public let clipFraction: Float
}

/// PPO's clipped value loss.
///
/// - Parameters:
///   - values: `[n, length]` value-head outputs at the positions predicting each response token;
///     positions beyond sequence_length + 1 are zeroed here.
///   - oldValues: the rollout's masked values of these rows.
///   - returns: the rollout's returns of these rows.
///   - paddingMaskP1: the rows' `PPOResponseMasks.paddingMaskP1` (true = not in the mean).
///   - cliprangeValue: ε_v.
public func ppoValueLoss(values: Tensor, oldValues: [Float], returns: [Float], paddingMaskP1: [Bool],
                         cliprangeValue: Float) throws(PPOMathError) -> PPOValueLoss {
    let n = values.count, shape = values.shape
    try checkCount("old values", oldValues.count, n)
    try checkCount("returns", returns.count, n)
    try checkCount("padding mask p1", paddingMaskP1.count, n)
    let padded = Tensor(shape: shape, values: paddingMaskP1.map { $0 ? 1 : 0 })
    let vpred = `where`(padded, Tensor.zeros(shape), values)
    // clamp with per-element bounds, as torch: the value passes (with its gradient) where
    // lo <= V <= hi, else the bound (a constant). Writing it as V_old + clamp(V - V_old) would round
    // V in the unclipped case and count spurious clips.
    let v = vpred.values
    var bounded = [Float](repeating: 0, count: n)
    var passes = [Float](repeating: 0, count: n)
    for i in 0..<n {
        let lo = oldValues[i] - cliprangeValue, hi = oldValues[i] + cliprangeValue
        bounded[i] = Swift.min(Swift.max(v[i], lo), hi)
        passes[i] = v[i] >= lo && v[i] <= hi ? 1 : 0
    }
    let clippedT = `where`(Tensor(shape: shape, values: passes), vpred, Tensor(shape: shape, values: bounded))
    let ret = Tensor(shape: shape, values: returns)
    let e1 = vpred - ret, e2 = clippedT - ret
    let l1 = e1 * e1, l2 = e2 * e2
    let include = paddingMaskP1.map { !$0 }
    let loss = try maskedMean(maximum(l1, l2), include: include) * 0.5

    let a = l1.values, b = l2.values
    var clipped = 0, count = 0
    for i in 0..<n where include[i] {
        count &+= 1
        if b[i] > a[i] { clipped &+= 1 }
    }
    return PPOValueLoss(loss: loss, vpred: v, vpredClipped: clippedT.values, vfLosses1: a, vfLosses2: b,
                        clipFraction: count > 0 ? Float(Double(clipped) / Double(count)) : 0)
}

/// One micro-batch's PPO loss: `policy.loss + vfCoef * value.loss`.
public struct PPOLoss {
    public let loss: Tensor
    public let policy: PPOPolicyLoss
    public let value: PPOValueLoss
}

/// The total loss TRL backpropagates per micro-batch (before accelerate divides it by the
/// gradient-accumulation steps). Arguments as in `ppoPolicyLoss` and `ppoValueLoss`.
public func ppoLoss(newLogProbs: Tensor, values: Tensor, oldLogProbs: [Float], oldValues: [Float],
                    advantages: [Float], returns: [Float], paddingMask: [Bool], paddingMaskP1: [Bool],
                    cliprange: Float, cliprangeValue: Float, vfCoef: Float) throws(PPOMathError) -> PPOLoss {
    let p = try ppoPolicyLoss(newLogProbs: newLogProbs, oldLogProbs: oldLogProbs, advantages: advantages,
                              paddingMask: paddingMask, cliprange: cliprange)
    let v = try ppoValueLoss(values: values, oldValues: oldValues, returns: returns, paddingMaskP1: paddingMaskP1,
                             cliprangeValue: cliprangeValue)
    return PPOLoss(loss: p.loss + v.loss * vfCoef, policy: p, value: v)
}

/// Per-position entropy of the softmax of `logits` over the last axis:
/// logsumexp(x) - Σ softmax(x)·x (TRL's `entropy`, a metric: no gradient). Pass the
/// temperature-scaled logits.
public func tokenEntropies(logits: Tensor) -> [Float] {
    let V = logits.lastDim, rows = V > 0 ? logits.count / V : 0
    var out = [Float](repeating: 0, count: rows)
    let xp = logits.data
    out.withUnsafeMutableBufferPointer { o in
        var r = 0
        while r < rows {
            let x = xp + r &* V
            var m = -Float.infinity
            var j = 0
            while j < V { m = Swift.max(m, x[j]); j &+= 1 }
            var s: Double = 0, sx: Double = 0
            j = 0
            while j < V {
                let e = Foundation.exp(Double(x[j] - m))
                s += e
                sx += e * Double(x[j])
                j &+= 1
            }
            o[r] = Float(Double(m) + Foundation.log(s) - sx / s)
            r &+= 1
        }
    }
    return out
}

/// The per-micro-batch numbers TRL averages into one update's `policy/*`, `loss/*` and `val/*`
/// metrics.
public struct PPOUpdateStats: Sendable {
    public private(set) var approxKL: [Double] = []
    public private(set) var policyClipFraction: [Double] = []
    public private(set) var policyLoss: [Double] = []
    public private(set) var valueLoss: [Double] = []
    public private(set) var valueClipFraction: [Double] = []
    public private(set) var entropy: [Double] = []
    public private(set) var ratio: [Double] = []

    public init() {}

    /// Records one micro-batch; `entropyMean` is the mean of `tokenEntropies` over all its
    /// positions (nil when the logits were not kept: the entropy metric is then left out).
    public mutating func record(_ l: PPOLoss, entropyMean: Float?) {
        approxKL.append(Double(l.policy.approxKL))
        policyClipFraction.append(Double(l.policy.clipFraction))
        policyLoss.append(Double(l.policy.loss.item))
        valueLoss.append(Double(l.value.loss.item))
        valueClipFraction.append(Double(l.value.clipFraction))
        if let entropyMean { entropy.append(Double(entropyMean)) }
        ratio.append(Double(l.policy.ratioMean))
    }

    /// Records a micro-batch another process computed: zeros, which ``sum(over:)`` replaces by
    /// that process's numbers.
    public mutating func recordElsewhere() {
        for keyPath in Self.series { self[keyPath: keyPath].append(0) }
    }

    /// Every process's numbers in place of the zeros of ``recordElsewhere()`` (each micro-batch
    /// ran on exactly one process, so the sums are its numbers exactly).
    public mutating func sum(over communicator: any Communicator) throws {
        guard communicator.isDistributed else { return }
        var all = Self.series.flatMap { self[keyPath: $0] }
        let counts = Self.series.map { self[keyPath: $0].count }
        try communicator.allReduce(&all, .sum)
        var at = 0
        for (keyPath, n) in zip(Self.series, counts) {
            self[keyPath: keyPath] = Array(all[at..<(at + n)])
            at += n
        }
    }

    private static var series: [WritableKeyPath<PPOUpdateStats, [Double]>] {
        [\.approxKL, \.policyClipFraction, \.policyLoss, \.valueLoss, \.valueClipFraction, \.entropy, \.ratio]
    }

    /// TRL's names: the means of the recorded numbers, and `val/ratio_var` their unbiased variance.
    public var metrics: [String: Double] {
        func mean(_ x: [Double]) -> Double { x.isEmpty ? 0 : x.reduce(0, +) / Double(x.count) }
        let m = mean(ratio)
        let variance = ratio.count > 1 ? ratio.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(ratio.count - 1) : 0
        var out = [
            "policy/approxkl_avg": mean(approxKL), "policy/clipfrac_avg": mean(policyClipFraction),
            "loss/policy_avg": mean(policyLoss), "loss/value_avg": mean(valueLoss),
            "val/clipfrac_avg": mean(valueClipFraction), "val/ratio": m, "val/ratio_var": variance,
        ]
        if !entropy.isEmpty { out["policy/entropy_avg"] = mean(entropy) }
        return out
    }
}
