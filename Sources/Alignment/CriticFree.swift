import Foundation
import TensorCore

// The clipped policy losses of the critic-free methods on per-token log-probs, as tensor ops so
// that backward() gives the gradient w.r.t. the policy's log-probs. GRPO's is token level (TRL's
// `_compute_loss` with importance_sampling_level "token"), RLOO's sequence level. Padding
// positions are selected away with `where` (not multiplied by the mask), so whatever finite value
// they hold neither reaches the loss nor gets a gradient.

/// How GRPO aggregates the per-token losses of a micro-batch (TRL's `loss_type`).
public enum GRPOLossType: String, Sendable, Equatable, CaseIterable {
    /// Mean over rows of each row's token mean, / gradient-accumulation steps.
    case grpo
    /// Token mean over the micro-batch, / gradient-accumulation steps.
    case bnpo
    /// Token sum / (rows · max_completion_length), / gradient-accumulation steps (Dr. GRPO).
    case drGRPO = "dr_grpo"
    /// Token sum / (tokens of the whole generation batch / processes · gas / steps_per_generation).
    case dapo

    public init(setting: String) throws(CriticFreeError) {
        guard let t = GRPOLossType(rawValue: setting) else { throw .unknownSetting(name: "loss_type", value: setting) }
        self = t
    }
}

/// A critic-free objective: the advantage estimator plus the clipped loss's settings, TRL's names
/// in the comments. A trainer loop calls ``advantages(rewards:logProbs:)`` once per generation batch
/// and ``loss(logProbs:batch:advantages:tokensInGenerationBatch:)`` once per micro-batch, then
/// `backward()` on the returned loss (already scaled for gradient accumulation).
public struct CriticFreeObjective: Sendable, Equatable {
    /// GRPO or RLOO, and their advantage options.
    public var estimator: AdvantageEstimator
    /// Completions per prompt (`num_generations`).
    public var groupSize: Int
    /// KL coefficient (`beta`): GRPO puts k3 in the loss, RLOO k1 into the reward.
    public var beta: Float
    /// Lower clip range (`epsilon` / `epsilon_low`).
    public var epsilonLow: Float
    /// Upper clip range (`epsilon_high`, defaults to `epsilon`).
    public var epsilonHigh: Float
    /// GRPO's aggregation (`loss_type`); RLOO ignores it.
    public var lossType: GRPOLossType
    /// GRPO: multiply the k3 KL by the importance ratio (`use_bias_correction_kl`, TRL 1.16 default).
    public var useBiasCorrectionKL: Bool
    /// `max_completion_length` (dr_grpo's divisor).
    public var maxCompletionLength: Int
    /// `current_gradient_accumulation_steps`.
    public var gradientAccumulationSteps: Int
    /// `steps_per_generation` (dapo's normalizer).
    public var stepsPerGeneration: Int
    /// Data-parallel processes (dapo's normalizer).
    public var numProcesses: Int

    public init(estimator: AdvantageEstimator, groupSize: Int, beta: Float = 0, epsilonLow: Float = 0.2,
                epsilonHigh: Float? = nil, lossType: GRPOLossType = .dapo, useBiasCorrectionKL: Bool = true,
                maxCompletionLength: Int, gradientAccumulationSteps: Int = 1, stepsPerGeneration: Int = 1,
                numProcesses: Int = 1) {
        self.estimator = estimator
        self.groupSize = groupSize
        self.beta = beta
        self.epsilonLow = epsilonLow
        self.epsilonHigh = epsilonHigh ?? epsilonLow
        self.lossType = lossType
        self.useBiasCorrectionKL = useBiasCorrectionKL
        self.maxCompletionLength = maxCompletionLength
        self.gradientAccumulationSteps = gradientAccumulationSteps
        self.stepsPerGeneration = stepsPerGeneration
        self.numProcesses = numProcesses
    }

    /// The advantages of one generation batch (see ``AdvantageEstimator/advantages(rewards:groupSize:beta:logProbs:)``).
    public func advantages(rewards: [Float], logProbs: CompletionLogProbs?) throws(CriticFreeError) -> AdvantageResult {
        try estimator.advantages(rewards: rewards, groupSize: groupSize, beta: beta, logProbs: logProbs)
    }

    /// The loss of one micro-batch.
    ///
    /// - Parameters:
    ///   - logProbs: `[n, T]` current-policy log-probs (the tensor to differentiate).
    ///   - batch: the micro-batch's mask, old and reference log-probs (n rows, width T).
    ///   - advantages: the micro-batch's n advantages.
    ///   - tokensInGenerationBatch: completion tokens of the whole generation batch over all
    ///     processes (TRL's `num_items_in_batch`); GRPO's `dapo` needs it.
    public func loss(logProbs: Tensor, batch: CompletionLogProbs, advantages: [Float],
                     tokensInGenerationBatch: Int? = nil) throws(CriticFreeError) -> PolicyLossOutput {
        try validate()
        switch estimator {
        case .grpo: return try grpoLoss(logProbs: logProbs, batch: batch, advantages: advantages,
                                        tokensInGenerationBatch: tokensInGenerationBatch)
        case .rloo: return try rlooLoss(logProbs: logProbs, batch: batch, advantages: advantages)
        }
    }

