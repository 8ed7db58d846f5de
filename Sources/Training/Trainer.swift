import DataParallel
import Foundation
import Optimizers
import TensorCore

/// Where metrics go: the run store plugs in here; trainers never talk to a database.
public protocol MetricsSink: AnyObject {
    /// Records `value` of metric `name` at optimizer step `step` (e.g. "train/loss").
    func record(step: Int, name: String, value: Double)
    /// Makes everything recorded so far durable (a buffered sink writes its buffer). The trainer
    /// calls it before each checkpoint.
    func flush() throws
}

extension MetricsSink {
    /// Nothing to flush by default.
    public func flush() throws {}
}

/// Keeps metrics in memory (tests, summaries).
public final class MemoryMetricsSink: MetricsSink {
    /// One recorded metric.
    public struct Row: Equatable, Sendable {
        public let step: Int
        public let name: String
        public let value: Double
    }
    /// Everything recorded, in order.
    public private(set) var rows: [Row] = []

    /// An empty sink.
    public init() {}

    public func record(step: Int, name: String, value: Double) { rows.append(Row(step: step, name: name, value: value)) }

    /// The values of one metric, in step order.
    public func series(_ name: String) -> [(step: Int, value: Double)] {
        rows.filter { $0.name == name }.map { ($0.step, $0.value) }
    }
}

/// A stream of training batches that can say where it is and go back there (exact resume).
public protocol BatchSource {
    associatedtype Batch
    associatedtype Position: Codable & Equatable
    /// The next batch, or nil at the end of the data (the trainer then starts a new epoch).
    mutating func next() -> Batch?
    /// Starts the next epoch (reshuffling deterministically).
    mutating func startNextEpoch()
    /// Where the stream is now.
    var position: Position { get }
    /// Moves to a saved position.
    mutating func restore(_ position: Position) throws
    /// Data-parallel training: from now on every batch is this process's share (process `rank` of
    /// `size`) of the batch the source would give alone; the order and the position stay those of
    /// the whole batches, so they do not depend on `size`.
    mutating func shard(rank: Int, of size: Int) throws
    /// True when the last batch's share for this process is empty (a batch smaller than the
    /// number of processes): the trainer then skips it.
    var lastShardIsEmpty: Bool { get }
}

extension BatchSource {
    public mutating func shard(rank: Int, of size: Int) throws {
        guard size == 1 else { throw TrainingError.distributed("this stage's batches cannot be split over \(size) processes") }
    }
    public var lastShardIsEmpty: Bool { false }
}

/// Hyperparameters of the shared loop, with TRL / Hugging Face Trainer names.
public struct TrainerConfig: Codable, Equatable, Sendable {
    public var learningRate: Double = 5e-5
    public var lrSchedulerType: LRSchedule.Decay = .linear
    public var warmupSteps: Int = 0
    public var minLearningRate: Double = 0
    public var maxSteps: Int = 100
    public var gradientAccumulationSteps: Int = 1
    public var maxGradNorm: Double = 1.0
    public var weightDecay: Double = 0.0
    public var adamBeta1: Double = 0.9
    public var adamBeta2: Double = 0.999
    public var adamEpsilon: Double = 1e-8
    public var loggingSteps: Int = 1
    /// Evaluate every N steps (0: never, except at the end when an evaluator exists).
    public var evalSteps: Int = 0
    /// Save a checkpoint every N steps (0: only at the end).
    public var saveSteps: Int = 0
    /// Stop when the evaluation loss has not improved for this many evaluations (0: never).
    public var earlyStoppingPatience: Int = 0
    public var seed: UInt64 = 42
    /// Evaluate once before the first step and log it at step 0 (TRL's `eval_on_start`), so a
    /// stage's improvement can be read off its metrics. Skipped when resuming past step 0.
    public var evalOnStart = false

    enum CodingKeys: String, CodingKey {
        case learningRate = "learning_rate", lrSchedulerType = "lr_scheduler_type", warmupSteps = "warmup_steps"
        case minLearningRate = "min_lr", maxSteps = "max_steps", gradientAccumulationSteps = "gradient_accumulation_steps"
        case maxGradNorm = "max_grad_norm", weightDecay = "weight_decay", adamBeta1 = "adam_beta1", adamBeta2 = "adam_beta2"
        case adamEpsilon = "adam_epsilon", loggingSteps = "logging_steps", evalSteps = "eval_steps", saveSteps = "save_steps"
        case earlyStoppingPatience = "early_stopping_patience", seed
    }

