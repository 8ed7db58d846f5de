import Foundation
import TensorCore

/// Low-rank adapters (LoRA) on a model's linear layers, with PEFT's names and defaults.
public struct LoRAConfig: Codable, Equatable, Sendable {
    /// Rank r of each adapter.
    public var r: Int = 8
    /// Scale numerator: the adapter output is multiplied by alpha / r.
    public var alpha: Double = 16
    /// Dropout on the adapter's input while training.
    public var dropout: Double = 0
    /// Module names to adapt, matched against the last component of a weight's module path
    /// (`q_proj`, `v_proj`, `c_attn`, ...).
    public var targetModules: [String] = ["q_proj", "v_proj"]

    enum CodingKeys: String, CodingKey {
        case r, alpha = "lora_alpha", dropout = "lora_dropout", targetModules = "target_modules"
    }

    /// Missing keys take the defaults above.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        r = try c.decodeIfPresent(Int.self, forKey: .r) ?? 8
        alpha = try c.decodeIfPresent(Double.self, forKey: .alpha) ?? 16
        dropout = try c.decodeIfPresent(Double.self, forKey: .dropout) ?? 0
        targetModules = try c.decodeIfPresent([String].self, forKey: .targetModules) ?? ["q_proj", "v_proj"]
    }

    /// Settings with PEFT-like defaults.
    public init(r: Int = 8, alpha: Double = 16, dropout: Double = 0, targetModules: [String] = ["q_proj", "v_proj"]) {
        self.r = r
        self.alpha = alpha
        self.dropout = dropout
        self.targetModules = targetModules
    }
}

/// One adapter: y += scale · B(A(x)), A `[r, in]`, B `[out, r]`.
struct LoRAAdapter {
    let a: Tensor
    let b: Tensor
    let scale: Float
    let dropout: Float
}

/// Problems with adapters a user can cause.
public enum LoRAError: Error, CustomStringConvertible {
    case noTargetMatched(targets: [String], available: [String])
    case alreadyAdapted
    case invalid(String)
    case file(path: String, reason: String)

    public var description: String {
        switch self {
        case let .noTargetMatched(targets, available):
            return "LoRA target_modules \(targets) match no linear layer; this model has \(available.joined(separator: ", "))"
        case .alreadyAdapted: return "the model already has LoRA adapters"
        case let .invalid(reason): return "invalid LoRA settings: \(reason)"
        case let .file(path, reason): return "\(path): \(reason)"
        }
    }
}

extension DecoderModel {
    /// x·Wᵀ + b, plus the adapter's low-rank update when W has one; `fewRows` (a decoding step)
    /// takes the few-row inference kernel, `lowPrecision` W's inference copy when it has one (the
    /// adapters stay fp32).
    func project(_ x: Tensor, weight: Tensor, bias: Tensor?, fewRows: Bool = false, lowPrecision: Bool = false) -> Tensor {
        func dense(_ x: Tensor, _ w: Tensor, _ b: Tensor?) -> Tensor {
            fewRows ? inferenceLinear(x, weight: w, bias: b) : linear(x, weight: w, bias: b)
        }
        let copy = lowPrecision ? inferenceCopy(of: weight, input: x, bias: bias) : nil
        let y = copy.map { lowPrecisionLinear(x, weight: $0, bias: bias) } ?? dense(x, weight, bias)
        guard adaptersEnabled, let adapter = adapters[ObjectIdentifier(weight)] else { return y }
        var input = x
        if adapter.dropout > 0, var rng = dropoutRNG {
            input = TensorCore.dropout(x, p: adapter.dropout, rng: &rng)
            dropoutRNG = rng
        }
        return y + dense(dense(input, adapter.a, nil), adapter.b, nil) * adapter.scale
    }

    /// The adaptable linear weights: (module path, weight tensor), in arena order.
    var linearModules: [(path: String, weight: Tensor)] {
        zip(arena.entries.prefix(baseParameterCount), arena.tensors).compactMap { entry, t in
            guard entry.name.hasSuffix(".weight"), entry.shape.count == 2, entry.name.contains(".layers.") || entry.name.contains(".h.")
            else { return nil }
            return (String(entry.name.dropLast(".weight".count)), t)
        }
    }

    /// PEFT's key for an adapter matrix of a module path.
    static func peftKey(_ path: String, _ which: String) -> String { "base_model.model.\(path).lora_\(which).weight" }

    /// Adds adapters to every linear layer whose module name is in `config.targetModules` and
    /// freezes the base model: only adapter parameters train. A starts uniform in ±1/√in (PEFT's
    /// Kaiming init), B at zero, so the model's outputs are unchanged until training.
    @discardableResult
    public func addLoRA(_ config: LoRAConfig, rng: inout RNG) throws -> Int {
        guard adapters.isEmpty else { throw LoRAError.alreadyAdapted }
        guard config.r > 0, config.alpha > 0, config.dropout >= 0, config.dropout < 1 else {
            throw LoRAError.invalid("r and lora_alpha must be positive and lora_dropout in [0, 1)")
        }
        let modules = linearModules
        let chosen = modules.filter { config.targetModules.contains(String($0.path.split(separator: ".").last!)) }
        guard !chosen.isEmpty else {
            let names = Set(modules.map { String($0.path.split(separator: ".").last!) }).sorted()
            throw LoRAError.noTargetMatched(targets: config.targetModules, available: names)
        }
        arena.freezeAll()
        // Heads stay trainable in full (PEFT's modules_to_save for reward and value heads).
        arena.unfreeze { $0.name == "score.weight" || $0.name.hasPrefix("v_head.") }
        for (path, w) in chosen {
            let out = w.shape[0], inFeatures = w.shape[1]
            let a = arena.add(name: Self.peftKey(path, "A"), shape: [config.r, inFeatures])
            let bound = 1 / Float(inFeatures).squareRoot()
            for i in 0..<a.count { a.data[i] = rng.uniform(-bound, bound) }
            let b = arena.add(name: Self.peftKey(path, "B"), shape: [out, config.r])
            adapters[ObjectIdentifier(w)] = LoRAAdapter(a: a, b: b, scale: Float(config.alpha / Double(config.r)),
                                                         dropout: Float(config.dropout))
        }
        loraConfig = config
        return chosen.count
    }

