/// Turns generated ids into text as they arrive, emitting only complete UTF-8 characters: a
/// character split across ids (emoji and CJK often are) is held back until its last byte comes.
/// The concatenation of everything `append` and `finish` return equals `decode` of all the ids.
///
/// ```swift
/// var stream = tokenizer.makeStreamingDecoder()
/// for id in generated { print(stream.append(id), terminator: "") }
/// print(stream.finish())
/// ```
public struct StreamingDecoder: Sendable {
    private let tokenizer: Tokenizer
    private let skipSpecial: Bool
    private var pending: [UInt8] = []

    /// A decoder for `tokenizer`'s ids; `skipSpecial` drops special tokens.
    public init(tokenizer: Tokenizer, skipSpecial: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecial = skipSpecial
    }

    /// Adds one id and returns the text it completes (often empty inside a multi-byte character).
    public mutating func append(_ id: Int32) -> String {
        tokenizer.appendBytes(of: id, skipSpecial: skipSpecial, to: &pending)
        return emitComplete()
    }

    /// Adds several ids and returns the text they complete.
    public mutating func append(contentsOf ids: [Int32]) -> String {
        for id in ids { tokenizer.appendBytes(of: id, skipSpecial: skipSpecial, to: &pending) }
        return emitComplete()
    }

    /// Returns whatever is still held back (an unfinished character becomes U+FFFD) and resets.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Bytes held back because they start a character that is not finished yet.
    public var pendingByteCount: Int { pending.count }

    private mutating func emitComplete() -> String {
        let cut = Self.completePrefixLength(pending)
        guard cut > 0 else { return "" }
        let text = String(decoding: pending[..<cut], as: UTF8.self)
        pending.removeFirst(cut)
        return text
    }

    /// Length of the longest prefix that does not end inside an unfinished multi-byte character.
    /// Cutting at a lead byte never changes how the bytes before it decode.
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        let n = bytes.count
        var k = n - 1
        while k >= 0 && k >= n - 4 {
            let b = bytes[k]
            if b & 0xC0 != 0x80 {  // lead or ASCII byte
                let needed: Int
                switch b {
                case 0xC2...0xDF: needed = 2
                case 0xE0...0xEF: needed = 3
                case 0xF0...0xF4: needed = 4
                default: needed = 1
                }
                return n - k < needed ? k : n
            }
            k -= 1
        }
        return n
    }
}
