import Testing
import Tokenizers

@Suite struct ChatContextTests {
    let history: [ChatMessage] = [
        .system("Be brief."),
        .user("first question"), .assistant("first answer"),
        .user("second question"), .assistant("second answer"),
        .user("third question"),
    ]

    func length(_ messages: [ChatMessage], _ tokenizer: Tokenizer) throws -> Int {
        try ChatTemplate.chatML.encode(messages, with: tokenizer, addGenerationPrompt: true).ids.count
    }

    @Test func aConversationThatFitsIsEncodedWhole() throws {
        let tokenizer = SharedTokenizers.tiny
        let full = try length(history, tokenizer)
        let (encoding, dropped) = try ChatTemplate.chatML.encodeForReply(history, with: tokenizer, limit: full + 10, reserve: 10)
        #expect(dropped == 0)
        #expect(encoding == (try ChatTemplate.chatML.encode(history, with: tokenizer, addGenerationPrompt: true)))
    }

    @Test func theOldestWholeTurnsGoFirstAndTheSystemMessageStays() throws {
        let tokenizer = SharedTokenizers.tiny
        // Room for the system message and the last two turns, not for the first one.
        let withoutFirst = [history[0]] + history[3...]
        let limit = try length(withoutFirst, tokenizer) + 5
        let (encoding, dropped) = try ChatTemplate.chatML.encodeForReply(history, with: tokenizer, limit: limit, reserve: 5)
        #expect(dropped == 2)
        #expect(encoding.ids == (try ChatTemplate.chatML.encode(withoutFirst, with: tokenizer, addGenerationPrompt: true)).ids)
    }

    @Test func theLastMessageIsKeptEvenWhenItDoesNotFit() throws {
        let tokenizer = SharedTokenizers.tiny
        let (encoding, dropped) = try ChatTemplate.chatML.encodeForReply(history, with: tokenizer, limit: 3)
        #expect(dropped == 4)
        #expect(encoding.ids == (try ChatTemplate.chatML.encode([history[0], history[5]], with: tokenizer,
                                                                addGenerationPrompt: true)).ids)
        let alone = try ChatTemplate.chatML.encodeForReply([.user("hi")], with: tokenizer, limit: 1)
        #expect(alone.dropped == 0 && alone.encoding.ids.count > 1)
    }
}
