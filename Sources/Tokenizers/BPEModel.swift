import Foundation

/// Merge lookup: pair (left id, right id) -> (rank, merged id), as one open-addressing table.
/// A value packs `rank << 32 | merged`, so comparing values compares ranks; `absent` (all ones)
/// ranks after every merge.
final class PairTable: @unchecked Sendable {
    static let absent = UInt64.max
    private let keys: UnsafeMutablePointer<UInt64>
    private let values: UnsafeMutablePointer<UInt64>
    private let mask: Int
    private let shift: UInt64

    /// `merges[rank] = (left, right, merged)`; a repeated pair keeps its last rank, as Hugging
    /// Face's and GPT-2's loaders do.
    init(merges: [(left: Int32, right: Int32, merged: Int32)]) {
        var bits = 4
        while (1 << bits) < merges.count * 2 + 2 { bits += 1 }
        let capacity = 1 << bits
        mask = capacity - 1
        shift = UInt64(64 - bits)
        keys = .allocate(capacity: capacity)
        keys.initialize(repeating: PairTable.absent, count: capacity)
        values = .allocate(capacity: capacity)
        values.initialize(repeating: PairTable.absent, count: capacity)
        for (rank, merge) in merges.enumerated() {
            let key = PairTable.key(merge.left, merge.right)
            var slot = slotOf(key)
            while keys[slot] != PairTable.absent && keys[slot] != key { slot = (slot &+ 1) & mask }
            keys[slot] = key
            values[slot] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: merge.merged))
        }
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    @inline(__always)
    static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    @inline(__always)
    private func slotOf(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// `rank << 32 | merged` for the pair, or `absent`.
    @inline(__always)
    func lookup(_ left: Int32, _ right: Int32) -> UInt64 {
        let key = PairTable.key(left, right)
        var slot = slotOf(key)
        while true {
            let k = keys[slot]
            if k == key { return values[slot] }
            if k == PairTable.absent { return PairTable.absent }
            slot = (slot &+ 1) & mask
        }
    }
}

/// A bounded cache from a word's bytes to its token ids. Open addressing over FNV-1a hashes with
/// keys and ids in two arenas; when it fills up it is emptied at once (cheap, and the common
/// words come straight back).
final class WordCache {
    static let maxWordLength = 64
    private static let slotCount = 1 << 15
    private static let maxEntries = slotCount / 2
    private static let keyArenaCapacity = 1 << 19
    private static let idArenaCapacity = 1 << 18

    private let slotHash = UnsafeMutablePointer<UInt64>.allocate(capacity: slotCount)
    private let slotEntry = UnsafeMutablePointer<Int32>.allocate(capacity: slotCount)
    private let keyStart = UnsafeMutablePointer<Int32>.allocate(capacity: maxEntries)
    private let keyLength = UnsafeMutablePointer<Int32>.allocate(capacity: maxEntries)
    private let idStart = UnsafeMutablePointer<Int32>.allocate(capacity: maxEntries)
    private let idCount = UnsafeMutablePointer<Int32>.allocate(capacity: maxEntries)
    private let keyArena = UnsafeMutablePointer<UInt8>.allocate(capacity: keyArenaCapacity)
    private let idArena = UnsafeMutablePointer<Int32>.allocate(capacity: idArenaCapacity)
    private var entries = 0
    private var keyUsed = 0
    private var idUsed = 0

    init() {
        slotHash.initialize(repeating: 0, count: Self.slotCount)
    }

    deinit {
        slotHash.deallocate()
        slotEntry.deallocate()
        keyStart.deallocate()
        keyLength.deallocate()
        idStart.deallocate()
        idCount.deallocate()
        keyArena.deallocate()
        idArena.deallocate()
    }

    func removeAll() {
        slotHash.update(repeating: 0, count: Self.slotCount)
        entries = 0
        keyUsed = 0
        idUsed = 0
    }

    @inline(__always)
    static func hash(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for k in 0..<n {
            h = (h ^ UInt64(p[k])) &* 0x0000_0100_0000_01B3
        }
        return h | 1  // zero marks an empty slot
    }

