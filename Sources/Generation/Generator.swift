import NN
import TensorCore

/// How to pick each new token.
public struct SamplingOptions: Codable, Sendable, Equatable {
    /// 0 means greedy (argmax); otherwise logits are divided by it before sampling.
    public var temperature: Float = 0
    /// Keep only the k most likely tokens (nil or 0: all).
    public var topK: Int? = nil
    /// Keep the smallest set of tokens whose probability reaches p (nil or 1: all).
    public var topP: Float? = nil
    /// Most tokens generated per sequence.
    public var maxNewTokens: Int = 64
    /// Token ids that end a sequence (EOS); the stop token is kept in the output.
    public var stopTokens: [Int32] = []
    /// Texts that end a sequence once the generated text contains them (needs a decoder).
    public var stopStrings: [String] = []

    /// Options with the given values; the defaults are greedy, 64 tokens, no stops.
    public init(temperature: Float = 0, topK: Int? = nil, topP: Float? = nil, maxNewTokens: Int = 64,
                stopTokens: [Int32] = [], stopStrings: [String] = []) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.maxNewTokens = maxNewTokens
        self.stopTokens = stopTokens
        self.stopStrings = stopStrings
    }
}

/// Why a sequence stopped.
public enum StopReason: String, Codable, Sendable {
    /// It produced a stop token (EOS).
    case stopToken = "eos"
    /// Its text came to contain a stop string.
    case stopString = "stop_string"
    /// It reached `maxNewTokens`.
    case maxTokens = "length"
    /// The model's context (max positions) is full.
    case contextFull = "context"
}

/// One generated sequence.
public struct GeneratedSequence: Sendable {
    /// New token ids (the prompt excluded), including the stop token if one ended it.
    public var tokens: [Int32] = []
    /// log p(token) under the sampling distribution (logits / temperature, before top-k/top-p
    /// filtering; plain log-softmax when greedy), one per token.
    public var logProbs: [Float] = []
    /// Why it ended.
    public var stopReason: StopReason = .maxTokens
    /// The decoded new text (cut at a stop string), when a decoder was given.
    public var text: String = ""
}

/// Batched sampling from a ``DecoderModel`` with a KV cache and left padding.
///
/// Prompts of different lengths are left-padded; positions come from the attention mask, so a
/// padded prompt generates exactly what it would alone. Seeded: the same `rng` state and inputs
/// give the same tokens; with one RNG per row (`rngs:`), a row's tokens do not depend on its batch.
public struct Generator {
    /// The model sampled from.
    public let model: DecoderModel
    /// Turns token ids into text (for stop strings and `text`); nil leaves `text` empty.
    public var decode: (([Int32]) -> String)?
    /// The id written into padded positions (masked out, so any id of the vocabulary gives the same
    /// tokens; see `padId(padTokenId:eosTokenId:vocabularySize:)` for the one rule that picks it).
    public var padId: Int32

    /// A generator for `model`. Without `padId`, the pad rule is applied to the model config's
    /// pad and EOS ids; callers with a tokenizer pass the rule's answer for the tokenizer's ids.
    public init(model: DecoderModel, padId: Int32? = nil, decode: (([Int32]) -> String)? = nil) {
        self.model = model
        self.padId = padId ?? Self.padId(padTokenId: model.config.padTokenId.flatMap { Int32(exactly: $0) },
                                         eosTokenId: model.config.eosTokenId.flatMap { Int32(exactly: $0) },
                                         vocabularySize: model.config.vocabSize)
        self.decode = decode
    }

    /// The pad-id rule of every generation and scoring call (generation, perplexity, reward
    /// scoring): the pad token when there is one, else EOS, else 0, skipping any id outside
    /// `0..<vocabularySize` (it could not be embedded).
    ///
    /// The choice never changes a result: padded positions are masked out of attention (left
    /// padding in generation) or come after every real token under causal attention (right padding
    /// in scoring), and a padded position is never sampled or scored. EOS is a safe fallback for the
    /// same reason; the rule exists so that every call site picks the same id.
    public static func padId(padTokenId: Int32?, eosTokenId: Int32?, vocabularySize: Int) -> Int32 {
        for candidate in [padTokenId, eosTokenId] {
            if let id = candidate, id >= 0, Int(id) < vocabularySize { return id }
        }
        return 0
    }

