/// Trains a byte-level BPE tokenizer on a corpus, the way Hugging Face's `BpeTrainer` does with
/// `ByteLevel.alphabet()` as the initial alphabet: special tokens take the first ids, then the 256
/// bytes in the order of their byte-level characters, then one token per merge.
///
/// Each step merges the most frequent adjacent pair (ties go to the smaller pair of ids), counting
/// pairs once up front and then only adjusting the counts around each merged occurrence.
///
/// ```swift
/// let trainer = BPETrainer(vocabularySize: 4096, specialTokens: ["<|endoftext|>"])
/// let tokenizer = try trainer.train(on: lines)
/// try tokenizer.save(tokenizerJSON: url)
/// ```
public struct BPETrainer: Sendable {
    /// Target number of ids, special tokens and the 256 bytes included.
    public var vocabularySize: Int
    /// A pair seen fewer times than this is never merged (training may stop short of the size).
    public var minFrequency: Int
    /// Added tokens, given ids 0, 1, ... in this order; training text never forms them.
    public var specialTokens: [String]
    /// How training text is cut into words; the trained tokenizer uses the same.
    public var preTokenizer: PreTokenizer

    /// Creates a trainer.
    public init(vocabularySize: Int, minFrequency: Int = 2, specialTokens: [String] = [],
                preTokenizer: PreTokenizer = .gpt2) {
        self.vocabularySize = vocabularySize
        self.minFrequency = minFrequency
        self.specialTokens = specialTokens
        self.preTokenizer = preTokenizer
    }

