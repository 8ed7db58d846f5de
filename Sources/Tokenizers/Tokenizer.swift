import Foundation

/// A token matched in raw text before pre-tokenization and never split (Hugging Face's "added
/// tokens"): chat markers such as `<|im_start|>`, end-of-text, padding.
public struct AddedToken: Sendable, Equatable, Hashable {
    /// The token's id.
    public var id: Int32
    /// The exact text that stands for the token.
    public var content: String
    /// Special tokens are control markers; `decode(_:skipSpecial:)` can drop them.
    public var special: Bool

    /// Creates an added token.
    public init(id: Int32, content: String, special: Bool = true) {
        self.id = id
        self.content = content
        self.special = special
    }
}

/// A byte-level BPE tokenizer (GPT-2, SmolLM2 and anything trained by `BPETrainer`).
///
/// Encoding works on UTF-8 bytes and Unicode scalars only; decoding is byte-exact. One instance
/// can be shared across threads: the word cache is taken with a try-lock, and a thread that finds
/// it busy encodes without it.
///
/// ```swift
/// let tokenizer = try Tokenizer(tokenizerJSON: url)
/// let ids = tokenizer.encode("Hello world")
/// let text = tokenizer.decode(ids)
/// ```
public final class Tokenizer: @unchecked Sendable {
    let model: BPEModel
    /// How text is cut into words before BPE.
    public let preTokenizer: PreTokenizer
    /// Tokens matched in raw text before pre-tokenization, in id order.
    public let addedTokens: [AddedToken]
    /// Beginning-of-sequence token id, when known.
    public let bosTokenID: Int32?
    /// End-of-sequence token id, when known.
    public let eosTokenID: Int32?
    /// Padding token id, when known.
    public let padTokenID: Int32?

    private let scanner: WordScanner
    /// Decoded bytes of every id (added tokens decode to their content): bytes of id k are
    /// `decodeArena[decodeStart[k]..<decodeStart[k + 1]]`.
    private let decodeStart: [Int32]
    private let decodeArena: [UInt8]
    private let isSpecialID: [Bool]
    private let addedBytes: [[UInt8]: Int32]
    /// Added tokens by first byte, longest first (leftmost-longest matching, like Hugging Face).
    private let addedByFirstByte: [[(bytes: [UInt8], id: Int32)]]
    /// Whether some added token starts with each byte: a cheap test before `addedByFirstByte`.
    private let startsAddedToken: [Bool]
    private let cache = WordCache()
    private let cacheLock = NSLock()

    /// Builds a tokenizer from a vocabulary and merges given by id.
    ///
    /// - Parameters:
    ///   - tokens: the vocabulary string of each id in byte-level form (as vocab.json stores it);
    ///     nil for an unused id.
    ///   - merges: merge pairs by id in rank order; each merged token must be in `tokens`.
    ///   - addedTokens: tokens matched in raw text; their ids may lie inside or past `tokens`.
    ///   - unknownTokenID: replaces a byte the vocabulary lacks (such bytes are dropped when nil).
    ///   - ignoreMerges: look whole words up in the vocabulary before merging.
    public convenience init(
        tokens: [String?], merges: [(Int32, Int32)], addedTokens: [AddedToken] = [],
        preTokenizer: PreTokenizer = .gpt2, unknownTokenID: Int32? = nil, ignoreMerges: Bool = false,
        bosTokenID: Int32? = nil, eosTokenID: Int32? = nil, padTokenID: Int32? = nil
    ) throws(TokenizerError) {
        let strings = tokens.map { $0.map { Array($0.utf8) } }
        let built = try buildModel(tokenStrings: strings, mergePairs: merges, addedTokens: addedTokens,
                                   unknownID: unknownTokenID, ignoreMerges: ignoreMerges, source: "vocabulary")
        self.init(model: built, preTokenizer: preTokenizer, addedTokens: addedTokens,
                  bos: bosTokenID, eos: eosTokenID, pad: padTokenID)
    }

