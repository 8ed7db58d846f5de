import Testing
@testable import Tokenizers

@Suite struct StreamingDecoderTests {
    @Test func emitsOnlyCompleteCharacters() {
        let tokenizer = SharedTokenizers.tiny
        for text in unicodeSamples {
            let ids = tokenizer.encode(text)
            var stream = tokenizer.makeStreamingDecoder()
            var pieces: [String] = []
            var heldBack = false
            for id in ids {
                pieces.append(stream.append(id))
                heldBack = heldBack || stream.pendingByteCount > 0
            }
            pieces.append(stream.finish())
            #expect(pieces.joined() == text, "\(String(reflecting: text))")
            if !text.contains("\u{FFFD}") {
                #expect(!pieces.contains { $0.contains("\u{FFFD}") }, "\(String(reflecting: text))")
            }
            if text.contains("🤗") { #expect(heldBack) }  // the tiny vocabulary splits emoji into bytes
        }
    }

    @Test func skipsSpecialTokensAndFlushesUnfinishedCharacters() {
        let tokenizer = SharedTokenizers.tiny
        var stream = tokenizer.makeStreamingDecoder(skipSpecial: true)
        #expect(stream.append(contentsOf: tokenizer.encode("<|im_start|>ok")) == "ok")
        let emoji = tokenizer.encode("🤗")
        #expect(emoji.count > 1)
        #expect(stream.append(contentsOf: Array(emoji.dropLast())) == "")
        #expect(stream.finish() == "\u{FFFD}")
        #expect(stream.append(contentsOf: emoji) == "🤗")
    }

    @Test func completePrefixLength() {
        #expect(StreamingDecoder.completePrefixLength([]) == 0)
        #expect(StreamingDecoder.completePrefixLength(Array("ab".utf8)) == 2)
        #expect(StreamingDecoder.completePrefixLength([0x61, 0xF0, 0x9F, 0xA4]) == 1)  // 🤗 missing its last byte
        #expect(StreamingDecoder.completePrefixLength([0x61, 0xF0, 0x9F, 0xA4, 0x97]) == 5)
        #expect(StreamingDecoder.completePrefixLength([0x61, 0xE6]) == 1)
        #expect(StreamingDecoder.completePrefixLength([0x61, 0x80, 0x80]) == 3)  // stray continuations go out (as U+FFFD)
        #expect(StreamingDecoder.completePrefixLength([0xFF]) == 1)
    }
}
