import Mustache

/// One SVG element of a chart: its tag, attributes in order, a tooltip (its `<title>` child),
/// text and children. Charts build these; `render()` writes them through the `svg-element`
/// template, so every attribute value and text is HTML-escaped by Mustache.
struct SVGElement: Sendable, Equatable {
    /// One attribute; the order of a list of them is the order written.
    struct Attribute: Sendable, Equatable {
        let name: String
        let value: String
    }

    let tag: String
    var attributes: [Attribute]
    /// Zero or one texts; a list, so that an element without one never picks up its parent's
    /// (Mustache looks a missing key up in the enclosing contexts).
    var tooltip: [String]
    var text: String
    var children: [SVGElement]

    init(_ tag: String, _ attributes: KeyValuePairs<String, String> = [:], tooltip: String? = nil, text: String = "",
         children: [SVGElement] = []) {
        self.tag = tag
        self.attributes = attributes.map { Attribute(name: $0.key, value: $0.value) }
        self.tooltip = tooltip.map { [$0] } ?? []
        self.text = text
        self.children = children
    }

    /// The value of attribute `name`, if set.
    subscript(name: String) -> String? { attributes.last { $0.name == name }?.value }

    /// Sets attribute `name` (appended when new).
    mutating func set(_ name: String, _ value: String) {
        if let i = attributes.firstIndex(where: { $0.name == name }) {
            attributes[i] = Attribute(name: name, value: value)
        } else {
            attributes.append(Attribute(name: name, value: value))
        }
    }

    /// This element and all below it, depth first.
    var descendants: [SVGElement] { [self] + children.flatMap(\.descendants) }

    /// The element as markup.
    func render() throws -> String {
        try Templates.render(self, with: "svg-element")
    }
}

extension SVGElement: MustacheParent {
    // Direct lookups instead of Mirror reflection: a chart has thousands of elements.
    func child(named name: String) -> Any? {
        switch name {
        case "tag": return tag
        case "attributes": return attributes
        case "tooltip": return tooltip
        case "text": return text
        case "children": return children
        default: return nil
        }
    }
}

extension SVGElement.Attribute: MustacheParent {
    func child(named key: String) -> Any? {
        switch key {
        case "name": return name
        case "value": return value
        default: return nil
        }
    }
}
