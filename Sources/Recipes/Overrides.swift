import Yams

/// `rein run --set KEY.PATH=VALUE` (and `rein train`'s flags): settings applied to the recipe's YAML
/// before it is checked, so an overridden value is checked like a written one. Stages are
/// addressed by id (`stages.sft.learning_rate=1e-5`); VALUE is read as YAML.
extension Checker {
    /// Applies one `--set KEY.PATH=VALUE` to the document; a path that names no stage is a problem.
    mutating func apply(_ setting: String, to root: Node) -> Node {
        guard let eq = setting.firstIndex(of: "="), eq != setting.startIndex else {
            report(nil, "--set \(setting)", "expected KEY.PATH=VALUE, e.g. stages.sft.learning_rate=1e-5")
            return root
        }
        let path = setting[..<eq].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let text = String(setting[setting.index(after: eq)...])
        guard !path.contains("") else {
            report(nil, "--set \(setting)", "empty key in '\(setting[..<eq])'")
            return root
        }
        let value = ((try? Yams.compose(yaml: text)) ?? nil) ?? Node(text)
        var failure: String?
        let result = Self.set(root, path[...], value, failure: &failure)
        if let failure { report(nil, "--set \(setting[..<eq])", failure) }
        return result ?? root
    }

    /// `node` with the value at `path` replaced (created when absent).
    static func set(_ node: Node, _ path: ArraySlice<String>, _ value: Node, failure: inout String?) -> Node? {
        guard let key = path.first else { return value }
        let rest = path.dropFirst()
        if let list = node.sequence {
            guard let index = list.firstIndex(where: { $0.mapping?["id"]?.string == key }) else {
                let ids = list.compactMap { $0.mapping?["id"]?.string }
                failure = "no stage with id '\(key)' (stages: \(ids.joined(separator: ", ")))"
                return nil
            }
            guard !rest.isEmpty, let updated = set(list[index], rest, value, failure: &failure) else {
                if failure == nil { failure = "name a key of stage '\(key)', e.g. stages.\(key).learning_rate" }
                return nil
            }
            var nodes = Array(list)
            nodes[index] = updated
            return .sequence(Node.Sequence(nodes))
        }
        if node.mapping == nil && node.scalar != nil {
            failure = "'\(key)' is inside a value that is not a mapping"
            return nil
        }
        var pairs: [(Node, Node)] = node.mapping.map { Array($0).map { ($0.key, $0.value) } } ?? []
        if let index = pairs.firstIndex(where: { $0.0.string == key }) {
            guard let updated = set(pairs[index].1, rest, value, failure: &failure) else { return nil }
            pairs[index].1 = updated
        } else {
            guard let created = set(.mapping(Node.Mapping([])), rest, value, failure: &failure) else { return nil }
            pairs.append((Node(key), created))
        }
        return .mapping(Node.Mapping(pairs))
    }

    /// `node` without source positions (a value from the command line, not from the file).
    static func withoutMarks(_ node: Node) -> Node {
        switch node {
        case .scalar(let scalar): return .scalar(Node.Scalar(scalar.string, scalar.tag, scalar.style))
        case .mapping(let mapping): return .mapping(Node.Mapping(mapping.map { (withoutMarks($0.key), withoutMarks($0.value)) }))
        case .sequence(let sequence): return .sequence(Node.Sequence(sequence.map(withoutMarks)))
        case .alias: return node
        }
    }
}
