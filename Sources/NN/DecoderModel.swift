import TensorCore

/// A decoder-only transformer of the GPT-2 or Llama family, its parameters in one arena under their
/// Hugging Face names.
///
/// Linear weights are kept in the torch `nn.Linear` layout `[out, in]`; GPT-2's Conv1D weights, which
/// Hugging Face stores as `[in, out]`, are transposed when loaded and saved (see
/// ``transposedInCheckpoint``).
///
/// ```swift
/// var rng = RNG(seed: 0)
/// let model = DecoderModel(config: config, rng: &rng)
/// let logits = model.logits(ids: ids, batch: 2, length: 16)   // [2, 16, vocab]
/// ```
public final class DecoderModel {
    /// The model's shape.
    public let config: ModelConfig
    /// Every parameter, by Hugging Face name.
    public let arena: ParameterArena
    let ropeTable: RoPETable?

    struct Block {
        var norm1: Tensor, norm1Bias: Tensor?
        var norm2: Tensor, norm2Bias: Tensor?
        // GPT-2: one fused q/k/v projection; Llama: three.
        var qkv: Tensor?, qkvBias: Tensor?
        var q: Tensor?, k: Tensor?, v: Tensor?, qBias: Tensor?, kBias: Tensor?, vBias: Tensor?
        var o: Tensor, oBias: Tensor?
        // GPT-2: fc -> gelu -> proj; Llama: down(silu(gate) * up).
        var up: Tensor, upBias: Tensor?
        var gate: Tensor?, gateBias: Tensor?
        var down: Tensor, downBias: Tensor?
    }
    let blocks: [Block]
    let embed: Tensor
    let positionEmbed: Tensor?
    let finalNorm: Tensor, finalNormBias: Tensor?
    let lmHead: Tensor

    /// Names of parameters Hugging Face stores transposed (GPT-2's Conv1D weights).
    public let transposedInCheckpoint: Set<String>

    /// LoRA adapters by the identity of the weight they adapt (see LoRA.swift).
    var adapters: [ObjectIdentifier: LoRAAdapter] = [:]
    /// The settings the adapters were made with.
    public internal(set) var loraConfig: LoRAConfig?
    /// Entries of the arena that belong to the base model (adapters come after them).
    public internal(set) var baseParameterCount: Int = 0
    /// False runs the base model alone, as if the adapters were not there: a LoRA policy's frozen
    /// reference is the same model with its adapters disabled, not a second copy (PEFT's
    /// `disable_adapter()`).
    public var adaptersEnabled = true
    /// Draws LoRA dropout masks while training; nil (the default) disables dropout, as inference wants.
    public var dropoutRNG: RNG?
    /// Low-precision copies of the linear weights for forward passes (see InferencePrecision.swift).
    public internal(set) var inferenceWeights: InferenceWeights?

    /// A model with parameters initialized as the reference implementations do: N(0, 0.02) for
    /// weights (residual projections of GPT-2 scaled by 1/√(2·layers)), zero biases, unit norms.
    public convenience init(config: ModelConfig, rng: inout RNG) {
        self.init(config: config) { t, std in
            for i in 0..<t.count { t.data[i] = std * rng.normal() }
        }
    }

    /// A model whose weights are all zero (norms one), to be filled from a checkpoint.
    public convenience init(forLoading config: ModelConfig) {
        self.init(config: config) { _, _ in }
    }

