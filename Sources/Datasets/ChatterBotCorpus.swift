import Foundation
import Yams

/// Reading ChatterBot corpus files (such as `assets/chatterbot/english/*.yml`): YAML documents
/// with a `conversations` list whose items are conversations, each a list of utterances in order.
///
/// The files are read as YAML (quoted, folded and block scalars included), and each utterance is
/// kept as the text it is written as: `yes` or `42` stay strings. A conversation written as a
/// single text (a missing `- `, as in one entry of the English corpus's trivia.yml) is a
/// conversation of that one utterance.
public enum ChatterBotCorpus {
    /// The conversations of one file, each its utterances in order.
    ///
    /// - Throws: `DatasetError.fileAccess` when the file cannot be read; `.invalidYAML` naming
    ///   file:line when it is not YAML; `.missingField` / `.wrongType` naming file:line when it
    ///   has no `conversations` list or an item of it is neither a text nor a list of texts.
    public static func conversations(file: URL) throws(DatasetError) -> [[String]] {
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw DatasetError.fileAccess(file: file.path, reason: "cannot be read")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw DatasetError.fileAccess(file: file.path, reason: "is not UTF-8 text")
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw invalidYAML(error, file: file.path)
        } catch {
            throw DatasetError.invalidYAML(file: file.path, line: 1, column: 1, reason: "\(error)")
        }
        guard let root, let mapping = root.mapping else {
            throw DatasetError.wrongType(file: file.path, line: root?.mark?.line ?? 1, field: "(top level)",
                                         expected: "a mapping with a 'conversations' list", found: kind(root))
        }
        guard let list = mapping["conversations"] else {
            throw DatasetError.missingField(file: file.path, line: root.mark?.line ?? 1, field: "conversations",
                                            expected: "a list of conversations")
        }
        guard let conversations = list.sequence else {
            throw DatasetError.wrongType(file: file.path, line: list.mark?.line ?? 1, field: "conversations",
                                         expected: "a list of conversations", found: kind(list))
        }
        var out: [[String]] = []
        for (i, conversation) in conversations.enumerated() {
            if let single = conversation.scalar {
                out.append([single.string])
                continue
            }
            guard let utterances = conversation.sequence else {
                throw DatasetError.wrongType(file: file.path, line: conversation.mark?.line ?? 1, field: "conversations[\(i)]",
                                             expected: "a list of utterances", found: kind(conversation))
            }
            out.append(try utterances.enumerated().map { (j, utterance) throws(DatasetError) in
                guard let scalar = utterance.scalar else {
                    throw DatasetError.wrongType(file: file.path, line: utterance.mark?.line ?? 1, field: "conversations[\(i)][\(j)]",
                                                 expected: "a text", found: kind(utterance))
                }
                return scalar.string
            })
        }
        return out
    }

    /// The `.yml` files at `path`: a directory's, sorted by name, or `path` itself.
    public static func files(at path: URL) throws(DatasetError) -> [URL] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path.path, isDirectory: &isDirectory) else {
            throw DatasetError.fileAccess(file: path.path, reason: "not found (scripts/fetch-assets.sh downloads the ChatterBot corpus into assets/chatterbot)")
        }
        guard isDirectory.boolValue else { return [path] }
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: path.path)
        } catch {
            throw DatasetError.fileAccess(file: path.path, reason: "cannot be listed (\(error.localizedDescription))")
        }
        return names.filter { $0.hasSuffix(".yml") }.sorted().map { path.appendingPathComponent($0) }
    }

    /// Every utterance of the files at `path` (see `files(at:)`), conversation after conversation.
    public static func utterances(at path: URL) throws(DatasetError) -> [String] {
        var out: [String] = []
        for file in try files(at: path) { out += try conversations(file: file).joined() }
        return out
    }

    private static func invalidYAML(_ error: YamlError, file: String) -> DatasetError {
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            return .invalidYAML(file: file, line: mark.line, column: mark.column, reason: (context.map { "\($0.text) " } ?? "") + problem)
        default:
            return .invalidYAML(file: file, line: 1, column: 1, reason: "\(error)")
        }
    }

    private static func kind(_ node: Node?) -> String {
        switch node {
        case nil: return "an empty document"
        case .scalar?: return "a text"
        case .mapping?: return "a mapping"
        case .sequence?: return "a list"
        case .alias?: return "an alias"
        }
    }
}