    /// Generates a continuation of each prompt. `onToken(sequence, token)` is called as each new
    /// token is chosen (for streaming). With `useCache: false` every step recomputes the whole
    /// sequence (a reference for tests).
    ///
    /// One `rng` serves the whole batch (each step draws for the unfinished rows in order), so a
    /// row's tokens depend on the other rows; see `generate(prompts:options:rngs:)` for per-row streams.
    public func generate(prompts: [[Int32]], options: SamplingOptions, rng: inout RNG, useCache: Bool = true,
                         onToken: ((Int, Int32) -> Void)? = nil) -> [GeneratedSequence] {
        run(prompts: prompts, options: options, useCache: useCache, onToken: onToken) { _, logits, V in
            sample(logits, V, options, &rng)
        }
    }

    /// Generates a continuation of each prompt, row `b` sampling from `rngs[b]` alone: a row's
    /// tokens are the same whatever other prompts share the batch and whatever the batch size (its
    /// left padding is masked), as long as the longest prompt leaves room for `maxNewTokens` in the
    /// context. Each generator is advanced by the draws its row made.
    public func generate(prompts: [[Int32]], options: SamplingOptions, rngs: inout [RNG], useCache: Bool = true,
                         onToken: ((Int, Int32) -> Void)? = nil) -> [GeneratedSequence] {
        precondition(rngs.count == prompts.count, "generate needs one RNG per prompt (\(rngs.count) for \(prompts.count))")
        return run(prompts: prompts, options: options, useCache: useCache, onToken: onToken) { b, logits, V in
            sample(logits, V, options, &rngs[b])
        }
    }

    /// The decoding loop; `pick(row, logits, vocabularySize)` chooses each unfinished row's token.
    private func run(prompts: [[Int32]], options: SamplingOptions, useCache: Bool, onToken: ((Int, Int32) -> Void)?,
                     pick: (Int, UnsafePointer<Float>, Int) -> (Int32, Float)) -> [GeneratedSequence] {
        precondition(!prompts.isEmpty && prompts.allSatisfy { !$0.isEmpty }, "generate needs non-empty prompts")
        let B = prompts.count
        let P = prompts.map(\.count).max()!
        let maxLen = model.config.maxPositions
        let budget = min(options.maxNewTokens, maxLen - P)
        var results = [GeneratedSequence](repeating: GeneratedSequence(), count: B)
        guard budget > 0 else {
            for b in 0..<B { results[b].stopReason = .contextFull }
            return results
        }
        // Row-major [B, S] ids and mask of everything so far; prompts left-padded to P.
        var ids = [Int32](), mask = [Float]()
        for p in prompts {
            ids += Array(repeating: padId, count: P - p.count) + p
            mask += Array(repeating: 0, count: P - p.count) + Array(repeating: 1, count: p.count)
        }
        var length = P
        var done = [Bool](repeating: false, count: B)
        let cache = useCache ? model.makeCache(batch: B, capacity: P + budget) : nil
        let stopTokens = Set(options.stopTokens)
        var step = 0
        // The first call feeds the prompts; later calls feed one token per sequence.
        var feedIds = ids, feedLength = P
        while step < budget {
            let logits: Tensor = Autograd.withoutGrad {
                let h: Tensor
                if let cache {
                    h = model.hiddenStates(ids: feedIds, batch: B, length: feedLength, attentionMask: mask, cache: cache)
                } else {
                    h = model.hiddenStates(ids: ids, batch: B, length: length, attentionMask: mask)
                }
                let T = h.shape[1]
                return model.inferenceLogits(hidden: h.slice(axis: 1, (T - 1)..<T))
            }
            let V = logits.lastDim
            var next = [Int32](repeating: padId, count: B)
            let sampled = done.map { !$0 }   // rows that choose a token this step
            for b in 0..<B where !done[b] {
                let (token, logProb) = pick(b, logits.data + b * V, V)
                next[b] = token
                results[b].tokens.append(token)
                results[b].logProbs.append(logProb)
                onToken?(b, token)
                if stopTokens.contains(token) {
                    done[b] = true
                    results[b].stopReason = .stopToken
                } else if !options.stopStrings.isEmpty, let decode {
                    let text = decode(results[b].tokens)
                    if options.stopStrings.contains(where: { text.contains($0) }) {
                        done[b] = true
                        results[b].stopReason = .stopString
                    }
                }
            }
            step += 1
            if done.allSatisfy({ $0 }) || step == budget { break }
            // Append the new column; a sequence that finished earlier feeds a masked pad.
            var newIds = [Int32](), newMask = [Float]()
            newIds.reserveCapacity(B * (length + 1))
            newMask.reserveCapacity(B * (length + 1))
            for b in 0..<B {
                newIds += ids[(b * length)..<((b + 1) * length)]
                newIds.append(next[b])
                newMask += mask[(b * length)..<((b + 1) * length)]
                newMask.append(sampled[b] ? 1 : 0)
            }
            ids = newIds
            mask = newMask
            length += 1
            feedIds = next
            feedLength = 1
        }
        for b in 0..<B where !done[b] {
            results[b].stopReason = results[b].tokens.count >= options.maxNewTokens ? .maxTokens : .contextFull
        }
        if let decode {
            for b in 0..<B {
                var text = decode(results[b].tokens)
                if results[b].stopReason == .stopString,
                   let cut = options.stopStrings.compactMap({ text.range(of: $0) }).min(by: { $0.lowerBound < $1.lowerBound }) {
                    text = String(text[..<cut.lowerBound])
                }
                results[b].text = text
            }
        }
        return results
    }
}