    /// Builds the layout; `initialize(tensor, std)` fills each weight matrix.
    init(config: ModelConfig, initialize: (Tensor, Float) -> Void) {
        self.config = config
        let arena = ParameterArena(capacity: Self.parameterFloatsUpperBound(config))
        self.arena = arena
        let C = config.hiddenSize, F = config.intermediateSize, V = config.vocabSize
        let qDim = config.heads * config.headDim, kvDim = config.kvHeads * config.headDim
        var transposed = Set<String>()

        func weight(_ name: String, _ shape: [Int], std: Float = 0.02) -> Tensor {
            let t = arena.add(name: name, shape: shape)
            initialize(t, std)
            return t
        }
        func zeros(_ name: String, _ shape: [Int]) -> Tensor { arena.add(name: name, shape: shape) }
        func ones(_ name: String, _ shape: [Int]) -> Tensor {
            let t = arena.add(name: name, shape: shape)
            t.data.update(repeating: 1, count: t.count)
            return t
        }

        switch config.family {
        case .gpt2:
            embed = weight("transformer.wte.weight", [V, C])
            positionEmbed = weight("transformer.wpe.weight", [config.maxPositions, C], std: 0.01)
            let residualStd = 0.02 / Float(2 * config.layers).squareRoot()
            blocks = (0..<config.layers).map { i in
                let p = "transformer.h.\(i)."
                transposed.formUnion([p + "attn.c_attn.weight", p + "attn.c_proj.weight", p + "mlp.c_fc.weight", p + "mlp.c_proj.weight"])
                return Block(norm1: ones(p + "ln_1.weight", [C]), norm1Bias: zeros(p + "ln_1.bias", [C]),
                             norm2: ones(p + "ln_2.weight", [C]), norm2Bias: zeros(p + "ln_2.bias", [C]),
                             qkv: weight(p + "attn.c_attn.weight", [3 * C, C]), qkvBias: zeros(p + "attn.c_attn.bias", [3 * C]),
                             o: weight(p + "attn.c_proj.weight", [C, C], std: residualStd), oBias: zeros(p + "attn.c_proj.bias", [C]),
                             up: weight(p + "mlp.c_fc.weight", [F, C]), upBias: zeros(p + "mlp.c_fc.bias", [F]),
                             down: weight(p + "mlp.c_proj.weight", [C, F], std: residualStd), downBias: zeros(p + "mlp.c_proj.bias", [C]))
            }
            finalNorm = ones("transformer.ln_f.weight", [C])
            finalNormBias = zeros("transformer.ln_f.bias", [C])
            ropeTable = nil
        case .llama:
            embed = weight("model.embed_tokens.weight", [V, C])
            positionEmbed = nil
            blocks = (0..<config.layers).map { i in
                let p = "model.layers.\(i)."
                let ab = config.attentionBias, mb = config.mlpBias
                return Block(norm1: ones(p + "input_layernorm.weight", [C]), norm1Bias: nil,
                             norm2: ones(p + "post_attention_layernorm.weight", [C]), norm2Bias: nil,
                             q: weight(p + "self_attn.q_proj.weight", [qDim, C]), k: weight(p + "self_attn.k_proj.weight", [kvDim, C]),
                             v: weight(p + "self_attn.v_proj.weight", [kvDim, C]),
                             qBias: ab ? zeros(p + "self_attn.q_proj.bias", [qDim]) : nil,
                             kBias: ab ? zeros(p + "self_attn.k_proj.bias", [kvDim]) : nil,
                             vBias: ab ? zeros(p + "self_attn.v_proj.bias", [kvDim]) : nil,
                             o: weight(p + "self_attn.o_proj.weight", [C, qDim]), oBias: ab ? zeros(p + "self_attn.o_proj.bias", [C]) : nil,
                             up: weight(p + "mlp.up_proj.weight", [F, C]), upBias: mb ? zeros(p + "mlp.up_proj.bias", [F]) : nil,
                             gate: weight(p + "mlp.gate_proj.weight", [F, C]), gateBias: mb ? zeros(p + "mlp.gate_proj.bias", [F]) : nil,
                             down: weight(p + "mlp.down_proj.weight", [C, F]), downBias: mb ? zeros(p + "mlp.down_proj.bias", [C]) : nil)
            }
            finalNorm = ones("model.norm.weight", [C])
            finalNormBias = nil
            ropeTable = RoPETable(theta: config.ropeTheta, headDim: config.headDim, maxPositions: config.maxPositions)
        }
        lmHead = config.tieEmbeddings ? embed : weight("lm_head.weight", [V, C])
        transposedInCheckpoint = transposed
        baseParameterCount = arena.entries.count
    }