    /// Trains on `texts` (each element is one document or line) and returns the tokenizer.
    public func train<Texts: Sequence<String>>(on texts: Texts) throws(TokenizerError) -> Tokenizer {
        var specials: [String] = []
        for token in specialTokens where !specials.contains(where: { $0.utf8.elementsEqual(token.utf8) }) {
            guard !token.isEmpty else { throw TokenizerError.invalidConfiguration("BPETrainer: a special token is empty") }
            specials.append(token)
        }
        guard vocabularySize >= specials.count + 256 else {
            throw TokenizerError.invalidConfiguration(
                "BPETrainer: vocabularySize \(vocabularySize) is smaller than the \(specials.count) special tokens plus 256 bytes")
        }

        // Ids: special tokens, then the byte alphabet; strings are the vocabulary keys.
        var strings: [[UInt8]] = []
        var pieces: [[UInt8]] = []  // bytes each id stands for
        var idOfString: [[UInt8]: Int32] = [:]
        func intern(_ string: [UInt8], bytes: [UInt8]) -> Int32 {
            if let id = idOfString[string] { return id }
            let id = Int32(strings.count)
            strings.append(string)
            pieces.append(bytes)
            idOfString[string] = id
            return id
        }
        for token in specials { _ = intern(Array(token.utf8), bytes: Array(token.utf8)) }
        var byteID = [Int32](repeating: 0, count: 256)
        for byte in ByteLevel.bytesInScalarOrder {
            byteID[Int(byte)] = intern(ByteLevel.encode([byte]), bytes: [byte])
        }

        // Distinct words with their counts.
        var wordIndex: [[UInt8]: Int] = [:]
        var words: [[Int32]] = []
        var counts: [Int] = []
        let scanner = WordScanner(preTokenizer: preTokenizer)
        for text in texts {
            var bytes = Array(text.utf8)
            if preTokenizer.addPrefixSpace, let first = bytes.first, first != 0x20 { bytes.insert(0x20, at: 0) }
            bytes.withUnsafeBufferPointer { buffer in
                guard let p = buffer.baseAddress else { return }
                var i = 0
                while i < buffer.count {
                    let j = scanner.wordEnd(p, from: i, end: buffer.count)
                    let word = Array(buffer[i..<j])
                    if let k = wordIndex[word] {
                        counts[k] += 1
                    } else {
                        wordIndex[word] = words.count
                        words.append(word.map { byteID[Int($0)] })
                        counts.append(1)
                    }
                    i = j
                }
            }
        }
        wordIndex = [:]

        // Pair counts and, for each pair, the words that may hold it (stale entries are harmless).
        var pairCounts: [UInt64: Int] = [:]
        var pairWords: [UInt64: [Int32]] = [:]
        for (w, word) in words.enumerated() where word.count > 1 {
            for k in 0..<(word.count - 1) {
                let pair = PairTable.key(word[k], word[k + 1])
                pairCounts[pair, default: 0] += counts[w]
                pairWords[pair, default: []].appendUnlessLast(Int32(w))
            }
        }
        var queue = BinaryHeap<MostFrequentPair>()
        for (pair, count) in pairCounts { queue.push((count: count, pair: pair)) }

        var merges: [(Int32, Int32)] = []
        var visited = [Int](repeating: -1, count: words.count)
        while strings.count < vocabularySize, let top = queue.pop() {
            let current = pairCounts[top.pair] ?? 0
            if top.count != current {
                if current > 0 { queue.push((count: current, pair: top.pair)) }
                continue
            }
            if current < max(minFrequency, 1) { break }
            let a = Int32(truncatingIfNeeded: top.pair >> 32), b = Int32(truncatingIfNeeded: top.pair & 0xFFFF_FFFF)
            let merged = intern(strings[Int(a)] + strings[Int(b)], bytes: pieces[Int(a)] + pieces[Int(b)])
            merges.append((a, b))

            var delta: [UInt64: Int] = [:]
            let step = merges.count
            for w32 in pairWords[top.pair] ?? [] {
                let w = Int(w32)
                if visited[w] == step { continue }
                visited[w] = step
                let word = words[w]
                let c = counts[w]
                var out: [Int32] = []
                out.reserveCapacity(word.count)
                var i = 0
                var changed = false
                while i < word.count {
                    if i + 1 < word.count && word[i] == a && word[i + 1] == b {
                        if let previous = out.last {
                            delta[PairTable.key(previous, a), default: 0] -= c
                            let formed = PairTable.key(previous, merged)
                            delta[formed, default: 0] += c
                            pairWords[formed, default: []].appendUnlessLast(w32)
                        }
                        if i + 2 < word.count {
                            delta[PairTable.key(b, word[i + 2]), default: 0] -= c
                            let formed = PairTable.key(merged, word[i + 2])
                            delta[formed, default: 0] += c
                            pairWords[formed, default: []].appendUnlessLast(w32)
                        }
                        out.append(merged)
                        i += 2
                        changed = true
                    } else {
                        out.append(word[i])
                        i += 1
                    }
                }
                if changed { words[w] = out }
            }
            // Every occurrence is gone: merged in place or broken up by an overlapping one.
            pairCounts[top.pair] = nil
            pairWords[top.pair] = nil
            for (pair, change) in delta where change != 0 && pair != top.pair {
                let count = (pairCounts[pair] ?? 0) + change
                pairCounts[pair] = count > 0 ? count : nil
                if change > 0 && count > 0 { queue.push((count: count, pair: pair)) }
            }
        }

        let added = specials.enumerated().map { AddedToken(id: Int32($0.offset), content: $0.element, special: true) }
        let model = try buildModel(tokenStrings: strings.map { Optional($0) }, mergePairs: merges, addedTokens: added,
                                   unknownID: nil, ignoreMerges: false, source: "BPETrainer")
        return Tokenizer(model: model, preTokenizer: preTokenizer, addedTokens: added, bos: nil, eos: nil, pad: nil)
    }
}

extension Array where Element == Int32 {
    /// Appends `value` unless it is already the last element (cheap de-duplication of word lists).
    fileprivate mutating func appendUnlessLast(_ value: Int32) {
        if last != value { append(value) }
    }
}

/// Highest count first, then the smaller pair, as Hugging Face orders merges.
private enum MostFrequentPair: HeapOrder {
    @inline(__always)
    static func before(_ x: (count: Int, pair: UInt64), _ y: (count: Int, pair: UInt64)) -> Bool {
        x.count != y.count ? x.count > y.count : x.pair < y.pair
    }
}
