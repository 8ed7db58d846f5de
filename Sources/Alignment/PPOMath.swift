import Foundation

// The rollout arithmetic of PPO as TRL 1.9.2's PPOTrainer does it (Huang et al., "The N+
// implementation details of RLHF with PPO"; the conventions are listed in RLHF.md and the ppo-step
// fixture's README). Every batch tensor here is a flat row-major [rows * length] array of Float (or
// Int32 tokens, Bool masks): `rows` responses of `length` = response_length positions each.
//
// A PPO loop calls, per rollout batch:
//   1. `truncateAfterFirstEOS`           -> postprocessed responses (the judge scores these)
//   2. `PPOResponseMasks(postprocessed:)` -> sequence lengths, padding masks, contains-EOS flags
//   3. `applyMissingEOSPenalty`          -> penalized scores
//   4. `masked(logProbs:)`, `masked(values:)` on policy / reference log-probs and values
//   5. `perTokenKL`, `ppoRewards` (+ `whitenedRewards` when whiten_rewards)
//   6. `generalizedAdvantageEstimates`, `whitenedAdvantages`
// or all of it at once through `processPPORollout`. Then per micro-batch `ppoLoss` (PPOLoss.swift).

/// The log-prob TRL writes at padded response positions (`INVALID_LOGPROB`): both the rollout's
/// and the training forward's log-probs hold it, so their difference (and the KL) is 0 there.
public let invalidLogProb: Float = 1.0

/// The epsilon added to the variance by TRL's `masked_whiten`.
public let whitenEpsilon: Double = 1e-8

/// Why a rollout computation refused its input.
public enum PPOMathError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A flat tensor whose element count is not rows * length.
    case shapeMismatch(name: String, expected: Int, got: Int)
    /// Whitening needs at least two unmasked elements for the unbiased variance.
    case tooFewElementsToWhiten(name: String, count: Int)
    /// An estimator name other than k1 / k3.
    case unknownKLEstimator(String)

    public var description: String {
        switch self {
        case let .shapeMismatch(name, expected, got):
            return "\(name): expected \(expected) elements (rows x response length), got \(got)"
        case let .tooFewElementsToWhiten(name, count):
            return "\(name): whitening needs at least 2 unmasked elements for an unbiased variance, the batch has \(count)"
        case let .unknownKLEstimator(name):
            return "unknown kl_estimator '\(name)' (expected k1 or k3)"
        }
    }
}

/// TRL's per-token KL estimators of KL(π || π_ref) from the sampled token's log-probs.
public enum KLEstimator: String, Codable, Sendable, CaseIterable {
    /// kl = logπ - logπ_ref (= -logr).
    case k1
    /// kl = (r - 1) - log r with r = π_ref/π = exp(logr): unbiased and never negative.
    case k3

    /// The estimator named `name`, or an error naming the accepted values.
    public static func named(_ name: String) throws(PPOMathError) -> KLEstimator {
        guard let e = KLEstimator(rawValue: name) else { throw .unknownKLEstimator(name) }
        return e
    }
}

@inline(__always)
func checkCount(_ name: String, _ got: Int, _ expected: Int) throws(PPOMathError) {
    if got != expected { throw .shapeMismatch(name: name, expected: expected, got: got) }
}

/// A flat [rows * length] tensor with non-negative dimensions.
@inline(__always)
func checkRows(_ name: String, _ count: Int, rows: Int, length: Int) throws(PPOMathError) {
    if rows < 0 || length < 0 { throw .shapeMismatch(name: name + " dimensions", expected: 0, got: min(rows, length)) }
    try checkCount(name, count, rows &* length)
}

// MARK: Truncation, lengths, masks

/// Each row's tokens after its first `eos` replaced by `pad` (TRL's `truncate_response` with
/// `stop_token_id = eos`); the EOS itself is kept. Rows without an EOS are unchanged.
public func truncateAfterFirstEOS(_ responses: [Int32], rows: Int, length: Int, eos: Int32, pad: Int32)
    throws(PPOMathError) -> [Int32] {
    try checkRows("responses", responses.count, rows: rows, length: length)
    var out = responses
    out.withUnsafeMutableBufferPointer { o in
        var r = 0
        while r < rows {
            let row = o.baseAddress! + r &* length
            var t = 0
            while t < length && row[t] != eos { t &+= 1 }
            t &+= 1
            while t < length { row[t] = pad; t &+= 1 }
            r &+= 1
        }
    }
    return out
}

