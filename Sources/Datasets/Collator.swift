import Tokenizers

/// Which end of a row padding goes to.
public enum PaddingSide: String, Sendable, Codable {
    /// Padding after the tokens: training batches.
    case right
    /// Padding before the tokens, so every row ends at the same column: generation prompts.
    case left
}

/// A batch of B rows of T tokens, every array flat and row-major (`[B, T]`: row b, column t at
/// `b * T + t`).
///
/// The loss convention is Hugging Face's: `labels[t]` is the token at t where the loss falls and
/// `Batch.ignoreIndex` elsewhere (masked positions and padding); the model shifts, so the logits at
/// t - 1 are scored against `labels[t]`.
public struct Batch: Sendable, Equatable {
    /// The label of a position the loss ignores.
    public static let ignoreIndex: Int32 = -100

    /// Rows, B.
    public var rows: Int
    /// Columns, T.
    public var length: Int
    /// Where the padding is.
    public var padding: PaddingSide
    /// Token ids, `[B, T]`; padding holds the collator's pad id.
    public var ids: [Int32]
    /// `[B, T]`: 1 on real tokens, 0 on padding.
    public var attentionMask: [Float]
    /// `[B, T]`: the token id where the loss falls, `ignoreIndex` elsewhere.
    public var labels: [Int32]
    /// `[B, T]`: cumsum(attentionMask) - 1 clamped at 0, so left padding never shifts positions.
    public var positionIDs: [Int32]
    /// `[B]`: real tokens in each row.
    public var lengths: [Int]

    /// The column of row `row`'s last real token (where a reward head reads its score).
    public func lastTokenIndex(row: Int) -> Int {
        padding == .left ? length - 1 : max(lengths[row] - 1, 0)
    }
}

/// Preference pairs in one batch: chosen sequences in rows `0..<P`, rejected in rows `P..<2P`, so
/// policy and reference models see both in one forward pass (TRL's concatenated forward).
public struct PairBatch: Sendable, Equatable {
    /// The 2P sequences, right-padded to one length.
    public var sequences: Batch
    /// `[P]`: each pair's margin, 0 where a record had none; nil when no pair had one.
    public var margins: [Float]?

    /// Number of pairs, P.
    public var pairs: Int { sequences.rows / 2 }
}

/// Pads examples into batches.
///
/// The pad id must differ from EOS. Labels come from the loss mask, never from comparing ids with
/// the pad id, but an EOS used as padding would still be read as "end of text" by anything that
/// looks at ids (generation, reward heads picking the last token); a tokenizer without a padding
/// token needs one, see `padTokenID(for:eosTokenID:template:)`.
public struct Collator: Sendable {
    /// The id written into padding positions.
    public let padTokenID: Int32
    /// T is rounded up to a multiple of this (8 suits vector units); 1 pads to the longest row.
    /// Rounding can make T exceed the builder's `maxLength`.
    public let padToMultipleOf: Int

    /// Creates a collator.
    ///
    /// - Throws: `DatasetError.invalidConfiguration` when the pad id equals EOS or is negative, or
    ///   `padToMultipleOf` < 1.
    public init(padTokenID: Int32, eosTokenID: Int32?, padToMultipleOf: Int = 1) throws(DatasetError) {
        guard padTokenID >= 0 else { throw DatasetError.invalidConfiguration("pad token id \(padTokenID) is negative") }
        guard padTokenID != eosTokenID else {
            throw DatasetError.invalidConfiguration(
                "the pad token id \(padTokenID) is the EOS id; padding must be a distinct token, or EOS is never learned "
                + "(see Collator.padTokenID(for:eosTokenID:template:))")
        }
        guard padToMultipleOf >= 1 else {
            throw DatasetError.invalidConfiguration("pad_to_multiple_of \(padToMultipleOf) must be at least 1")
        }
        self.padTokenID = padTokenID
        self.padToMultipleOf = padToMultipleOf
    }

