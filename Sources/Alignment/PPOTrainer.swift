import DataParallel
import Datasets
import Foundation
import NN
import Optimizers
import TensorCore
import Training

/// Why an online RL update stopped.
public enum OnlineRLError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A quantity became NaN or infinite: the update is abandoned before any parameter moves, so
    /// the last checkpoint is the last good state.
    case nonFinite(update: Int, quantity: String)
    /// Shapes that do not fit together (a caller's bug, reported instead of trapping).
    case shape(String)

    public var description: String {
        switch self {
        case let .nonFinite(update, quantity):
            return "\(quantity) became NaN or infinite at update \(update); the last checkpoint is kept. "
                + "Lower the learning rate or check the reward's scale"
        case let .shape(reason): return reason
        }
    }
}

/// The settings of TRL 1.9.2's PPOTrainer loop (its names in the comments).
public struct PPOTrainerSettings: Sendable, Equatable {
    /// KL estimator and coefficient, gamma, lam, whitening, missing-EOS penalty, EOS and pad.
    public var rollout: PPORolloutSettings
    /// `temperature`: training and reference log-probs divide the logits by temperature + 1e-7.
    public var temperature: Double = 0.7
    /// `num_ppo_epochs`.
    public var numPPOEpochs = 4
    /// `num_mini_batches`.
    public var numMiniBatches = 1
    /// `per_device_train_batch_size`: rows per micro-batch.
    public var microBatchSize = 1
    /// `gradient_accumulation_steps`: micro-batches per optimizer step (TRL 1.9.2's batch per update
    /// is microBatchSize * gradientAccumulationSteps).
    public var gradientAccumulationSteps = 1
    /// `cliprange`, `cliprange_value`, `vf_coef`.
    public var cliprange: Float = 0.2
    public var cliprangeValue: Float = 0.2
    public var vfCoef: Float = 0.1
    /// `learning_rate`, decayed linearly to 0 over `numTotalBatches` updates (stepped per update).
    public var learningRate: Double = 3e-6
    public var numTotalBatches = 1
    /// `lr_scheduler_type`, `warmup_steps` (in updates) and `min_lr`: TRL builds transformers'
    /// scheduler with them over `num_total_batches` and steps it once per update. The defaults
    /// (linear, no warmup, floor 0) are TRL's.
    public var lrDecay: LRSchedule.Decay = .linear
    public var warmupUpdates = 0
    public var minLR = 0.0

    /// The learning rate of every optimizer step of update `update` (1-based).
    public func learningRate(update: Int) -> Double {
        LRSchedule(decay: lrDecay, peak: learningRate, warmupSteps: Swift.max(0, warmupUpdates),
                   totalSteps: numTotalBatches, minLR: minLR).lr(at: Swift.max(0, update - 1))
    }
    /// AdamW (TRL's default `adamw_torch_fused`): one optimizer over policy and value model in TRL;
    /// two with the same settings here, which is the same update (no gradient clipping in PPO).
    public var adamBeta1 = 0.9
    public var adamBeta2 = 0.999
    public var adamEpsilon = 1e-8
    public var weightDecay = 0.0
    /// `local_rollout_forward_batch_size`: rows per no-grad forward pass of the rollout phase.
    public var forwardBatchSize = 64
    /// Ziegler et al.'s adaptive KL controller: target KL (nats per response) and horizon
    /// (episodes); nil keeps `kl_coef` fixed, as TRL 1.9.2 does.
    public var adaptiveKL: (target: Double, horizon: Double)?

    public init(rollout: PPORolloutSettings) { self.rollout = rollout }

    /// Rows of one rollout batch (TRL's `local_batch_size`).
    public var batchRows: Int { microBatchSize * gradientAccumulationSteps }

    public static func == (a: Self, b: Self) -> Bool {
        a.rollout == b.rollout && a.temperature == b.temperature && a.numPPOEpochs == b.numPPOEpochs
            && a.numMiniBatches == b.numMiniBatches && a.microBatchSize == b.microBatchSize
            && a.gradientAccumulationSteps == b.gradientAccumulationSteps && a.cliprange == b.cliprange
            && a.cliprangeValue == b.cliprangeValue && a.vfCoef == b.vfCoef && a.learningRate == b.learningRate
            && a.numTotalBatches == b.numTotalBatches && a.lrDecay == b.lrDecay && a.warmupUpdates == b.warmupUpdates
            && a.minLR == b.minLR && a.adamBeta1 == b.adamBeta1 && a.adamBeta2 == b.adamBeta2
            && a.adamEpsilon == b.adamEpsilon && a.weightDecay == b.weightDecay && a.forwardBatchSize == b.forwardBatchSize
            && a.adaptiveKL?.target == b.adaptiveKL?.target && a.adaptiveKL?.horizon == b.adaptiveKL?.horizon
    }
}