    /// The defaults above.
    public init() {}

    /// The learning-rate schedule these settings describe.
    public var schedule: LRSchedule {
        LRSchedule(decay: lrSchedulerType, peak: learningRate, warmupSteps: warmupSteps, totalSteps: maxSteps,
                   minLR: minLearningRate)
    }
}

/// What a progress callback sees after each optimizer step.
public struct TrainingProgress: Sendable {
    public let step: Int
    public let maxSteps: Int
    public let loss: Double
    public let learningRate: Double
    public let gradNorm: Double
    /// Tokens (or examples) the loss function reported for this step, per second.
    public let itemsPerSecond: Double
    public let evalLoss: Double?

    public init(step: Int, maxSteps: Int, loss: Double, learningRate: Double, gradNorm: Double, itemsPerSecond: Double,
                evalLoss: Double?) {
        self.step = step
        self.maxSteps = maxSteps
        self.loss = loss
        self.learningRate = learningRate
        self.gradNorm = gradNorm
        self.itemsPerSecond = itemsPerSecond
        self.evalLoss = evalLoss
    }
}

/// Errors of the training loop that a user can act on.
public enum TrainingError: Error, CustomStringConvertible {
    /// A checkpoint cannot be restored.
    case checkpoint(path: String, reason: String)
    /// A checkpoint cannot be written.
    case checkpointWrite(path: String, reason: String)
    case nonFiniteLoss(step: Int)
    /// A loss function reported a negative number of items.
    case badItemCount(Int)
    /// The processes of a data-parallel run disagree or cannot work together.
    case distributed(String)

    public var description: String {
        switch self {
        case let .checkpoint(path, reason): return "\(path): cannot resume: \(reason)"
        case let .checkpointWrite(path, reason): return "\(path): cannot write the checkpoint: \(reason)"
        case let .nonFiniteLoss(step): return "loss became NaN or infinite at step \(step); lower the learning rate"
        case let .badItemCount(n): return "a loss function reported \(n) items; the count must not be negative"
        case let .distributed(reason): return "data-parallel training: \(reason)"
        }
    }
}

/// The loop every stage shares: lr schedule, gradient accumulation weighted by items, clipping,
/// the optimizer (AdamW unless given another), logging, evaluation with early stopping,
/// checkpoints (last and best) and exact resume.
///
/// A stage supplies the batches and a loss function; everything else is here, in the natural order
/// (nanoGPT's loop): lr, forward, loss, backward, clip, step, zero, log, eval, checkpoint. The
/// update itself is an ``OptimizerStep`` and the checkpoints go through a ``Checkpointer``, the
/// parts other loops (PPO) reuse.
public final class Trainer<Source: BatchSource> {
    /// The parameters trained.
    public let arena: ParameterArena
    /// Hyperparameters.
    public let config: TrainerConfig
    /// The optimizer (by default AdamW with the config's settings, decay on tensors of rank >= 2).
    public var optimizer: any Optimizer { optimizerStep.optimizer }
    /// Accumulation, clipping and the update.
    public let optimizerStep: OptimizerStep
    /// Saves and restores the weights (`weights`) and the optimizer (`optimizer`).
    public let checkpointer: Checkpointer
    /// Where metrics go.
    public let sink: MetricsSink?
    /// The stage's random stream (dropout, sampling); saved with checkpoints.
    public var rng: RNG
    public private(set) var step = 0
    public private(set) var epoch = 0
    public private(set) var bestEvalLoss: Double?
    private var evaluationsWithoutImprovement = 0
    var source: Source

    /// The loss of one batch (its mean over the items) and how many items (tokens or pairs) it
    /// covered: micro-batches are weighted by them.
    public typealias LossFunction = (Source.Batch, inout RNG) -> (loss: Tensor, items: Int, metrics: [String: Double])
    let lossFunction: LossFunction
    /// Mean loss and metrics on the validation data (under `mpirun`, over every process's share of it).
    public var evaluate: (() throws -> (loss: Double, metrics: [String: Double]))?
    /// Called after each checkpoint is written, with its kind (`last`, `best`), step and directory
    /// (the run store records it).
    public var onCheckpoint: ((_ kind: String, _ step: Int, _ directory: URL) throws -> Void)?
    /// The processes training together (``ProcessGroup/world``: one process unless started by
    /// `mpirun`). With several, each takes its share of every batch, gradients and metrics are
    /// summed before every step, and only rank 0 records metrics and writes checkpoints.
    public var communicator: any Communicator = ProcessGroup.world

