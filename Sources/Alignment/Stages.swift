import DataParallel
import Datasets
import Foundation
import NN
import TensorCore
import Training

/// Batches drawn from a list of items in a seeded order that changes every epoch, resumable:
/// examples for pretraining and SFT, preference pairs for reward and DPO.
public struct EpochSource<Item, Output>: BatchSource {
    let items: [Item]
    let collate: ([Item]) -> Output
    var order: EpochBatches

    /// A source of `batchSize` items per batch, turned into a batch by `collate`.
    public init(items: [Item], batchSize: Int, seed: UInt64, collate: @escaping ([Item]) -> Output) throws {
        self.items = items
        self.collate = collate
        order = try EpochBatches(count: items.count, batchSize: batchSize, seed: seed)
    }

    /// This process's share of each batch (data-parallel training): `rank` of `size`.
    var rank = 0, size = 1
    public private(set) var lastShardIsEmpty = false

    public mutating func next() -> Output? {
        let batch = order.next()
        guard size > 1 else { return collate(batch.map { items[$0] }) }
        // Contiguous shares, the first `count % size` ranks one item larger: together the batch
        // alone, in its order.
        let count = batch.count, base = count / size, extra = count % size
        let start = rank * base + min(rank, extra), end = start + base + (rank < extra ? 1 : 0)
        lastShardIsEmpty = start == end
        // An empty share collates a stand-in the trainer skips (a batch is never empty).
        return collate(lastShardIsEmpty ? [items[batch[0]]] : batch[start..<end].map { items[$0] })
    }
    public mutating func startNextEpoch() {}   // EpochBatches rolls over by itself
    public var position: DataPosition { order.position }
    public mutating func restore(_ position: DataPosition) throws { try order.restore(position) }
    public mutating func shard(rank: Int, of size: Int) throws {
        precondition(size > 0 && (0..<size).contains(rank), "rank \(rank) of \(size)")
        self.rank = rank
        self.size = size
    }
}

/// What a stage reports at the end.
public struct StageSummary: Sendable {
    /// Optimizer steps run.
    public var steps: Int
    /// Training loss of the last step.
    public var finalTrainLoss: Double
    /// Validation metrics after the last step (loss and the stage's own).
    public var validation: [String: Double]
    /// True when the progress callback stopped training before the end (Ctrl-C); the last
    /// checkpoint holds the step reached.
    public var interrupted: Bool = false

    public init(steps: Int, finalTrainLoss: Double, validation: [String: Double], interrupted: Bool = false) {
        self.steps = steps
        self.finalTrainLoss = finalTrainLoss
        self.validation = validation
        self.interrupted = interrupted
    }
}

/// The supervised stages: each builds a loss over its batches and runs the shared ``Trainer``.
public enum Stages {
    /// Token-level cross-entropy on the label positions (SFT: completion/assistant tokens and EOS;
    /// pretraining: every token).
    static func languageModelingLoss(_ model: DecoderModel, _ b: Batch) -> (loss: Tensor, items: Int) {
        let logits = model.logits(ids: b.ids, batch: b.rows, length: b.length, attentionMask: b.attentionMask)
        let loss = model.languageModelingLoss(logits: logits, labels: b.labels, batch: b.rows, length: b.length)
        return (loss, scoredLabels(b))
    }

    /// The label positions the loss scores: every label except each row's first (the model
    /// shifts, so position 0 has no logits predicting it). The mean is over exactly these.
    static func scoredLabels(_ b: Batch) -> Int {
        var n = 0
        for row in 0..<b.rows {
            for t in stride(from: 1, to: b.length, by: 1) where b.labels[row * b.length + t] != Batch.ignoreIndex { n += 1 }
        }
        return n
    }

    /// Mean loss over validation batches (and mean of the metrics), without autograd: the
    /// batches of every process (each evaluated its share, ``validationStarts(_:batchSize:)``).
    static func average(_ batches: [[Double]], names: [String]) throws -> [String: Double] {
        var totals = names.indices.map { k in batches.map { $0[k] }.reduce(0, +) } + [Double(batches.count)]
        try ProcessGroup.world.allReduce(&totals, .sum)
        var out: [String: Double] = [:]
        guard let count = totals.last, count > 0 else { return out }
        for (k, name) in names.enumerated() { out[name] = totals[k] / count }
        return out
    }

    /// The first items of the validation batches this process evaluates: alone, every batch;
    /// under `mpirun`, batch `k` on process `k mod size` (the sums are then reduced).
    static func validationStarts(_ count: Int, batchSize: Int) -> [Int] {
        let world = ProcessGroup.world
        return stride(from: 0, to: count, by: batchSize).enumerated().filter { $0.offset % world.size == world.rank }.map(\.element)
    }

