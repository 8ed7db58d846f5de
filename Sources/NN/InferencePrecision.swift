import TensorCore

/// Low-precision copies (bf16 or Q8_0) of a model's linear weights and LM head, used by forward
/// passes that record no gradient; the fp32 parameters stay as they are (they train, embed tokens
/// and export). Norms, biases, embeddings, LoRA adapters and heads stay fp32.
public final class InferenceWeights {
    /// Which forward passes take the copies.
    public enum Scope: Sendable, Equatable {
        /// Generation only (calls with a KV cache, and the generator's LM head): a policy's rollout
        /// copy, whose log-prob forwards stay fp32 (PPO's first ratio is then exactly 1).
        case generation
        /// Every forward pass that records no gradient: a frozen reference, a reward model scoring,
        /// `rein generate`.
        case everyForward
    }

    public let precision: WeightPrecision
    public let scope: Scope
    /// Copies by the identity of the fp32 weight they stand for, with that weight.
    let copies: [ObjectIdentifier: (weight: Tensor, matrix: LowPrecisionMatrix)]
    /// Weights left in fp32 because their shape does not fit the format (Q8_0 needs inputs in
    /// whole blocks of 32).
    public let keptInFP32: [String]

    init(precision: WeightPrecision, scope: Scope, copies: [ObjectIdentifier: (weight: Tensor, matrix: LowPrecisionMatrix)],
         keptInFP32: [String]) {
        self.precision = precision
        self.scope = scope
        self.copies = copies
        self.keptInFP32 = keptInFP32
    }

    /// Bytes of all copies (what one decoding step reads of them).
    public var byteCount: Int { copies.values.reduce(0) { $0 + $1.matrix.byteCount } }
}

extension DecoderModel {
    /// Makes the inference copy at `precision` from the current weights (`.fp32` removes it), used
    /// by the forward passes `scope` names.
    public func setInferencePrecision(_ precision: WeightPrecision, scope: InferenceWeights.Scope) {
        guard precision != .fp32 else { inferenceWeights = nil; return }
        var copies: [ObjectIdentifier: (weight: Tensor, matrix: LowPrecisionMatrix)] = [:], kept: [String] = []
        for (path, weight) in linearModules + [(path: "lm_head", weight: lmHead)] {
            guard LowPrecisionMatrix.supports(precision, columns: weight.shape[1]) else { kept.append(path); continue }
            copies[ObjectIdentifier(weight)] = (weight, LowPrecisionMatrix(weight, precision: precision))
        }
        inferenceWeights = InferenceWeights(precision: precision, scope: scope, copies: copies, keptInFP32: kept)
    }

    /// Rounds the current fp32 weights into the copy again (a rollout copy after an update).
    public func refreshInferenceWeights() {
        guard let copies = inferenceWeights?.copies else { return }
        for (weight, matrix) in copies.values { matrix.update(from: weight.data) }
    }

    /// Whether this forward pass takes the copies: generation always, other passes with `.everyForward`.
    func usesInferenceWeights(generating: Bool) -> Bool {
        guard let w = inferenceWeights else { return false }
        return generating || w.scope == .everyForward
    }

    /// W's copy, unless the product would record a gradient (the copies serve inference only).
    func inferenceCopy(of weight: Tensor, input x: Tensor, bias: Tensor? = nil) -> LowPrecisionMatrix? {
        guard let copy = inferenceWeights?.copies[ObjectIdentifier(weight)] else { return nil }
        if Autograd.isRecording && (x.requiresGrad || weight.requiresGrad || bias?.requiresGrad == true) { return nil }
        return copy.matrix
    }
}