/// One rollout batch after the no-grad forward passes: what the PPO epochs train on.
public struct PPORollout: Sendable {
    public let rows: Int
    /// ctx: the padded query length.
    public let contextLength: Int
    /// R: the response length.
    public let responseLength: Int
    /// `[rows, ctx]` left-padded queries and `[rows, R]` raw responses.
    public let queries: [Int32]
    public let responses: [Int32]
    /// `[rows, ctx + R]` queries followed by the raw responses (what policy and value see).
    public let queryResponses: [Int32]
    /// Before masking: the policy's and reference's log-probs, the values, the judge's scores.
    public let rawLogProbs: [Float]
    public let rawRefLogProbs: [Float]
    public let rawValues: [Float]
    public let rawScores: [Float]
    /// Everything TRL derives from them (masks, KL, rewards, advantages, returns).
    public let tensors: PPORolloutTensors
    /// `objective/*` and `val/num_eos_tokens`.
    public let metrics: [String: Double]
}

/// What one micro-batch of a PPO epoch computed (for logs and tests).
public struct PPOMicroBatch {
    public let update: Int
    public let epoch: Int
    public let miniBatch: Int
    public let accumulationIndex: Int
    /// Rows of the rollout batch.
    public let indices: [Int]
    public let loss: PPOLoss
    /// `[n, R]` new log-probs before masking, and the per-position entropies of the logits.
    public let newLogProbs: [Float]
    public let entropies: [Float]
    /// `[n, R]` the rows' padding mask (true beyond the sequence length).
    public let paddingMask: [Bool]
    /// Whether the optimizer stepped after it.
    public let optimizerStepped: Bool
}

/// PPO with a KL-penalized reward, a clipped surrogate and a clipped value loss, as TRL 1.9.2's
/// PPOTrainer runs it (the "N+ implementation details" trainer; formulas in RLHF.md and the
/// ppo-step fixture's README): ``rollout(queries:responses:rows:contextLength:responseLength:policyLogProbs:score:)``
/// makes the no-grad forward passes of a batch, ``train(_:update:orders:rng:)`` runs its PPO epochs.
public final class PPOTrainer {
    public let policy: DecoderModel
    /// The frozen reference; nil: the policy with its LoRA adapters disabled.
    public let reference: DecoderModel?
    /// The value model: a decoder with a `score` head read at every position; or the policy itself
    /// with a `v_head` on its trunk (`sharesTrunk`), one network and one optimizer for both losses.
    public let valueModel: DecoderModel
    /// Whether the values come from a head on the policy's own trunk.
    public var sharesTrunk: Bool { valueModel === policy }
    public var settings: PPOTrainerSettings
    public let policyOptimizer: AdamW
    /// The value model's optimizer (the policy's own when the trunk is shared).
    public let valueOptimizer: AdamW
    /// accelerate's micro-batch counter, running across updates.
    public private(set) var accumulation: GradientAccumulationCounter
    /// The KL coefficient in use (changes only with the adaptive controller).
    public var klCoef: Float
    /// Called right before every optimizer step, with the gradients of both models in place.
    public var beforeOptimizerStep: (() -> Void)?
    /// Called after every micro-batch this process computed.
    public var onMicroBatch: ((PPOMicroBatch) -> Void)?
    /// The processes training together. With several, every process holds the whole rollout;
    /// micro-batch `g` of each optimizer step runs on process `g mod size`, the gradients are
    /// summed before every step and the statistics after the epochs, so every process takes the
    /// one-process step (up to the order of float additions).
    public var communicator: any Communicator = SingleProcess()

