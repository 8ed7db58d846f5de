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
        self.headDim = headDim ?? hiddenSize / heads
        self.intermediateSize = intermediateSize ?? 4 * hiddenSize
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

    /// Checks the dimensions agree with each other; the message names the offending keys.
    public func validate() throws(ModelConfigError) {
        func need(_ ok: Bool, _ what: String) throws(ModelConfigError) { if !ok { throw .invalid(what) } }
        try need(vocabSize > 0 && hiddenSize > 0 && layers > 0 && heads > 0 && maxPositions > 0,
                 "vocab_size, hidden size, layers, heads and max positions must be positive")
        try need(kvHeads > 0 && heads % kvHeads == 0, "num_attention_heads (\(heads)) must be a multiple of num_key_value_heads (\(kvHeads))")
        try need(headDim > 0 && (family == .llama || heads * headDim == hiddenSize),
                 "hidden size \(hiddenSize) is not \(heads) heads of \(headDim)")
        try need(family == .gpt2 || headDim % 2 == 0, "head_dim \(headDim) must be even for RoPE")
        try need(intermediateSize > 0, "intermediate size must be positive")
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
            guard let n = v as? NSNumber, n.doubleValue == n.doubleValue.rounded() else {
                throw .wrongType(file: file, key: key, expected: "an integer")
            }
            return n.intValue
        }
        func optionalInt(_ key: String) throws(ModelConfigError) -> Int? {
            guard let v = json[key], !(v is NSNull) else { return nil }
            // eos_token_id may be a list; the first entry is the one generation stops on.
            if let list = v as? [NSNumber] { return list.first?.intValue }
            guard let n = v as? NSNumber else { throw .wrongType(file: file, key: key, expected: "an integer") }
            return n.intValue
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