/// The response part of each row of `queryResponses` ([rows * (contextLength + length)] tokens:
/// left-padded prompt, then response), as [rows * length]. Only this part decides truncation and the
/// missing-EOS penalty; an EOS inside the prompt does not count.
public func responsesOf(queryResponses: [Int32], rows: Int, contextLength: Int) throws(PPOMathError) -> [Int32] {
    guard rows > 0 else { return [] }
    let width = queryResponses.count / rows
    try checkCount("query-responses", queryResponses.count, rows &* width)
    guard width >= contextLength, contextLength >= 0 else {
        throw .shapeMismatch(name: "query-responses row", expected: contextLength, got: width)
    }
    var out: [Int32] = []
    out.reserveCapacity(rows &* (width &- contextLength))
    for r in 0..<rows { out.append(contentsOf: queryResponses[(r &* width &+ contextLength)..<((r &+ 1) &* width)]) }
    return out
}

/// Per row, the index of the first true flag, or `length` when there is none (TRL's
/// `first_true_indices`).
public func firstTrueIndices(_ flags: [Bool], rows: Int, length: Int) throws(PPOMathError) -> [Int] {
    try checkRows("flags", flags.count, rows: rows, length: length)
    var out = [Int](repeating: length, count: rows)
    flags.withUnsafeBufferPointer { f in
        var r = 0
        while r < rows {
            let row = f.baseAddress! + r &* length
            var t = 0
            while t < length && !row[t] { t &+= 1 }
            out[r] = t
            r &+= 1
        }
    }
    return out
}

/// What TRL derives from the postprocessed responses.
public struct PPOResponseMasks: Equatable, Sendable {
    public let rows: Int
    public let length: Int
    /// Index of the last kept token: `first_true_indices(post == pad) - 1` (the EOS, or length-1
    /// when the row has no pad). -1 when the response starts with a pad.
    public let sequenceLengths: [Int]
    /// True at positions after the last kept token (`arange(R) > sequence_lengths`): log-probs hold
    /// `invalidLogProb` there, and advantages are whitened over the false positions.
    public let paddingMask: [Bool]
    /// True at positions more than one after the last kept token (`arange(R) > sequence_lengths + 1`):
    /// values are 0 there; the value and the reward at `sequence_length + 1` are kept.
    public let paddingMaskP1: [Bool]
    /// Whether the postprocessed response holds an EOS (the prompt is never looked at).
    public let containsEOS: [Bool]

    /// The masks of `postprocessed` ([rows * length] tokens after `truncateAfterFirstEOS`).
    public init(postprocessed: [Int32], rows: Int, length: Int, eos: Int32, pad: Int32) throws(PPOMathError) {
        try checkRows("postprocessed responses", postprocessed.count, rows: rows, length: length)
        self.rows = rows
        self.length = length
        let firstPad = try firstTrueIndices(postprocessed.map { $0 == pad }, rows: rows, length: length)
        sequenceLengths = firstPad.map { $0 &- 1 }
        var pm = [Bool](repeating: false, count: rows &* length), pm1 = pm
        var eosFlags = [Bool](repeating: false, count: rows)
        for r in 0..<rows {
            let s = sequenceLengths[r]
            for t in 0..<length {
                pm[r &* length &+ t] = t > s
                pm1[r &* length &+ t] = t > s &+ 1
                if postprocessed[r &* length &+ t] == eos { eosFlags[r] = true }
            }
        }
        paddingMask = pm
        paddingMaskP1 = pm1
        containsEOS = eosFlags
    }

    /// Where TRL adds the score: one position after the last kept token (`sequence_length + 1`)
    /// when that is inside the response, else the last kept token (EOS at R-1, or no EOS).
    public var scorePositions: [Int] {
        sequenceLengths.map { $0 &+ 1 < length ? $0 &+ 1 : $0 }
    }

    /// `logProbs` with `invalidLogProb` at `paddingMask` positions.
    public func masked(logProbs: [Float]) throws(PPOMathError) -> [Float] {
        try checkCount("log-probs", logProbs.count, rows &* length)
        var out = logProbs
        for i in 0..<out.count where paddingMask[i] { out[i] = invalidLogProb }
        return out
    }

    /// `values` with 0 at `paddingMaskP1` positions.
    public func masked(values: [Float]) throws(PPOMathError) -> [Float] {
        try checkCount("values", values.count, rows &* length)
        var out = values
        for i in 0..<out.count where paddingMaskP1[i] { out[i] = 0 }
        return out
    }
}