    func validate() throws(CriticFreeError) {
        guard epsilonLow >= 0, epsilonLow < 1, epsilonHigh >= 0 else {
            throw .badSetting(name: "epsilon", reason: "clip ranges must be in [0, 1) (low) and >= 0 (high)")
        }
        guard gradientAccumulationSteps >= 1, stepsPerGeneration >= 1, numProcesses >= 1 else {
            throw .badSetting(name: "gradient_accumulation_steps", reason: "steps and processes must be at least 1")
        }
        guard maxCompletionLength >= 1 else {
            throw .badSetting(name: "max_completion_length", reason: "must be at least 1")
        }
    }
}

/// A micro-batch's loss, its intermediate tensors and the metrics TRL logs for it.
public struct PolicyLossOutput {
    /// The scalar to backpropagate.
    public let loss: Tensor
    /// The intermediates under TRL's names: GRPO `log_ratio`, `coef_1`, `coef_2`, `per_token_loss`
    /// (`[n, T]`, padding included as TRL computes it) and `per_token_kl` when beta != 0 (after the
    /// bias correction); RLOO `logps`, `old_logps`, `log_ratio`, `coef_1`, `coef_2`,
    /// `per_sequence_loss` (`[n]`).
    public let tensors: [String: Tensor]
    /// What the summed per-token losses were divided by (before the accumulation division for
    /// grpo/bnpo/dr_grpo: the divisor of the whole sum; 1 for grpo's per-row means; nil for RLOO).
    public let normalizer: Float?
    /// `clip_ratio/low_mean`, `clip_ratio/low_min`, `clip_ratio/high_mean`, `clip_ratio/high_max`,
    /// `clip_ratio/region_mean`, `entropy` (when entropies are given), GRPO's `kl` when beta != 0.
    public let metrics: [String: Double]
}

extension CriticFreeObjective {
    func checkShapes(_ logProbs: Tensor, _ batch: CompletionLogProbs, _ advantages: [Float]) throws(CriticFreeError) {
        guard logProbs.shape == [batch.rows, batch.width] else {
            throw .badShape(what: "log-probs \(logProbs.shape)", count: logProbs.count, expected: batch.rows * batch.width)
        }
        guard advantages.count == batch.rows else {
            throw .badShape(what: "advantages", count: advantages.count, expected: batch.rows)
        }
    }

    /// GRPO, token level: l = -min(r·A, clip(r)·A) + beta·k3·r, aggregated per `lossType`.
    func grpoLoss(logProbs: Tensor, batch: CompletionLogProbs, advantages: [Float],
                  tokensInGenerationBatch: Int?) throws(CriticFreeError) -> PolicyLossOutput {
        try checkShapes(logProbs, batch, advantages)
        let n = batch.rows, T = batch.width, shape = [n, T]
        let mask = Tensor(shape: shape, values: batch.mask)
        let old = Tensor(shape: shape, values: batch.old ?? logProbs.values)
        var expanded = [Float](repeating: 0, count: n * T)
        for r in 0..<n { for t in 0..<T { expanded[r &* T &+ t] = advantages[r] } }
        let adv = Tensor(shape: shape, values: expanded)

        let logRatio = logProbs - old
        let coef1 = exp(logRatio)
        let coef2 = clamp(coef1, min: 1 - epsilonLow, max: 1 + epsilonHigh)
        var perTokenLoss = -minimum(coef1 * adv, coef2 * adv)
        var tensors = ["log_ratio": logRatio, "coef_1": coef1, "coef_2": coef2]
        var metrics: [String: Double] = [:]
        if beta != 0 {
            guard let refValues = batch.ref else {
                throw .badSetting(name: "beta", reason: "GRPO with beta != 0 needs the reference log-probs")
            }
            let d = Tensor(shape: shape, values: refValues) - logProbs
            var kl = exp(d) - d - 1
            if useBiasCorrectionKL { kl = kl * coef1 }
            perTokenLoss = perTokenLoss + kl * beta
            tensors["per_token_kl"] = kl
            metrics["kl"] = batch.maskedMean(kl.values)
        }
        tensors["per_token_loss"] = perTokenLoss
        let masked = `where`(mask, perTokenLoss, Tensor.zeros(shape))
        let gas = Float(gradientAccumulationSteps)
        let loss: Tensor, normalizer: Float
        switch lossType {
        case .grpo:
            let lengths = Tensor(shape: [n], values: batch.rowLengths.map { Float(max($0, 1)) })
            normalizer = 1
            loss = (masked.sum(axis: 1) / lengths).mean() / gas
        case .bnpo:
            normalizer = Float(max(batch.tokenCount, 1))
            loss = masked.sum() / normalizer / gas
        case .drGRPO:
            normalizer = Float(n * maxCompletionLength)
            loss = masked.sum() / max(normalizer, 1) / gas
        case .dapo:
            guard let items = tokensInGenerationBatch, items >= 0 else {
                throw .badSetting(name: "num_items_in_batch", reason: "dapo needs the generation batch's token count")
            }
            normalizer = Float(items) / Float(numProcesses) * gas / Float(stepsPerGeneration)
            loss = masked.sum() / max(normalizer, Float.leastNormalMagnitude)
        }
        metrics.merge(clipMetrics(coef1: coef1.values, advantages: advantages, batch: batch), uniquingKeysWith: { a, _ in a })
        if let e = batch.entropies { metrics["entropy"] = batch.maskedMean(e) }
        return PolicyLossOutput(loss: loss, tensors: tensors, normalizer: normalizer, metrics: metrics)
    }