    /// Appends the cached ids of the word to `out` and returns true, or returns false on a miss.
    @inline(__always)
    func lookup(_ p: UnsafePointer<UInt8>, _ n: Int, hash h: UInt64, into out: inout [Int32]) -> Bool {
        let mask = Self.slotCount - 1
        var slot = Int(truncatingIfNeeded: h >> 17) & mask
        while true {
            let sh = slotHash[slot]
            if sh == 0 { return false }
            if sh == h {
                let e = Int(slotEntry[slot])
                if Int(keyLength[e]) == n && memcmp(keyArena + Int(keyStart[e]), p, n) == 0 {
                    let start = idArena + Int(idStart[e])
                    out.append(contentsOf: UnsafeBufferPointer(start: start, count: Int(idCount[e])))
                    return true
                }
            }
            slot = (slot &+ 1) & mask
        }
    }

    func insert(_ p: UnsafePointer<UInt8>, _ n: Int, hash h: UInt64, ids: UnsafeBufferPointer<Int32>) {
        if entries == Self.maxEntries || keyUsed + n > Self.keyArenaCapacity
            || idUsed + ids.count > Self.idArenaCapacity {
            removeAll()
        }
        let mask = Self.slotCount - 1
        var slot = Int(truncatingIfNeeded: h >> 17) & mask
        while slotHash[slot] != 0 { slot = (slot &+ 1) & mask }
        let e = entries
        entries += 1
        slotHash[slot] = h
        slotEntry[slot] = Int32(e)
        keyStart[e] = Int32(keyUsed)
        keyLength[e] = Int32(n)
        (keyArena + keyUsed).update(from: p, count: n)
        keyUsed += n
        idStart[e] = Int32(idUsed)
        idCount[e] = Int32(ids.count)
        if let base = ids.baseAddress { (idArena + idUsed).update(from: base, count: ids.count) }
        idUsed += ids.count
    }
}

/// The byte-level BPE model: vocabulary by id, merges by rank, and the per-word merge loop.
final class BPEModel: @unchecked Sendable {
    /// Number of ids (one more than the largest id).
    let idCount: Int
    /// Vocabulary string of each id as UTF-8 (the byte-level form stored in files); nil for gaps.
    let tokenStrings: [[UInt8]?]
    /// Decoded bytes of each id, flattened: bytes of id k are `decodeArena[decodeStart[k]..<decodeStart[k+1]]`.
    let decodeStart: [Int32]
    let decodeArena: [UInt8]
    /// Merges in rank order.
    let merges: [(left: Int32, right: Int32, merged: Int32)]
    let pairs: PairTable
    /// Id of each single byte, or -1 when the vocabulary lacks it.
    let byteIDs: UnsafeMutablePointer<Int32>
    /// Id that replaces a byte missing from the vocabulary; such bytes are dropped when nil.
    let unknownID: Int32?
    /// Look a whole word up in the vocabulary before merging (`ignore_merges`).
    let ignoreMerges: Bool
    /// Vocabulary string (UTF-8 bytes) -> id.
    let idOfString: [[UInt8]: Int32]

    /// `tokenStrings[id]` are the vocabulary's byte-level strings and `idOfString` their inverse;
    /// merges name ids.
    init(tokenStrings: [[UInt8]?], idOfString: [[UInt8]: Int32],
         merges: [(left: Int32, right: Int32, merged: Int32)], unknownID: Int32?, ignoreMerges: Bool) {
        idCount = tokenStrings.count
        self.tokenStrings = tokenStrings
        self.idOfString = idOfString
        self.merges = merges
        self.unknownID = unknownID
        self.ignoreMerges = ignoreMerges
        pairs = PairTable(merges: merges)
        byteIDs = .allocate(capacity: 256)
        byteIDs.initialize(repeating: -1, count: 256)
        var starts: [Int32] = [0]
        var arena: [UInt8] = []
        for string in tokenStrings {
            if let string {
                if let bytes = ByteLevel.decode(string) {
                    arena.append(contentsOf: bytes)
                    if bytes.count == 1 { byteIDs[Int(bytes[0])] = idOfString[string]! }
                } else {
                    // Hugging Face's ByteLevel decoder falls back to the raw text when a token has a
                    // character outside the byte mapping.
                    arena.append(contentsOf: string)
                }
            }
            starts.append(Int32(arena.count))
        }
        decodeStart = starts
        decodeArena = arena
    }

    deinit {
        byteIDs.deallocate()
    }

