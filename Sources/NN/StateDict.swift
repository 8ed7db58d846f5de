import TensorCore

/// A checkpoint whose tensors do not match the model.
public enum StateDictError: Error, CustomStringConvertible {
    case missing(source: String, keys: [String])
    case unexpected(source: String, keys: [String])
    case shape(source: String, key: String, expected: [Int], found: [Int])

    public var description: String {
        switch self {
        case let .missing(source, keys):
            return "\(source): missing \(keys.count) parameter(s): \(keys.prefix(5).joined(separator: ", "))\(keys.count > 5 ? ", ..." : "")"
        case let .unexpected(source, keys):
            return "\(source): \(keys.count) unexpected tensor(s) the model does not have: \(keys.prefix(5).joined(separator: ", "))\(keys.count > 5 ? ", ..." : "")"
        case let .shape(source, key, expected, found):
            return "\(source): tensor '\(key)' has shape \(found), expected \(expected)"
        }
    }
}

extension DecoderModel {
    /// The Hugging Face shape of a parameter (Conv1D weights are stored `[in, out]`).
    func checkpointShape(_ entry: ParameterEntry) -> [Int] {
        transposedInCheckpoint.contains(entry.name) ? entry.shape.reversed() : entry.shape
    }

    /// Copies every parameter from `tensors` (Hugging Face names and layouts). Strict: a missing
    /// key, an extra key or a wrong shape is an error naming the key, and nothing is changed then.
    /// A tied model ignores a stored `lm_head.weight`. `source` names the file in errors.
    public func load(stateDict tensors: [String: Tensor], source: String) throws(StateDictError) {
        let base = zip(arena.entries, arena.tensors).prefix(baseParameterCount)
        let expectedNames = Set(base.map(\.0.name))
        var extra = Set(tensors.keys).subtracting(expectedNames)
        if config.tieEmbeddings { extra.remove("lm_head.weight") }
        // Buffers some exporters add that carry no parameters.
        extra = extra.filter { !$0.hasSuffix(".attn.bias") && !$0.hasSuffix(".attn.masked_bias") && !$0.hasSuffix("rotary_emb.inv_freq") }
        let missing = expectedNames.subtracting(tensors.keys)
        if !missing.isEmpty { throw .missing(source: source, keys: missing.sorted()) }
        if !extra.isEmpty { throw .unexpected(source: source, keys: extra.sorted()) }
        for (entry, _) in base {
            let t = tensors[entry.name]!
            let shape = checkpointShape(entry)
            if t.shape != shape { throw .shape(source: source, key: entry.name, expected: shape, found: t.shape) }
        }
        for (entry, param) in base {
            let t = tensors[entry.name]!
            if transposedInCheckpoint.contains(entry.name) {
                let rows = t.shape[0], cols = t.shape[1]   // stored [in, out]; ours is [out, in]
                let src = t.data, dst = param.data
                for r in 0..<rows { for c in 0..<cols { dst[c * rows + r] = src[r * cols + c] } }
            } else {
                param.data.update(from: t.data, count: t.count)
            }
        }
    }

    /// Every base parameter under its Hugging Face name and layout (copies), ready to write.
    /// LoRA adapters are not included: merge them first (``mergeLoRA()``) or save them apart.
    public func stateDict() -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (entry, param) in zip(arena.entries, arena.tensors).prefix(baseParameterCount) {
            out[entry.name] = transposedInCheckpoint.contains(entry.name)
                ? Autograd.withoutGrad { param.detached().transposed() } : param.detached().copy()
        }
        return out
    }

    /// The gradient of each parameter in its Hugging Face layout.
    public func gradientDict() -> [String: Tensor] {
        var out: [String: Tensor] = [:]
        for (entry, param) in zip(arena.entries, arena.tensors) {
            guard let g = param.grad else { continue }
            out[entry.name] = transposedInCheckpoint.contains(entry.name) ? g.transposed() : g.copy()
        }
        return out
    }
}
