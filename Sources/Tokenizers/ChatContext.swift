extension ChatTemplate {
    /// Encodes a conversation for the model's next reply (with the generation prompt), dropping the
    /// oldest turns until the ids plus `reserve` (room for the reply) fit in `limit` (the model's
    /// context).
    ///
    /// A leading system message is always kept; after it, messages are dropped from the front up to
    /// the next user message, so turns go whole. The last message is never dropped: when it alone
    /// does not fit, the returned ids are over the limit and the caller decides what to do.
    ///
    /// - Returns: the encoding and how many messages (after the system message) were dropped.
    public func encodeForReply(_ messages: [ChatMessage], with tokenizer: Tokenizer, limit: Int,
                               reserve: Int = 0) throws(TokenizerError) -> (encoding: ChatEncoding, dropped: Int) {
        let system = messages.first?.role == "system" ? Array(messages.prefix(1)) : []
        let turns = Array(messages.dropFirst(system.count))
        var dropped = 0
        while true {
            let encoding = try encode(system + turns[dropped...], with: tokenizer, addGenerationPrompt: true)
            if encoding.ids.count + reserve <= limit || dropped >= turns.count - 1 { return (encoding, dropped) }
            dropped += 1
            while dropped < turns.count - 1 && turns[dropped].role != "user" { dropped += 1 }
        }
    }
}