    /// Folds every adapter into its base weight (W += scale·B·A) and removes the adapters from the
    /// forward pass; the result exports as a plain model. The base stays frozen.
    public func mergeLoRA() {
        Autograd.withoutGrad {
            for (_, w) in linearModules {
                guard let adapter = adapters[ObjectIdentifier(w)] else { continue }
                let delta = matmul(adapter.b.detached(), adapter.a.detached()) * adapter.scale
                addInPlace(w, delta)
            }
        }
        adapters = [:]
    }

    /// Runs `body` with every adapter folded into its base weight (as ``mergeLoRA()`` does) and
    /// the adapters switched off, then puts the base weights back bit for bit and the adapters on:
    /// a snapshot of the merged model in the middle of training, which does not change the run.
    public func withLoRAMerged<T>(_ body: () throws -> T) rethrows -> T {
        guard !adapters.isEmpty else { return try body() }
        var saved: [(Tensor, [Float])] = []
        Autograd.withoutGrad {
            for (_, w) in linearModules {
                guard let adapter = adapters[ObjectIdentifier(w)] else { continue }
                saved.append((w, Array(UnsafeBufferPointer(start: w.data, count: w.count))))
                addInPlace(w, matmul(adapter.b.detached(), adapter.a.detached()) * adapter.scale)
            }
        }
        let enabled = adaptersEnabled
        adaptersEnabled = false
        defer {
            for (w, values) in saved { values.withUnsafeBufferPointer { w.data.update(from: $0.baseAddress!, count: values.count) } }
            adaptersEnabled = enabled
        }
        return try body()
    }

    /// Writes `adapter_model.safetensors` (PEFT key names) and `adapter_config.json` into `directory`.
    public func saveLoRA(to directory: URL) throws {
        guard let config = loraConfig, !adapters.isEmpty else { throw LoRAError.invalid("the model has no adapters to save") }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var tensors: [String: Tensor] = [:]
        for (path, w) in linearModules {
            guard let adapter = adapters[ObjectIdentifier(w)] else { continue }
            tensors[Self.peftKey(path, "A")] = adapter.a.detached()
            tensors[Self.peftKey(path, "B")] = adapter.b.detached()
        }
        try Safetensors.write(tensors, metadata: ["format": "pt"], to: directory.appendingPathComponent("adapter_model.safetensors"))
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as! [String: Any]
        json["peft_type"] = "LORA"
        json["bias"] = "none"
        json["task_type"] = "CAUSAL_LM"
        json["fan_in_fan_out"] = config.targetModules.contains { ["c_attn", "c_proj", "c_fc"].contains($0) }
        let data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
        try AtomicFile.write(data, to: directory.appendingPathComponent("adapter_config.json"))
    }

    /// Adds adapters from a directory written by ``saveLoRA(to:)`` (or PEFT), strictly: every
    /// adapted module must exist and every shape must match.
    public func loadLoRA(from directory: URL) throws {
        let configURL = directory.appendingPathComponent("adapter_config.json")
        guard let data = FileManager.default.contents(atPath: configURL.path) else {
            throw LoRAError.file(path: configURL.path, reason: "missing (expected a LoRA adapter directory)")
        }
        let config: LoRAConfig
        do { config = try JSONDecoder().decode(LoRAConfig.self, from: data) } catch {
            throw LoRAError.file(path: configURL.path, reason: "unreadable adapter config (\(error))")
        }
        var rng = RNG(seed: 0)
        try addLoRA(config, rng: &rng)
        let file = try SafetensorsFile(url: directory.appendingPathComponent("adapter_model.safetensors"))
        let expected = Set(arena.entries.dropFirst(baseParameterCount).map(\.name))
        let extra = Set(file.names).subtracting(expected)
        guard extra.isEmpty else {
            throw LoRAError.file(path: file.url.path, reason: "tensors for modules this model does not adapt: \(extra.sorted().prefix(3).joined(separator: ", "))")
        }
        for (entry, t) in zip(arena.entries, arena.tensors).dropFirst(baseParameterCount) {
            guard file.contains(entry.name) else { throw LoRAError.file(path: file.url.path, reason: "missing \(entry.name)") }
            let v = try file.tensor(entry.name)
            guard v.shape == entry.shape else {
                throw LoRAError.file(path: file.url.path, reason: "\(entry.name) has shape \(v.shape), expected \(entry.shape)")
            }
            t.data.update(from: v.data, count: v.count)
        }
    }
}

/// w += delta, elementwise (no gradient).
func addInPlace(_ w: Tensor, _ delta: Tensor) {
    let wp = w.data, dp = delta.data
    for i in 0..<w.count { wp[i] += dp[i] }
}
