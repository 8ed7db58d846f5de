import Foundation
import TensorCore

/// Adam with decoupled weight decay, computing exactly what `torch.optim.AdamW` (the single-tensor
/// CPU path) computes, in the same order:
///
/// ```
/// t += 1                                   (per parameter)
/// p  = p * (1 - lr * wd)                   (decoupled decay, before the update)
/// m  = lerp(m, g, 1 - β1)
/// v  = v * β2 + (1 - β2) * g * g
/// denom = sqrt(v) / sqrt(1 - β2^t) + eps
/// p  = p + (-lr / (1 - β1^t)) * m / denom
/// ```
///
/// Scalars (`1 - lr * wd`, the bias corrections, the step size) are computed in Double and rounded
/// to Float once, as torch does with Python floats. The moments live in two buffers laid out like
/// the arena, and one fused loop runs over the trainable ranges on the kernel threads.
public final class AdamW: Optimizer {
    /// The parameters it updates.
    public let arena: ParameterArena
    /// Step size before bias correction.
    public var learningRate: Double
    /// Decay of the first moment (torch `betas[0]`).
    public var beta1: Double
    /// Decay of the second moment (torch `betas[1]`).
    public var beta2: Double
    /// Added to the denominator for stability.
    public var epsilon: Double
    /// Decoupled weight decay coefficient (multiplied by the learning rate).
    public var weightDecay: Double
    /// Which parameters `weightDecay` applies to.
    public let decayFilter: WeightDecayFilter
    /// How many times ``step()`` has run.
    public private(set) var stepCount = 0

    private var steps = ParameterSteps()
    private var expAvg = StateBuffer()
    private var expAvgSq = StateBuffer()

    /// An optimizer for `arena`'s trainable parameters; the defaults are torch's.
    public init(arena: ParameterArena, learningRate: Double = 1e-3, beta1: Double = 0.9,
                beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 1e-2,
                decayFilter: WeightDecayFilter = .all) {
        self.arena = arena
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.decayFilter = decayFilter
    }

    /// Updates every trainable parameter from its gradient in the arena.
    public func step() {
        stepCount += 1
        let segments = steps.advance(arena, decays: decayFilter)
        expAvg.fit(arena.usedCount)
        expAvgSq.fit(arena.usedCount)

        // torch's lerp(m, g, w) is m + w (g - m) for w < 0.5 and g - (1 - w)(g - m) otherwise.
        let w = Float(1 - beta1)
        let common = AdamWScalars(
            decay: 1, lerpFromGradient: !(w < 0.5), lerpCoefficient: w < 0.5 ? w : w - 1,
            beta2: Float(beta2), oneMinusBeta2: Float(1 - beta2), negStepSize: 0,
            biasCorrection2Sqrt: 0, epsilon: Float(epsilon))
        let scalars = segments.map { s -> AdamWScalars in
            var k = common
            if s.decays && weightDecay != 0 { k.decay = Float(1 - learningRate * weightDecay) }
            let t = Double(s.step)
            k.negStepSize = Float(-(learningRate / (1 - Foundation.pow(beta1, t))))
            k.biasCorrection2Sqrt = Float((1 - Foundation.pow(beta2, t)).squareRoot())
            return k
        }

        let p = arena.values.base, g = arena.grads.base, m = expAvg.base, v = expAvgSq.base
        parallelForEachSlice(of: segments.map(\.range)) { _, s, r in
            let o = r.lowerBound
            adamWKernel(p + o, g + o, m + o, v + o, r.count, scalars[s])
        }
    }

    /// A copy of everything needed to continue exactly where this optimizer is (the
    /// hyperparameters belong to the run's config and are not included).
    public func state() -> AdamWState {
        let n = arena.usedCount
        return AdamWState(stepCount: stepCount, parameterNames: arena.entries.map(\.name),
                          parameterSteps: steps.saved(for: arena),
                          expAvg: expAvg.array(n), expAvgSq: expAvgSq.array(n))
    }

    /// Continues from a saved state: later steps are bit-identical to those the saving optimizer
    /// would have taken. Throws if the state belongs to other parameters.
    public func restore(_ state: AdamWState) throws {
        var newSteps = steps, m = expAvg, v = expAvgSq
        try newSteps.restore(state.parameterSteps, names: state.parameterNames, into: arena)
        try m.load(state.expAvg, name: "exp_avg", expected: arena.usedCount)
        try v.load(state.expAvgSq, name: "exp_avg_sq", expected: arena.usedCount)
        steps = newSteps
        expAvg = m
        expAvgSq = v
        stepCount = state.stepCount
    }
}

