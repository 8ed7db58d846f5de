import Generation
import NN
import TensorCore

/// A token sequence to score: the model sees all of `ids` and is scored on predicting
/// `ids[firstTarget...]`; the tokens before `firstTarget` are context only.
public struct PerplexityWindow: Sendable, Equatable {
    /// The tokens the model reads.
    public var ids: [Int32]
    /// Index of the first scored token (at least 1: the first token has nothing to predict it).
    public var firstTarget: Int

    /// A window scored from `firstTarget` (default 1: every token after the first).
    public init(ids: [Int32], firstTarget: Int = 1) {
        self.ids = ids
        self.firstTarget = max(firstTarget, 1)
    }

    /// Number of tokens this window scores.
    public var targetCount: Int { max(ids.count - firstTarget, 0) }
}

/// Summed negative log-likelihood over the scored tokens of some windows.
public struct PerplexityResult: Sendable, Equatable {
    /// Sum of -log p(token | preceding tokens) over the scored tokens, in nats.
    public var totalNLL: Double
    /// Number of scored tokens.
    public var tokenCount: Int

    /// A sum over `tokenCount` tokens.
    public init(totalNLL: Double, tokenCount: Int) {
        self.totalNLL = totalNLL
        self.tokenCount = tokenCount
    }

    /// Mean NLL per scored token (0 when nothing was scored).
    public var meanNLL: Double { tokenCount == 0 ? 0 : totalNLL / Double(tokenCount) }
    /// exp(mean NLL).
    public var perplexity: Double { Double.exp(meanNLL) }
}

/// Perplexity evaluation of a language model on token sequences.
public enum Perplexity {
    /// Cuts a long token stream into windows of at most `maxLength` tokens, starting every `stride`
    /// tokens, as in Hugging Face's sliding-window perplexity: each window scores only the tokens
    /// the previous one did not, with the overlap as context, so every token after the first is
    /// scored exactly once. `stride == maxLength` gives disjoint windows (whose first tokens are
    /// then never scored).
    public static func windows(of tokens: [Int32], maxLength: Int, stride: Int) -> [PerplexityWindow] {
        precondition(maxLength > 0 && stride > 0 && stride <= maxLength, "windows: need 0 < stride <= maxLength")
        var out: [PerplexityWindow] = []
        var begin = 0, scoredEnd = 0
        while begin < tokens.count {
            let end = min(begin + maxLength, tokens.count)
            out.append(PerplexityWindow(ids: Array(tokens[begin..<end]), firstTarget: scoredEnd - begin))
            scoredEnd = end
            if end == tokens.count { break }
            begin += stride
        }
        return out
    }

    /// Summed NLL of `model` on the windows, `batchSize` windows per forward pass, without autograd.
    ///
    /// Windows are batched longest first and right-padded with `padId` (default: the pad rule,
    /// `Generator.padId`, on the model config's ids). Padded positions are never
    /// scored (as if labelled -100), and since attention is causal, real tokens never see the
    /// padding after them, so batching does not change any token's log-probability. Only the hidden
    /// states of scored positions go through the LM head, in chunks: no LM-head work is spent on
    /// padding or context-only tokens, and the `[B, T, V]` logits are never held at once.
    ///
    /// - Parameter progress: called after each batch with the number of tokens scored so far.
    public static func evaluate(model: DecoderModel, windows: [PerplexityWindow], batchSize: Int, padId: Int32? = nil,
                                progress: ((Int) -> Void)? = nil) -> PerplexityResult {
        let padId = padId ?? Generator(model: model).padId
        precondition(batchSize > 0, "evaluate: batchSize must be positive")
        precondition(windows.allSatisfy { $0.ids.count <= model.config.maxPositions },
                     "evaluate: a window is longer than the model's \(model.config.maxPositions) positions")
        let order = windows.indices.filter { windows[$0].targetCount > 0 }
            .sorted { windows[$0].ids.count > windows[$1].ids.count }
        let V = model.config.vocabSize, C = model.config.hiddenSize
        let rowsPerChunk = max(1, (1 << 22) / V)  // about 16 MB of logits at a time
        var result = PerplexityResult(totalNLL: 0, tokenCount: 0)
        for start in stride(from: 0, to: order.count, by: batchSize) {
            let batch = order[start..<min(start + batchSize, order.count)].map { windows[$0] }
            let B = batch.count, T = batch[0].ids.count
            var ids = [Int32](repeating: padId, count: B * T)
            // Rows of the flattened [B·T, C] hidden states that predict a scored token, and that token.
            var rows: [Int32] = [], targets: [Int32] = []
            for (b, window) in batch.enumerated() {
                ids.replaceSubrange((b * T)..<(b * T + window.ids.count), with: window.ids)
                for t in window.firstTarget..<window.ids.count {
                    rows.append(Int32(b * T + t - 1))
                    targets.append(window.ids[t])
                }
            }
            Autograd.withoutGrad {
                let hidden = model.hiddenStates(ids: ids, batch: B, length: T).reshaped([B * T, C])
                for lo in stride(from: 0, to: rows.count, by: rowsPerChunk) {
                    let hi = min(lo + rowsPerChunk, rows.count)
                    let logits = model.logits(hidden: embedding(hidden, ids: Array(rows[lo..<hi])))  // row gather
                    let logProbs = gatherLogProbs(logits: logits, ids: Array(targets[lo..<hi]))
                    for i in 0..<(hi - lo) { result.totalNLL -= Double(logProbs.data[i]) }
                }
            }
            result.tokenCount += targets.count
            progress?(result.tokenCount)
        }
        return result
    }
}