    /// Supervised fine-tuning (or pretraining on packed text): loss on label positions only.
    /// Validation reports `loss` and `perplexity` (exp of the token-weighted mean loss).
    public static func sft(model: DecoderModel, train: [TokenizedExample], validation: [TokenizedExample], collator: Collator,
                           batchSize: Int, config: TrainerConfig, sink: MetricsSink? = nil, checkpointDirectory: URL? = nil,
                           resume: Bool = false, progress: ((TrainingProgress) -> Bool)? = nil,
                           onCheckpoint: ((String, Int, URL) throws -> Void)? = nil) throws -> StageSummary {
        let source = try EpochSource(items: train, batchSize: batchSize, seed: config.seed) { collator.collate($0) }
        let trainer = Trainer(arena: model.arena, config: config, source: source, sink: sink) { batch, _ in
            let (loss, items) = languageModelingLoss(model, batch)
            return (loss, items, [:])
        }
        if !validation.isEmpty {
            trainer.evaluate = {
                var sums = [0.0, 0.0]   // summed NLL, tokens
                for start in validationStarts(validation.count, batchSize: batchSize) {
                    let b = collator.collate(Array(validation[start..<min(start + batchSize, validation.count)]))
                    let (loss, items) = languageModelingLoss(model, b)
                    sums[0] += Double(loss.item) * Double(items)
                    sums[1] += Double(items)
                }
                try ProcessGroup.world.allReduce(&sums, .sum)
                let mean = sums[1] > 0 ? sums[0] / sums[1] : 0
                return (mean, ["perplexity": Foundation.exp(mean)])
            }
        }
        trainer.onCheckpoint = onCheckpoint
        return try run(trainer, checkpointDirectory: checkpointDirectory, resume: resume, progress: progress)
    }

    /// Reward-model training on preference pairs: Bradley-Terry with the pairs' margins and optional
    /// centering. Validation reports `loss`, `accuracy`, `margin`, `reward_mean`, `reward_std`.
    public static func reward(model: DecoderModel, train: [TokenizedPair], validation: [TokenizedPair], collator: Collator,
                              batchSize: Int, config: TrainerConfig, centering: Float = 0, sink: MetricsSink? = nil,
                              checkpointDirectory: URL? = nil, resume: Bool = false,
                              progress: ((TrainingProgress) -> Bool)? = nil,
                           onCheckpoint: ((String, Int, URL) throws -> Void)? = nil) throws -> StageSummary {
        precondition(model.scoreHead != nil, "a reward model needs its score head (addScoreHead)")
        func loss(_ b: PairBatch) -> (Tensor, [String: Double]) {
            let s = b.sequences
            let r = model.rewards(ids: s.ids, batch: s.rows, length: s.length, attentionMask: s.attentionMask)
            let P = b.pairs
            return bradleyTerryLoss(chosen: r.slice(axis: 0, 0..<P), rejected: r.slice(axis: 0, P..<(2 * P)),
                                    margins: b.margins, centering: centering)
        }
        let source = try EpochSource(items: train, batchSize: batchSize, seed: config.seed) { collator.collate($0) as PairBatch }
        let trainer = Trainer(arena: model.arena, config: config, source: source, sink: sink) { batch, _ in
            let (l, m) = loss(batch)
            return (l, batch.pairs, m)
        }
        if !validation.isEmpty {
            trainer.evaluate = {
                // Accuracy and margins over the whole split; mean and std over every reward.
                // Each process fills in its batches' rewards; the sums over processes of the
                // zeros elsewhere are every reward exactly.
                var chosen = [Float](repeating: 0, count: validation.count), rejected = chosen
                var lossSum = [0.0]
                for start in validationStarts(validation.count, batchSize: batchSize) {
                    let b = collator.collate(Array(validation[start..<min(start + batchSize, validation.count)]))
                    let s = b.sequences
                    let r = model.rewards(ids: s.ids, batch: s.rows, length: s.length, attentionMask: s.attentionMask).values
                    chosen.replaceSubrange(start..<(start + b.pairs), with: r[0..<b.pairs])
                    rejected.replaceSubrange(start..<(start + b.pairs), with: r[b.pairs..<(2 * b.pairs)])
                    lossSum[0] += Double(loss(b).0.item) * Double(b.pairs)
                }
                let world = ProcessGroup.world
                if world.isDistributed {
                    func sum(_ x: inout [Float]) throws {
                        try x.withUnsafeMutableBufferPointer { try world.allReduceSum($0.baseAddress!, count: $0.count) }
                    }
                    try sum(&chosen)
                    try sum(&rejected)
                    try world.allReduce(&lossSum, .sum)
                }
                let (_, m) = bradleyTerryLoss(chosen: Tensor(shape: [chosen.count], values: chosen),
                                              rejected: Tensor(shape: [rejected.count], values: rejected))
                return (lossSum[0] / Double(chosen.count), m)
            }
        }
        trainer.onCheckpoint = onCheckpoint
        return try run(trainer, checkpointDirectory: checkpointDirectory, resume: resume, progress: progress)
    }