extension AdamW {
    /// ``state()`` as named buffers: `exp_avg` and `exp_avg_sq`.
    public func exportState() -> OptimizerSnapshot {
        let s = state()
        return OptimizerSnapshot(stepCount: s.stepCount, parameterNames: s.parameterNames, parameterSteps: s.parameterSteps,
                                 buffers: ["exp_avg": s.expAvg, "exp_avg_sq": s.expAvgSq])
    }

    /// ``restore(_:)`` from named buffers (`exp_avg` and `exp_avg_sq`).
    public func importState(_ snapshot: OptimizerSnapshot) throws {
        try restore(AdamWState(stepCount: snapshot.stepCount, parameterNames: snapshot.parameterNames,
                               parameterSteps: snapshot.parameterSteps, expAvg: snapshot.buffer("exp_avg"),
                               expAvgSq: snapshot.buffer("exp_avg_sq")))
    }
}

/// The state of an ``AdamW`` optimizer, for checkpoints and exact resume.
///
/// Its Codable form stores the moments as raw little-endian Float bytes (base64 in JSON), so a
/// round trip is exact.
public struct AdamWState: Codable, Sendable, Equatable {
    /// How many times `step()` had run.
    public var stepCount: Int
    /// The arena's parameter names, in order (checked on restore).
    public var parameterNames: [String]
    /// Updates each parameter had received (torch's per-parameter `state["step"]`), in arena order.
    public var parameterSteps: [Int]
    /// First moment (torch `exp_avg`), in the arena's layout.
    public var expAvg: [Float]
    /// Second moment (torch `exp_avg_sq`), in the arena's layout.
    public var expAvgSq: [Float]

    /// A state from its parts.
    public init(stepCount: Int, parameterNames: [String], parameterSteps: [Int], expAvg: [Float],
                expAvgSq: [Float]) {
        self.stepCount = stepCount
        self.parameterNames = parameterNames
        self.parameterSteps = parameterSteps
        self.expAvg = expAvg
        self.expAvgSq = expAvgSq
    }

    private enum CodingKeys: String, CodingKey {
        case stepCount = "step_count", parameterNames = "parameter_names"
        case parameterSteps = "parameter_steps", expAvg = "exp_avg", expAvgSq = "exp_avg_sq"
    }

    /// Decodes a state, the moments from raw bytes.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        stepCount = try c.decode(Int.self, forKey: .stepCount)
        parameterNames = try c.decode([String].self, forKey: .parameterNames)
        parameterSteps = try c.decode([Int].self, forKey: .parameterSteps)
        expAvg = try FloatBytes.decode(c.decode(Data.self, forKey: .expAvg), name: "exp_avg")
        expAvgSq = try FloatBytes.decode(c.decode(Data.self, forKey: .expAvgSq), name: "exp_avg_sq")
    }

    /// Encodes the state, the moments as raw bytes.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(stepCount, forKey: .stepCount)
        try c.encode(parameterNames, forKey: .parameterNames)
        try c.encode(parameterSteps, forKey: .parameterSteps)
        try c.encode(FloatBytes.encode(expAvg), forKey: .expAvg)
        try c.encode(FloatBytes.encode(expAvgSq), forKey: .expAvgSq)
    }
}

/// The per-segment constants of one AdamW update, all rounded to Float.
struct AdamWScalars {
    /// 1 - lr * wd, or 1 without decay.
    var decay: Float
    /// Whether torch's lerp takes its `w >= 0.5` form (based at the gradient).
    var lerpFromGradient: Bool
    /// w, or w - 1 in the gradient-based form.
    var lerpCoefficient: Float
    var beta2: Float
    var oneMinusBeta2: Float
    /// -lr / (1 - β1^t).
    var negStepSize: Float
    /// sqrt(1 - β2^t).
    var biasCorrection2Sqrt: Float
    var epsilon: Float
}

/// One AdamW update of n consecutive elements; p, g, m, v: (n,).
@inline(__always)
func adamWKernel(_ p: UnsafeMutablePointer<Float>, _ g: UnsafePointer<Float>,
                 _ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>, _ n: Int,
                 _ k: AdamWScalars) {
    let decay = k.decay, fromGradient = k.lerpFromGradient, c = k.lerpCoefficient
    let b2 = k.beta2, c2 = k.oneMinusBeta2, negStep = k.negStepSize
    let bc2 = k.biasCorrection2Sqrt, eps = k.epsilon
    var i = 0
    while i < n {
        let gi = g[i], mi = m[i]
        let mNew = (fromGradient ? gi : mi) + c * (gi - mi)
        let vNew = v[i] * b2 + c2 * gi * gi
        m[i] = mNew
        v[i] = vNew
        // max(v, 0) changes nothing (v >= 0, NaN passes) but lets LLVM drop sqrtf's errno path and
        // vectorize the loop.
        let denom = max(vNew, 0).squareRoot() / bc2 + eps
        p[i] = p[i] * decay + negStep * mNew / denom
        i &+= 1
    }
}
