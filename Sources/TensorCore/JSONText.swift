import Foundation

/// Writing JSON by hand (safetensors headers) without a Foundation encoder.
public enum JSONText {
    /// `s` as a JSON string literal, quotes included; control characters are escaped.
    public static func quoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}

/// JSON Lines (one compact JSON object per line) written through `Encodable` values: keys sorted
/// and slashes left unescaped, so the same values always give the same bytes.
public struct JSONLinesEncoder {
    private let encoder: JSONEncoder

    /// An encoder with sorted keys and unescaped slashes.
    public init() {
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    }

    /// `value` as one line of JSON, without the line ending.
    ///
    /// - Throws: `EncodingError` for a value JSON cannot hold (a NaN or infinite `Double`; wrap
    ///   such numbers in `JSONNumber`).
    public func line(_ value: some Encodable) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

/// A number written as a JSON number, or as `null` when absent or not finite (JSON has no NaN or
/// infinities).
public struct JSONNumber: Encodable, Equatable, Sendable {
    /// The value; nil, NaN and infinities are written as `null`.
    public var value: Double?

    /// Wraps `value`.
    public init(_ value: Double?) { self.value = value }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        if let value, value.isFinite { try container.encode(value) } else { try container.encodeNil() }
    }
}
