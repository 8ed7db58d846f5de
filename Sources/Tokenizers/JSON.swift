import Foundation

/// A parsed JSON value. Objects keep their members in file order as a list, never as a
/// `[String: ...]` dictionary: Swift string equality is canonical equivalence, which would fold
/// distinct vocabulary keys such as "é" and "e\u{301}" into one.
package enum JSONValue {
    case null
    case bool(Bool)
    case integer(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(key: String, value: JSONValue)])

    /// The member named `key` (compared byte by byte), or nil.
    package subscript(key: String) -> JSONValue? {
        guard case let .object(members) = self else { return nil }
        let target = key.utf8
        return members.first { $0.key.utf8.elementsEqual(target) }?.value
    }

    package var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    package var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .integer, .double: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

/// A JSON syntax error at a byte offset.
package struct JSONSyntaxError: Error {
    package var offset: Int
    package var reason: String
}

/// Recursive-descent JSON parser over UTF-8 bytes (RFC 8259), with a nesting limit so hostile input
/// cannot exhaust the stack. Package-visible: the Datasets target parses JSONL lines with it.
package struct JSONParser {
    private let p: UnsafePointer<UInt8>
    private let end: Int
    private var i = 0
    private var depth = 0
    private static let maxDepth = 256

    /// Parses a whole document; the input must already be valid UTF-8.
    package static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(JSONSyntaxError) -> JSONValue {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            throw JSONSyntaxError(offset: 0, reason: "the file is empty")
        }
        var parser = JSONParser(p: base, end: bytes.count)
        parser.skipWhitespace()
        let value = try parser.parseValue()
        parser.skipWhitespace()
        if parser.i != parser.end {
            throw JSONSyntaxError(offset: parser.i, reason: "unexpected text after the JSON value")
        }
        return value
    }

    private init(p: UnsafePointer<UInt8>, end: Int) {
        self.p = p
        self.end = end
    }

    private mutating func skipWhitespace() {
        while i < end, p[i] == 0x20 || p[i] == 0x0A || p[i] == 0x0D || p[i] == 0x09 { i &+= 1 }
    }

    private func fail(_ reason: String) -> JSONSyntaxError {
        JSONSyntaxError(offset: i, reason: reason)
    }

    private mutating func parseValue() throws(JSONSyntaxError) -> JSONValue {
        guard i < end else { throw fail("unexpected end of file") }
        switch p[i] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectWord("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectWord("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectWord("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw fail("unexpected character '\(UnicodeScalar(p[i]))'")
        }
    }

    private mutating func expectWord(_ word: StaticString) throws(JSONSyntaxError) {
        let n = word.utf8CodeUnitCount
        guard end - i >= n, memcmp(p + i, word.utf8Start, n) == 0 else {
            throw fail("expected '\(word)'")
        }
        i &+= n
    }

    private mutating func enter() throws(JSONSyntaxError) {
        depth += 1
        if depth > Self.maxDepth { throw fail("nesting deeper than \(Self.maxDepth) levels") }
    }

    private mutating func parseObject() throws(JSONSyntaxError) -> JSONValue {
        try enter()
        i &+= 1
        var members: [(key: String, value: JSONValue)] = []
        skipWhitespace()
        if i < end, p[i] == UInt8(ascii: "}") {
            i &+= 1
            depth -= 1
            return .object(members)
        }
        while true {
            skipWhitespace()
            guard i < end, p[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let key = try parseString()
            skipWhitespace()
            guard i < end, p[i] == UInt8(ascii: ":") else { throw fail("expected ':' after an object key") }
            i &+= 1
            skipWhitespace()
            members.append((key, try parseValue()))
            skipWhitespace()
            guard i < end else { throw fail("unexpected end of file inside an object") }
            if p[i] == UInt8(ascii: ",") { i &+= 1; continue }
            if p[i] == UInt8(ascii: "}") { i &+= 1; break }
            throw fail("expected ',' or '}' in an object")
        }
        depth -= 1
        return .object(members)
    }

    private mutating func parseArray() throws(JSONSyntaxError) -> JSONValue {
        try enter()
        i &+= 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if i < end, p[i] == UInt8(ascii: "]") {
            i &+= 1
            depth -= 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue())
            skipWhitespace()
            guard i < end else { throw fail("unexpected end of file inside an array") }
            if p[i] == UInt8(ascii: ",") { i &+= 1; continue }
            if p[i] == UInt8(ascii: "]") { i &+= 1; break }
            throw fail("expected ',' or ']' in an array")
        }
        depth -= 1
        return .array(elements)
    }

    private mutating func parseString() throws(JSONSyntaxError) -> String {
        i &+= 1  // opening quote
        let start = i
        // Fast path: no escapes.
        while i < end, p[i] != UInt8(ascii: "\""), p[i] != UInt8(ascii: "\\"), p[i] >= 0x20 { i &+= 1 }
        guard i < end else { throw JSONSyntaxError(offset: start - 1, reason: "unterminated string") }
        if p[i] == UInt8(ascii: "\"") {
            let s = String(decoding: UnsafeBufferPointer(start: p + start, count: i - start), as: UTF8.self)
            i &+= 1
            return s
        }
        var bytes = Array(UnsafeBufferPointer(start: p + start, count: i - start))
        while true {
            guard i < end else { throw JSONSyntaxError(offset: start - 1, reason: "unterminated string") }
            let c = p[i]
            if c == UInt8(ascii: "\"") { i &+= 1; break }
            if c < 0x20 { throw fail("control character in a string must be escaped") }
            if c != UInt8(ascii: "\\") {
                bytes.append(c)
                i &+= 1
                continue
            }
            i &+= 1
            guard i < end else { throw fail("unterminated escape") }
            let e = p[i]
            i &+= 1
            switch e {
            case UInt8(ascii: "\""): bytes.append(0x22)
            case UInt8(ascii: "\\"): bytes.append(0x5C)
            case UInt8(ascii: "/"): bytes.append(0x2F)
            case UInt8(ascii: "b"): bytes.append(0x08)
            case UInt8(ascii: "f"): bytes.append(0x0C)
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try parseHex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    guard end - i >= 6, p[i] == UInt8(ascii: "\\"), p[i + 1] == UInt8(ascii: "u") else {
                        throw fail("unpaired UTF-16 surrogate in \\u escape")
                    }
                    i &+= 2
                    let low = try parseHex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw fail("invalid UTF-16 low surrogate") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw fail("unpaired UTF-16 surrogate in \\u escape")
                }
                appendUTF8(scalar, to: &bytes)
            default:
                throw fail("invalid escape '\\\(UnicodeScalar(e))'")
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private mutating func parseHex4() throws(JSONSyntaxError) -> UInt32 {
        guard end - i >= 4 else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = p[i]
            let digit: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw fail("invalid hex digit in \\u escape")
            }
            v = v << 4 | digit
            i &+= 1
        }
        return v
    }

    private mutating func parseNumber() throws(JSONSyntaxError) -> JSONValue {
        let start = i
        if p[i] == UInt8(ascii: "-") { i &+= 1 }
        let digitsStart = i
        while i < end, p[i] >= UInt8(ascii: "0"), p[i] <= UInt8(ascii: "9") { i &+= 1 }
        guard i > digitsStart else { throw fail("invalid number") }
        var isInteger = true
        if i < end, p[i] == UInt8(ascii: ".") {
            isInteger = false
            i &+= 1
            let fractionStart = i
            while i < end, p[i] >= UInt8(ascii: "0"), p[i] <= UInt8(ascii: "9") { i &+= 1 }
            guard i > fractionStart else { throw fail("invalid number") }
        }
        if i < end, p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E") {
            isInteger = false
            i &+= 1
            if i < end, p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-") { i &+= 1 }
            let exponentStart = i
            while i < end, p[i] >= UInt8(ascii: "0"), p[i] <= UInt8(ascii: "9") { i &+= 1 }
            guard i > exponentStart else { throw fail("invalid number") }
        }
        let text = String(decoding: UnsafeBufferPointer(start: p + start, count: i - start), as: UTF8.self)
        if isInteger, let value = Int(text) { return .integer(value) }
        guard let value = Double(text) else { throw JSONSyntaxError(offset: start, reason: "invalid number") }
        return .double(value)
    }
}

