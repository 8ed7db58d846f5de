import Foundation

/// The decoder families Rein runs.
public enum ModelFamily: String, Codable, Sendable {
    /// GPT-2: LayerNorm, learned positions, GELU MLP, biases, tied LM head.
    case gpt2
    /// Llama (SmolLM2 is one): RMSNorm, RoPE, SwiGLU MLP, grouped-query attention.
    case llama
}

/// A decoder-only transformer's shape, read from (and written back to) a Hugging Face `config.json`.
public struct ModelConfig: Codable, Sendable, Equatable {
    public var family: ModelFamily
    public var vocabSize: Int
    public var hiddenSize: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var intermediateSize: Int
    public var maxPositions: Int
    public var normEps: Double
    public var ropeTheta: Double
    public var tieEmbeddings: Bool
    /// Llama's `attention_bias`; GPT-2 always has biases.
    public var attentionBias: Bool
    /// Llama's `mlp_bias`.
    public var mlpBias: Bool
    public var bosTokenId: Int?
    public var eosTokenId: Int?
    public var padTokenId: Int?

    /// A config from its fields; `kvHeads` defaults to `heads`, `headDim` to hidden / heads.
    public init(family: ModelFamily, vocabSize: Int, hiddenSize: Int, layers: Int, heads: Int, kvHeads: Int? = nil,
                headDim: Int? = nil, intermediateSize: Int? = nil, maxPositions: Int, normEps: Double = 1e-5,
                ropeTheta: Double = 10_000, tieEmbeddings: Bool = true, attentionBias: Bool = false, mlpBias: Bool = false,
                bosTokenId: Int? = nil, eosTokenId: Int? = nil, padTokenId: Int? = nil) {
        self.family = family
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.layers = layers
        self.heads = heads
        self.kvHeads = kvHeads ?? heads
        self.headDim = headDim ?? (heads > 0 ? hiddenSize / heads : 0)
        self.intermediateSize = intermediateSize ?? 4 &* hiddenSize
        self.maxPositions = maxPositions
        self.normEps = normEps
        self.ropeTheta = ropeTheta
        self.tieEmbeddings = tieEmbeddings
        self.attentionBias = attentionBias
        self.mlpBias = mlpBias
        self.bosTokenId = bosTokenId
        self.eosTokenId = eosTokenId
        self.padTokenId = padTokenId
    }

    /// Where a config came from, for the key names in messages: Hugging Face `config.json` keys
    /// (`n_layer`, `num_hidden_layers`) or GGUF metadata keys (`llama.block_count`).
    public enum KeyStyle: Sendable { case huggingFace, gguf }

    /// The largest value Rein accepts for each size, far above any model it can run on a CPU, so a
    /// corrupt or hostile config (10^9 layers, a 2^40 vocabulary) is refused before anything is
    /// allocated for it.
    public enum Limits {
        public static let layers = 1024
        public static let hiddenSize = 65_536
        public static let heads = 1024
        public static let headDim = 1024
        public static let intermediateSize = 1 << 20
        public static let vocabSize = 1 << 22
        public static let maxPositions = 1 << 20
        /// Parameters (Float32) of the whole model: 2^34 floats are 64 GiB.
        public static let parameters = 1 << 34
        /// Entries of a Llama RoPE table (positions x head dimension; 128 MiB of cos and sin):
        /// 2^17 positions of 128, twice what Llama 3.1 uses.
        public static let ropeTable = 1 << 25
    }

