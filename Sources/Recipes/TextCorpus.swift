import Datasets
import Foundation
import Tokenizers

/// Reading the texts of data files: `.txt` (the whole file is one text), `.jsonl` (one
/// `{"text": ...}` object per line) and ChatterBot `.yml` corpora (one text per utterance).
public enum TextCorpus {
    /// The kinds of file `texts(of:)` reads.
    public static let extensions = ["txt", "jsonl", "yml"]

    /// The texts of one file, by its extension, which must be one of `accepted`.
    public static func texts(of path: String, accepted: [String] = extensions) throws -> [String] {
        let ext = URL(fileURLWithPath: path).pathExtension.lowercased()
        guard accepted.contains(ext) else {
            let kinds = accepted.map { "." + $0 }
            throw RunnerError("\(path): expected a \(kinds.dropLast().joined(separator: ", ")) or \(kinds.last!) file")
        }
        switch ext {
        case "jsonl": return try jsonlTexts(path)
        case "yml":
            _ = try contents(path)
            do {
                return try ChatterBotCorpus.conversations(file: URL(fileURLWithPath: path)).flatMap { $0 }
            } catch {
                throw RunnerError(error.description)
            }
        default: return [String(decoding: try contents(path), as: UTF8.self)]
        }
    }

    /// The `field` string of each non-blank line of a JSONL file; a bad line is an error naming
    /// file:line and the field.
    public static func jsonlTexts(_ path: String, field: String = "text") throws -> [String] {
        var texts: [String] = []
        let data = try contents(path)
        for (index, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            let location = "\(path):\(index + 1)"
            guard line.contains(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\t") })
            else { continue }
            // Datasets' JSON reader: bounded nesting, and the column and reason of a syntax error.
            let value: JSONValue
            do { value = try parseJSONLine(ArraySlice(line), file: path, line: index + 1) } catch { throw RunnerError(error.description) }
            guard case .object = value else { throw RunnerError("\(location): expected a JSON object with a \"\(field)\" field") }
            guard let member = value[field], !member.isNull else { throw RunnerError("\(location): missing the field \"\(field)\"") }
            guard case let .string(text) = member else {
                throw RunnerError("\(location): the field \"\(field)\" must be a string, found \(member.typeName)")
            }
            texts.append(text)
        }
        return texts
    }

    /// A file's bytes, or an error naming it.
    public static func contents(_ path: String) throws -> Data {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw RunnerError("\(path): no such file") }
        guard !isDirectory.boolValue else { throw RunnerError("\(path): is a directory, expected a file") }
        guard let data = FileManager.default.contents(atPath: path) else { throw RunnerError("\(path): cannot be read") }
        return data
    }
}