/// Reads and parses a JSON file, mapping every failure to a `TokenizerError` naming `file`.
func parseJSONDocument(_ data: [UInt8], file: String) throws(TokenizerError) -> JSONValue {
    try data.withUnsafeBufferPointer { (buffer) throws(TokenizerError) -> JSONValue in
        if let offset = UTF8Scalars.firstInvalidOffset(buffer) {
            throw TokenizerError.invalidUTF8(file: file, offset: offset)
        }
        do throws(JSONSyntaxError) {
            return try JSONParser.parse(buffer)
        } catch {
            var line = 1, column = 1
            for k in 0..<min(error.offset, buffer.count) {
                if buffer[k] == 0x0A {
                    line += 1
                    column = 1
                } else if buffer[k] & 0xC0 != 0x80 {
                    column += 1
                }
            }
            throw TokenizerError.malformedJSON(file: file, line: line, column: column, reason: error.reason)
        }
    }
}

/// Reads a whole file as bytes, naming the file in the error.
func readFileBytes(_ url: URL) throws(TokenizerError) -> [UInt8] {
    do {
        return [UInt8](try Data(contentsOf: url))
    } catch {
        throw TokenizerError.fileAccess(file: url.path, reason: "cannot be read (\(error.localizedDescription))")
    }
}