    /// The key of a size field in `style`'s naming.
    static func key(_ field: String, _ family: ModelFamily, _ style: KeyStyle) -> String {
        switch style {
        case .gguf:
            return [
                "vocab": "llama.vocab_size", "hidden": "llama.embedding_length", "layers": "llama.block_count",
                "heads": "llama.attention.head_count", "kvHeads": "llama.attention.head_count_kv",
                "headDim": "llama.rope.dimension_count", "intermediate": "llama.feed_forward_length",
                "positions": "llama.context_length",
            ][field] ?? field
        case .huggingFace:
            switch family {
            case .gpt2:
                return [
                    "vocab": "vocab_size", "hidden": "n_embd", "layers": "n_layer", "heads": "n_head", "kvHeads": "n_head",
                    "headDim": "n_embd / n_head", "intermediate": "n_inner", "positions": "n_positions",
                ][field] ?? field
            case .llama:
                return [
                    "vocab": "vocab_size", "hidden": "hidden_size", "layers": "num_hidden_layers",
                    "heads": "num_attention_heads", "kvHeads": "num_key_value_heads", "headDim": "head_dim",
                    "intermediate": "intermediate_size", "positions": "max_position_embeddings",
                ][field] ?? field
            }
        }
    }

    /// The number of Float32 parameters the model has (embeddings, every layer, the LM head when
    /// untied), or nil when the sizes are out of ``Limits`` (so the arithmetic cannot overflow).
    public var parameterCount: Int? {
        guard (try? checkLimits(.huggingFace)) != nil else { return nil }
        let C = hiddenSize, F = intermediateSize, q = heads * headDim, kv = kvHeads * headDim
        let perLayer: Int
        switch family {
        case .gpt2: perLayer = 4 * C + 3 * C * C + 3 * C + C * C + C + 2 * F * C + F + C
        case .llama:
            perLayer = 2 * C + (q + 2 * kv) * C + q * C + 3 * F * C
                + (attentionBias ? q + 2 * kv + C : 0) + (mlpBias ? 2 * F + C : 0)
        }
        let embeddings = vocabSize * C * (tieEmbeddings ? 1 : 2) + (family == .gpt2 ? maxPositions * C : 0)
        return embeddings + layers * perLayer + (family == .gpt2 ? 2 * C : C)
    }

    /// Every size within ``Limits``; the message names the key (in `style`) and the limit.
    func checkLimits(_ style: KeyStyle) throws(ModelConfigError) {
        let sizes: [(String, Int, Int)] = [
            ("layers", layers, Limits.layers), ("hidden", hiddenSize, Limits.hiddenSize), ("heads", heads, Limits.heads),
            ("kvHeads", kvHeads, Limits.heads), ("headDim", headDim, Limits.headDim),
            ("intermediate", intermediateSize, Limits.intermediateSize), ("vocab", vocabSize, Limits.vocabSize),
            ("positions", maxPositions, Limits.maxPositions),
        ]
        for (field, value, limit) in sizes where value > limit {
            throw .invalid("\(Self.key(field, family, style)) is \(value), above the limit of \(limit) Rein accepts; "
                + "the config is corrupt or describes a model far beyond what Rein runs")
        }
    }

    /// Checks the dimensions agree with each other and lie within ``Limits``; the message names the
    /// offending keys (Hugging Face or GGUF names, per `style`).
    public func validate(keys style: KeyStyle = .huggingFace) throws(ModelConfigError) {
        func need(_ ok: Bool, _ what: String) throws(ModelConfigError) { if !ok { throw .invalid(what) } }
        func key(_ field: String) -> String { Self.key(field, family, style) }
        let sizes: [(String, Int)] = [("vocab", vocabSize), ("hidden", hiddenSize), ("layers", layers), ("heads", heads),
                                      ("positions", maxPositions)]
        for (field, value) in sizes where value <= 0 {
            throw .invalid("\(key(field)) is \(value); it must be positive")
        }
        try checkLimits(style)
        try need(kvHeads > 0 && heads % kvHeads == 0,
                 "\(key("heads")) (\(heads)) must be a multiple of \(key("kvHeads")) (\(kvHeads))")
        try need(headDim > 0 && (family == .llama || heads * headDim == hiddenSize),
                 "hidden size \(hiddenSize) is not \(heads) heads of \(headDim)")
        try need(family == .gpt2 || headDim % 2 == 0, "\(key("headDim")) \(headDim) must be even for RoPE")
        try need(intermediateSize > 0, "\(key("intermediate")) is \(intermediateSize); it must be positive")
        try need(family == .gpt2 || maxPositions * headDim <= Limits.ropeTable,
                 "\(key("positions")) \(maxPositions) x \(key("headDim")) \(headDim) is above the limit of "
                     + "\(Limits.ropeTable) RoPE table entries Rein accepts")
        let count = parameterCount ?? Int.max
        try need(count <= Limits.parameters, "the config describes \(count) parameters, above the limit of "
            + "\(Limits.parameters) Rein accepts (\(key("layers")) \(layers), \(key("hidden")) \(hiddenSize), "
            + "\(key("vocab")) \(vocabSize))")
    }
}

