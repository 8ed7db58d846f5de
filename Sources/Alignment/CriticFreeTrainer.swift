import DataParallel
import Datasets
import Foundation
import NN
import Optimizers
import TensorCore
import Training

/// The settings of the critic-free loop (TRL 1.16's GRPOTrainer / RLOOTrainer, their names in the
/// comments). RLOO and GRPO differ only in `objective.estimator` (their advantages and where the
/// KL goes); the loop is the same.
public struct CriticFreeTrainerSettings: Sendable, Equatable {
    /// The advantage estimator and the clipped loss (`num_generations`, `beta`, `epsilon`, `loss_type`, ...).
    public var objective: CriticFreeObjective
    /// `temperature`: training and reference log-probs divide the logits by it.
    public var temperature: Double = 1
    /// `per_device_train_batch_size`: completions per micro-batch.
    public var microBatchSize = 8
    /// `gradient_accumulation_steps` (also `steps_per_generation`: one generation batch per step).
    public var gradientAccumulationSteps = 1
    /// `num_iterations`: optimizer steps on each generation batch.
    public var numIterations = 1
    /// `max_grad_norm` (0: no clipping).
    public var maxGradNorm = 1.0
    public var adamBeta1 = 0.9
    public var adamBeta2 = 0.999
    public var adamEpsilon = 1e-8
    public var weightDecay = 0.0
    public var eos: Int32
    public var pad: Int32
    /// Rows per no-grad forward pass.
    public var forwardBatchSize = 64
    /// Rows with the same query (the `num_generations` samples of a prompt) run it through the
    /// model once in every forward pass, training and no-grad alike, instead of once per row (the
    /// same numbers up to float32 summation order; false: one forward per row).
    public var sharePromptForward = true
    /// With one iteration and one micro-batch, RLOO's old log-probs (for the KL in the reward) are
    /// the training forward's own, run in `prepare` and kept for `train`, instead of a separate
    /// no-grad pass of the policy (TRL's detached current log-probs: the ratio is exactly 1).
    public var reuseTrainingForward = true

    public init(objective: CriticFreeObjective, eos: Int32, pad: Int32) {
        self.objective = objective
        self.eos = eos
        self.pad = pad
    }

    /// Completions per generation batch.
    public var batchRows: Int { microBatchSize * gradientAccumulationSteps }
}

/// One generation batch, scored, with its advantages.
public struct CriticFreeRollout: Sendable {
    public let rows: Int
    public let contextLength: Int
    public let responseLength: Int
    /// `[rows, ctx + R]` left-padded queries followed by the responses (pads after the first EOS).
    public let queryResponses: [Int32]
    public let responses: [Int32]
    /// The completion mask (up to and including the first EOS) and the log-probs the loss needs.
    public let logProbs: CompletionLogProbs
    /// The judge's scores and what the estimator made of them.
    public let rewards: [Float]
    public let advantage: AdvantageResult
    /// Summed k1 KL (old - reference) per completion, when the reference was run.
    public let sequenceKL: [Float]?
    /// The policy's training forward over all rows, run by `prepare` for the old log-probs and
    /// used once by `train` (see `CriticFreeTrainerSettings.reuseTrainingForward`).
    let retained: RetainedForward?
}

/// A training forward kept between `prepare` and `train`: its graph can be walked once.
final class RetainedForward: @unchecked Sendable {
    let logProbs: Tensor
    let entropies: [Float]
    var used = false

    init(logProbs: Tensor, entropies: [Float]) {
        self.logProbs = logProbs
        self.entropies = entropies
    }
}

