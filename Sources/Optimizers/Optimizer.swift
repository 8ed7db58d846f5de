import Foundation
import TensorCore

/// An optimizer that updates the trainable parameters of a ``ParameterArena`` from their gradients.
///
/// ```swift
/// let opt = AdamW(arena: model.arena, learningRate: 3e-4, weightDecay: 0.1, decayFilter: .matricesOnly)
/// for batch in batches {
///     loss(batch).backward()
///     model.arena.clipGradNorm(maxNorm: 1)
///     opt.step(schedule: schedule)
///     model.arena.zeroGrad()
/// }
/// ```
public protocol Optimizer: AnyObject {
    /// The parameters it updates (frozen ones are skipped).
    var arena: ParameterArena { get }
    /// The rate the next ``step()`` uses; a trainer sets it from an ``LRSchedule``.
    var learningRate: Double { get set }
    /// How many times ``step()`` has run.
    var stepCount: Int { get }
    /// Updates every trainable parameter from the gradients in the arena.
    func step()
    /// Everything needed to continue exactly where this optimizer is, in a form any checkpoint
    /// can store (the hyperparameters belong to the run's config and are not included).
    func exportState() -> OptimizerSnapshot
    /// Continues from an exported state: later steps are bit-identical to those the exporting
    /// optimizer would have taken. Throws, changing nothing, if the state belongs to other
    /// parameters or lacks a buffer this optimizer needs.
    func importState(_ snapshot: OptimizerSnapshot) throws
}

/// An optimizer's state as named per-element buffers laid out like the arena (AdamW's `exp_avg`
/// and `exp_avg_sq`, SGD's `momentum_buffer`) and the counters beside them: what a checkpointer
/// stores without knowing which optimizer it is.
public struct OptimizerSnapshot: Sendable, Equatable {
    /// How many times `step()` had run.
    public var stepCount: Int
    /// The arena's parameter names, in order (checked on import).
    public var parameterNames: [String]
    /// Updates each parameter had received, in arena order.
    public var parameterSteps: [Int]
    /// The per-element buffers by name, each `arena.usedCount` floats.
    public var buffers: [String: [Float]]

    /// A snapshot from its parts.
    public init(stepCount: Int, parameterNames: [String], parameterSteps: [Int], buffers: [String: [Float]]) {
        self.stepCount = stepCount
        self.parameterNames = parameterNames
        self.parameterSteps = parameterSteps
        self.buffers = buffers
    }

    /// The buffer `name`, or a clear error when the snapshot has none.
    public func buffer(_ name: String) throws(OptimizerStateError) -> [Float] {
        guard let b = buffers[name] else { throw .badBuffer("\(name) is missing") }
        return b
    }
}

extension Optimizer {
    /// Sets the learning rate to `schedule.lr(at: stepCount)` and steps: the first update uses the
    /// schedule's rate at step 0, as a Hugging Face `LambdaLR` scheduler stepped after each update.
    public func step(schedule: LRSchedule) {
        learningRate = schedule.lr(at: stepCount)
        step()
    }
}

/// Which parameters receive weight decay.
public struct WeightDecayFilter: Sendable {
    /// Whether the parameter described by the entry is decayed.
    public let applies: @Sendable (ParameterEntry) -> Bool

    /// A filter deciding per parameter.
    public init(_ applies: @escaping @Sendable (ParameterEntry) -> Bool) {
        self.applies = applies
    }

    /// Every parameter (torch's default single parameter group).
    public static let all = WeightDecayFilter { _ in true }

    /// Only tensors of rank 2 or more: weight matrices and embeddings decay, biases and norm gains
    /// do not (nanoGPT's rule, and what the Hugging Face Trainer's name-based rule amounts to).
    public static let matricesOnly = WeightDecayFilter { $0.shape.count >= 2 }
}

/// Why saved optimizer state does not fit the optimizer it is restored into.
public enum OptimizerStateError: Error, CustomStringConvertible, Equatable {
    /// The state was saved for a different set of parameters.
    case layoutMismatch(String)
    /// A moment buffer has the wrong size or is not a whole number of floats.
    case badBuffer(String)

    /// A message a user can act on.
    public var description: String {
        switch self {
        case .layoutMismatch(let detail):
            return "optimizer state does not match the model's parameters: \(detail)"
        case .badBuffer(let detail):
            return "optimizer state is damaged: \(detail)"
        }
    }
}

// MARK: - Shared machinery