    init(model: BPEModel, preTokenizer: PreTokenizer, addedTokens: [AddedToken],
         bos: Int32?, eos: Int32?, pad: Int32?) {
        self.model = model
        self.preTokenizer = preTokenizer
        self.addedTokens = addedTokens.sorted { $0.id < $1.id }
        bosTokenID = bos
        eosTokenID = eos
        padTokenID = pad
        scanner = WordScanner(preTokenizer: preTokenizer)
        let count = max(model.idCount, Int(addedTokens.map(\.id).max() ?? -1) + 1)
        var added = [[UInt8]?](repeating: nil, count: count)
        var special = [Bool](repeating: false, count: count)
        for token in addedTokens {
            added[Int(token.id)] = Array(token.content.utf8)
            special[Int(token.id)] = token.special
        }
        var starts: [Int32] = [0]
        var arena: [UInt8] = []
        starts.reserveCapacity(count + 1)
        for id in 0..<count {
            if let content = added[id] {
                arena.append(contentsOf: content)
            } else if id < model.idCount {
                arena.append(contentsOf: model.decodeArena[Int(model.decodeStart[id])..<Int(model.decodeStart[id + 1])])
            }
            starts.append(Int32(arena.count))
        }
        decodeStart = starts
        decodeArena = arena
        isSpecialID = special
        var bytesToID: [[UInt8]: Int32] = [:]
        var byFirst = [[(bytes: [UInt8], id: Int32)]](repeating: [], count: 256)
        for token in addedTokens where !token.content.isEmpty {
            let bytes = Array(token.content.utf8)
            bytesToID[bytes] = token.id
            byFirst[Int(bytes[0])].append((bytes, token.id))
        }
        for k in 0..<256 { byFirst[k].sort { $0.bytes.count > $1.bytes.count } }
        addedBytes = bytesToID
        addedByFirstByte = byFirst
        startsAddedToken = byFirst.map { !$0.isEmpty }
    }

    /// Number of ids: one more than the largest id of the vocabulary or of an added token.
    public var vocabularySize: Int { isSpecialID.count }

    /// Merges in rank order, as (left id, right id, merged id).
    public var merges: [(left: Int32, right: Int32, merged: Int32)] { model.merges }

    // MARK: Encoding

    /// Token ids of `text`.
    ///
    /// - Parameter allowSpecial: when true (Hugging Face's behavior) added tokens such as
    ///   `<|endoftext|>` are matched in the text and become their ids; when false every character
    ///   is plain text (the original GPT-2 encoder's behavior).
    public func encode(_ text: String, allowSpecial: Bool = true) -> [Int32] {
        var ids: [Int32] = []
        var text = text
        text.withUTF8 { buffer in
            ids.reserveCapacity(buffer.count / 3 + 4)
            encode(buffer, allowSpecial: allowSpecial, into: &ids)
        }
        return ids
    }

    /// Appends the ids of UTF-8 `text` to `ids`; see `encode(_:allowSpecial:)`.
    public func encode(_ text: UnsafeBufferPointer<UInt8>, allowSpecial: Bool = true, into ids: inout [Int32]) {
        guard let p = text.baseAddress, text.count > 0 else { return }
        let locked = cacheLock.try()
        defer { if locked { cacheLock.unlock() } }
        var segmentStart = 0
        if allowSpecial && !addedBytes.isEmpty {
            startsAddedToken.withUnsafeBufferPointer { starts in
                var i = 0
                while i < text.count {
                    if starts[Int(p[i])],
                       let match = addedByFirstByte[Int(p[i])].first(where: { matches($0.bytes, p, i, text.count) }) {
                        encodeStretch(p, segmentStart, i, cached: locked, into: &ids)
                        ids.append(match.id)
                        i += match.bytes.count
                        segmentStart = i
                    } else {
                        i &+= 1
                    }
                }
            }
        }
        encodeStretch(p, segmentStart, text.count, cached: locked, into: &ids)
    }