    /// Token-level clip fractions: means over the micro-batch's valid tokens, and the min (low) / max
    /// (high) over rows of each row's fraction.
    func clipMetrics(coef1: [Float], advantages: [Float], batch: CompletionLogProbs) -> [String: Double] {
        let T = batch.width
        let lo = 1 - epsilonLow, hi = 1 + epsilonHigh
        var low = 0, high = 0, tokens = 0
        var lowMin = Double.infinity, highMax = -Double.infinity
        coef1.withUnsafeBufferPointer { cp in
            batch.mask.withUnsafeBufferPointer { mp in
                var r = 0
                while r < batch.rows {
                    let a = advantages[r]
                    var rl = 0, rh = 0, rt = 0, t = 0
                    let base = r &* T
                    while t < T {
                        if mp[base &+ t] != 0 {
                            rt &+= 1
                            if cp[base &+ t] < lo && a < 0 { rl &+= 1 }
                            if cp[base &+ t] > hi && a > 0 { rh &+= 1 }
                        }
                        t &+= 1
                    }
                    if rt > 0 {
                        lowMin = min(lowMin, Double(rl) / Double(rt))
                        highMax = max(highMax, Double(rh) / Double(rt))
                    }
                    low &+= rl; high &+= rh; tokens &+= rt
                    r &+= 1
                }
            }
        }
        let denom = Double(max(tokens, 1))
        // A token cannot be clipped both ways (a < 0 and a > 0 exclude each other).
        return [
            "clip_ratio/low_mean": Double(low) / denom, "clip_ratio/high_mean": Double(high) / denom,
            "clip_ratio/region_mean": Double(low + high) / denom,
            "clip_ratio/low_min": tokens > 0 ? lowMin : .nan, "clip_ratio/high_max": tokens > 0 ? highMax : .nan,
        ]
    }

    /// RLOO, sequence level: ratio = exp(Σ_t logp·m - Σ_t old·m) per row,
    /// loss = mean_rows(-min(ratio·A, clip(ratio)·A)) / gas.
    func rlooLoss(logProbs: Tensor, batch: CompletionLogProbs, advantages: [Float]) throws(CriticFreeError) -> PolicyLossOutput {
        try checkShapes(logProbs, batch, advantages)
        let n = batch.rows, shape = [n, batch.width]
        let mask = Tensor(shape: shape, values: batch.mask)
        let logps = `where`(mask, logProbs, Tensor.zeros(shape)).sum(axis: 1)
        let oldValues = batch.old.map { batch.maskedRowSums($0).map { Float($0) } } ?? logps.values
        let oldLogps = Tensor(shape: [n], values: oldValues)
        let adv = Tensor(shape: [n], values: advantages)
        let logRatio = logps - oldLogps
        let coef1 = exp(logRatio)
        let coef2 = clamp(coef1, min: 1 - epsilonLow, max: 1 + epsilonHigh)
        let perSequence = -minimum(coef1 * adv, coef2 * adv)
        let loss = perSequence.mean() / Float(gradientAccumulationSteps)

        let c = coef1.values
        var low = 0, high = 0
        for r in 0..<n {
            if c[r] < 1 - epsilonLow && advantages[r] < 0 { low &+= 1 }
            if c[r] > 1 + epsilonHigh && advantages[r] > 0 { high &+= 1 }
        }
        let rows = Double(max(n, 1))
        var metrics: [String: Double] = [
            "clip_ratio/low_mean": Double(low) / rows, "clip_ratio/high_mean": Double(high) / rows,
            "clip_ratio/region_mean": Double(low + high) / rows,
            "clip_ratio/low_min": n == 0 ? .nan : (low == n ? 1 : 0),
            "clip_ratio/high_max": n == 0 ? .nan : (high > 0 ? 1 : 0),
        ]
        if let e = batch.entropies { metrics["entropy"] = batch.maskedMean(e) }
        let tensors = ["logps": logps, "old_logps": oldLogps, "log_ratio": logRatio, "coef_1": coef1, "coef_2": coef2,
                       "per_sequence_loss": perSequence]
        return PolicyLossOutput(loss: loss, tensors: tensors, normalizer: nil, metrics: metrics)
    }
}
