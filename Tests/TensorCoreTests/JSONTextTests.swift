import Foundation
import Testing
import TensorCore

@Suite struct JSONTextTests {
    @Test func quotedStringsParseBack() throws {
        let text = "a\"b\\c\nd\t\u{01}é😀"
        let literal = JSONText.quoted(text)
        #expect(literal == "\"a\\\"b\\\\c\\nd\\t\\u0001é😀\"")
        let parsed = try JSONSerialization.jsonObject(with: Data("[\(literal)]".utf8)) as? [String]
        #expect(parsed == [text])
    }

    struct Sample: Encodable {
        let zeta: String
        let alpha: Int
        let value: JSONNumber
    }

    @Test func linesHaveSortedKeysUnescapedSlashesAndNullForNonFiniteNumbers() throws {
        let encoder = JSONLinesEncoder()
        #expect(try encoder.line(Sample(zeta: "train/loss", alpha: 3, value: JSONNumber(0.1)))
            == #"{"alpha":3,"value":0.1,"zeta":"train/loss"}"#)
        for missing in [nil, Double.nan, .infinity, -.infinity] {
            #expect(try encoder.line(Sample(zeta: "", alpha: 0, value: JSONNumber(missing))) == #"{"alpha":0,"value":null,"zeta":""}"#)
        }
        // Numbers keep full precision; strings with quotes, line breaks and control characters parse back.
        let tricky = "a\"b\\c\nd\t\u{01}é😀"
        let line = try encoder.line(Sample(zeta: tricky, alpha: -2, value: JSONNumber(1e-05)))
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["zeta"] as? String == tricky)
        #expect(object["value"] as? Double == 1e-05 && object["alpha"] as? Int == -2)
        #expect(try encoder.line(Sample(zeta: "", alpha: 0, value: JSONNumber(2))).contains(#""value":2"#))
    }
}