    /// A trainer over `arena` reading `source`, updating it with `optimizer` (which must be over
    /// `arena`; default: AdamW from the config).
    public init(arena: ParameterArena, config: TrainerConfig, source: Source, sink: MetricsSink? = nil,
                optimizer: (any Optimizer)? = nil, loss: @escaping LossFunction) {
        precondition(optimizer.map { $0.arena === arena } ?? true, "the optimizer must update the trainer's arena")
        self.arena = arena
        self.config = config
        self.source = source
        self.sink = sink
        self.lossFunction = loss
        self.rng = RNG(seed: config.seed)
        let optimizer = optimizer ?? AdamW(arena: arena, learningRate: config.learningRate, beta1: config.adamBeta1,
                                           beta2: config.adamBeta2, epsilon: config.adamEpsilon,
                                           weightDecay: config.weightDecay, decayFilter: .matricesOnly)
        optimizerStep = OptimizerStep(optimizer: optimizer, maxGradNorm: config.maxGradNorm)
        checkpointer = Checkpointer(arenas: [(TrainerKeys.weights, arena)], optimizers: [(TrainerKeys.optimizer, optimizer)])
    }

    private func nextBatch() -> Source.Batch {
        if let b = source.next() { return b }
        epoch += 1
        source.startNextEpoch()
        guard let b = source.next() else { preconditionFailure("a batch source produced an empty epoch") }
        return b
    }