/// A `config.json` Rein cannot use.
public enum ModelConfigError: Error, CustomStringConvertible {
    case unreadable(file: String, reason: String)
    case missingKey(file: String, key: String)
    case wrongType(file: String, key: String, expected: String)
    case unsupportedModelType(file: String, modelType: String)
    case invalid(String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason): return "\(file): cannot read the model config: \(reason)"
        case let .missingKey(file, key): return "\(file): missing key '\(key)'"
        case let .wrongType(file, key, expected): return "\(file): key '\(key)' should be \(expected)"
        case let .unsupportedModelType(file, type):
            return "\(file): model_type '\(type)' is not supported (expected 'gpt2' or 'llama')"
        case let .invalid(what): return "invalid model config: \(what)"
        }
    }
}

extension ModelConfig {
    /// Reads a Hugging Face `config.json`. `file` names it in errors.
    public init(huggingFaceJSON data: Data, file: String) throws(ModelConfigError) {
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw .unreadable(file: file, reason: "not valid JSON (\(error.localizedDescription))")
        }
        guard let json = object as? [String: Any] else { throw .unreadable(file: file, reason: "not a JSON object") }

        func int(_ key: String) throws(ModelConfigError) -> Int {
            guard let v = json[key], !(v is NSNull) else { throw .missingKey(file: file, key: key) }
            guard let n = v as? NSNumber, let i = Int(exactly: n.doubleValue.rounded()), n.doubleValue == Double(i) else {
                throw .wrongType(file: file, key: key, expected: "an integer")
            }
            // Sizes past 2^31 are refused here, so no product of two of them can overflow below.
            guard i >= -Int(Int32.max), i <= Int(Int32.max) else {
                throw .wrongType(file: file, key: key, expected: "an integer below 2^31 (got \(n))")
            }
            return i
        }
        func optionalInt(_ key: String) throws(ModelConfigError) -> Int? {
            guard let v = json[key], !(v is NSNull) else { return nil }
            // eos_token_id may be a list; the first entry is the one generation stops on.
            let first = (v as? [Any])?.first ?? v
            if v is [Any], (v as? [Any])?.isEmpty == true { return nil }
            guard let n = first as? NSNumber, let i = Int(exactly: n.doubleValue), i >= -Int(Int32.max), i <= Int(Int32.max) else {
                throw .wrongType(file: file, key: key, expected: "an integer below 2^31")
            }
            return i
        }
        func number(_ key: String, default d: Double? = nil) throws(ModelConfigError) -> Double {
            guard let v = json[key], !(v is NSNull) else {
                if let d { return d }
                throw .missingKey(file: file, key: key)
            }
            guard let n = v as? NSNumber else { throw .wrongType(file: file, key: key, expected: "a number") }
            return n.doubleValue
        }
        func bool(_ key: String, default d: Bool) throws(ModelConfigError) -> Bool {
            guard let v = json[key], !(v is NSNull) else { return d }
            guard let b = v as? Bool else { throw .wrongType(file: file, key: key, expected: "true or false") }
            return b
        }