/// `scores` minus `penalty` for every row whose response has no EOS (`containsEOS` false);
/// unchanged when `penalty` is nil.
public func applyMissingEOSPenalty(scores: [Float], containsEOS: [Bool], penalty: Float?) throws(PPOMathError) -> [Float] {
    try checkCount("scores", scores.count, containsEOS.count)
    guard let penalty else { return scores }
    var out = scores
    for r in 0..<out.count where !containsEOS[r] { out[r] -= penalty }
    return out
}

// MARK: KL and rewards

/// Per-token KL of the sampled tokens from already masked log-probs: with logr = ref - logp,
/// k1 gives -logr and k3 gives (exp(logr) - 1) - logr.
public func perTokenKL(logProbs: [Float], refLogProbs: [Float], estimator: KLEstimator) throws(PPOMathError) -> [Float] {
    try checkCount("reference log-probs", refLogProbs.count, logProbs.count)
    let n = logProbs.count
    var out = [Float](repeating: 0, count: n)
    if n == 0 { return out }
    logProbs.withUnsafeBufferPointer { lp in
        refLogProbs.withUnsafeBufferPointer { rp in
            out.withUnsafeMutableBufferPointer { o in
                let lp = lp.baseAddress!, rp = rp.baseAddress!, o = o.baseAddress!
                var i = 0
                switch estimator {
                case .k1:
                    while i < n { o[i] = -(rp[i] - lp[i]); i &+= 1 }
                case .k3:
                    while i < n {
                        let logr = rp[i] - lp[i]
                        o[i] = (Foundation.exp(logr) - 1) - logr
                        i &+= 1
                    }
                }
            }
        }
    }
    return out
}

/// The per-token rewards of PPO: `nonScore = -klCoef * kl` everywhere, and `rewards` = that with
/// each row's score added at `masks.scorePositions`.
public func ppoRewards(kl: [Float], scores: [Float], masks: PPOResponseMasks, klCoef: Float)
    throws(PPOMathError) -> (nonScore: [Float], rewards: [Float]) {
    try checkCount("kl", kl.count, masks.rows &* masks.length)
    try checkCount("scores", scores.count, masks.rows)
    let nonScore = kl.map { -klCoef * $0 }
    var rewards = nonScore
    for (r, t) in masks.scorePositions.enumerated() where t >= 0 {
        rewards[r &* masks.length &+ t] += scores[r]
    }
    return (nonScore, rewards)
}

// MARK: Whitening

/// TRL's `masked_whiten`: (x - mean) / sqrt(var + 1e-8) with mean and unbiased var over the
/// elements where `include` is true (the whole batch at once, not per row); the mean is added back
/// when `shiftMean` is false. Every element is transformed, masked or not.
public func maskedWhiten(_ x: [Float], include: [Bool], shiftMean: Bool = true, name: String = "values")
    throws(PPOMathError) -> [Float] {
    try checkCount(name + " mask", include.count, x.count)
    let n = x.count
    var count = 0
    var sum: Double = 0
    for i in 0..<n where include[i] { sum += Double(x[i]); count &+= 1 }
    guard count >= 2 else { throw .tooFewElementsToWhiten(name: name, count: count) }
    let mean = sum / Double(count)
    var sq: Double = 0
    for i in 0..<n where include[i] { let d = Double(x[i]) - mean; sq += d * d }
    let variance = sq / Double(count &- 1)
    let inv = 1 / (variance + whitenEpsilon).squareRoot()
    let back = shiftMean ? 0 : mean
    return x.map { Float((Double($0) - mean) * inv + back) }
}

/// TRL's reward whitening (`whiten_rewards`): over the positions up to `sequence_length + 1`
/// (where the score sits), mean kept, then 0 beyond them.
public func whitenedRewards(_ rewards: [Float], masks: PPOResponseMasks) throws(PPOMathError) -> [Float] {
    var out = try maskedWhiten(rewards, include: masks.paddingMaskP1.map { !$0 }, shiftMean: false, name: "rewards")
    for i in 0..<out.count where masks.paddingMaskP1[i] { out[i] = 0 }
    return out
}

/// TRL's advantage whitening: over the positions up to `sequence_length` (so not the score's
/// position one after the EOS), mean shifted to 0, then 0 at the padded positions.
public func whitenedAdvantages(_ advantages: [Float], masks: PPOResponseMasks) throws(PPOMathError) -> [Float] {
    var out = try maskedWhiten(advantages, include: masks.paddingMask.map { !$0 }, shiftMean: true, name: "advantages")
    for i in 0..<out.count where masks.paddingMask[i] { out[i] = 0 }
    return out
}

// MARK: GAE