    /// A padding token for `tokenizer`: its own PAD when that differs from EOS, else an added
    /// special token that is not EOS, BOS or one of `template`'s tokens, preferring one whose name
    /// contains "pad" (GPT-2 has none; a model trained with such a token never attends to it).
    ///
    /// - Throws: `DatasetError.invalidConfiguration` when there is no such token; add one (such as
    ///   `<|pad|>`) to tokenizer.json's `added_tokens` and grow the model's embedding to match.
    public static func padTokenID(for tokenizer: Tokenizer, eosTokenID: Int32? = nil,
                                  template: ChatTemplate? = nil) throws(DatasetError) -> Int32 {
        let eos = eosTokenID ?? tokenizer.eosTokenID
        if let pad = tokenizer.padTokenID, pad != eos { return pad }
        var reserved = Set([eos, tokenizer.bosTokenID].compactMap { $0 })
        if let template {
            for token in [template.endOfTurn, "<|im_start|>"] {
                if let id = tokenizer.id(forToken: token) { reserved.insert(id) }
            }
        }
        let spare = tokenizer.addedTokens.filter { $0.special && !reserved.contains($0.id) }
        if let named = spare.first(where: { $0.content.lowercased().contains("pad") }) ?? spare.first {
            return named.id
        }
        throw DatasetError.invalidConfiguration(
            "the tokenizer has no padding token distinct from EOS and no spare special token; add one "
            + "(for example \"<|pad|>\") to tokenizer.json's added_tokens and grow the model's embedding to match")
    }

    /// Right-padded (training) or left-padded rows; labels follow each example's loss mask.
    public func collate(_ examples: [TokenizedExample], padding: PaddingSide = .right) -> Batch {
        let B = examples.count
        let longest = examples.map(\.count).max() ?? 0
        let T = (longest + padToMultipleOf - 1) / padToMultipleOf * padToMultipleOf
        var batch = Batch(rows: B, length: T, padding: padding,
                          ids: [Int32](repeating: padTokenID, count: B * T),
                          attentionMask: [Float](repeating: 0, count: B * T),
                          labels: [Int32](repeating: Batch.ignoreIndex, count: B * T),
                          positionIDs: [Int32](repeating: 0, count: B * T),
                          lengths: examples.map(\.count))
        for (b, example) in examples.enumerated() {
            let n = example.count
            let start = b * T + (padding == .left ? T - n : 0)
            for t in 0..<n {
                batch.ids[start + t] = example.ids[t]
                batch.attentionMask[start + t] = 1
                batch.positionIDs[start + t] = Int32(t)
                if example.lossMask[t] { batch.labels[start + t] = example.ids[t] }
            }
            if padding == .right && n > 0 {
                for t in n..<T { batch.positionIDs[b * T + t] = Int32(n - 1) }
            }
        }
        return batch
    }

    /// Pairs as 2P right-padded rows, chosen first, with their margins.
    public func collate(_ pairs: [TokenizedPair]) -> PairBatch {
        let sequences = collate(pairs.map(\.chosenSequence) + pairs.map(\.rejectedSequence))
        let margins = pairs.contains { $0.margin != nil } ? pairs.map { Float($0.margin ?? 0) } : nil
        return PairBatch(sequences: sequences, margins: margins)
    }

    /// Left-padded generation prompts; every label is `ignoreIndex`.
    public func collatePrompts(_ prompts: [[Int32]]) -> Batch {
        collate(prompts.map { TokenizedExample(ids: $0, lossMask: [Bool](repeating: false, count: $0.count)) }, padding: .left)
    }
}

/// Packs language-modeling examples into rows of `length` tokens for pretraining.
///
/// The examples' ids are concatenated in order (`ExampleBuilder` ends each text with EOS, which
/// separates the documents) and cut every `length` tokens; the last row holds the remainder and
/// may be shorter (the collator pads it). Documents are not isolated: attention crosses the EOS
/// between two documents in a row, as in nanoGPT. Loss masks are carried along.
///
/// - Throws: `DatasetError.invalidConfiguration` when `length` < 1.
public func pack(_ examples: [TokenizedExample], length: Int) throws(DatasetError) -> [TokenizedExample] {
    guard length >= 1 else { throw DatasetError.invalidConfiguration("packing length \(length) must be at least 1") }
    var rows: [TokenizedExample] = []
    var ids: [Int32] = []
    var mask: [Bool] = []
    ids.reserveCapacity(length)
    mask.reserveCapacity(length)
    for example in examples {
        var k = 0
        while k < example.count {
            let take = min(length - ids.count, example.count - k)
            ids.append(contentsOf: example.ids[k..<k + take])
            mask.append(contentsOf: example.lossMask[k..<k + take])
            k += take
            if ids.count == length {
                rows.append(TokenizedExample(ids: ids, lossMask: mask))
                ids.removeAll(keepingCapacity: true)
                mask.removeAll(keepingCapacity: true)
            }
        }
    }
    if !ids.isEmpty { rows.append(TokenizedExample(ids: ids, lossMask: mask)) }
    return rows
}