    @inline(__always)
    private func matches(_ bytes: [UInt8], _ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> Bool {
        bytes.count <= end - i && bytes.withUnsafeBufferPointer { memcmp($0.baseAddress!, p + i, $0.count) == 0 }
    }

    /// Encodes text between special tokens: pre-tokenize, then BPE each word.
    private func encodeStretch(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, cached: Bool,
                               into ids: inout [Int32]) {
        guard start < end else { return }
        if preTokenizer.addPrefixSpace && p[start] != 0x20 {
            var prefixed = [UInt8](repeating: 0x20, count: end - start + 1)
            prefixed.withUnsafeMutableBufferPointer { buffer in
                buffer.baseAddress!.advanced(by: 1).update(from: p + start, count: end - start)
                encodeWords(buffer.baseAddress!, 0, buffer.count, cached: cached, into: &ids)
            }
        } else {
            encodeWords(p, start, end, cached: cached, into: &ids)
        }
    }

    private func encodeWords(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, cached: Bool,
                             into ids: inout [Int32]) {
        var i = start
        while i < end {
            let j = scanner.wordEnd(p, from: i, end: end)
            let w = p + i
            let n = j &- i
            i = j
            if n == 1 {
                let id = model.byteIDs[Int(w[0])]
                if id >= 0 {
                    ids.append(id)
                } else if let unknown = model.unknownID {
                    ids.append(unknown)
                }
                continue
            }
            guard cached && n <= WordCache.maxWordLength else {
                model.encodeWord(w, n, into: &ids)
                continue
            }
            let h = WordCache.hash(w, n)
            if cache.lookup(w, n, hash: h, into: &ids) { continue }
            let before = ids.count
            model.encodeWord(w, n, into: &ids)
            ids.withUnsafeBufferPointer { all in
                cache.insert(w, n, hash: h, ids: UnsafeBufferPointer(rebasing: all[before...]))
            }
        }
    }

    /// Empties the word cache (for cold-cache benchmarks).
    public func clearCache() {
        cacheLock.lock()
        cache.removeAll()
        cacheLock.unlock()
    }

    // MARK: Decoding

    /// The bytes that `ids` stand for, concatenated; ids that are not in the vocabulary are skipped.
    public func decodeBytes(_ ids: [Int32], skipSpecial: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(ids.count * 4)
        for id in ids { appendBytes(of: id, skipSpecial: skipSpecial, to: &out) }
        return out
    }

    /// The text that `ids` stand for. Byte sequences that are not valid UTF-8 (a multi-byte
    /// character cut between ids) become U+FFFD, as in Hugging Face's `decode`.
    ///
    /// - Parameter skipSpecial: drop special tokens such as `<|im_end|>`.
    public func decode(_ ids: [Int32], skipSpecial: Bool = false) -> String {
        String(decoding: decodeBytes(ids, skipSpecial: skipSpecial), as: UTF8.self)
    }

    @inline(__always)
    func appendBytes(of id: Int32, skipSpecial: Bool, to out: inout [UInt8]) {
        guard id >= 0 && Int(id) < isSpecialID.count else { return }
        if skipSpecial && isSpecialID[Int(id)] { return }
        out.append(contentsOf: decodeArena[Int(decodeStart[Int(id)])..<Int(decodeStart[Int(id) + 1])])
    }

    /// An incremental decoder for streaming generation output.
    public func makeStreamingDecoder(skipSpecial: Bool = false) -> StreamingDecoder {
        StreamingDecoder(tokenizer: self, skipSpecial: skipSpecial)
    }

    // MARK: Vocabulary

    /// The id of a vocabulary string in byte-level form (`"Ġworld"`) or of an added token's content.
    public func id(forToken token: String) -> Int32? {
        let bytes = Array(token.utf8)
        return addedBytes[bytes] ?? model.idOfString[bytes]
    }

    /// The vocabulary string of `id` in byte-level form, or an added token's content.
    public func token(forID id: Int32) -> String? {
        if let added = addedTokens.first(where: { $0.id == id }) { return added.content }
        guard id >= 0, Int(id) < model.idCount, let bytes = model.tokenStrings[Int(id)] else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// True for the ids of special added tokens.
    public func isSpecial(_ id: Int32) -> Bool {
        id >= 0 && Int(id) < isSpecialID.count && isSpecialID[Int(id)]
    }

    /// The id of an added token with exactly this content (nil if there is none).
    func addedTokenID(_ content: String) -> Int32? {
        addedBytes[Array(content.utf8)]
    }

    /// Number of bytes `id` decodes to.
    func byteLength(of id: Int32) -> Int {
        guard id >= 0 && Int(id) < isSpecialID.count else { return 0 }
        return Int(decodeStart[Int(id) + 1] - decodeStart[Int(id)])
    }
}

/// Largest id a tokenizer may use; guards against allocating for absurd ids.
let maxTokenID = 1 << 24
/// The most unused ids a vocabulary may have below its largest id (ids index arrays).
let maxTokenIDGap = 1 << 16

/// Resolves merges and checks ids: the shared back end of every loader.
func buildModel(tokenStrings: [[UInt8]?], mergePairs: [(Int32, Int32)], addedTokens: [AddedToken],
                unknownID: Int32?, ignoreMerges: Bool, source: String) throws(TokenizerError) -> BPEModel {
    guard tokenStrings.count <= maxTokenID else {
        throw TokenizerError.invalidField(file: source, field: "vocab", reason: "has \(tokenStrings.count) ids, more than \(maxTokenID)")
    }
    // A string listed twice resolves to its last id, as in llama.cpp (files are checked for
    // duplicates when they are read).
    var index: [[UInt8]: Int32] = [:]
    index.reserveCapacity(tokenStrings.count)
    for (id, string) in tokenStrings.enumerated() {
        if let string { index[string] = Int32(id) }
    }
    func name(_ id: Int32) -> String {
        guard id >= 0, Int(id) < tokenStrings.count, let s = tokenStrings[Int(id)] else { return "id \(id)" }
        return String(decoding: s, as: UTF8.self)
    }
    var merges: [(left: Int32, right: Int32, merged: Int32)] = []
    merges.reserveCapacity(mergePairs.count)
    for (rank, (left, right)) in mergePairs.enumerated() {
        for id in [left, right] where id < 0 || Int(id) >= tokenStrings.count || tokenStrings[Int(id)] == nil {
            throw TokenizerError.unknownMergeToken(file: source, location: "merge \(rank + 1)", token: name(id))
        }
        let joined = tokenStrings[Int(left)]! + tokenStrings[Int(right)]!
        guard let merged = index[joined] else {
            throw TokenizerError.unknownMergeToken(file: source, location: "merge \(rank + 1)",
                                                   token: String(decoding: joined, as: UTF8.self))
        }
        merges.append((left, right, merged))
    }
    if let unknownID, unknownID < 0 || Int(unknownID) >= tokenStrings.count {
        throw TokenizerError.invalidField(file: source, field: "unk_token", reason: "is not in the vocabulary")
    }
    for token in addedTokens where token.id < 0 || token.id >= maxTokenID {
        throw TokenizerError.invalidField(file: source, field: "added_tokens",
                                          reason: "gives \(String(reflecting: token.content)) the id \(token.id), outside 0..<\(maxTokenID)")
    }
    let largestAdded = Int(addedTokens.map(\.id).max() ?? -1)
    guard largestAdded < tokenStrings.count + addedTokens.count + maxTokenIDGap else {
        throw TokenizerError.invalidField(file: source, field: "added_tokens",
                                          reason: "gives the id \(largestAdded) to a token, but the vocabulary has "
                                              + "\(tokenStrings.count) ids; ids must be dense (at most \(maxTokenIDGap) unused)")
    }
    return BPEModel(tokenStrings: tokenStrings, idOfString: index, merges: merges, unknownID: unknownID,
                    ignoreMerges: ignoreMerges)
}
