/// How text is cut into words before BPE runs on each word.
///
/// Rein hand-writes the GPT-2 pattern
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
/// as a scanner over Unicode scalars (`\s` is the White_Space property, `\p{L}` and `\p{N}` the
/// letter and number general categories), which is what Hugging Face's `ByteLevel` pre-tokenizer
/// with `use_regex: true` applies.
public struct PreTokenizer: Sendable, Equatable, CustomStringConvertible {
    /// Split with the GPT-2 pattern. When false, each stretch of text is one word (Hugging Face's
    /// `ByteLevel` with `use_regex: false` and no other splitter).
    public var useRegex: Bool
    /// Isolate every number scalar before the GPT-2 pattern runs on the stretches between them:
    /// Hugging Face's `Sequence[Digits(individual_digits: true), ByteLevel]` and llama.cpp's
    /// `smollm` pre-tokenizer. Note that `" 42"` then becomes `" "`, `"4"`, `"2"`.
    public var individualDigits: Bool
    /// Prepend a space to each stretch of text (between special tokens) that does not start with
    /// one: `ByteLevel`'s `add_prefix_space`.
    public var addPrefixSpace: Bool

    /// Creates a pre-tokenizer from its three switches.
    public init(useRegex: Bool = true, individualDigits: Bool = false, addPrefixSpace: Bool = false) {
        self.useRegex = useRegex
        self.individualDigits = individualDigits
        self.addPrefixSpace = addPrefixSpace
    }

    /// GPT-2's pre-tokenizer.
    public static let gpt2 = PreTokenizer()
    /// SmolLM2's pre-tokenizer: digits one by one, then GPT-2's pattern.
    public static let smolLM2 = PreTokenizer(individualDigits: true)

    /// A short name for logs, such as "gpt2" or "gpt2+digits".
    public var description: String {
        var name = useRegex ? "gpt2" : "whole"
        if individualDigits { name += "+digits" }
        if addPrefixSpace { name += "+prefix-space" }
        return name
    }

    /// The words of `text`, for inspection and tests (encoding does not build strings).
    public func split(_ text: String) -> [String] {
        var bytes = Array(text.utf8)
        if addPrefixSpace, bytes.first != 0x20, !bytes.isEmpty { bytes.insert(0x20, at: 0) }
        var words: [String] = []
        bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            let scanner = WordScanner(preTokenizer: self)
            var i = 0
            while i < buffer.count {
                let j = scanner.wordEnd(base, from: i, end: buffer.count)
                words.append(String(decoding: UnsafeBufferPointer(start: base + i, count: j - i), as: UTF8.self))
                i = j
            }
        }
        return words
    }
}

/// Scalar classes for the GPT-2 pattern.
enum ScalarClass {
    static let other: UInt8 = 0
    static let letter: UInt8 = 1
    static let number: UInt8 = 2
    static let space: UInt8 = 3

    /// Class of every Basic Multilingual Plane scalar, built once (65,536 bytes, never freed, never
    /// written after it is built).
    nonisolated(unsafe) static let bmp: UnsafePointer<UInt8> = {
        let table = UnsafeMutablePointer<UInt8>.allocate(capacity: 0x10000)
        for v in 0..<0x10000 {
            table[v] = Unicode.Scalar(UInt32(v)).map(classify) ?? other
        }
        return UnsafePointer(table)
    }()

    static func classify(_ scalar: Unicode.Scalar) -> UInt8 {
        let properties = scalar.properties
        if properties.isWhitespace { return space }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return number
        default:
            return other
        }
    }

    @inline(__always)
    static func of(_ v: UInt32, bmp: UnsafePointer<UInt8>) -> UInt8 {
        if v < 0x10000 { return bmp[Int(v)] }
        return Unicode.Scalar(v).map(classify) ?? other
    }
}

/// Finds word boundaries in UTF-8 text according to a `PreTokenizer`.
struct WordScanner {
    let useRegex: Bool
    let individualDigits: Bool
    let bmp: UnsafePointer<UInt8>

    init(preTokenizer: PreTokenizer) {
        useRegex = preTokenizer.useRegex
        individualDigits = preTokenizer.individualDigits
        bmp = ScalarClass.bmp
    }

    @inline(__always)
    private func scalarClass(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> (cls: UInt8, length: Int) {
        let b = p[i]
        if b < 0x80 { return (bmp[Int(b)], 1) }
        let (v, n) = UTF8Scalars.decode(p, at: i, end: end)
        return (ScalarClass.of(v, bmp: bmp), n)
    }

    /// End (exclusive) of the word that starts at `i`, with `i < end`.
    @inline(__always)
    func wordEnd(_ p: UnsafePointer<UInt8>, from i: Int, end: Int) -> Int {
        if !useRegex {
            guard individualDigits else { return end }
            return digitStretchEnd(p, from: i, end: end)
        }
        let b0 = p[i]
        // 's 't 're 've 'm 'll 'd (ASCII, case-sensitive)
        if b0 == 0x27, i &+ 1 < end {
            let b1 = p[i &+ 1]
            if b1 == 0x73 || b1 == 0x74 || b1 == 0x6D || b1 == 0x64 { return i &+ 2 }
            if i &+ 2 < end {
                let b2 = p[i &+ 2]
                if (b1 == 0x72 && b2 == 0x65) || (b1 == 0x76 && b2 == 0x65) || (b1 == 0x6C && b2 == 0x6C) {
                    return i &+ 3
                }
            }
        }
        let (c0, n0) = scalarClass(p, i, end)
        // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+' with the optional space
        if b0 == 0x20, i &+ 1 < end {
            let (c1, n1) = scalarClass(p, i &+ 1, end)
            if c1 != ScalarClass.space && !(individualDigits && c1 == ScalarClass.number) {
                return runEnd(p, from: i &+ 1 &+ n1, end: end, cls: c1)
            }
        }
        if c0 != ScalarClass.space {
            if individualDigits && c0 == ScalarClass.number { return i &+ n0 }
            return runEnd(p, from: i &+ n0, end: end, cls: c0)
        }
        // '\s+(?!\S)|\s+': a whitespace run, less its last scalar when a non-space follows.
        var j = i &+ n0
        var last = i
        while j < end {
            let (c, n) = scalarClass(p, j, end)
            if c != ScalarClass.space {
                // A number starts a new stretch when digits are isolated: the run ends the stretch.
                if individualDigits && c == ScalarClass.number { return j }
                return last > i ? last : j
            }
            last = j
            j &+= n
        }
        return j
    }

    @inline(__always)
    private func runEnd(_ p: UnsafePointer<UInt8>, from start: Int, end: Int, cls: UInt8) -> Int {
        var j = start
        while j < end {
            let b = p[j]
            if b < 0x80 {
                if bmp[Int(b)] != cls { return j }
                j &+= 1
            } else {
                let (c, n) = scalarClass(p, j, end)
                if c != cls { return j }
                j &+= n
            }
        }
        return j
    }

    /// Without the regex, a stretch ends at each number scalar, and each number is its own word.
    private func digitStretchEnd(_ p: UnsafePointer<UInt8>, from i: Int, end: Int) -> Int {
        let (c0, n0) = scalarClass(p, i, end)
        if c0 == ScalarClass.number { return i &+ n0 }
        var j = i &+ n0
        while j < end {
            let (c, n) = scalarClass(p, j, end)
            if c == ScalarClass.number { return j }
            j &+= n
        }
        return j
    }
}