    public init(policy: DecoderModel, reference: DecoderModel?, valueModel: DecoderModel,
                settings: PPOTrainerSettings) throws {
        guard valueModel.scoreHead != nil || valueModel.valueHead != nil else {
            throw OnlineRLError.shape("the value model has no score head or value head")
        }
        guard reference != nil || policy.loraConfig != nil else {
            throw OnlineRLError.shape("PPO needs a reference model, or a LoRA policy whose base serves as one")
        }
        self.policy = policy
        self.reference = reference
        self.valueModel = valueModel
        self.settings = settings
        func adam(_ arena: ParameterArena) -> AdamW {
            AdamW(arena: arena, learningRate: settings.learningRate, beta1: settings.adamBeta1, beta2: settings.adamBeta2,
                  epsilon: settings.adamEpsilon, weightDecay: settings.weightDecay)
        }
        policyOptimizer = adam(policy.arena)
        valueOptimizer = valueModel === policy ? policyOptimizer : adam(valueModel.arena)
        accumulation = GradientAccumulationCounter(steps: settings.gradientAccumulationSteps)
        klCoef = settings.rollout.klCoef
    }

    // MARK: Rollout phase

    func logProbs(of model: DecoderModel, queryResponses: [Int32], rows: Int, ctx: Int, R: Int, responses: [Int32]) -> [Float] {
        responseLogProbsNoGrad(model, queryResponses: queryResponses, rows: rows, contextLength: ctx, responseLength: R,
                               pad: settings.rollout.pad, temperature: settings.temperature, chunk: settings.forwardBatchSize)
    }

