import Evaluation
import Foundation
import Testing

@Suite struct PorterStemmerTests {
    /// Porter's own examples (1980) and the classic word list, nltk's default rules.
    @Test func classicWordsStemAsInThePaper() {
        let stemmer = PorterStemmer()
        let table: [(String, String)] = [
            ("caresses", "caress"), ("ponies", "poni"), ("caress", "caress"), ("cats", "cat"), ("feed", "feed"),
            ("agreed", "agre"), ("plastered", "plaster"), ("bled", "bled"), ("motoring", "motor"), ("sing", "sing"),
            ("conflated", "conflat"), ("troubled", "troubl"), ("sized", "size"), ("hopping", "hop"), ("tanned", "tan"),
            ("falling", "fall"), ("hissing", "hiss"), ("fizzed", "fizz"), ("failing", "fail"), ("filing", "file"),
            ("happy", "happi"), ("relational", "relat"), ("conditional", "condit"), ("rational", "ration"),
            ("hopefulness", "hope"), ("goodness", "good"), ("adjustment", "adjust"), ("adoption", "adopt"),
            ("effective", "effect"), ("controll", "control"), ("roll", "roll"), ("generalization", "gener"),
        ]
        for (word, stem) in table {
            #expect(stemmer.stem(word) == stem, "\(word)")
        }
    }

    /// Where nltk's extensions and the published algorithm part.
    @Test func nltkExtensionsDifferFromTheOriginalWhereDocumented() {
        let nltk = PorterStemmer(), original = PorterStemmer(mode: .original)
        #expect(nltk.stem("dying") == "die")           // irregular-forms table
        #expect(original.stem("dying") == "dy")
        #expect(nltk.stem("ties") == "tie")            // -ies on a four-letter word
        #expect(original.stem("ties") == "ti")
        #expect(nltk.stem("enjoy") == "enjoy")         // y -> i only after a consonant
        #expect(original.stem("enjoy") == "enjoi")
        #expect(nltk.stem("is") == "is")               // two letters are left alone
        #expect(original.stem("is") == "i")
        #expect(nltk.stem("geology") == "geolog")      // -logi keeps its l with the stem
        #expect(original.stem("geology") == "geologi")
        #expect(nltk.stem("Running") == "run")         // lowercased first
    }

    /// `Tests/Fixtures/metrics/porter_nltk.json`: nltk 3.10.4's stems in both modes of every classic
    /// word, every VADER lexicon word where the modes differ, and a fifth of the others.
    @Test func everyFixtureWordMatchesNLTK() throws {
        struct Fixture: Decodable { let words: [[String]] }
        let url = fixtureDirectory("metrics").appendingPathComponent("porter_nltk.json")
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
        #expect(fixture.words.count > 1000)
        let nltk = PorterStemmer(), original = PorterStemmer(mode: .original)
        var failures: [String] = []
        for row in fixture.words {
            try #require(row.count == 3)
            let a = nltk.stem(row[0]), b = original.stem(row[0])
            if a != row[1] { failures.append("\(row[0]): nltk \(a), want \(row[1])") }
            if b != row[2] { failures.append("\(row[0]): original \(b), want \(row[2])") }
        }
        #expect(failures.isEmpty, "\(failures.count) of \(2 * fixture.words.count):\n\(failures.prefix(40).joined(separator: "\n"))")
    }
}