/// RLOO or GRPO on sampled completions: ``prepare(queries:responses:rows:contextLength:responseLength:rewards:)``
/// runs the no-grad passes and the advantages, ``train(_:step:learningRate:rng:)`` the optimizer
/// steps of one generation batch.
public final class CriticFreeTrainer {
    public let policy: DecoderModel
    /// The frozen reference (needed when beta != 0); nil: the policy with its LoRA adapters disabled.
    public let reference: DecoderModel?
    public var settings: CriticFreeTrainerSettings
    public let optimizer: AdamW
    /// The processes training together. With several, every process holds the whole generation
    /// batch; micro-batch `k` of each optimizer step runs on process `k mod size`, and the
    /// gradients and metrics are summed before the step, so every process takes the one-process
    /// step (up to the order of float additions).
    public var communicator: any Communicator = SingleProcess()

    public init(policy: DecoderModel, reference: DecoderModel?, settings: CriticFreeTrainerSettings) throws {
        if settings.objective.beta != 0 && reference == nil && policy.loraConfig == nil {
            throw OnlineRLError.shape("beta != 0 needs a reference model, or a LoRA policy whose base serves as one")
        }
        self.policy = policy
        self.reference = reference
        self.settings = settings
        optimizer = AdamW(arena: policy.arena, learningRate: 1e-6, beta1: settings.adamBeta1, beta2: settings.adamBeta2,
                          epsilon: settings.adamEpsilon, weightDecay: settings.weightDecay, decayFilter: .matricesOnly)
    }

    /// The completion mask: 1 up to and including the first EOS of each response (all of it when
    /// there is none), 0 on pads.
    public static func completionMask(_ responses: [Int32], rows: Int, length R: Int, eos: Int32, pad: Int32) -> [Float] {
        var mask = [Float](repeating: 0, count: rows * R)
        for r in 0..<rows {
            for t in 0..<R {
                let token = responses[r * R + t]
                if token == pad { break }
                mask[r * R + t] = 1
                if token == eos { break }
            }
        }
        return mask
    }

    /// The policy's forward with gradients over rows `idx` of `qr`: temperature-scaled response
    /// log-probs `[n, R]` and their entropies (a metric).
    func trainingForward(_ qr: [Int32], responses: [Int32], idx: [Int], ctx: Int, R: Int) -> (logProbs: Tensor, entropies: [Float]) {
        let L = ctx + R, n = idx.count, s = settings
        let rowsQR = gatherRows(qr, indices: idx, length: L)
        let shared = s.sharePromptForward
            ? sharedQueryResponseHidden(policy, queryResponses: rowsQR, rows: n, contextLength: ctx, responseLength: R, pad: s.pad)
            : nil
        let h = shared ?? responseHiddenStates(PaddedInputs(ids: rowsQR, rows: n, length: L, pad: s.pad).hiddenStates(policy),
                                               contextLength: ctx, responseLength: R)
        let logits = temperatureScaledLogits(policy.logits(hidden: h), temperature: s.temperature)
        let lp = responseLogProbs(logits: logits, responses: gatherRows(responses, indices: idx, length: R))
        return (lp, tokenEntropies(logits: logits))
    }

    func logProbs(_ model: DecoderModel, _ qr: [Int32], rows: Int, ctx: Int, R: Int, responses: [Int32]) -> [Float] {
        if settings.sharePromptForward {
            return sharedQueryLogProbsNoGrad(model, queryResponses: qr, rows: rows, contextLength: ctx, responseLength: R,
                                             pad: settings.pad, temperature: settings.temperature, chunk: settings.forwardBatchSize)
        }
        return responseLogProbsNoGrad(model, queryResponses: qr, rows: rows, contextLength: ctx, responseLength: R, pad: settings.pad,
                                      temperature: settings.temperature, chunk: settings.forwardBatchSize)
    }

