import Foundation
import TensorCore

/// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and (coupled,
/// L2) weight decay, computing what `torch.optim.SGD` computes, in the same order:
///
/// ```
/// d = g + wd * p                           (when wd != 0)
/// b = d                                    (a parameter's first step)
/// b = b * μ + (1 - dampening) * d          (later steps)
/// d = nesterov ? d + μ * b : b             (when μ != 0)
/// p = p + (-lr) * d
/// ```
public final class SGD: Optimizer {
    /// The parameters it updates.
    public let arena: ParameterArena
    /// Step size.
    public var learningRate: Double
    /// Momentum factor μ (0 for plain SGD).
    public let momentum: Double
    /// Dampening of the gradient added to the momentum buffer.
    public let dampening: Double
    /// Whether to use Nesterov momentum.
    public let nesterov: Bool
    /// L2 penalty coefficient, added to the gradient.
    public var weightDecay: Double
    /// Which parameters `weightDecay` applies to.
    public let decayFilter: WeightDecayFilter
    /// How many times ``step()`` has run.
    public private(set) var stepCount = 0

    private var steps = ParameterSteps()
    private var momentumBuffer = StateBuffer()

    /// An optimizer for `arena`'s trainable parameters; the defaults are torch's.
    public init(arena: ParameterArena, learningRate: Double = 1e-3, momentum: Double = 0,
                dampening: Double = 0, nesterov: Bool = false, weightDecay: Double = 0,
                decayFilter: WeightDecayFilter = .all) {
        precondition(!nesterov || (momentum > 0 && dampening == 0),
                     "Nesterov momentum requires a momentum and zero dampening")
        self.arena = arena
        self.learningRate = learningRate
        self.momentum = momentum
        self.dampening = dampening
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        self.decayFilter = decayFilter
    }

    /// Updates every trainable parameter from its gradient in the arena.
    public func step() {
        stepCount += 1
        let segments = steps.advance(arena, decays: decayFilter)
        let scalars = segments.map { s in
            SGDScalars(weightDecay: s.decays ? Float(weightDecay) : 0, momentum: Float(momentum),
                       oneMinusDampening: Float(1 - dampening), nesterov: nesterov,
                       firstStep: s.step == 1, negLearningRate: Float(-learningRate))
        }
        let p = arena.values.base, g = arena.grads.base
        if momentum == 0 {
            parallelForEachSlice(of: segments.map(\.range)) { _, s, r in
                let o = r.lowerBound
                sgdKernel(p + o, g + o, r.count, scalars[s])
            }
        } else {
            momentumBuffer.fit(arena.usedCount)
            let b = momentumBuffer.base
            parallelForEachSlice(of: segments.map(\.range)) { _, s, r in
                let o = r.lowerBound
                sgdMomentumKernel(p + o, g + o, b + o, r.count, scalars[s])
            }
        }
    }

    /// A copy of everything needed to continue exactly where this optimizer is.
    public func state() -> SGDState {
        SGDState(stepCount: stepCount, parameterNames: arena.entries.map(\.name),
                 parameterSteps: steps.saved(for: arena),
                 momentumBuffer: momentum == 0 ? [] : momentumBuffer.array(arena.usedCount))
    }

    /// Continues from a saved state: later steps are bit-identical to those the saving optimizer
    /// would have taken. Throws if the state belongs to other parameters.
    public func restore(_ state: SGDState) throws {
        var newSteps = steps, buffer = momentumBuffer
        try newSteps.restore(state.parameterSteps, names: state.parameterNames, into: arena)
        try buffer.load(state.momentumBuffer, name: "momentum_buffer",
                        expected: momentum == 0 ? 0 : arena.usedCount)
        steps = newSteps
        momentumBuffer = buffer
        stepCount = state.stepCount
    }
}

extension SGD {
    /// ``state()`` as named buffers: `momentum_buffer`, none without momentum.
    public func exportState() -> OptimizerSnapshot {
        let s = state()
        return OptimizerSnapshot(stepCount: s.stepCount, parameterNames: s.parameterNames, parameterSteps: s.parameterSteps,
                                 buffers: momentum == 0 ? [:] : ["momentum_buffer": s.momentumBuffer])
    }