/// Writes JSON in the layout `serde_json`'s pretty printer uses (two-space indent, members one per
/// line, non-ASCII text unescaped), so files Rein writes look like the ones Hugging Face writes.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []
    private var indent = 0
    private var counts: [Int] = []

    mutating func raw(_ text: String) {
        bytes.append(contentsOf: text.utf8)
    }

    mutating func newline() {
        bytes.append(0x0A)
        bytes.append(contentsOf: repeatElement(0x20, count: indent * 2))
    }

    /// A JSON string literal for UTF-8 `text`.
    mutating func string<C: Collection<UInt8>>(_ text: C) {
        bytes.append(0x22)
        for c in text {
            switch c {
            case 0x22: raw("\\\"")
            case 0x5C: raw("\\\\")
            case 0x0A: raw("\\n")
            case 0x0D: raw("\\r")
            case 0x09: raw("\\t")
            case 0x08: raw("\\b")
            case 0x0C: raw("\\f")
            case 0..<0x20:
                raw("\\u00")
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(hex[Int(c >> 4)])
                bytes.append(hex[Int(c & 0xF)])
            default: bytes.append(c)
            }
        }
        bytes.append(0x22)
    }

    mutating func string(_ text: String) {
        string(text.utf8)
    }

    /// Opens an object; follow with `key(_:)` + value pairs and `endObject()`.
    mutating func beginObject() {
        raw("{")
        open()
    }

    /// Closes the innermost object.
    mutating func endObject() {
        close()
        raw("}")
    }

    /// Opens an array; follow with `item()` + value pairs and `endArray()`.
    mutating func beginArray() {
        raw("[")
        open()
    }

    /// Closes the innermost array.
    mutating func endArray() {
        close()
        raw("]")
    }

    /// Starts an object member; the value is written next.
    mutating func key<C: Collection<UInt8>>(_ name: C) {
        item()
        string(name)
        raw(": ")
    }

    mutating func key(_ name: String) {
        key(name.utf8)
    }

    /// Starts an array element; the value is written next.
    mutating func item() {
        if counts[counts.count - 1] > 0 { raw(",") }
        counts[counts.count - 1] += 1
        newline()
    }

    private mutating func open() {
        indent += 1
        counts.append(0)
    }

    private mutating func close() {
        indent -= 1
        if counts.removeLast() > 0 { newline() }
    }
}
