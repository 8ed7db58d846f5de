/// Everything that can go wrong while loading, saving, training or templating a tokenizer.
///
/// Every message names the file (or the in-memory source, such as "GGUF metadata") and the
/// problem, so a user can act on it without reading code.
public enum TokenizerError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file could not be read or written.
    case fileAccess(file: String, reason: String)
    /// The file is not valid UTF-8 at the given byte offset.
    case invalidUTF8(file: String, offset: Int)
    /// The file is not valid JSON.
    case malformedJSON(file: String, line: Int, column: Int, reason: String)
    /// A required field is absent, for example `model.vocab`.
    case missingField(file: String, field: String)
    /// A field is present but has the wrong type or an impossible value.
    case invalidField(file: String, field: String, reason: String)
    /// A merge that is not two tokens; `location` is "line 7" or "merge 7" (numbered from 1).
    case malformedMerge(file: String, location: String, text: String)
    /// A merge names a token, or produces a token, that the vocabulary lacks.
    case unknownMergeToken(file: String, location: String, token: String)
    /// The file asks for a feature Rein's byte-level BPE does not implement.
    case unsupported(file: String, feature: String)
    /// A trainer or template setting that cannot work, such as a vocabulary smaller than the alphabet.
    case invalidConfiguration(String)
    /// A chat template needs a special token the tokenizer does not have.
    case missingSpecialToken(String)

    /// A one-line message naming the file and the problem.
    public var description: String {
        switch self {
        case let .fileAccess(file, reason):
            return "\(file): \(reason)"
        case let .invalidUTF8(file, offset):
            return "\(file): invalid UTF-8 at byte offset \(offset)"
        case let .malformedJSON(file, line, column, reason):
            return "\(file): not valid JSON at line \(line), column \(column): \(reason)"
        case let .missingField(file, field):
            return "\(file): missing required field '\(field)'"
        case let .invalidField(file, field, reason):
            return "\(file): field '\(field)' \(reason)"
        case let .malformedMerge(file, location, text):
            return "\(file): \(location) is not two tokens separated by one space: \(debugQuoted(text))"
        case let .unknownMergeToken(file, location, token):
            return "\(file): \(location) needs the token \(debugQuoted(token)), which is not in the vocabulary"
        case let .unsupported(file, feature):
            return "\(file): unsupported \(feature)"
        case let .invalidConfiguration(message):
            return message
        case let .missingSpecialToken(token):
            return "the tokenizer has no special token \(debugQuoted(token))"
        }
    }
}

private func debugQuoted(_ text: String) -> String {
    String(reflecting: text)
}
