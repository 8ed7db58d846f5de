import NN
import TensorCore

// The forward passes every online RL method makes on query + response batches, with TRL's input
// conventions (its `forward()` and `get_reward()`): the mask is `id != pad`, position ids are
// cumsum(mask) - mask (the first real token is at 0, left pads at 0, a pad inside a response gets
// the number of real tokens before it), and pads are replaced by token 0 before embedding, so a
// pad id outside the vocabulary (the rollout engine's sentinel when a tokenizer has no pad) is
// never looked up.

/// A padded batch as the model sees it.
public struct PaddedInputs: Sendable, Equatable {
    public let rows: Int
    public let length: Int
    /// The ids with every pad replaced by 0.
    public let ids: [Int32]
    /// 1 for a real token, 0 for a pad.
    public let mask: [Float]
    public let positions: [Int32]

    /// The inputs of `ids` (`rows * length`, row-major) padded with `pad`.
    public init(ids raw: [Int32], rows: Int, length: Int, pad: Int32) {
        precondition(raw.count == rows * length, "PaddedInputs: \(raw.count) ids for \(rows) x \(length)")
        var ids = raw, mask = [Float](repeating: 0, count: raw.count), positions = [Int32](repeating: 0, count: raw.count)
        for r in 0..<rows {
            var seen: Int32 = 0
            for t in 0..<length {
                let i = r &* length &+ t
                positions[i] = seen
                if raw[i] == pad {
                    ids[i] = 0
                } else {
                    mask[i] = 1
                    seen &+= 1
                }
            }
        }
        self.rows = rows
        self.length = length
        self.ids = ids
        self.mask = mask
        self.positions = positions
    }

    /// Final hidden states `[rows, length, C]`.
    public func hiddenStates(_ model: DecoderModel) -> Tensor {
        model.hiddenStates(ids: ids, batch: rows, length: length, attentionMask: mask, positions: positions)
    }
}

/// The hidden states at the positions that predict each response token: `ctx - 1 ..< ctx + R - 1`
/// of a `[rows, ctx + R, C]` query + response batch.
public func responseHiddenStates(_ hidden: Tensor, contextLength ctx: Int, responseLength R: Int) -> Tensor {
    hidden.slice(axis: 1, (ctx - 1)..<(ctx + R - 1))
}

/// Log-probabilities `[rows, R]` of `responses` under `logits` `[rows, R, V]` (already divided by
/// the temperature). Ids outside the vocabulary (a sentinel pad) are read as token 0; their
/// positions are padding, which every caller masks.
public func responseLogProbs(logits: Tensor, responses: [Int32]) -> Tensor {
    let V = logits.lastDim
    let ids = responses.map { $0 >= 0 && Int($0) < V ? $0 : 0 }
    return gatherLogProbs(logits: logits, ids: ids)
}

/// Per-token values `[rows, R]` of a value model at the response positions: its `v_head` with bias
/// when it has one (a value head on the policy's own trunk, or a reward model's head rescaled to
/// normalized rewards), else its `score` head (TRL's `AutoModelForSequenceClassification` value
/// models).
public func responseValues(valueModel: DecoderModel, responseHidden h: Tensor) -> Tensor {
    if let head = valueModel.valueHead { return linear(h, weight: head.weight, bias: head.bias).reshaped([h.shape[0], h.shape[1]]) }
    guard let score = valueModel.scoreHead else { preconditionFailure("a value model needs a score head or a value head") }
    return linear(h, weight: score).reshaped([h.shape[0], h.shape[1]])
}

/// A reward model's scores `[rows]` read at one index per row (TRL: `ctx + sequence_length`, the
/// EOS or the last token), no gradient.
public func rewardModelScores(_ model: DecoderModel, inputs: PaddedInputs, at indices: [Int]) -> [Float] {
    guard let score = model.scoreHead else { preconditionFailure("a reward model needs a score head") }
    precondition(indices.count == inputs.rows, "rewardModelScores: \(indices.count) indices for \(inputs.rows) rows")
    return Autograd.withoutGrad {
        let h = inputs.hiddenStates(model)
        let C = h.lastDim
        let rows = indices.enumerated().map { Int32($0.offset * inputs.length + $0.element) }
        let picked = embedding(h.reshaped([inputs.rows * inputs.length, C]), ids: rows)
        return linear(picked, weight: score).values
    }
}

/// Temperature-scaled log-probs `[rows, R]` of the responses of `[rows, ctx + R]` query-responses
/// under `model`, without gradients, `chunk` rows per forward pass: the rollout phase's policy,
/// old and reference log-probs.
public func responseLogProbsNoGrad(_ model: DecoderModel, queryResponses qr: [Int32], rows: Int, contextLength ctx: Int,
                                   responseLength R: Int, pad: Int32, temperature: Double, chunk: Int) -> [Float] {
    let L = ctx + R, step = Swift.max(1, chunk)
    var out: [Float] = []
    out.reserveCapacity(rows * R)
    var start = 0
    while start < rows {
        let end = Swift.min(rows, start + step)
        out += Autograd.withoutGrad {
            let inputs = PaddedInputs(ids: Array(qr[start * L..<end * L]), rows: end - start, length: L, pad: pad)
            let h = responseHiddenStates(inputs.hiddenStates(model), contextLength: ctx, responseLength: R)
            let logits = temperatureScaledLogits(model.logits(hidden: h), temperature: temperature)
            var responses = [Int32](repeating: 0, count: (end - start) * R)
            for r in 0..<(end - start) { for t in 0..<R { responses[r * R + t] = qr[(start + r) * L + ctx + t] } }
            return responseLogProbs(logits: logits, responses: responses).values
        }
        start = end
    }
    return out
}

/// `[rows, ctx + R]`: each row's query followed by its response.
public func concatenateRows(queries: [Int32], responses: [Int32], rows: Int, contextLength ctx: Int, responseLength R: Int) -> [Int32] {
    let L = ctx + R
    var qr = [Int32](repeating: 0, count: rows * L)
    for r in 0..<rows {
        for t in 0..<ctx { qr[r * L + t] = queries[r * ctx + t] }
        for t in 0..<R { qr[r * L + ctx + t] = responses[r * R + t] }
    }
    return qr
}