    /// The no-grad passes of one generation batch (old log-probs when the batch is trained on more
    /// than once or RLOO puts the KL in the reward; reference log-probs when beta != 0) and its
    /// advantages. `rewards` are one score per row, prompt-major (the G samples of a prompt adjacent).
    public func prepare(queries: [Int32], responses: [Int32], rows: Int, contextLength ctx: Int, responseLength R: Int,
                        rewards: [Float]) throws -> CriticFreeRollout {
        guard queries.count == rows * ctx, responses.count == rows * R, rewards.count == rows, ctx >= 1, R >= 1 else {
            throw OnlineRLError.shape("critic-free batch: \(queries.count) query ids, \(responses.count) response ids and \(rewards.count) rewards for \(rows) rows of \(ctx) + \(R)")
        }
        if let bad = rewards.firstIndex(where: { !$0.isFinite }) {
            throw OnlineRLError.nonFinite(update: 0, quantity: "the reward of completion \(bad)")
        }
        let qr = concatenateRows(queries: queries, responses: responses, rows: rows, contextLength: ctx, responseLength: R)
        let mask = Self.completionMask(responses, rows: rows, length: R, eos: settings.eos, pad: settings.pad)
        let o = settings.objective
        let isRLOO: Bool
        if case .rloo = o.estimator { isRLOO = true } else { isRLOO = false }
        let needsOld = settings.numIterations > 1 || (isRLOO && o.beta != 0)
        let reuse = needsOld && settings.reuseTrainingForward && settings.numIterations <= 1
            && rows <= Swift.max(1, settings.microBatchSize) && Autograd.isRecording
        var retained: RetainedForward?
        let old: [Float]?
        if reuse {
            let f = trainingForward(qr, responses: responses, idx: Array(0..<rows), ctx: ctx, R: R)
            retained = RetainedForward(logProbs: f.logProbs, entropies: f.entropies)
            old = f.logProbs.values
        } else {
            old = needsOld ? logProbs(policy, qr, rows: rows, ctx: ctx, R: R, responses: responses) : nil
        }
        var ref: [Float]?
        if o.beta != 0 {
            if let reference {
                ref = logProbs(reference, qr, rows: rows, ctx: ctx, R: R, responses: responses)
            } else {
                policy.adaptersEnabled = false
                defer { policy.adaptersEnabled = true }
                ref = logProbs(policy, qr, rows: rows, ctx: ctx, R: R, responses: responses)
            }
        }
        let batch = try CompletionLogProbs(rows: rows, width: R, mask: mask, old: old, ref: ref)
        let advantage = try o.advantages(rewards: rewards, logProbs: batch)
        var sequenceKL: [Float]?
        if let ref {
            let current = old ?? logProbs(policy, qr, rows: rows, ctx: ctx, R: R, responses: responses)
            sequenceKL = batch.maskedRowSums(zip(current, ref).map { $0 - $1 }).map { Float($0) }
        }
        return CriticFreeRollout(rows: rows, contextLength: ctx, responseLength: R, queryResponses: qr, responses: responses,
                                 logProbs: batch, rewards: rewards, advantage: advantage, sequenceKL: sequenceKL,
                                 retained: retained)
    }