/// One run of consecutive trainable parameters updated with the same scalars.
struct Segment {
    /// Elements in the arena (alignment padding between the parameters included).
    var range: Range<Int>
    /// The parameters' step count after this update (torch's per-parameter `state["step"]`).
    var step: Int
    /// Whether weight decay applies.
    var decays: Bool
}

/// Per-parameter step counts. They only differ when parameters are frozen for part of training:
/// torch counts the steps of each parameter separately, and bias correction uses that count.
struct ParameterSteps {
    private(set) var counts: [Int] = []

    /// Counts one update for each trainable parameter and returns the segments of this update:
    /// consecutive trainable parameters with the same step count and decay decision, merged.
    mutating func advance(_ arena: ParameterArena, decays: WeightDecayFilter) -> [Segment] {
        let entries = arena.entries
        if counts.count < entries.count {
            counts += [Int](repeating: 0, count: entries.count - counts.count)
        }
        var segments: [Segment] = []
        var previousTrainable = false
        for (i, e) in entries.enumerated() {
            defer { previousTrainable = !e.frozen }
            guard !e.frozen else { continue }
            counts[i] += 1
            let decay = decays.applies(e)
            if previousTrainable, let last = segments.last, last.step == counts[i], last.decays == decay {
                segments[segments.count - 1].range = last.range.lowerBound..<e.range.upperBound
            } else {
                segments.append(Segment(range: e.range, step: counts[i], decays: decay))
            }
        }
        return segments.filter { !$0.range.isEmpty }
    }

    /// Replaces the counts with saved ones after checking that they belong to `arena`.
    mutating func restore(_ saved: [Int], names: [String], into arena: ParameterArena) throws {
        let expected = arena.entries.map(\.name)
        guard names == expected else {
            let firstDifference = zip(names, expected).first { $0 != $1 }
                .map { "saved \($0.0), model has \($0.1)" }
                ?? "saved \(names.count) parameters, model has \(expected.count)"
            throw OptimizerStateError.layoutMismatch(firstDifference)
        }
        guard saved.count == names.count else {
            throw OptimizerStateError.badBuffer("\(saved.count) step counts for \(names.count) parameters")
        }
        counts = saved
    }

    /// The counts aligned with `arena.entries` (zeros for parameters never updated).
    func saved(for arena: ParameterArena) -> [Int] {
        counts + [Int](repeating: 0, count: arena.entries.count - counts.count)
    }
}

/// A per-element optimizer buffer (a moment) laid out like the arena, grown when the arena is.
struct StateBuffer {
    private(set) var storage = TensorStorage(zeroedCount: 0)
    private(set) var count = 0

    /// First element; read it after ``fit(_:)``.
    var base: UnsafeMutablePointer<Float> { storage.base }

    /// Makes room for `n` floats, keeping the contents; new floats are zero.
    mutating func fit(_ n: Int) {
        guard n > count else { return }
        let fresh = TensorStorage(zeroedCount: n)
        fresh.base.update(from: storage.base, count: count)
        storage = fresh
        count = n
    }

    /// The first `n` floats (zeros past what was ever written).
    mutating func array(_ n: Int) -> [Float] {
        fit(n)
        return Array(UnsafeBufferPointer(start: base, count: n))
    }

    /// Replaces the contents with `values`.
    mutating func load(_ values: [Float], name: String, expected: Int) throws {
        guard values.count == expected else {
            throw OptimizerStateError.badBuffer("\(name) holds \(values.count) floats, the model \(expected)")
        }
        storage = TensorStorage(zeroedCount: expected)
        count = expected
        values.withUnsafeBufferPointer { src in
            if let src = src.baseAddress { storage.base.update(from: src, count: expected) }
        }
    }
}

/// Float arrays in Codable state are stored as their raw little-endian bytes (base64 in JSON):
/// exact, and a third of the size of decimal text.
enum FloatBytes {
    static func encode(_ values: [Float]) -> Data {
        var data = Data(count: values.count * 4)
        data.withUnsafeMutableBytes { raw in
            for (i, x) in values.enumerated() {
                raw.storeBytes(of: x.bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
            }
        }
        return data
    }

    static func decode(_ data: Data, name: String) throws -> [Float] {
        guard data.count % 4 == 0 else {
            throw OptimizerStateError.badBuffer("\(name) has \(data.count) bytes, not a whole number of floats")
        }
        return data.withUnsafeBytes { raw in
            (0..<(data.count / 4)).map {
                Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)))
            }
        }
    }
}
