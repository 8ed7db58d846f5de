import Testing
import Tokenizers

@Suite struct PreTokenizerTests {
    /// Expected words from Hugging Face's `ByteLevel` (GPT-2) and `Sequence[Digits(individual),
    /// ByteLevel]` (SmolLM2) pre-tokenizers, `tokenizers` 0.23.
    static let cases: [(text: String, gpt2: [String], smolLM2: [String])] = [
        ("Hello, world! It's 2024.",
         ["Hello", ",", " world", "!", " It", "'s", " 2024", "."],
         ["Hello", ",", " world", "!", " It", "'s", " ", "2", "0", "2", "4", "."]),
        ("  two leading, trailing  ",
         [" ", " two", " leading", ",", " trailing", "  "],
         [" ", " two", " leading", ",", " trailing", "  "]),
        ("a\n\n b\t\tc", ["a", "\n\n", " b", "\t", "\t", "c"], ["a", "\n\n", " b", "\t", "\t", "c"]),
        ("I'M HERE'S 'tis", ["I", "'", "M", " HERE", "'", "S", " '", "tis"], ["I", "'", "M", " HERE", "'", "S", " '", "tis"]),
        ("?!'s x'll", ["?!'", "s", " x", "'ll"], ["?!'", "s", " x", "'ll"]),
        ("Price: $3.50 (x12)",
         ["Price", ":", " $", "3", ".", "50", " (", "x", "12", ")"],
         ["Price", ":", " $", "3", ".", "5", "0", " (", "x", "1", "2", ")"]),
        ("emoji\u{1F917}\u{1F389} \u{6F22}\u{5B57} e\u{301}",
         ["emoji", "\u{1F917}\u{1F389}", " \u{6F22}\u{5B57}", " e", "\u{301}"],
         ["emoji", "\u{1F917}\u{1F389}", " \u{6F22}\u{5B57}", " e", "\u{301}"]),
        ("nbsp\u{A0}a \u{3000}b", ["nbsp", "\u{A0}", "a", " ", "\u{3000}", "b"], ["nbsp", "\u{A0}", "a", " ", "\u{3000}", "b"]),
        ("a  1 22", ["a", " ", " 1", " 22"], ["a", "  ", "1", " ", "2", "2"]),
        ("x\r\n\r\ny", ["x", "\r\n\r", "\n", "y"], ["x", "\r\n\r", "\n", "y"]),
    ]

    @Test func gpt2PatternMatchesHuggingFace() {
        for c in Self.cases {
            #expect(PreTokenizer.gpt2.split(c.text) == c.gpt2, "\(String(reflecting: c.text))")
        }
    }

    @Test func smolLM2DigitsMatchHuggingFace() {
        for c in Self.cases {
            #expect(PreTokenizer.smolLM2.split(c.text) == c.smolLM2, "\(String(reflecting: c.text))")
        }
    }

    @Test func wordsCoverTheTextExactly() {
        for pre in [PreTokenizer.gpt2, .smolLM2, PreTokenizer(useRegex: false, individualDigits: true)] {
            for text in unicodeSamples {
                #expect(pre.split(text).joined().utf8.elementsEqual(text.utf8), "\(pre) \(String(reflecting: text))")
                #expect(!pre.split(text).contains(""))
            }
        }
    }

    @Test func prefixSpaceAndWholeText() {
        #expect(PreTokenizer(addPrefixSpace: true).split("Hi there") == [" Hi", " there"])
        #expect(PreTokenizer(useRegex: false).split("Hi there 42") == ["Hi there 42"])
        #expect(PreTokenizer(ggufName: "smollm") == .smolLM2)
        #expect(PreTokenizer(ggufName: "llama-bpe") == nil)
    }
}