/// Generalized advantage estimation over all `length` positions of each row:
/// δ_t = r_t + γ V_{t+1} - V_t (V_length = 0), A_t = δ_t + γλ A_{t+1}; returns = A + V.
/// `values` must already be masked (0 beyond `sequence_length + 1`), so nothing leaks from padding.
public func generalizedAdvantageEstimates(rewards: [Float], values: [Float], rows: Int, length: Int,
                                          gamma: Float, lam: Float) throws(PPOMathError)
    -> (advantages: [Float], returns: [Float]) {
    try checkRows("rewards", rewards.count, rows: rows, length: length)
    try checkCount("values", values.count, rows &* length)
    var adv = [Float](repeating: 0, count: rows &* length)
    var ret = adv
    if adv.isEmpty { return (adv, ret) }
    rewards.withUnsafeBufferPointer { rp in
        values.withUnsafeBufferPointer { vp in
            adv.withUnsafeMutableBufferPointer { ap in
                ret.withUnsafeMutableBufferPointer { tp in
                    let rp = rp.baseAddress!, vp = vp.baseAddress!, ap = ap.baseAddress!, tp = tp.baseAddress!
                    var r = 0
                    while r < rows {
                        let base = r &* length
                        var last: Float = 0
                        var t = length &- 1
                        while t >= 0 {
                            let i = base &+ t
                            let next: Float = t < length &- 1 ? vp[i &+ 1] : 0
                            let delta = rp[i] + gamma * next - vp[i]
                            last = delta + gamma * lam * last
                            ap[i] = last
                            tp[i] = last + vp[i]
                            t &-= 1
                        }
                        r &+= 1
                    }
                }
            }
        }
    }
    return (adv, ret)
}

// MARK: All of it

/// The settings of the rollout arithmetic (TRL's names in the comments).
public struct PPORolloutSettings: Equatable, Sendable {
    /// `kl_estimator`.
    public var klEstimator: KLEstimator = .k1
    /// `kl_coef`.
    public var klCoef: Float = 0.05
    /// `gamma`.
    public var gamma: Float = 1
    /// `lam`.
    public var lam: Float = 0.95
    /// `whiten_rewards`.
    public var whitenRewards = false
    /// `missing_eos_penalty` (nil: none).
    public var missingEOSPenalty: Float?
    /// The EOS token (TRL's `stop_token_id` with `stop_token = "eos"`).
    public var eos: Int32
    /// The padding token.
    public var pad: Int32

    public init(eos: Int32, pad: Int32) {
        self.eos = eos
        self.pad = pad
    }

    /// The settings of a PPO stage config; an unknown `kl_estimator` is an error, not a crash.
    public init(config: PPOConfig, eos: Int32, pad: Int32) throws(PPOMathError) {
        self.init(eos: eos, pad: pad)
        klEstimator = try KLEstimator.named(config.klEstimator)
        klCoef = Float(config.klCoef)
        gamma = Float(config.gamma)
        lam = Float(config.lam)
        whitenRewards = config.whitenRewards
        missingEOSPenalty = config.rollout.missingEOSPenalty.map(Float.init)
    }
}

/// Every tensor TRL computes from one rollout batch before the PPO epochs.
public struct PPORolloutTensors: Sendable {
    public let masks: PPOResponseMasks
    /// [rows * length] responses with pads after the first EOS.
    public let postprocessedResponses: [Int32]
    /// [rows] scores after the missing-EOS penalty.
    public let scores: [Float]
    /// Masked log-probs (`invalidLogProb` at padded positions): the "old" log-probs of the loss.
    public let logProbs: [Float]
    public let refLogProbs: [Float]
    /// Masked values (0 beyond sequence_length + 1): the "old" values of the value loss.
    public let values: [Float]
    public let kl: [Float]
    public let nonScoreRewards: [Float]
    /// Rewards with the score added, before the optional reward whitening.
    public let rewards: [Float]
    /// The rewards GAE uses (== `rewards` without whiten_rewards).
    public let finalRewards: [Float]
    /// GAE output before whitening.
    public let rawAdvantages: [Float]
    /// rawAdvantages + values.
    public let returns: [Float]
    /// Whitened advantages, 0 at padded positions.
    public let advantages: [Float]
}

