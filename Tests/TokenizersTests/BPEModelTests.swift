import Testing
@testable import Tokenizers

@Suite struct BPEModelTests {
    /// The scan (short words) and the heap (long words) must merge in the same order.
    @Test func scanAndHeapAgree() {
        let model = SharedTokenizers.tiny.model
        var rng = SplitMix(seed: 42)
        let alphabet = Array("  aeiouthnrsdlc.,'\n-".utf8)
        for _ in 0..<300 {
            let length = Int(rng.next() % 60) + 2
            let word = (0..<length).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }
            var scan = word.map { model.byteIDs[Int($0)] }
            var heap = scan
            let m1 = scan.withUnsafeMutableBufferPointer { model.mergeByScan($0.baseAddress!, $0.count) }
            let m2 = heap.withUnsafeMutableBufferPointer { model.mergeByHeap($0.baseAddress!, $0.count) }
            #expect(Array(scan[..<m1]) == Array(heap[..<m2]), "\(String(decoding: word, as: UTF8.self))")
        }
    }

    @Test func pairTableKeepsLastRankOfARepeatedPair() {
        let table = PairTable(merges: [(1, 2, 10), (3, 4, 11), (1, 2, 12)])
        #expect(table.lookup(1, 2) == 2 << 32 | 12)
        #expect(table.lookup(3, 4) == 1 << 32 | 11)
        #expect(table.lookup(2, 1) == PairTable.absent)
    }

    @Test func wordCacheReturnsWhatWasStored() {
        let cache = WordCache()
        let word: [UInt8] = Array("hello".utf8)
        word.withUnsafeBufferPointer { w in
            let h = WordCache.hash(w.baseAddress!, w.count)
            var out: [Int32] = []
            #expect(!cache.lookup(w.baseAddress!, w.count, hash: h, into: &out))
            [Int32(5), 6].withUnsafeBufferPointer { cache.insert(w.baseAddress!, w.count, hash: h, ids: $0) }
            #expect(cache.lookup(w.baseAddress!, w.count, hash: h, into: &out))
            #expect(out == [5, 6])
            cache.removeAll()
            #expect(!cache.lookup(w.baseAddress!, w.count, hash: h, into: &out))
        }
    }
}

/// A small seeded generator for test data.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
