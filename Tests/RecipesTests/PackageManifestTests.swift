import Foundation
import Testing

/// Package.swift says what each target imports: its declared dependencies equal the modules its
/// files import (system modules aside), target by target.
@Test func everyTargetDeclaresExactlyWhatItImports() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let manifest = try String(contentsOf: root.appendingPathComponent("Package.swift"), encoding: .utf8)
    let system: Set<String> = ["Foundation", "FoundationEssentials", "Glibc", "Darwin", "Dispatch", "Testing", "XCTest", "Synchronization"]
    var checked = 0
    for (name, folder, declared) in targets(in: manifest) {
        let dir = root.appendingPathComponent(folder).appendingPathComponent(name)
        guard let files = FileManager.default.enumerator(atPath: dir.path) else { continue }
        var imported = Set<String>()
        for case let file as String in files where file.hasSuffix(".swift") {
            let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ")
                if let i = words.firstIndex(of: "import"), i + 1 < words.count, words[..<i].allSatisfy({ $0.hasPrefix("@") }) {
                    imported.insert(String(words[i + 1]))
                }
            }
        }
        imported.subtract(system)
        #expect(Set(declared) == imported, "target \(name): declared \(Set(declared).subtracting(imported).sorted()) but not imported; imported \(imported.subtracting(declared).sorted()) but not declared")
        checked += 1
    }
    #expect(checked >= 20)
}

/// (name, Sources or Tests, dependency module names) of each target in a manifest's text.
private func targets(in manifest: String) -> [(String, String, [String])] {
    var out: [(String, String, [String])] = []
    let text = Array(manifest.utf8)
    var i = 0
    func quoted(from start: Int) -> (String, Int)? {
        guard let open = text[start...].firstIndex(of: UInt8(ascii: "\"")),
              let close = text[(open + 1)...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
        return (String(decoding: text[(open + 1)..<close], as: UTF8.self), close + 1)
    }
    func starts(_ word: String, at index: Int) -> Bool {
        let w = Array(word.utf8)
        return index + w.count <= text.count && Array(text[index..<(index + w.count)]) == w
    }
    while i < text.count {
        let kinds = [(".target(", "Sources"), (".executableTarget(", "Sources"), (".testTarget(", "Tests")]
        guard let (word, folder) = kinds.first(where: { starts($0.0, at: i) }) else { i += 1; continue }
        i += word.utf8.count
        guard let (name, after) = quoted(from: i) else { break }
        i = after
        // The call's extent: up to its closing parenthesis.
        var depth = 1, end = i
        while end < text.count && depth > 0 {
            if text[end] == UInt8(ascii: "(") { depth += 1 }
            if text[end] == UInt8(ascii: ")") { depth -= 1 }
            end += 1
        }
        var dependencies: [String] = []
        let body = String(decoding: text[i..<end], as: UTF8.self)
        if let range = body.range(of: "dependencies: [") {
            var rest = body[range.upperBound...]
            var level = 1, list = ""
            while let c = rest.first, level > 0 {
                if c == "[" { level += 1 }
                if c == "]" { level -= 1 }
                if level > 0 { list.append(c) }
                rest = rest.dropFirst()
            }
            // Bare "Target" names and product names; `package: "..."` names a package, not a module.
            var scan = Substring(list)
            while let open = scan.firstIndex(of: "\"") {
                let before = scan[..<open]
                let tail = scan[scan.index(after: open)...]
                guard let close = tail.firstIndex(of: "\"") else { break }
                if !before.hasSuffix("package: ") { dependencies.append(String(tail[..<close])) }
                scan = tail[tail.index(after: close)...]
            }
        }
        out.append((name, folder, dependencies))
        i = end
    }
    return out
}