/// TRL's rollout post-processing, KL, rewards and GAE for one batch.
///
/// - Parameters:
///   - responses: [rows * length] sampled tokens (before truncation).
///   - logProbs, refLogProbs: [rows * length] temperature-scaled log-probs of the sampled tokens
///     under the policy and the reference, before masking.
///   - values: [rows * length] value-head outputs at the positions that predict each response
///     token (context-1 ... context+length-2), before masking.
///   - rawScores: [rows] judge scores of prompt + postprocessed response, before the penalty.
public func processPPORollout(responses: [Int32], logProbs: [Float], refLogProbs: [Float], values: [Float],
                              rawScores: [Float], rows: Int, length: Int,
                              settings: PPORolloutSettings) throws(PPOMathError) -> PPORolloutTensors {
    let post = try truncateAfterFirstEOS(responses, rows: rows, length: length, eos: settings.eos, pad: settings.pad)
    let masks = try PPOResponseMasks(postprocessed: post, rows: rows, length: length, eos: settings.eos, pad: settings.pad)
    let scores = try applyMissingEOSPenalty(scores: rawScores, containsEOS: masks.containsEOS, penalty: settings.missingEOSPenalty)
    let lp = try masks.masked(logProbs: logProbs)
    let ref = try masks.masked(logProbs: refLogProbs)
    let v = try masks.masked(values: values)
    let kl = try perTokenKL(logProbs: lp, refLogProbs: ref, estimator: settings.klEstimator)
    let (nonScore, rewards) = try ppoRewards(kl: kl, scores: scores, masks: masks, klCoef: settings.klCoef)
    let final = settings.whitenRewards ? try whitenedRewards(rewards, masks: masks) : rewards
    let (rawAdv, returns) = try generalizedAdvantageEstimates(rewards: final, values: v, rows: rows, length: length,
                                                              gamma: settings.gamma, lam: settings.lam)
    let adv = try whitenedAdvantages(rawAdv, masks: masks)
    return PPORolloutTensors(masks: masks, postprocessedResponses: post, scores: scores, logProbs: lp, refLogProbs: ref,
                             values: v, kl: kl, nonScoreRewards: nonScore, rewards: rewards, finalRewards: final,
                             rawAdvantages: rawAdv, returns: returns, advantages: adv)
}

/// The rollout metrics TRL logs per update (`objective/*`, `val/num_eos_tokens`), from the
/// processed tensors and the raw responses.
public func ppoRolloutMetrics(_ t: PPORolloutTensors, rawResponses: [Int32], eos: Int32) -> [String: Double] {
    let rows = t.masks.rows, length = t.masks.length
    func meanRowSum(_ x: [Float], _ f: (Float) -> Double) -> Double {
        guard rows > 0 else { return 0 }
        var total: Double = 0
        for r in 0..<rows {
            var s: Double = 0
            for k in 0..<length { s += f(x[r &* length &+ k]) }
            total += s
        }
        return total / Double(rows)
    }
    let kl = meanRowSum(t.kl) { Double($0) }
    let nonScore = meanRowSum(t.nonScoreRewards) { Double($0) }
    let scores = rows > 0 ? t.scores.reduce(0) { $0 + Double($1) } / Double(rows) : 0
    return [
        "objective/kl": kl,
        // -logprob summed over all positions, the padded ones (holding +1) included, as TRL does.
        "objective/entropy": meanRowSum(t.logProbs) { -Double($0) },
        "objective/non_score_reward": nonScore,
        "objective/rlhf_reward": scores + nonScore,
        "objective/scores": scores,
        "val/num_eos_tokens": Double(rawResponses.filter { $0 == eos }.count),
    ]
}

/// The micro-batches of one PPO epoch, as TRL slices them: consecutive minibatches of `order`
/// (the epoch's permutation of the batch rows) of size rows / numMiniBatches, each cut into
/// micro-batches of `microBatchSize` rows. An empty list when the sizes do not divide.
public func ppoMicroBatches(order: [Int], numMiniBatches: Int, microBatchSize: Int) -> [[[Int]]] {
    guard numMiniBatches > 0, microBatchSize > 0, order.count % numMiniBatches == 0 else { return [] }
    let mini = order.count / numMiniBatches
    var out: [[[Int]]] = []
    var start = 0
    while start < order.count {
        let mb = Array(order[start..<start + mini])
        var micro: [[Int]] = []
        var s = 0
        while s < mb.count { micro.append(Array(mb[s..<min(s + microBatchSize, mb.count)])); s += microBatchSize }
        out.append(micro)
        start += mini
    }
    return out
}

/// Rows `indices` of a flat [rows * length] tensor, in that order.
public func gatherRows<T>(_ x: [T], indices: [Int], length: Int) -> [T] {
    var out: [T] = []
    out.reserveCapacity(indices.count * length)
    for r in indices { out.append(contentsOf: x[r * length ..< (r + 1) * length]) }
    return out
}
