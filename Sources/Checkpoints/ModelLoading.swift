import Foundation
import NN
import TensorCore

/// Why a model could not be loaded or saved; every message names the file.
public enum CheckpointError: Error, CustomStringConvertible {
    case notFound(path: String, expected: String)
    case invalid(file: String, reason: String)
    case unsupported(file: String, reason: String)

    public var description: String {
        switch self {
        case let .notFound(path, expected): return "\(path): not found (expected \(expected))"
        case let .invalid(file, reason): return "\(file): \(reason)"
        case let .unsupported(file, reason): return "\(file): \(reason)"
        }
    }
}

/// Loading and saving whole models: Hugging Face directories and GGUF files.
public enum ModelCheckpoint {
    /// Loads a model from a Hugging Face directory (`config.json` and `model.safetensors`, or a
    /// sharded `model.safetensors.index.json`) or from a `.gguf` file.
    public static func load(_ path: String) throws -> DecoderModel {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CheckpointError.notFound(path: path, expected: "a Hugging Face model directory or a .gguf file")
        }
        if isDirectory.boolValue { return try loadHuggingFace(directory: URL(fileURLWithPath: path)) }
        return try loadGGUF(GGUFFile(url: URL(fileURLWithPath: path)))
    }

    // MARK: Hugging Face directories

    /// Reads `config.json` and the safetensors weights of a Hugging Face model directory, strictly.
    public static func loadHuggingFace(directory: URL) throws -> DecoderModel {
        let configURL = directory.appendingPathComponent("config.json")
        guard let configData = FileManager.default.contents(atPath: configURL.path) else {
            throw CheckpointError.notFound(path: configURL.path, expected: "the model's config.json")
        }
        let config = try ModelConfig(huggingFaceJSON: configData, file: configURL.path)
        // Every header is checked first (mapping a file allocates nothing), then the config against
        // the weights: every parameter is in them at 2 bytes or more (F16, BF16, F32), so a config
        // that asks for more than the files can hold is refused before the model is allocated.
        let files = try weightFiles(in: directory).map { url throws in try SafetensorsFile(url: url) }
        let weightBytes = files.reduce(0) { total, st in
            total + ((try? FileManager.default.attributesOfItem(atPath: st.url.path)[.size] as? Int) ?? 0)
        }
        if let count = config.parameterCount, count > weightBytes / 2 {
            throw CheckpointError.invalid(
                file: configURL.path,
                reason: "the config describes \(count) parameters (\(config.layers) layers, hidden size "
                    + "\(config.hiddenSize), vocab_size \(config.vocabSize)), more than the \(weightBytes) bytes of "
                    + "weights can hold at 2 bytes each; config.json does not match the weights")
        }
        let model = DecoderModel(forLoading: config)
        var tensors: [String: Tensor] = [:]
        for st in files {
            let file = st.url
            for name in st.names {
                if tensors[name] != nil {
                    throw CheckpointError.invalid(file: file.path, reason: "tensor '\(name)' appears in more than one shard")
                }
                tensors[name] = try st.tensor(name)
            }
        }
        // Heads a reward or PPO stage added are part of the saved model.
        var rng = RNG(seed: 0)
        if tensors["score.weight"] != nil { model.addScoreHead(rng: &rng) }
        if tensors["v_head.summary.weight"] != nil { model.addValueHead(rng: &rng) }
        try model.load(stateDict: tensors, source: directory.path)
        // The file-sized temporaries are not shapes training will allocate again.
        tensors = [:]
        BufferPool.shared.trim()
        return model
    }

    /// The safetensors files of a directory: the single `model.safetensors`, or the shards that
    /// `model.safetensors.index.json` lists.
    static func weightFiles(in directory: URL) throws -> [URL] {
        let single = directory.appendingPathComponent("model.safetensors")
        if FileManager.default.fileExists(atPath: single.path) { return [single] }
        let indexURL = directory.appendingPathComponent("model.safetensors.index.json")
        guard let data = FileManager.default.contents(atPath: indexURL.path) else {
            throw CheckpointError.notFound(path: single.path, expected: "model.safetensors or model.safetensors.index.json")
        }
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let map = json["weight_map"] as? [String: String] else {
            throw CheckpointError.invalid(file: indexURL.path, reason: "expected a JSON object with a 'weight_map' of tensor name to file")
        }
        var files: [String] = []
        for name in Set(map.values).sorted() {
            guard !name.contains("/"), !name.hasPrefix(".") else {
                throw CheckpointError.invalid(file: indexURL.path, reason: "shard '\(name)' is not a file name in the directory")
            }
            files.append(name)
        }
        return files.map { directory.appendingPathComponent($0) }
    }

    /// Writes `model` as a Hugging Face directory: `config.json`, `model.safetensors` (F32) and
    /// `generation_config.json`. Files are written atomically; the directory is created if needed.
    public static func saveHuggingFace(_ model: DecoderModel, to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var config = model.config.huggingFaceJSON()
        config["transformers_version"] = "5.23.0"
        let configData = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(to: directory.appendingPathComponent("config.json")) { w throws(AtomicFileError) in try w.write(contentsOf: [UInt8](configData)) }
        var generation: [String: Any] = [:]
        if let bos = model.config.bosTokenId { generation["bos_token_id"] = bos }
        if let eos = model.config.eosTokenId { generation["eos_token_id"] = eos }
        let genData = try JSONSerialization.data(withJSONObject: generation, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(to: directory.appendingPathComponent("generation_config.json")) { w throws(AtomicFileError) in try w.write(contentsOf: [UInt8](genData)) }
        try Safetensors.write(model.stateDict(), metadata: ["format": "pt"], to: directory.appendingPathComponent("model.safetensors"))
    }

    // MARK: GGUF

    /// Builds a Llama-family model from a GGUF file: config from the `llama.*` metadata, tensors
    /// dequantized to Float32 and renamed to Hugging Face keys, Q/K rows un-permuted from GGUF's
    /// interleaved-pair RoPE layout to the rotate-half layout.
    public static func loadGGUF(_ gguf: GGUFFile) throws -> DecoderModel {
        let file = gguf.url.path
        let arch = try gguf.string("general.architecture")
        guard arch == "llama" else {
            throw CheckpointError.unsupported(file: file, reason: "architecture '\(arch)' is not supported (expected 'llama')")
        }
        func size(_ key: String) throws -> Int {
            let n = try gguf.int(key)
            guard n > 0, n <= Int(Int32.max) else {
                throw CheckpointError.invalid(file: file, reason: "metadata \"\(key)\" is \(n); expected a positive size below 2^31")
            }
            return n
        }
        func tokenId(_ key: String) -> Int? { (try? gguf.int(key)).flatMap { Int32(exactly: $0) != nil ? $0 : nil } }
        func optionalSize(_ key: String) throws -> Int? { gguf.value(key) == nil ? nil : try size(key) }
        let heads = try size("llama.attention.head_count")
        let hidden = try size("llama.embedding_length")
        let kvHeads = try optionalSize("llama.attention.head_count_kv") ?? heads
        let vocab = try optionalSize("llama.vocab_size") ?? gguf.strings("tokenizer.ggml.tokens").count
        let headDim = try optionalSize("llama.rope.dimension_count") ?? hidden / heads
        let tied = !gguf.tensorNames.contains("output.weight")
        let config = ModelConfig(
            family: .llama, vocabSize: vocab, hiddenSize: hidden, layers: try size("llama.block_count"), heads: heads,
            kvHeads: kvHeads, headDim: headDim, intermediateSize: try size("llama.feed_forward_length"),
            maxPositions: try size("llama.context_length"),
            normEps: Double((try? gguf.float("llama.attention.layer_norm_rms_epsilon")) ?? 1e-5),
            ropeTheta: Double((try? gguf.float("llama.rope.freq_base")) ?? 10_000), tieEmbeddings: tied,
            bosTokenId: tokenId("tokenizer.ggml.bos_token_id"), eosTokenId: tokenId("tokenizer.ggml.eos_token_id"),
            padTokenId: tokenId("tokenizer.ggml.padding_token_id"))
        do { try config.validate(keys: .gguf) } catch { throw CheckpointError.invalid(file: file, reason: error.description) }
        // The smallest block Rein decodes (Q4_0) holds 32 weights in 18 bytes: a file smaller than
        // half a byte per parameter cannot hold the model its metadata describes.
        let fileSize = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
        if let count = config.parameterCount, count / 2 > fileSize {
            throw CheckpointError.invalid(
                file: file, reason: "the metadata describes \(count) parameters (llama.block_count \(config.layers), "
                    + "llama.embedding_length \(config.hiddenSize)), more than the \(fileSize)-byte file can hold")
        }
        let model = DecoderModel(forLoading: config)

        var tensors: [String: Tensor] = [:]
        for name in gguf.tensorNames {
            guard let hfName = huggingFaceName(ggufName: name) else {
                throw CheckpointError.unsupported(file: file, reason: "tensor '\(name)' has no Llama counterpart")
            }
            var t = try gguf.tensor(name)
            if name.hasSuffix("attn_q.weight") || name.hasSuffix("attn_k.weight") {
                let h = name.hasSuffix("attn_q.weight") ? heads : kvHeads
                guard t.shape.count == 2, t.shape[0] == h * headDim, t.shape[1] == hidden else {
                    throw CheckpointError.invalid(file: file, reason: "tensor '\(name)' has shape \(t.shape); expected "
                        + "[\(h * headDim), \(hidden)] (\(h) heads of \(headDim), llama.embedding_length \(hidden))")
                }
            }
            if name.hasSuffix("attn_q.weight") { t = unpermuteRoPERows(t, heads: heads) }
            if name.hasSuffix("attn_k.weight") { t = unpermuteRoPERows(t, heads: kvHeads) }
            tensors[hfName] = t
        }
        try model.load(stateDict: tensors, source: file)
        tensors = [:]
        BufferPool.shared.trim()
        return model
    }

    /// The Hugging Face Llama key of a GGUF tensor name.
    static func huggingFaceName(ggufName name: String) -> String? {
        switch name {
        case "token_embd.weight": return "model.embed_tokens.weight"
        case "output_norm.weight": return "model.norm.weight"
        case "output.weight": return "lm_head.weight"
        default: break
        }
        let parts = name.split(separator: ".")
        guard parts.count >= 3, parts[0] == "blk", let layer = Int(parts[1]) else { return nil }
        let rest = parts[2...].joined(separator: ".")
        let map = [
            "attn_norm.weight": "input_layernorm.weight", "ffn_norm.weight": "post_attention_layernorm.weight",
            "attn_q.weight": "self_attn.q_proj.weight", "attn_k.weight": "self_attn.k_proj.weight",
            "attn_v.weight": "self_attn.v_proj.weight", "attn_output.weight": "self_attn.o_proj.weight",
            "attn_q.bias": "self_attn.q_proj.bias", "attn_k.bias": "self_attn.k_proj.bias",
            "attn_v.bias": "self_attn.v_proj.bias", "attn_output.bias": "self_attn.o_proj.bias",
            "ffn_gate.weight": "mlp.gate_proj.weight", "ffn_up.weight": "mlp.up_proj.weight", "ffn_down.weight": "mlp.down_proj.weight",
        ]
        return map[rest].map { "model.layers.\(layer).\($0)" }
    }

    /// Undoes the llama.cpp converter's Q/K row permutation: within each head of D rows, GGUF row
    /// 2i + s holds Hugging Face row s·D/2 + i (s in 0...1).
    public static func unpermuteRoPERows(_ w: Tensor, heads: Int) -> Tensor {
        let rows = w.shape[0], cols = w.count / rows
        let D = rows / heads, half = D / 2
        let out = Tensor(uninitialized: w.shape)
        for h in 0..<heads {
            for i in 0..<half {
                for s in 0..<2 {
                    (out.data + (h * D + s * half + i) * cols).update(from: w.data + (h * D + 2 * i + s) * cols, count: cols)
                }
            }
        }
        return out
    }
}