    /// The `numIterations` optimizer steps on one generation batch, its rows shuffled once.
    ///
    /// - Parameters:
    ///   - step: optimizer steps taken before this batch (for the learning rate).
    ///   - learningRate: the schedule, by 0-based optimizer step.
    /// - Returns: TRL's metric names, averaged over the micro-batches, plus `loss`, `grad_norm`,
    ///   `learning_rate` and `completions/mean_length`.
    public func train(_ rollout: CriticFreeRollout, step: Int, learningRate: (Int) -> Double, rng: inout RNG) throws -> [String: Double] {
        let rows = rollout.rows, ctx = rollout.contextLength, R = rollout.responseLength
        let s = settings
        var order = Array(0..<rows)
        seededShuffle(&order, using: &rng)
        let micro = Swift.max(1, Swift.min(s.microBatchSize, rows))
        let chunks = stride(from: 0, to: rows, by: micro).map { Array(order[$0..<Swift.min($0 + micro, rows)]) }
        var objective = s.objective
        objective.gradientAccumulationSteps = chunks.count
        objective.stepsPerGeneration = 1
        let tokens = rollout.logProbs.tokenCount
        var sums: [String: Double] = [:], counts: [String: Int] = [:]
        var lossSum = 0.0, gradNorm = 0.0, lr = 0.0
        for iteration in 0..<Swift.max(1, s.numIterations) {
            lr = learningRate(step + iteration)
            for (k, idx) in chunks.enumerated() where k % communicator.size == communicator.rank {
                let n = idx.count
                let lp: Tensor, entropies: [Float]
                if iteration == 0, chunks.count == 1, let kept = rollout.retained, !kept.used,
                   kept.logProbs.shape == [rows, R], kept.logProbs.requiresGrad {
                    // prepare's forward over all rows (the old log-probs), in this chunk's order.
                    kept.used = true
                    lp = embedding(kept.logProbs, ids: idx.map { Int32($0) })
                    entropies = gatherRows(kept.entropies, indices: idx, length: R)
                } else {
                    (lp, entropies) = trainingForward(rollout.queryResponses, responses: rollout.responses, idx: idx, ctx: ctx, R: R)
                }
                let b = rollout.logProbs
                let sub = try CompletionLogProbs(rows: n, width: R, mask: gatherRows(b.mask, indices: idx, length: R),
                                                 old: b.old.map { gatherRows($0, indices: idx, length: R) },
                                                 ref: b.ref.map { gatherRows($0, indices: idx, length: R) },
                                                 entropies: entropies)
                let out = try objective.loss(logProbs: lp, batch: sub, advantages: idx.map { rollout.advantage.advantages[$0] },
                                             tokensInGenerationBatch: tokens)
                let value = out.loss.item
                guard value.isFinite else {
                    policy.arena.zeroGrad()
                    throw OnlineRLError.nonFinite(update: step + iteration + 1, quantity: "loss")
                }
                out.loss.backward()
                lossSum += Double(value)
                for (k, v) in out.metrics where v.isFinite {
                    sums[k, default: 0] += v
                    counts[k, default: 0] += 1
                }
            }
            try OptimizerStep.allReduceGradients(of: policy.arena, over: communicator)
            let norm = s.maxGradNorm > 0 ? Double(policy.arena.clipGradNorm(maxNorm: Float(s.maxGradNorm))) : Double(policy.arena.gradNorm())
            guard norm.isFinite else {
                policy.arena.zeroGrad()
                throw OnlineRLError.nonFinite(update: step + iteration + 1, quantity: "the policy gradient")
            }
            gradNorm = norm
            optimizer.learningRate = lr
            optimizer.step()
            policy.arena.zeroGrad()
        }
        if communicator.isDistributed {
            // Rank 0 ran micro-batch 0, so it has every metric name the loss reports.
            let names = try JSONDecoder().decode([String].self, from: communicator.broadcast(
                communicator.isRoot ? JSONEncoder().encode(sums.keys.sorted()) : nil, root: 0))
            var totals = [lossSum] + names.map { sums[$0] ?? 0 } + names.map { Double(counts[$0] ?? 0) }
            try communicator.allReduce(&totals, .sum)
            lossSum = totals[0]
            sums = [:]
            counts = [:]
            for (j, name) in names.enumerated() where totals[1 + names.count + j] > 0 {
                sums[name] = totals[1 + j]
                counts[name] = Int(totals[1 + names.count + j])
            }
        }
        var metrics = rollout.advantage.metrics
        for (k, v) in sums { metrics[k] = v / Double(counts[k] ?? 1) }
        metrics["loss"] = lossSum / Double(Swift.max(1, s.numIterations))
        metrics["grad_norm"] = gradNorm
        metrics["learning_rate"] = lr
        let lengths = rollout.logProbs.rowLengths
        metrics["completions/mean_length"] = Double(lengths.reduce(0, +)) / Double(Swift.max(rows, 1))
        if let kl = rollout.sequenceKL { metrics["objective/kl"] = Double(kl.reduce(0, +)) / Double(Swift.max(rows, 1)) }
        return metrics
    }
}