    /// Runs until `maxSteps`, early stopping, or `progress` returning false. Checkpoints go to
    /// `checkpointDirectory/last` (and `best` when evaluating). Returns the final step.
    @discardableResult
    public func run(checkpointDirectory: URL? = nil, progress: ((TrainingProgress) -> Bool)? = nil) throws -> Int {
        let schedule = config.schedule
        let sink = communicator.isRoot ? self.sink : nil
        if communicator.isDistributed { try startDistributed() }
        if config.evalOnStart, step == 0, let evaluate {
            let result = try Autograd.withoutGrad { try evaluate() }
            sink?.record(step: 0, name: "eval/loss", value: result.loss)
            for (name, v) in result.metrics { sink?.record(step: 0, name: "eval/" + name, value: v) }
        }
        while step < config.maxSteps {
            let started = DispatchTime.now().uptimeNanoseconds
            let lr = schedule.lr(at: step)
            for _ in 0..<max(1, config.gradientAccumulationSteps) {
                let batch = nextBatch()
                if source.lastShardIsEmpty { continue }
                let (loss, n, metrics) = lossFunction(batch, &rng)
                do { try optimizerStep.accumulate(loss: loss, items: n, metrics: metrics) } catch TrainingError.nonFiniteLoss {
                    throw TrainingError.nonFiniteLoss(step: step + 1)
                }
            }
            let update = try optimizerStep.step(learningRate: lr, over: communicator)
            step += 1
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) * 1e-9
            let loss = update.loss
            if let sink, config.loggingSteps > 0, step % config.loggingSteps == 0 || step == config.maxSteps {
                sink.record(step: step, name: "train/loss", value: loss)
                sink.record(step: step, name: "train/learning_rate", value: lr)
                sink.record(step: step, name: "train/grad_norm", value: update.gradNorm)
                sink.record(step: step, name: "train/items_per_second", value: Double(update.items) / seconds)
                for (name, v) in update.metrics { sink.record(step: step, name: "train/" + name, value: v) }
            }
            var evalLoss: Double?
            var stop = false
            if let evaluate, (config.evalSteps > 0 && step % config.evalSteps == 0) || step == config.maxSteps {
                let result = try Autograd.withoutGrad { try evaluate() }
                evalLoss = result.loss
                sink?.record(step: step, name: "eval/loss", value: result.loss)
                for (name, v) in result.metrics { sink?.record(step: step, name: "eval/" + name, value: v) }
                if bestEvalLoss.map({ result.loss < $0 }) ?? true {
                    bestEvalLoss = result.loss
                    evaluationsWithoutImprovement = 0
                    if let dir = checkpointDirectory { try saveCheckpoint(to: dir.appendingPathComponent("best")) }
                } else {
                    evaluationsWithoutImprovement += 1
                    if config.earlyStoppingPatience > 0 && evaluationsWithoutImprovement >= config.earlyStoppingPatience {
                        stop = true
                    }
                }
            }
            var saved = false
            if let dir = checkpointDirectory, (config.saveSteps > 0 && step % config.saveSteps == 0) || step == config.maxSteps || stop {
                try saveCheckpoint(to: dir.appendingPathComponent("last"))
                saved = true
            }
            let p = TrainingProgress(step: step, maxSteps: config.maxSteps, loss: loss, learningRate: lr, gradNorm: update.gradNorm,
                                     itemsPerSecond: Double(update.items) / seconds, evalLoss: evalLoss)
            if let progress, try !agreed(progress(p)) {
                if let dir = checkpointDirectory, !saved { try saveCheckpoint(to: dir.appendingPathComponent("last")) }
                break
            }
            if stop { break }
        }
        return step
    }

    // MARK: Data parallelism

    /// Splits the batches, checks that every process stands at the same step, and gives every
    /// process rank 0's parameters.
    func startDistributed() throws {
        try source.shard(rank: communicator.rank, of: communicator.size)
        var steps = [Double(step), -Double(step)]
        try communicator.allReduce(&steps, .max)
        guard steps[0] == -steps[1] else {
            throw TrainingError.distributed("the processes start at different steps (\(Int(-steps[1])) to \(Int(steps[0]))); every process must see rank 0's checkpoint directory (a shared file system)")
        }
        try communicator.broadcast(UnsafeMutableRawPointer(arena.values.base), bytes: arena.usedCount * MemoryLayout<Float>.size, root: 0)
    }

    /// True when every process wants to go on (a Ctrl-C seen by one stops all after the same step).
    func agreed(_ goOn: Bool) throws -> Bool {
        guard communicator.isDistributed else { return goOn }
        var flag = [goOn ? 1.0 : 0.0]
        try communicator.allReduce(&flag, .min)
        return flag[0] == 1
    }

    // MARK: Checkpoints

    /// The state beside the weights and the optimizer that resume needs.
    func checkpointState() throws -> CheckpointState {
        var state = CheckpointState(step: step, rng: rng, values: [
            TrainerKeys.epoch: Double(epoch),
            TrainerKeys.evaluationsWithoutImprovement: Double(evaluationsWithoutImprovement),
            CheckpointState.processesKey: Double(communicator.size),
        ])
        if let bestEvalLoss { state.values[TrainerKeys.bestEvalLoss] = bestEvalLoss }
        do { try state.setDataPosition(source.position) } catch {
            throw TrainingError.checkpointWrite(path: "data position", reason: "\(error)")
        }
        return state
    }

    /// Writes weights (`weights.safetensors`, arena layout), the optimizer's state
    /// (`optimizer.safetensors`) and the trainer state as the checkpoint `directory` (e.g.
    /// `checkpoints/last`), replacing the previous one atomically: a crash at any instant leaves
    /// the previous checkpoint or this one (see ``Checkpointer``).
    public func saveCheckpoint(to directory: URL) throws {
        guard communicator.isRoot else { return }   // data-parallel: rank 0 writes
        // Metrics up to this step reach the sink's storage before the checkpoint exists, so a crash
        // after it loses no rows a resume would not log again.
        try sink?.flush()
        try checkpointer.save(checkpointState(), to: directory)
        try onCheckpoint?(directory.lastPathComponent, step, directory)
    }

    /// Restores weights, optimizer state, RNG, data position and step from a checkpoint written
    /// by ``saveCheckpoint(to:)`` (or by the former layout) for a model of the same layout.
    public func resume(from directory: URL) throws {
        func fail(_ reason: String) -> TrainingError { .checkpoint(path: directory.path, reason: reason) }
        // Read everything before changing anything: the position must fit this data.
        guard let resolved = Checkpointer.resolve(directory) else { throw fail("\(Checkpointer.stateFileName) is missing") }
        let stored = try Checkpointer.readState(resolved)
        let position: Source.Position
        do {
            guard let data = stored.dataPosition else { throw fail("it holds no data position") }
            position = try JSONDecoder().decode(Source.Position.self, from: data)
        } catch let error as TrainingError { throw error } catch {
            throw fail("the saved data position does not fit this data (\(error))")
        }
        guard let savedRNG = stored.rng else { throw fail("it holds no random state") }
        let state = try checkpointer.restore(from: resolved)
        try source.restore(position)
        step = state.step
        epoch = Int(state.values[TrainerKeys.epoch] ?? 0)
        rng = savedRNG
        bestEvalLoss = state.values[TrainerKeys.bestEvalLoss]
        evaluationsWithoutImprovement = Int(state.values[TrainerKeys.evaluationsWithoutImprovement] ?? 0)
    }
}