    /// Appends the ids of one word (its raw bytes) to `out`, without the cache.
    func encodeWord(_ w: UnsafePointer<UInt8>, _ n: Int, into out: inout [Int32]) {
        if ignoreMerges, let id = idOfString[ByteLevel.encode(UnsafeBufferPointer(start: w, count: n))] {
            out.append(id)
            return
        }
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: n) { symbolBuffer in
            let symbols = symbolBuffer.baseAddress!
            var m = 0
            for k in 0..<n {
                var id = byteIDs[Int(w[k])]
                if id < 0 {
                    guard let unknownID else { continue }
                    id = unknownID
                }
                symbols[m] = id
                m &+= 1
            }
            if m <= 48 {
                m = mergeByScan(symbols, m)
            } else {
                m = mergeByHeap(symbols, m)
            }
            out.append(contentsOf: UnsafeBufferPointer(start: symbols, count: m))
        }
    }

    /// Repeatedly merges the lowest-ranked adjacent pair (leftmost on ties); O(m²) but with tiny
    /// constants, which beats a heap on short words. Returns the new symbol count.
    func mergeByScan(_ symbols: UnsafeMutablePointer<Int32>, _ count: Int) -> Int {
        var m = count
        if m < 2 { return m }
        return withUnsafeTemporaryAllocation(of: UInt64.self, capacity: m) { valueBuffer in
            let values = valueBuffer.baseAddress!  // values[k] = merge of (symbols[k], symbols[k+1])
            for k in 0..<(m &- 1) { values[k] = pairs.lookup(symbols[k], symbols[k &+ 1]) }
            while m > 1 {
                var best = PairTable.absent
                var at = -1
                for k in 0..<(m &- 1) where values[k] < best {
                    best = values[k]
                    at = k
                }
                if at < 0 { break }
                symbols[at] = Int32(truncatingIfNeeded: best & 0xFFFF_FFFF)
                m &-= 1
                // Close the gap left by symbols[at + 1].
                var k = at &+ 1
                while k < m {
                    symbols[k] = symbols[k &+ 1]
                    values[k &- 1] = values[k]
                    k &+= 1
                }
                if at &+ 1 < m { values[at] = pairs.lookup(symbols[at], symbols[at &+ 1]) }
                if at > 0 { values[at &- 1] = pairs.lookup(symbols[at &- 1], symbols[at]) }
            }
            return m
        }
    }

    /// The same merge order as `mergeByScan` for long words: a min-heap of (rank, position) over a
    /// linked list of symbols, skipping entries made stale by earlier merges.
    func mergeByHeap(_ symbols: UnsafeMutablePointer<Int32>, _ count: Int) -> Int {
        var next = [Int32](unsafeUninitializedCapacity: count) { buffer, initialized in
            for k in 0..<count { buffer[k] = k + 1 < count ? Int32(k + 1) : -1 }
            initialized = count
        }
        var previous = (0..<count).map { Int32($0) - 1 }
        var alive = [Bool](repeating: true, count: count)
        var heap = BinaryHeap<SmallestFirst>()
        for k in 0..<(count - 1) {
            let v = pairs.lookup(symbols[k], symbols[k + 1])
            if v != PairTable.absent { heap.push(v & 0xFFFF_FFFF_0000_0000 | UInt64(k)) }
        }
        while let top = heap.pop() {
            let at = Int(top & 0xFFFF_FFFF)
            let rank = top >> 32
            guard alive[at] else { continue }
            let right = Int(next[at])
            guard right >= 0 else { continue }
            let v = pairs.lookup(symbols[at], symbols[right])
            guard v >> 32 == rank else { continue }  // stale: the pair here changed
            symbols[at] = Int32(truncatingIfNeeded: v & 0xFFFF_FFFF)
            alive[right] = false
            let after = next[right]
            next[at] = after
            if after >= 0 { previous[Int(after)] = Int32(at) }
            let before = previous[at]
            if before >= 0 {
                let w = pairs.lookup(symbols[Int(before)], symbols[at])
                if w != PairTable.absent { heap.push(w & 0xFFFF_FFFF_0000_0000 | UInt64(before)) }
            }
            if after >= 0 {
                let w = pairs.lookup(symbols[at], symbols[Int(after)])
                if w != PairTable.absent { heap.push(w & 0xFFFF_FFFF_0000_0000 | UInt64(at)) }
            }
        }
        var m = 0
        var k = 0
        while k >= 0 {
            symbols[m] = symbols[k]
            m += 1
            k = Int(next[k])
        }
        return m
    }
}

/// Smallest packed (rank, position) first: the lowest-ranked merge, leftmost on ties.
enum SmallestFirst: HeapOrder {
    @inline(__always) static func before(_ a: UInt64, _ b: UInt64) -> Bool { a < b }
}