    /// Runs `body` on consecutive row ranges without gradients and concatenates the results.
    func chunked(rows: Int, width: Int, _ body: (Range<Int>) -> [Float]) -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(rows * width)
        let step = Swift.max(1, settings.forwardBatchSize)
        var start = 0
        while start < rows {
            let range = start..<Swift.min(rows, start + step)
            out += Autograd.withoutGrad { body(range) }
            start = range.upperBound
        }
        return out
    }

    /// The reference's log-probs (the policy with adapters disabled when there is no reference).
    func referenceLogProbs(queryResponses: [Int32], rows: Int, ctx: Int, R: Int, responses: [Int32]) -> [Float] {
        if let reference { return logProbs(of: reference, queryResponses: queryResponses, rows: rows, ctx: ctx, R: R, responses: responses) }
        policy.adaptersEnabled = false
        defer { policy.adaptersEnabled = true }
        return logProbs(of: policy, queryResponses: queryResponses, rows: rows, ctx: ctx, R: R, responses: responses)
    }

    /// The no-grad forward passes of one batch and TRL's post-processing.
    ///
    /// - Parameters:
    ///   - queries: `[rows, ctx]` left-padded with the pad id.
    ///   - responses: `[rows, R]` as sampled (pads after a stop are fine; truncation happens here).
    ///   - policyLogProbs: the sampling log-probs (TRL takes them from `generate`); nil computes
    ///     them with a forward pass.
    ///   - score: the judge: postprocessed `[rows, ctx + R]` query-responses (pad after the first
    ///     EOS) and each row's sequence length (index of the EOS or last token in the response)
    ///     in, one raw score per row out (before the missing-EOS penalty).
    public func rollout(queries: [Int32], responses: [Int32], rows: Int, contextLength ctx: Int, responseLength R: Int,
                        policyLogProbs: [Float]? = nil,
                        score: (_ postprocessed: [Int32], _ sequenceLengths: [Int]) throws -> [Float]) throws -> PPORollout {
        guard queries.count == rows * ctx, responses.count == rows * R, ctx >= 1, R >= 1 else {
            throw OnlineRLError.shape("rollout: \(queries.count) query and \(responses.count) response ids for \(rows) rows of \(ctx) + \(R)")
        }
        let L = ctx + R
        let qr = concatenateRows(queries: queries, responses: responses, rows: rows, contextLength: ctx, responseLength: R)
        let lp = policyLogProbs ?? logProbs(of: policy, queryResponses: qr, rows: rows, ctx: ctx, R: R, responses: responses)
        guard lp.count == rows * R else { throw OnlineRLError.shape("rollout: \(lp.count) policy log-probs for \(rows) x \(R)") }
        let ref = referenceLogProbs(queryResponses: qr, rows: rows, ctx: ctx, R: R, responses: responses)
        let values = chunked(rows: rows, width: R) { range in
            let inputs = PaddedInputs(ids: Array(qr[range.lowerBound * L..<range.upperBound * L]), rows: range.count,
                                      length: L, pad: settings.rollout.pad)
            let h = responseHiddenStates(inputs.hiddenStates(valueModel), contextLength: ctx, responseLength: R)
            return responseValues(valueModel: valueModel, responseHidden: h).values
        }
        let s = settings.rollout
        let post = try truncateAfterFirstEOS(responses, rows: rows, length: R, eos: s.eos, pad: s.pad)
        let masks = try PPOResponseMasks(postprocessed: post, rows: rows, length: R, eos: s.eos, pad: s.pad)
        var postQR = qr
        for r in 0..<rows { for t in 0..<R { postQR[r * L + ctx + t] = post[r * R + t] } }
        let rawScores = try score(postQR, masks.sequenceLengths)
        guard rawScores.count == rows else { throw OnlineRLError.shape("the judge gave \(rawScores.count) scores for \(rows) responses") }
        var current = s
        current.klCoef = klCoef
        let t = try processPPORollout(responses: responses, logProbs: lp, refLogProbs: ref, values: values, rawScores: rawScores,
                                      rows: rows, length: R, settings: current)
        return PPORollout(rows: rows, contextLength: ctx, responseLength: R, queries: queries, responses: responses,
                          queryResponses: qr, rawLogProbs: lp, rawRefLogProbs: ref, rawValues: values, rawScores: rawScores,
                          tensors: t, metrics: ppoRolloutMetrics(t, rawResponses: responses, eos: s.eos))
    }

    /// A reward-model judge for ``rollout(queries:responses:rows:contextLength:responseLength:policyLogProbs:score:)``
    /// on token ids (the reward model shares the policy's tokenizer): its score at `ctx + sequence_length`.
    public func rewardModelJudge(_ rewardModel: DecoderModel, contextLength ctx: Int, responseLength R: Int)
        -> (_ postprocessed: [Int32], _ sequenceLengths: [Int]) throws -> [Float] {
        let pad = settings.rollout.pad, chunk = Swift.max(1, settings.forwardBatchSize)
        return { post, lengths in
            let L = ctx + R, rows = lengths.count
            var out: [Float] = []
            var start = 0
            while start < rows {
                let end = Swift.min(rows, start + chunk)
                let inputs = PaddedInputs(ids: Array(post[start * L..<end * L]), rows: end - start, length: L, pad: pad)
                out += rewardModelScores(rewardModel, inputs: inputs, at: lengths[start..<end].map { ctx + $0 })
                start = end
            }
            return out
        }
    }

    // MARK: PPO epochs

    /// The PPO epochs on one rollout batch.
    ///
    /// - Parameters:
    ///   - update: 1-based update number (the learning rate is `settings.learningRate(update:)`).
    ///   - orders: each epoch's permutation of the batch rows (TRL's `b_inds`); nil draws them from `rng`.
    /// - Returns: TRL's logged metrics for the update (rollout and training ones, `lr`, `episode`).
    public func train(_ rollout: PPORollout, update: Int, orders: [[Int]]? = nil, rng: inout RNG) throws -> [String: Double] {
        let rows = rollout.rows, ctx = rollout.contextLength, R = rollout.responseLength, L = ctx + R
        let s = settings
        guard rows % s.numMiniBatches == 0 else {
            throw OnlineRLError.shape("a batch of \(rows) rows does not split into \(s.numMiniBatches) minibatches")
        }
        for (name, x) in [("objective/scores", rollout.tensors.scores), ("objective/kl", rollout.tensors.kl),
                          ("values", rollout.tensors.values), ("advantages", rollout.tensors.advantages)] where x.contains(where: { !$0.isFinite }) {
            throw OnlineRLError.nonFinite(update: update, quantity: name)
        }
        let lr = s.learningRate(update: update)
        let t = rollout.tensors
        var stats = PPOUpdateStats()
        for epoch in 0..<s.numPPOEpochs {
            let order: [Int]
            if let orders { order = orders[epoch] } else {
                var o = Array(0..<rows)
                seededShuffle(&o, using: &rng)
                order = o
            }
            guard order.count == rows else { throw OnlineRLError.shape("epoch \(epoch): an order of \(order.count) rows for \(rows)") }
            for (m, mini) in ppoMicroBatches(order: order, numMiniBatches: s.numMiniBatches, microBatchSize: s.microBatchSize).enumerated() {
                for (g, idx) in mini.enumerated() {
                    guard g % communicator.size == communicator.rank else {
                        stats.recordElsewhere()
                        if accumulation.microStep() { try optimizerStep(learningRate: lr, update: update) }
                        continue
                    }
                    let n = idx.count
                    let inputs = PaddedInputs(ids: gatherRows(rollout.queryResponses, indices: idx, length: L), rows: n, length: L,
                                              pad: s.rollout.pad)
                    let responses = gatherRows(rollout.responses, indices: idx, length: R)
                    let h = responseHiddenStates(inputs.hiddenStates(policy), contextLength: ctx, responseLength: R)
                    let logits = temperatureScaledLogits(policy.logits(hidden: h), temperature: s.temperature)
                    let newLogProbs = responseLogProbs(logits: logits, responses: responses)
                    let vh = sharesTrunk ? h : responseHiddenStates(inputs.hiddenStates(valueModel), contextLength: ctx, responseLength: R)
                    let vpred = responseValues(valueModel: valueModel, responseHidden: vh)
                    let paddingMask = gatherRows(t.masks.paddingMask, indices: idx, length: R)
                    let loss = try ppoLoss(newLogProbs: newLogProbs, values: vpred,
                                           oldLogProbs: gatherRows(t.logProbs, indices: idx, length: R),
                                           oldValues: gatherRows(t.values, indices: idx, length: R),
                                           advantages: gatherRows(t.advantages, indices: idx, length: R),
                                           returns: gatherRows(t.returns, indices: idx, length: R),
                                           paddingMask: paddingMask,
                                           paddingMaskP1: gatherRows(t.masks.paddingMaskP1, indices: idx, length: R),
                                           cliprange: s.cliprange, cliprangeValue: s.cliprangeValue, vfCoef: s.vfCoef)
                    for (name, x) in [("loss/policy", loss.policy.loss.item), ("loss/value", loss.value.loss.item)] where !x.isFinite {
                        policy.arena.zeroGrad()
                        valueModel.arena.zeroGrad()
                        throw OnlineRLError.nonFinite(update: update, quantity: name)
                    }
                    (loss.loss * accumulation.lossScale).backward()
                    let entropies = tokenEntropies(logits: logits)
                    let entropyMean = entropies.isEmpty ? 0 : Float(entropies.reduce(0.0) { $0 + Double($1) } / Double(entropies.count))
                    stats.record(loss, entropyMean: entropyMean)
                    let stepNow = accumulation.microStep()
                    if stepNow { try optimizerStep(learningRate: lr, update: update) }
                    onMicroBatch?(PPOMicroBatch(update: update, epoch: epoch, miniBatch: m, accumulationIndex: g, indices: idx,
                                                loss: loss, newLogProbs: newLogProbs.values, entropies: entropies, paddingMask: paddingMask,
                                                optimizerStepped: stepNow))
                }
            }
        }
        try stats.sum(over: communicator)
        var metrics = rollout.metrics.merging(stats.metrics) { a, _ in a }
        metrics["lr"] = lr
        metrics["episode"] = Double(update * rows)
        metrics["objective/kl_coef"] = Double(klCoef)
        if let (target, horizon) = s.adaptiveKL.map({ ($0.target, $0.horizon) }), let kl = rollout.metrics["objective/kl"] {
            // Ziegler et al. (2019): a proportional controller on the log-space error, clipped to ±0.2.
            let error = Swift.min(Swift.max(kl / target - 1, -0.2), 0.2)
            klCoef = Float(Double(klCoef) * (1 + error * Double(rows) / horizon))
        }
        return metrics
    }

    /// Steps both optimizers at `learningRate` after checking every gradient is finite.
    func optimizerStep(learningRate: Double, update: Int) throws {
        let arenas = sharesTrunk ? [("policy gradient", policy.arena)]
                                 : [("policy gradient", policy.arena), ("value gradient", valueModel.arena)]
        for (_, arena) in arenas { try OptimizerStep.allReduceGradients(of: arena, over: communicator) }
        beforeOptimizerStep?()
        for (name, arena) in arenas where !arena.gradNorm().isFinite {
            for (_, a) in arenas { a.zeroGrad() }
            throw OnlineRLError.nonFinite(update: update, quantity: name)
        }
        for optimizer in sharesTrunk ? [policyOptimizer] : [policyOptimizer, valueOptimizer] {
            optimizer.learningRate = learningRate
            optimizer.step()
            optimizer.arena.zeroGrad()
        }
    }

    /// Restores the micro-batch counter (resume).
    public func restoreAccumulation(counter: Int) {
        accumulation = GradientAccumulationCounter(steps: settings.gradientAccumulationSteps)
        for _ in 0..<(counter % Swift.max(settings.gradientAccumulationSteps, 1)) { _ = accumulation.microStep() }
    }
}
