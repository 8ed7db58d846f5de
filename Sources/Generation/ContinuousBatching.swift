import NN
import TensorCore

/// How ``Generator/generate(prompts:options:rngs:batching:onToken:)`` keeps its batch full.
public struct BatchingOptions: Sendable, Equatable {
    /// Sequences decoded together (the batch of every decoding step).
    public var slots: Int
    /// Sequences with the same prompt (the samples of one prompt) prefill it once and copy its
    /// keys and values; false prefills every sequence on its own (a reference for tests).
    public var sharePrefill: Bool
    /// Free slots that make the loop take the next prompts (at least 1; nil: a quarter of the
    /// slots). Waiting for a few frees amortizes the prefill call over several prompts.
    public var refillWhenFree: Int?

    /// `slots` sequences at a time, prompts shared, refilled when a quarter of the slots are free.
    public init(slots: Int, sharePrefill: Bool = true, refillWhenFree: Int? = nil) {
        self.slots = slots
        self.sharePrefill = sharePrefill
        self.refillWhenFree = refillWhenFree
    }
}

extension Generator {
    /// Generates a continuation of each prompt with continuous batching: at most `batching.slots`
    /// sequences decode together, and when some stop (a stop token, a stop string, their token
    /// budget) the next prompts take their places instead of the slots idling until the longest
    /// sequence of the batch ends. Sequences of the same prompt prefill it once and share its keys
    /// and values (and its first-token distribution).
    ///
    /// Sequence `i` samples from `rngs[i]` alone and sees only its own tokens (positions and the
    /// attention mask are its own), so it gets the tokens the per-row ``generate(prompts:options:rngs:useCache:onToken:)``
    /// gives it, whatever the slot count, the order or the other prompts (up to float32 summation
    /// order in the kernels, which does not change a token in practice). Each sequence's budget is
    /// `min(maxNewTokens, context - its prompt length)`. Each generator is advanced by its row's draws.
    public func generate(prompts: [[Int32]], options: SamplingOptions, rngs: inout [RNG], batching: BatchingOptions,
                         onToken: ((Int, Int32) -> Void)? = nil) -> [GeneratedSequence] {
        precondition(!prompts.isEmpty && prompts.allSatisfy { !$0.isEmpty }, "generate needs non-empty prompts")
        precondition(rngs.count == prompts.count, "generate needs one RNG per prompt (\(rngs.count) for \(prompts.count))")
        precondition(batching.slots >= 1, "continuous batching needs at least one slot")
        var loop = ContinuousLoop(generator: self, prompts: prompts, options: options, batching: batching)
        loop.run(rngs: &rngs, onToken: onToken)
        var results = loop.results
        if let decode {
            for b in results.indices {
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

/// The state of one continuous-batching call.
///
/// Every sequence in the current cache is right-aligned: its `window` positions (prompt and fed
/// tokens) end at the common length `L`, masked before. A decoding step feeds each live row its
/// pending token at position `window`. When rows stop or prompts wait, the cache is rebuilt with
/// the live rows and the entrants (their prompts copied from a prefill cache), right-aligned at the
/// longest window, so the common length never outgrows the longest sequence.
struct ContinuousLoop {
    struct Live {
        var seq: Int
        var window: Int
        var pending: Int32
        /// For an entrant not yet in the cache: its prompt's prefill.
        var group: Int?
    }

    struct Prefilled {
        let cache: KVCache
        let row: Int
        let start: Int
        let logits: [Float]
    }

    let generator: Generator
    let model: DecoderModel
    let prompts: [[Int32]]
    let options: SamplingOptions
    let slots: Int
    let refillWhenFree: Int
    let stopTokens: Set<Int32>
    var results: [GeneratedSequence]
    var budget: [Int]
    var queue: [Int] = []
    var next = 0
    var group: [Int]
    var usesLeft: [Int: Int] = [:]
    var store: [Int: Prefilled] = [:]
    var rows: [Live?] = []
    var cache: KVCache?
    var length = 0

    init(generator: Generator, prompts: [[Int32]], options: SamplingOptions, batching: BatchingOptions) {
        self.generator = generator
        model = generator.model
        self.prompts = prompts
        self.options = options
        slots = batching.slots
        refillWhenFree = max(1, min(batching.slots, batching.refillWhenFree ?? max(1, batching.slots / 4)))
        stopTokens = Set(options.stopTokens)
        let n = prompts.count, maxLen = generator.model.config.maxPositions
        results = [GeneratedSequence](repeating: GeneratedSequence(), count: n)
        budget = prompts.map { min(options.maxNewTokens, maxLen - $0.count) }
        group = Array(0..<n)
        var first: [[Int32]: Int] = [:]
        for i in 0..<n {
            guard budget[i] > 0 else {
                results[i].stopReason = .contextFull
                continue
            }
            queue.append(i)
            if batching.sharePrefill {
                if let g = first[prompts[i]] { group[i] = g } else { first[prompts[i]] = i }
            }
            usesLeft[group[i], default: 0] += 1
        }
    }

    /// Samples sequence `i`'s next token from `logits`; true when the sequence is finished.
    mutating func take(_ i: Int, _ logits: UnsafePointer<Float>, _ V: Int, rngs: inout [RNG],
                       onToken: ((Int, Int32) -> Void)?) -> (finished: Bool, token: Int32) {
        let (token, logProb) = sample(logits, V, options, &rngs[i])
        results[i].tokens.append(token)
        results[i].logProbs.append(logProb)
        onToken?(i, token)
        if stopTokens.contains(token) {
            results[i].stopReason = .stopToken
            return (true, token)
        }
        if !options.stopStrings.isEmpty, let decode = generator.decode {
            let text = decode(results[i].tokens)
            if options.stopStrings.contains(where: { text.contains($0) }) {
                results[i].stopReason = .stopString
                return (true, token)
            }
        }
        if results[i].tokens.count >= budget[i] {
            results[i].stopReason = results[i].tokens.count >= options.maxNewTokens ? .maxTokens : .contextFull
            return (true, token)
        }
        return (false, token)
    }

    /// One prefill call for the prompts of `groups` (left-padded together).
    mutating func prefill(_ groups: [Int]) {
        let ps = groups.map { prompts[$0] }
        let U = ps.count, P = ps.map(\.count).max()!
        var ids = [Int32](), mask = [Float]()
        ids.reserveCapacity(U * P)
        mask.reserveCapacity(U * P)
        for p in ps {
            ids += Array(repeating: generator.padId, count: P - p.count) + p
            mask += Array(repeating: 0, count: P - p.count) + Array(repeating: 1, count: p.count)
        }
        let pc = model.makeCache(batch: U, capacity: P)
        let logits: Tensor = Autograd.withoutGrad {
            let h = model.hiddenStates(ids: ids, batch: U, length: P, attentionMask: mask, cache: pc)
            return model.inferenceLogits(hidden: h.slice(axis: 1, (P - 1)..<P))
        }
        let V = logits.lastDim
        for (u, g) in groups.enumerated() {
            store[g] = Prefilled(cache: pc, row: u, start: P - ps[u].count,
                                 logits: Array(UnsafeBufferPointer(start: logits.data + u * V, count: V)))
        }
    }

    /// Takes up to `free` waiting sequences: prefills their prompts (those not prefilled yet) and
    /// samples their first tokens; returns those that go on.
    mutating func admit(_ free: Int, rngs: inout [RNG], onToken: ((Int, Int32) -> Void)?) -> [Live] {
        var entrants: [Live] = []
        while entrants.count < free && next < queue.count {
            let taken = Array(queue[next..<min(queue.count, next + free - entrants.count)])
            next += taken.count
            var missing: [Int] = []
            for i in taken where store[group[i]] == nil && !missing.contains(group[i]) { missing.append(group[i]) }
            if !missing.isEmpty { prefill(missing) }
            for i in taken {
                let g = group[i], pre = store[g]!
                let (finished, token) = pre.logits.withUnsafeBufferPointer {
                    take(i, $0.baseAddress!, $0.count, rngs: &rngs, onToken: onToken)
                }
                usesLeft[g]! -= 1
                if !finished { entrants.append(Live(seq: i, window: prompts[i].count, pending: token, group: g)) }
            }
        }
        return entrants
    }

    /// A new cache holding the live rows and `entrants`, right-aligned at the longest window.
    mutating func rebuild(entrants: [Live]) {
        var moved: [(live: Live, from: Int?)] = []
        for (b, r) in rows.enumerated() { if let r { moved.append((r, b)) } }
        for e in entrants { moved.append((e, nil)) }
        defer {
            for (g, left) in usesLeft where left == 0 { store[g] = nil }
        }
        guard !moved.isEmpty else {
            rows = []
            cache = nil
            length = 0
            return
        }
        let newLength = moved.map(\.live.window).max()!
        // Each row feeds at most its remaining budget before it stops.
        let feeds = moved.map { budget[$0.live.seq] - results[$0.live.seq].tokens.count }.max()!
        let c = model.config
        let fresh = KVCache(layers: c.layers, batch: moved.count, capacity: newLength + max(feeds, 1),
                            kvHeads: c.kvHeads, headDim: c.headDim)
        for (j, m) in moved.enumerated() {
            let w = m.live.window
            if let b = m.from {
                fresh.copyPositions(from: cache!, srcRow: b, srcStart: length - w, count: w, dstRow: j, dstStart: newLength - w)
            } else {
                let pre = store[m.live.group!]!
                fresh.copyPositions(from: pre.cache, srcRow: pre.row, srcStart: pre.start, count: w, dstRow: j, dstStart: newLength - w)
            }
        }
        fresh.setLength(newLength)
        cache = fresh
        length = newLength
        rows = moved.map { m in
            var l = m.live
            l.group = nil
            return l
        }
    }

    mutating func run(rngs: inout [RNG], onToken: ((Int, Int32) -> Void)?) {
        while true {
            let live = rows.reduce(0) { $0 + ($1 == nil ? 0 : 1) }
            let idle = rows.count - live
            let waiting = next < queue.count
            if waiting && (live == 0 || slots - live >= refillWhenFree) {
                rebuild(entrants: admit(slots - live, rngs: &rngs, onToken: onToken))
            } else if idle > 0 && (live == 0 || idle >= max(1, rows.count / 4)) {
                rebuild(entrants: [])
            }
            guard let cache, !rows.isEmpty else {
                if next < queue.count { continue }
                return
            }
            step(cache, rngs: &rngs, onToken: onToken)
        }
    }

    /// One decoding step: every live row feeds its pending token and samples the next.
    mutating func step(_ cache: KVCache, rngs: inout [RNG], onToken: ((Int, Int32) -> Void)?) {
        let n = rows.count, S = length + 1
        var feed = [Int32](repeating: generator.padId, count: n), pos = [Int32](repeating: 0, count: n)
        var mask = [Float](repeating: 0, count: n * S)
        for (b, r) in rows.enumerated() {
            guard let r else { continue }
            feed[b] = r.pending
            pos[b] = Int32(r.window)
            for t in (S - 1 - r.window)..<S { mask[b * S + t] = 1 }
        }
        let logits: Tensor = Autograd.withoutGrad {
            model.inferenceLogits(hidden: model.hiddenStates(ids: feed, batch: n, length: 1, attentionMask: mask,
                                                             positions: pos, cache: cache))
        }
        length = S
        let V = logits.lastDim
        for b in 0..<n {
            guard var r = rows[b] else { continue }
            r.window += 1
            let (finished, token) = take(r.seq, logits.data + b * V, V, rngs: &rngs, onToken: onToken)
            r.pending = token
            rows[b] = finished ? nil : r
        }
    }
}