    /// ``restore(_:)`` from named buffers (`momentum_buffer` when there is momentum).
    public func importState(_ snapshot: OptimizerSnapshot) throws {
        try restore(SGDState(stepCount: snapshot.stepCount, parameterNames: snapshot.parameterNames,
                             parameterSteps: snapshot.parameterSteps,
                             momentumBuffer: momentum == 0 ? [] : snapshot.buffer("momentum_buffer")))
    }
}

/// The state of an ``SGD`` optimizer, for checkpoints and exact resume.
///
/// Its Codable form stores the momentum buffer as raw little-endian Float bytes (base64 in JSON).
public struct SGDState: Codable, Sendable, Equatable {
    /// How many times `step()` had run.
    public var stepCount: Int
    /// The arena's parameter names, in order (checked on restore).
    public var parameterNames: [String]
    /// Updates each parameter had received, in arena order (its momentum buffer exists after 1).
    public var parameterSteps: [Int]
    /// The momentum buffers in the arena's layout; empty without momentum.
    public var momentumBuffer: [Float]

    /// A state from its parts.
    public init(stepCount: Int, parameterNames: [String], parameterSteps: [Int], momentumBuffer: [Float]) {
        self.stepCount = stepCount
        self.parameterNames = parameterNames
        self.parameterSteps = parameterSteps
        self.momentumBuffer = momentumBuffer
    }

    private enum CodingKeys: String, CodingKey {
        case stepCount = "step_count", parameterNames = "parameter_names"
        case parameterSteps = "parameter_steps", momentumBuffer = "momentum_buffer"
    }

    /// Decodes a state, the buffer from raw bytes.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        stepCount = try c.decode(Int.self, forKey: .stepCount)
        parameterNames = try c.decode([String].self, forKey: .parameterNames)
        parameterSteps = try c.decode([Int].self, forKey: .parameterSteps)
        momentumBuffer = try FloatBytes.decode(c.decode(Data.self, forKey: .momentumBuffer),
                                               name: "momentum_buffer")
    }

    /// Encodes the state, the buffer as raw bytes.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(stepCount, forKey: .stepCount)
        try c.encode(parameterNames, forKey: .parameterNames)
        try c.encode(parameterSteps, forKey: .parameterSteps)
        try c.encode(FloatBytes.encode(momentumBuffer), forKey: .momentumBuffer)
    }
}

/// The per-segment constants of one SGD update, rounded to Float.
struct SGDScalars {
    /// 0 when the segment is not decayed.
    var weightDecay: Float
    var momentum: Float
    var oneMinusDampening: Float
    var nesterov: Bool
    /// Whether the momentum buffer is created from this step's gradient.
    var firstStep: Bool
    /// -lr.
    var negLearningRate: Float
}

/// Plain SGD over n consecutive elements; p, g: (n,).
@inline(__always)
func sgdKernel(_ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>, _ n: Int, _ k: SGDScalars) {
    let wd = k.weightDecay, decays = wd != 0, negLR = k.negLearningRate
    var i = 0
    while i < n {
        let pi = p[i]
        let d = decays ? g[i] + wd * pi : g[i]
        p[i] = pi + negLR * d
        i &+= 1
    }
}

/// SGD with momentum over n consecutive elements; p, g, b (momentum buffer): (n,).
@inline(__always)
func sgdMomentumKernel(_ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>,
                       _ b: UnsafeMutablePointer<Float>, _ n: Int, _ k: SGDScalars) {
    let wd = k.weightDecay, decays = wd != 0, mu = k.momentum, keep = k.oneMinusDampening
    let nesterov = k.nesterov, first = k.firstStep, negLR = k.negLearningRate
    var i = 0
    while i < n {
        let pi = p[i]
        let d = decays ? g[i] + wd * pi : g[i]
        let previous = b[i]  // read unconditionally so the loop vectorizes
        let buf = first ? d : previous * mu + keep * d
        b[i] = buf
        p[i] = pi + negLR * (nesterov ? d + mu * buf : buf)
        i &+= 1
    }
}
