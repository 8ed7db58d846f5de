import TensorCore

// The scalar heads TRL puts on a decoder: a reward model's `score` (read at each sequence's last real
// token) and PPO's per-token value head `v_head.summary`.

extension DecoderModel {
    /// The reward head `score.weight` `[1, C]`, if added.
    public var scoreHead: Tensor? { arena.tensor(named: "score.weight") }
    /// PPO's value head on the policy's trunk (`v_head.summary`), when added.
    public var valueHead: (weight: Tensor, bias: Tensor)? {
        guard let w = arena.tensor(named: "v_head.summary.weight"), let b = arena.tensor(named: "v_head.summary.bias") else { return nil }
        return (w, b)
    }

    /// Adds the reward head (no bias, N(0, 1/√(C+1)) as TRL initializes it). It belongs to the
    /// model's Hugging Face state (`AutoModelForSequenceClassification` with one label), so add heads
    /// before LoRA adapters.
    public func addScoreHead(rng: inout RNG) {
        precondition(adapters.isEmpty && baseParameterCount == arena.entries.count, "add heads before LoRA adapters")
        precondition(scoreHead == nil, "the score head exists already")
        let w = arena.add(name: "score.weight", shape: [1, config.hiddenSize])
        let std = 1 / Float(config.hiddenSize + 1).squareRoot()
        for i in 0..<w.count { w.data[i] = std * rng.normal() }
        baseParameterCount = arena.entries.count
    }

    /// Adds PPO's value head `v_head.summary.weight` `[1, C]` and `.bias` `[1]` (zero-initialized bias).
    public func addValueHead(rng: inout RNG) {
        precondition(adapters.isEmpty && baseParameterCount == arena.entries.count, "add heads before LoRA adapters")
        precondition(arena.tensor(named: "v_head.summary.weight") == nil, "the value head exists already")
        let w = arena.add(name: "v_head.summary.weight", shape: [1, config.hiddenSize])
        let std = 1 / Float(config.hiddenSize + 1).squareRoot()
        for i in 0..<w.count { w.data[i] = std * rng.normal() }
        arena.add(name: "v_head.summary.bias", shape: [1])
        baseParameterCount = arena.entries.count
    }

    /// Index of each row's last real token (mask 1), or T-1 when there is no mask. A row with no
    /// real token gives its position 0.
    public static func lastTokenIndices(batch B: Int, length T: Int, attentionMask: [Float]?) -> [Int] {
        (0..<B).map { b in
            guard let m = attentionMask else { return T - 1 }
            var last = 0
            for t in 0..<T where m[b * T + t] != 0 { last = t }
            return last
        }
    }

    /// Scalar rewards `[B]`: the score head applied to each sequence's hidden state at its last real
    /// token (right or left padding alike).
    public func rewards(ids: [Int32], batch B: Int, length T: Int, attentionMask: [Float]? = nil) -> Tensor {
        guard let score = scoreHead else { preconditionFailure("rewards(...) needs addScoreHead first") }
        let h = hiddenStates(ids: ids, batch: B, length: T, attentionMask: attentionMask)
        let rows = Self.lastTokenIndices(batch: B, length: T, attentionMask: attentionMask).enumerated().map { Int32($0.offset * T + $0.element) }
        let last = embedding(h.reshaped([B * T, config.hiddenSize]), ids: rows)   // a row gather
        return linear(last, weight: score).reshaped([B])
    }

    /// Per-token values `[B, T]` from the value head.
    public func values(hidden: Tensor) -> Tensor {
        guard let w = arena.tensor(named: "v_head.summary.weight"), let b = arena.tensor(named: "v_head.summary.bias") else {
            preconditionFailure("values(...) needs addValueHead first")
        }
        let B = hidden.shape[0], T = hidden.shape[1]
        return linear(hidden, weight: w, bias: b).reshaped([B, T])
    }
}