    /// An upper bound on the arena floats a config needs (parameters plus alignment padding), so the
    /// arena is allocated once instead of regrown and copied while the model is built.
    static func parameterFloatsUpperBound(_ c: ModelConfig) -> Int {
        let C = c.hiddenSize, F = c.intermediateSize, q = c.heads * c.headDim, kv = c.kvHeads * c.headDim
        let perLayer = 4 * C + (q + 2 * kv) * (C + 1) + (C + 1) * q + 3 * (F * C + F) + 2 * C + 16 * 16
        let embeddings = c.vocabSize * C * (c.tieEmbeddings ? 1 : 2) + (c.family == .gpt2 ? c.maxPositions * C : 0)
        return embeddings + c.layers * perLayer + 2 * C + 16 * 8
    }

    /// Position ids for a batch: with an attention mask, cumsum(mask) - 1 clamped at 0 per row (so
    /// left padding never shifts positions); otherwise `start..<start+T`.
    public static func positionIds(batch B: Int, length T: Int, attentionMask: [Float]?, start: Int = 0) -> [Int32] {
        var out = [Int32](repeating: 0, count: B * T)
        for b in 0..<B {
            var seen = start
            for t in 0..<T {
                if let m = attentionMask {
                    if m[b * T + t] != 0 { seen += 1 }
                    out[b * T + t] = Int32(max(seen - 1, 0))
                } else {
                    out[b * T + t] = Int32(start + t)
                }
            }
        }
        return out
    }

    /// Final hidden states `[B, T, C]` (after the last norm).
    ///
    /// - Parameters:
    ///   - ids: B·T token ids, row-major.
    ///   - attentionMask: B·T entries (1 real, 0 padding) for this call's tokens; with a cache, B·S
    ///     entries covering every cached position plus these.
    ///   - positions: B·T position ids (default: from the mask, or consecutive after the cache).
    ///   - cache: decode with cached keys and values (inference only).
    public func hiddenStates(ids: [Int32], batch B: Int, length T: Int, attentionMask: [Float]? = nil,
                             positions: [Int32]? = nil, cache: KVCache? = nil) -> Tensor {
        precondition(ids.count == B * T, "hiddenStates: \(ids.count) ids for batch \(B) x length \(T)")
        let C = config.hiddenSize
        let start = cache?.length ?? 0
        precondition(attentionMask == nil || attentionMask!.count == B * (start + T),
                     "hiddenStates: attention mask of \(attentionMask!.count) for batch \(B) x \(start + T) positions")
        let pos: [Int32]
        if let positions {
            pos = positions
        } else if let mask = attentionMask {
            // Positions over every position the mask covers, then this call's last T of them.
            let L = start + T
            let all = Self.positionIds(batch: B, length: L, attentionMask: mask)
            pos = (0..<B).flatMap { b in all[(b * L + start)..<(b * L + L)] }
        } else {
            pos = Self.positionIds(batch: B, length: T, attentionMask: nil, start: start)
        }
        var h = embedding(embed, ids: ids)
        if let positionEmbed { h = h + embedding(positionEmbed, ids: pos) }
        h = h.reshaped([B, T, C])
        let eps = Float(config.normEps)
        // A decoding step (a cache, few rows) reads each weight once with the few-row kernel.
        let fewRows = cache != nil && SkinnyMatmul.applies(rows: B * T, k: C, n: C)
        let lowPrecision = usesInferenceWeights(generating: cache != nil)
        func project(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
            self.project(x, weight: weight, bias: bias, fewRows: fewRows, lowPrecision: lowPrecision)
        }
        for (i, blk) in blocks.enumerated() {
            func attend(_ q: Tensor, _ k: Tensor, _ v: Tensor) -> Tensor {
                if let cache {
                    return cache.attend(layer: i, q: q, k: k, v: v, heads: config.heads, kvHeads: config.kvHeads,
                                        keyMask: attentionMask)
                }
                return attention(q: q, k: k, v: v, heads: config.heads, kvHeads: config.kvHeads, keyMask: attentionMask)
            }
            switch config.family {
            case .gpt2:
                let a = layerNorm(h, weight: blk.norm1, bias: blk.norm1Bias, eps: eps)
                let qkv = project(a, weight: blk.qkv!, bias: blk.qkvBias)
                let att = attend(qkv.slice(axis: 2, 0..<C), qkv.slice(axis: 2, C..<(2 * C)), qkv.slice(axis: 2, (2 * C)..<(3 * C)))
                h = h + project(att, weight: blk.o, bias: blk.oBias)
                let m = layerNorm(h, weight: blk.norm2, bias: blk.norm2Bias, eps: eps)
                h = h + project(gelu(project(m, weight: blk.up, bias: blk.upBias)), weight: blk.down, bias: blk.downBias)
            case .llama:
                let a = rmsNorm(h, weight: blk.norm1, eps: eps)
                let q = rope(project(a, weight: blk.q!, bias: blk.qBias), positions: pos, heads: config.heads, table: ropeTable!)
                let k = rope(project(a, weight: blk.k!, bias: blk.kBias), positions: pos, heads: config.kvHeads, table: ropeTable!)
                let v = project(a, weight: blk.v!, bias: blk.vBias)
                h = h + project(attend(q, k, v), weight: blk.o, bias: blk.oBias)
                let m = rmsNorm(h, weight: blk.norm2, eps: eps)
                let gated = silu(project(m, weight: blk.gate!, bias: blk.gateBias)) * project(m, weight: blk.up, bias: blk.upBias)
                h = h + project(gated, weight: blk.down, bias: blk.downBias)
            }
        }
        switch config.family {
        case .gpt2: return layerNorm(h, weight: finalNorm, bias: finalNormBias, eps: eps)
        case .llama: return rmsNorm(h, weight: finalNorm, eps: eps)
        }
    }

