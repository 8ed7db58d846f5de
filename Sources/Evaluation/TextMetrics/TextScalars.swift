/// Text as the reference implementations (Python) see it: a sequence of Unicode code points.
/// Metrics work on `[UInt32]` scalar values, never on `Character`s (grapheme clusters), so that a
/// combining accent or an emoji sequence counts as Python counts it.
enum TextScalars {
    /// The scalar values of `text`.
    static func of(_ text: String) -> [UInt32] {
        var out: [UInt32] = []
        out.reserveCapacity(text.utf8.count)
        for u in text.unicodeScalars { out.append(u.value) }
        return out
    }

    /// A string from scalar values (every value came from a `Unicode.Scalar`).
    static func string<C: Collection>(_ scalars: C) -> String where C.Element == UInt32 {
        var s = String.UnicodeScalarView()
        for v in scalars { if let u = Unicode.Scalar(v) { s.append(u) } }
        return String(s)
    }

    /// Whether Python's `str.isspace()` holds for the code point: what `str.split()` with no
    /// argument splits on (Unicode White_Space plus the four information separators).
    @inline(__always)
    static func isPythonSpace(_ c: UInt32) -> Bool {
        switch c {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// `str.split()`: the maximal runs of non-space scalars.
    static func splitOnSpace(_ scalars: [UInt32]) -> [ArraySlice<UInt32>] {
        var words: [ArraySlice<UInt32>] = []
        var start = -1
        for i in 0..<scalars.count {
            if isPythonSpace(scalars[i]) {
                if start >= 0 { words.append(scalars[start..<i]); start = -1 }
            } else if start < 0 {
                start = i
            }
        }
        if start >= 0 { words.append(scalars[start..<scalars.count]) }
        return words
    }

    /// `s.replace(old, new)`: every non-overlapping occurrence of `old`, left to right.
    static func replacing(_ s: [UInt32], _ old: [UInt32], with new: [UInt32]) -> [UInt32] {
        guard !old.isEmpty, s.count >= old.count else { return s }
        var out: [UInt32] = []
        out.reserveCapacity(s.count)
        var i = 0
        while i < s.count {
            if i + old.count <= s.count && s[i] == old[0] && s[i..<(i + old.count)].elementsEqual(old) {
                out.append(contentsOf: new)
                i += old.count
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return out
    }

    /// Python's `str.lower()`: the full Unicode lowercase mapping (İ -> i + U+0307), with capital
    /// sigma becoming final sigma at the end of a word.
    static func lowercased(_ text: String) -> [UInt32] {
        let scalars = Array(text.unicodeScalars)
        var out: [UInt32] = []
        out.reserveCapacity(scalars.count)
        for (i, u) in scalars.enumerated() {
            if u.isASCII {
                out.append(u.value >= 0x41 && u.value <= 0x5A ? u.value + 0x20 : u.value)
            } else if u.value == 0x03A3 {
                out.append(isFinalSigma(scalars, at: i) ? 0x03C2 : 0x03C3)
            } else {
                for l in u.properties.lowercaseMapping.unicodeScalars { out.append(l.value) }
            }
        }
        return out
    }

    /// Unicode's Final_Sigma condition: a cased letter before (case-ignorable ones skipped) and
    /// none after.
    private static func isFinalSigma(_ s: [Unicode.Scalar], at i: Int) -> Bool {
        var j = i - 1
        while j >= 0 && s[j].properties.isCaseIgnorable { j -= 1 }
        guard j >= 0 && s[j].properties.isCased else { return false }
        var k = i + 1
        while k < s.count && s[k].properties.isCaseIgnorable { k += 1 }
        return !(k < s.count && s[k].properties.isCased)
    }

    /// Whether `c` is an ASCII digit, `[0-9]`.
    @inline(__always)
    static func isDigit(_ c: UInt32) -> Bool { c >= 0x30 && c <= 0x39 }
}

/// Interns tokens as small integers, so n-grams are compared as integer runs.
struct TokenIDs {
    private var ids: [ArraySlice<UInt32>: Int32] = [:]

    /// The id of `token`, a new one the first time it is seen.
    mutating func id(_ token: ArraySlice<UInt32>) -> Int32 {
        if let id = ids[token] { return id }
        let id = Int32(ids.count)
        ids[token] = id
        return id
    }

    /// How many distinct tokens have ids.
    var count: Int { ids.count }

    /// The ids of `tokens`, in order.
    mutating func ids(_ tokens: [ArraySlice<UInt32>]) -> [Int32] { tokens.map { id($0) } }
}

/// Counts of every n-gram of one order, a multiset as Python's `Counter` of tuples.
struct NGramCounts<Element: Hashable> {
    private(set) var counts: [ArraySlice<Element>: Int] = [:]
    /// How many n-grams were counted (with repeats).
    private(set) var total = 0

    /// The n-grams of `order` in `sequence` (none when it is shorter than `order`).
    init(_ sequence: [Element], order n: Int) {
        guard sequence.count >= n else { return }
        for i in 0...(sequence.count - n) { counts[sequence[i..<(i + n)], default: 0] += 1 }
        total = sequence.count - n + 1
    }

    /// The clipped matches: for each n-gram of `self`, at most as many as `other` holds.
    func matches(in other: NGramCounts) -> Int {
        var m = 0
        for (gram, c) in counts { if let o = other.counts[gram] { m += Swift.min(c, o) } }
        return m
    }
}

/// Clipped n-gram matches of two sequences of dense ids, by sorting packed n-grams: an n-gram of ids
/// below 2^bits is one `UInt64` when n * bits <= 64, and the clipped matches of two multisets are
/// the equal pairs of a merge of their sorted keys (no hashing).
enum PackedNGrams {
    /// The bits an id below `distinct` needs.
    static func bits(distinct: Int) -> Int { max(1, Int.bitWidth - (distinct - 1).leadingZeroBitCount) }

    /// (n-grams of `a`, n-grams of `b`, clipped matches) for ids below 2^bits; nil when the
    /// n-grams do not fit in 64 bits.
    static func count(_ a: [Int32], _ b: [Int32], order n: Int, bits: Int) -> (a: Int, b: Int, matches: Int)? {
        guard n * bits <= 64 else { return nil }
        let ka = sortedKeys(a, n, bits), kb = sortedKeys(b, n, bits)
        var i = 0, j = 0, m = 0
        ka.withUnsafeBufferPointer { x in
            kb.withUnsafeBufferPointer { y in
                while i < x.count && j < y.count {
                    if x[i] < y[j] { i &+= 1 } else if x[i] > y[j] { j &+= 1 } else { m &+= 1; i &+= 1; j &+= 1 }
                }
            }
        }
        return (ka.count, kb.count, m)
    }

    private static func sortedKeys(_ ids: [Int32], _ n: Int, _ bits: Int) -> [UInt64] {
        guard ids.count >= n else { return [] }
        let count = ids.count - n + 1
        var keys = [UInt64](repeating: 0, count: count)
        ids.withUnsafeBufferPointer { s in
            keys.withUnsafeMutableBufferPointer { k in
                for i in 0..<count {
                    var key: UInt64 = 0
                    for j in 0..<n { key = key &<< UInt64(bits) | UInt64(UInt32(bitPattern: s[i &+ j])) }
                    k[i] = key
                }
            }
        }
        keys.sort()
        return keys
    }
}