        guard let modelType = json["model_type"] as? String else { throw .missingKey(file: file, key: "model_type") }
        switch modelType {
        case "gpt2":
            let hidden = try int("n_embd")
            guard try int("n_head") > 0 else { throw .unreadable(file: file, reason: "n_head must be positive") }
            let inner = try optionalInt("n_inner")
            if let act = json["activation_function"] as? String, !["gelu_new", "gelu_pytorch_tanh"].contains(act) {
                throw .wrongType(file: file, key: "activation_function", expected: "'gelu_new' (the tanh GELU Rein implements)")
            }
            self.init(family: .gpt2, vocabSize: try int("vocab_size"), hiddenSize: hidden, layers: try int("n_layer"),
                      heads: try int("n_head"), intermediateSize: inner ?? 4 * hidden, maxPositions: try int("n_positions"),
                      normEps: try number("layer_norm_epsilon", default: 1e-5),
                      tieEmbeddings: try bool("tie_word_embeddings", default: true), attentionBias: true, mlpBias: true,
                      bosTokenId: try optionalInt("bos_token_id"), eosTokenId: try optionalInt("eos_token_id"),
                      padTokenId: try optionalInt("pad_token_id"))
        case "llama":
            let hidden = try int("hidden_size"), heads = try int("num_attention_heads")
            guard heads > 0 else {
                throw .unreadable(file: file, reason: "num_attention_heads is \(heads); it must be positive")
            }
            var theta = 10_000.0
            if let params = json["rope_parameters"] as? [String: Any], let t = params["rope_theta"] as? NSNumber {
                theta = t.doubleValue
            } else if json["rope_theta"] != nil {
                theta = try number("rope_theta")
            }
            if let scaling = json["rope_scaling"] as? [String: Any], let kind = scaling["rope_type"] ?? scaling["type"],
               (kind as? String) != "default" {
                throw .wrongType(file: file, key: "rope_scaling", expected: "absent (RoPE scaling is not supported yet)")
            }
            if let act = json["hidden_act"] as? String, act != "silu" {
                throw .wrongType(file: file, key: "hidden_act", expected: "'silu'")
            }
            self.init(family: .llama, vocabSize: try int("vocab_size"), hiddenSize: hidden, layers: try int("num_hidden_layers"),
                      heads: heads, kvHeads: try optionalInt("num_key_value_heads") ?? heads,
                      headDim: try optionalInt("head_dim") ?? hidden / heads, intermediateSize: try int("intermediate_size"),
                      maxPositions: try int("max_position_embeddings"), normEps: try number("rms_norm_eps", default: 1e-6),
                      ropeTheta: theta, tieEmbeddings: try bool("tie_word_embeddings", default: false),
                      attentionBias: try bool("attention_bias", default: false), mlpBias: try bool("mlp_bias", default: false),
                      bosTokenId: try optionalInt("bos_token_id"), eosTokenId: try optionalInt("eos_token_id"),
                      padTokenId: try optionalInt("pad_token_id"))
        default:
            throw .unsupportedModelType(file: file, modelType: modelType)
        }
        do { try validate() } catch { throw .unreadable(file: file, reason: error.description) }
    }

    /// The `config.json` that Hugging Face transformers reads back into the same model.
    public func huggingFaceJSON() -> [String: Any] {
        var json: [String: Any] = ["vocab_size": vocabSize, "tie_word_embeddings": tieEmbeddings, "torch_dtype": "float32"]
        if let bosTokenId { json["bos_token_id"] = bosTokenId }
        if let eosTokenId { json["eos_token_id"] = eosTokenId }
        if let padTokenId { json["pad_token_id"] = padTokenId }
        switch family {
        case .gpt2:
            json.merge(["model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": hiddenSize, "n_layer": layers,
                        "n_head": heads, "n_inner": intermediateSize, "n_positions": maxPositions,
                        "layer_norm_epsilon": normEps, "activation_function": "gelu_new", "resid_pdrop": 0.0,
                        "embd_pdrop": 0.0, "attn_pdrop": 0.0]) { $1 }
        case .llama:
            json.merge(["model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": hiddenSize,
                        "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kvHeads,
                        "head_dim": headDim, "intermediate_size": intermediateSize, "max_position_embeddings": maxPositions,
                        "rms_norm_eps": normEps, "rope_theta": ropeTheta, "hidden_act": "silu",
                        "attention_bias": attentionBias, "mlp_bias": mlpBias]) { $1 }
        }
        return json
    }
}