    /// Next-token logits `[..., V]` from hidden states.
    public func logits(hidden: Tensor) -> Tensor {
        if usesInferenceWeights(generating: false), let copy = inferenceCopy(of: lmHead, input: hidden) {
            return lowPrecisionLinear(hidden, weight: copy)
        }
        return linear(hidden, weight: lmHead)
    }

    /// Next-token logits `[..., V]` for inference (a decoding step): few rows go through the
    /// few-row kernel (``inferenceLinear(_:weight:bias:)``), which records no gradient.
    /// With an inference copy the LM head is its low-precision matrix (the generator calls this).
    public func inferenceLogits(hidden: Tensor) -> Tensor {
        if usesInferenceWeights(generating: true), let copy = inferenceCopy(of: lmHead, input: hidden) {
            return lowPrecisionLinear(hidden, weight: copy)
        }
        return inferenceLinear(hidden, weight: lmHead)
    }

    /// Next-token logits `[B, T, V]`.
    public func logits(ids: [Int32], batch B: Int, length T: Int, attentionMask: [Float]? = nil,
                       positions: [Int32]? = nil, cache: KVCache? = nil) -> Tensor {
        logits(hidden: hiddenStates(ids: ids, batch: B, length: T, attentionMask: attentionMask, positions: positions, cache: cache))
    }

    /// Mean next-token cross-entropy: logits at t predict `labels[t+1]`; labels below 0 are ignored
    /// (the Hugging Face shift).
    public func languageModelingLoss(logits: Tensor, labels: [Int32], batch B: Int, length T: Int) -> Tensor {
        precondition(labels.count == B * T, "languageModelingLoss: \(labels.count) labels for \(B) x \(T)")
        var shifted = [Int32](repeating: ignoreIndex, count: B * T)
        for b in 0..<B { for t in 0..<(T - 1) { shifted[b * T + t] = labels[b * T + t + 1] } }
        return crossEntropy(logits: logits, targets: shifted)
    }

    /// A new KV cache sized for this model.
    public func makeCache(batch: Int, capacity: Int) -> KVCache {
        KVCache(layers: config.layers, batch: batch, capacity: min(capacity, config.maxPositions),
                kvHeads: config.kvHeads, headDim: config.headDim)
    }
}
