/// Everything that can go wrong while reading, tokenizing or batching a dataset.
///
/// Record errors name the file and the 1-based line (`data.jsonl:7`), the field (with a path such
/// as `messages[2].role`) and what was expected, so a user can fix the line without reading code.
public enum DatasetError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file could not be opened or read.
    case fileAccess(file: String, reason: String)
    /// The line is not valid UTF-8.
    case invalidUTF8(file: String, line: Int)
    /// The line is not one valid JSON value; `column` counts characters from 1.
    case invalidJSON(file: String, line: Int, column: Int, reason: String)
    /// The file is not valid YAML (a ChatterBot corpus file); `column` counts Unicode scalars from 1.
    case invalidYAML(file: String, line: Int, column: Int, reason: String)
    /// A required field is absent (or null).
    case missingField(file: String, line: Int, field: String, expected: String)
    /// A field holds the wrong JSON type.
    case wrongType(file: String, line: Int, field: String, expected: String, found: String)
    /// A field has the right type but a value that cannot be used (an unknown role, an empty list).
    case invalidValue(file: String, line: Int, field: String, reason: String)
    /// The first record's fields match none of the formats, so the format cannot be detected.
    case unknownFormat(file: String, line: Int, fields: [String])
    /// The file holds no usable record.
    case noRecords(file: String, skipped: Int)
    /// A setting, or a combination of settings and data, that cannot work (PAD equal to EOS,
    /// preference records given to an SFT builder, a tokenizer without a token the template needs).
    case invalidConfiguration(String)

    /// A one-line message: `file:line: field 'x' ...`.
    public var description: String {
        switch self {
        case let .fileAccess(file, reason):
            return "\(file): \(reason)"
        case let .invalidUTF8(file, line):
            return "\(file):\(line): the line is not valid UTF-8"
        case let .invalidJSON(file, line, column, reason):
            return "\(file):\(line): not valid JSON at column \(column): \(reason)"
        case let .invalidYAML(file, line, column, reason):
            return "\(file):\(line): not valid YAML at column \(column): \(reason)"
        case let .missingField(file, line, field, expected):
            return "\(file):\(line): missing field '\(field)' (expected \(expected))"
        case let .wrongType(file, line, field, expected, found):
            return "\(file):\(line): field '\(field)' must be \(expected), found \(found)"
        case let .invalidValue(file, line, field, reason):
            return "\(file):\(line): field '\(field)' \(reason)"
        case let .unknownFormat(file, line, fields):
            let names = fields.isEmpty ? "no fields" : "fields " + fields.map { "'\($0)'" }.joined(separator: ", ")
            return "\(file):\(line): a record with \(names) matches no dataset format; expected {\"text\"}, "
                + "{\"prompt\", \"completion\"}, {\"messages\"}, {\"prompt\", \"chosen\", \"rejected\"} or {\"prompt\"}"
        case let .noRecords(file, skipped):
            return skipped == 0 ? "\(file): the file holds no records"
                : "\(file): the file holds no valid records (\(skipped) skipped)"
        case let .invalidConfiguration(message):
            return message
        }
    }
}
