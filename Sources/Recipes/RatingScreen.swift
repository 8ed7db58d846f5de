import Foundation
import Store

/// Laying out a rating item as terminal lines: text made safe to print, display widths (emoji and CJK
/// take two cells), word wrapping, side-by-side or stacked columns.
public enum RatingScreen {
    /// The narrowest terminal the screen is drawn in.
    public static let minimumWidth = 40
    /// From this width on, two responses are shown side by side.
    public static let sideBySideWidth = 100

    /// `text` with every control character but the line break shown as `�` (tabs as four spaces), so text
    /// from a file can never move the cursor or change colours.
    public static func printable(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for u in text.unicodeScalars {
            if u == "\n" { out.append(u) }
            else if u == "\t" { out.append(contentsOf: "    ".unicodeScalars) }
            else if u == "\r" { continue }
            else if u.properties.generalCategory == .control || u.properties.generalCategory == .lineSeparator
                        || u.properties.generalCategory == .paragraphSeparator { out.append("\u{FFFD}") }
            else { out.append(u) }
        }
        return String(out)
    }

    /// Terminal cells of one character: 0 for combining marks and joiners, 2 for wide (East Asian, emoji), else 1.
    public static func cellWidth(_ c: Character) -> Int {
        var wide = false, visible = false
        for u in c.unicodeScalars {
            let v = u.value
            switch u.properties.generalCategory {
            case .nonspacingMark, .enclosingMark, .format: continue
            default: break
            }
            if (0xFE00...0xFE0F).contains(v) { continue }
            visible = true
            if (0x1100...0x115F).contains(v) || (0x2E80...0xA4CF).contains(v) || (0xAC00...0xD7A3).contains(v)
                || (0xF900...0xFAFF).contains(v) || (0xFE30...0xFE4F).contains(v) || (0xFF00...0xFF60).contains(v)
                || (0xFFE0...0xFFE6).contains(v) || (0x1F300...0x1F64F).contains(v) || (0x1F680...0x1F6FF).contains(v)
                || (0x1F900...0x1FAFF).contains(v) || (0x20000...0x3FFFD).contains(v) || (0x2600...0x27BF).contains(v) && u.properties.isEmojiPresentation {
                wide = true
            }
        }
        return !visible ? 0 : wide ? 2 : 1
    }

    /// Terminal cells of `s`.
    public static func width(_ s: some StringProtocol) -> Int { s.reduce(0) { $0 + cellWidth($1) } }

    /// `s` cut to at most `cells` cells and padded with spaces to exactly `cells`.
    public static func pad(_ s: String, to cells: Int) -> String {
        var out = "", used = 0
        for c in s {
            let w = cellWidth(c)
            if used + w > cells { break }
            out.append(c)
            used += w
        }
        return out + String(repeating: " ", count: cells - used)
    }

    /// `text` (made printable) wrapped at word boundaries into lines of at most `cells` cells; a word longer
    /// than a line is broken. Line breaks in the text are kept; an empty text is one empty line.
    public static func wrap(_ text: String, cells: Int) -> [String] {
        precondition(cells > 0)
        var lines: [String] = []
        for paragraph in printable(text).split(separator: "\n", omittingEmptySubsequences: false) {
            var line = "", used = 0
            for word in paragraph.split(separator: " ", omittingEmptySubsequences: false) {
                var word = Substring(word)
                let w = width(word)
                let gap = line.isEmpty ? 0 : 1
                if used + gap + w <= cells {
                    if gap == 1 { line += " " }
                    line += word
                    used += gap + w
                    continue
                }
                if !line.isEmpty { lines.append(line); line = ""; used = 0 }
                // Break a word wider than a line.
                while width(word) > cells {
                    var piece = "", pieceWidth = 0
                    while let c = word.first, pieceWidth + cellWidth(c) <= cells { piece.append(c); pieceWidth += cellWidth(c); word.removeFirst() }
                    if piece.isEmpty, let c = word.first { piece.append(c); word.removeFirst() }  // a 2-cell character in 1 cell
                    lines.append(piece)
                }
                line = String(word)
                used = width(word)
            }
            lines.append(line)
        }
        return lines
    }

    /// The scrollable body of an item for a screen `cells` wide: the prompt, then the responses in screen order
    /// (`labels[i]` above response `order[i]`), side by side when there are two and the screen is wide enough.
    public static func body(item: RatingItem, order: [Int], labels: [String], cells: Int) -> [String] {
        var lines = ["PROMPT"] + wrap(item.prompt, cells: cells - 2).map { "  " + $0 } + [""]
        if order.count == 2 && cells >= sideBySideWidth {
            let column = (cells - 3) / 2
            let left = [labels[0]] + wrap(item.responses[order[0]], cells: column)
            let right = [labels[1]] + wrap(item.responses[order[1]], cells: column)
            for i in 0..<max(left.count, right.count) {
                lines.append(pad(i < left.count ? left[i] : "", to: column) + " │ " + pad(i < right.count ? right[i] : "", to: column))
            }
        } else {
            for (label, index) in zip(labels, order) {
                lines.append(label)
                lines += wrap(item.responses[index], cells: cells - 2).map { "  " + $0 }
                lines.append("")
            }
        }
        return lines.map { pad($0, to: cells) }
    }
}