/// Picks a token from one row of logits; returns it and its log-probability under the sampling
/// distribution (before top-k/top-p filtering).
func sample(_ logits: UnsafePointer<Float>, _ V: Int, _ options: SamplingOptions, _ rng: inout RNG) -> (Int32, Float) {
    let greedy = options.temperature <= 0
    let invT = greedy ? 1 : 1 / options.temperature
    var m = -Float.infinity, best = 0
    for j in 0..<V where logits[j] > m { m = logits[j]; best = j }
    // Each exponential once (the same values in the same order as computing them where used).
    var weights = [Float](repeating: 0, count: V)
    var z: Double = 0
    weights.withUnsafeMutableBufferPointer { w in
        for j in 0..<V {
            let e = Float.exp((logits[j] - m) * invT)
            w[j] = e
            z += Double(e)
        }
    }
    let logZ = Float(Double.log(z))
    func logProb(_ j: Int) -> Float { (logits[j] - m) * invT - logZ }
    if greedy { return (Int32(best), logProb(best)) }
    if (options.topK ?? 0) <= 0 || (options.topK ?? 0) >= V, (options.topP ?? 1) >= 1 {
        // No filtering: every token is a candidate, in id order.
        var u = Double(rng.uniform()) * z
        return weights.withUnsafeBufferPointer { w in
            for j in 0..<V {
                u -= Double(w[j])
                if u <= 0 { return (Int32(j), logProb(j)) }
            }
            return (Int32(V - 1), logProb(V - 1))
        }
    }

    // Candidates, most likely first when filtering needs an order.
    var candidates = Array(0..<V)
    let k = options.topK ?? 0
    let p = options.topP ?? 1
    if (k > 0 && k < V) || p < 1 {
        if k > 0 && k < V {
            candidates.sort { logits[$0] > logits[$1] }
            candidates.removeSubrange(k...)
        } else {
            candidates.sort { logits[$0] > logits[$1] }
        }
        if p < 1 {
            // Smallest prefix whose renormalized mass reaches p.
            let weights = candidates.map { Double(Float.exp((logits[$0] - m) * invT)) }
            let total = weights.reduce(0, +)
            var mass = 0.0, keep = 0
            while keep < candidates.count {
                mass += weights[keep] / total
                keep += 1
                if mass >= Double(p) { break }
            }
            candidates.removeSubrange(keep...)
        }
    }
    var total = 0.0
    for j in candidates { total += Double(Float.exp((logits[j] - m) * invT)) }
    var u = Double(rng.uniform()) * total
    for j in candidates {
        u -= Double(Float.exp((logits[j] - m) * invT))
        if u <= 0 { return (Int32(j), logProb(j)) }
    }
    let last = candidates.last!
    return (Int32(last), logProb(last))
}