    /// DPO (sigmoid, IPO or cDPO) against a frozen reference model. Validation reports `loss` and
    /// TRL's `rewards/*` and `logps/*` metrics.
    public static func dpo(policy: DecoderModel, reference: DecoderModel, train: [TokenizedPair], validation: [TokenizedPair],
                           collator: Collator, batchSize: Int, config: TrainerConfig, beta: Float = 0.1,
                           lossType: DPOLossType = .sigmoid, labelSmoothing: Float = 0, rpoAlpha: Float = 0,
                           sink: MetricsSink? = nil,
                           checkpointDirectory: URL? = nil, resume: Bool = false,
                           progress: ((TrainingProgress) -> Bool)? = nil,
                           onCheckpoint: ((String, Int, URL) throws -> Void)? = nil) throws -> StageSummary {
        reference.arena.freezeAll()
        func logps(_ model: DecoderModel, _ s: Batch) -> (Tensor, [Int]) {
            let logits = model.logits(ids: s.ids, batch: s.rows, length: s.length, attentionMask: s.attentionMask)
            return sequenceLogProbs(logits: logits, ids: s.ids, lossMask: s.labels.map { $0 != Batch.ignoreIndex })
        }
        func loss(_ b: PairBatch) -> (Tensor, [String: Double]) {
            let s = b.sequences, P = b.pairs
            let (ref, _) = Autograd.withoutGrad { logps(reference, s) }
            let refValues = ref.values
            let (pol, counts) = logps(policy, s)
            let chosen = pol.slice(axis: 0, 0..<P)
            var (l, m) = dpoLoss(policyChosen: chosen, policyRejected: pol.slice(axis: 0, P..<(2 * P)),
                                 referenceChosen: Array(refValues[0..<P]), referenceRejected: Array(refValues[P..<(2 * P)]),
                                 beta: beta, type: lossType, labelSmoothing: labelSmoothing,
                                 chosenCounts: Array(counts[0..<P]), rejectedCounts: Array(counts[P..<(2 * P)]))
            if rpoAlpha > 0 {
                // RPO (Pang et al. 2024): plus α times the mean NLL of the chosen completions' tokens.
                let tokens = Float(max(1, counts[0..<P].reduce(0, +)))
                let nll = -chosen.sum() / tokens
                l = l + nll * rpoAlpha
                m["nll_loss"] = Double(nll.item)
            }
            return (l, m)
        }
        let source = try EpochSource(items: train, batchSize: batchSize, seed: config.seed) { collator.collate($0) as PairBatch }
        let trainer = Trainer(arena: policy.arena, config: config, source: source, sink: sink) { batch, _ in
            let (l, m) = loss(batch)
            return (l, batch.pairs, m)
        }
        if !validation.isEmpty {
            trainer.evaluate = {
                var rows: [[Double]] = []
                let names = ["loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins",
                             "logps/chosen", "logps/rejected"]
                for start in validationStarts(validation.count, batchSize: batchSize) {
                    let b = collator.collate(Array(validation[start..<min(start + batchSize, validation.count)]))
                    let (l, m) = loss(b)
                    rows.append([Double(l.item)] + names.dropFirst().map { m[$0] ?? 0 })
                }
                var avg = try average(rows, names: names)
                let mean = avg.removeValue(forKey: "loss") ?? 0
                return (mean, avg)
            }
        }
        trainer.onCheckpoint = onCheckpoint
        return try run(trainer, checkpointDirectory: checkpointDirectory, resume: resume, progress: progress)
    }

    static func run<S>(_ trainer: Trainer<S>, checkpointDirectory: URL?, resume: Bool,
                       progress: ((TrainingProgress) -> Bool)?) throws -> StageSummary {
        if resume, let dir = checkpointDirectory?.appendingPathComponent("last"), Checkpointer.resolve(dir) != nil {
            try trainer.resume(from: dir)
        }
        var last = 0.0
        var interrupted = false
        try trainer.run(checkpointDirectory: checkpointDirectory) { p in
            last = p.loss
            let go = progress?(p) ?? true
            if !go && p.step < p.maxSteps { interrupted = true }
            return go
        }
        if interrupted { return StageSummary(steps: trainer.step, finalTrainLoss: last, validation: [:], interrupted: true) }
        var validation: [String: Double] = [:]
        if let evaluate = trainer.evaluate {
            let (loss, metrics) = try Autograd.withoutGrad { try evaluate() }
            validation = metrics
            validation["loss"] = loss
        }
        return StageSummary(steps: trainer.step, finalTrainLoss: last, validation: validation)
    }
}
