import Foundation

extension Tokenizer {
    /// The tokenizer as a Hugging Face `tokenizer.json` (the layout `tokenizers` 0.23 writes: merges
    /// as pairs, vocabulary in id order), which `tokenizers` loads and encodes identically.
    public func tokenizerJSON() -> Data {
        var w = JSONWriter()
        w.beginObject()
        w.key("version"); w.string("1.0")
        w.key("truncation"); w.raw("null")
        w.key("padding"); w.raw("null")
        w.key("added_tokens")
        w.beginArray()
        for token in addedTokens {
            w.item()
            w.beginObject()
            w.key("id"); w.raw(String(token.id))
            w.key("content"); w.string(token.content)
            for flag in ["single_word", "lstrip", "rstrip", "normalized"] {
                w.key(flag); w.raw("false")
            }
            w.key("special"); w.raw(token.special ? "true" : "false")
            w.endObject()
        }
        w.endArray()
        w.key("normalizer"); w.raw("null")
        w.key("pre_tokenizer")
        if preTokenizer.individualDigits {
            w.beginObject()
            w.key("type"); w.string("Sequence")
            w.key("pretokenizers")
            w.beginArray()
            w.item()
            w.beginObject()
            w.key("type"); w.string("Digits")
            w.key("individual_digits"); w.raw("true")
            w.endObject()
            w.item()
            writeByteLevel(&w, addPrefixSpace: preTokenizer.addPrefixSpace, useRegex: preTokenizer.useRegex)
            w.endArray()
            w.endObject()
        } else {
            writeByteLevel(&w, addPrefixSpace: preTokenizer.addPrefixSpace, useRegex: preTokenizer.useRegex)
        }
        w.key("post_processor"); w.raw("null")
        w.key("decoder")
        writeByteLevel(&w, addPrefixSpace: true, useRegex: true)
        w.key("model")
        w.beginObject()
        w.key("type"); w.string("BPE")
        w.key("dropout"); w.raw("null")
        w.key("unk_token")
        if let unknown = model.unknownID, let string = model.tokenStrings[Int(unknown)] {
            w.string(string)
        } else {
            w.raw("null")
        }
        w.key("continuing_subword_prefix"); w.raw("null")
        w.key("end_of_word_suffix"); w.raw("null")
        w.key("fuse_unk"); w.raw("false")
        w.key("byte_fallback"); w.raw("false")
        w.key("ignore_merges"); w.raw(model.ignoreMerges ? "true" : "false")
        w.key("vocab")
        w.beginObject()
        for (id, string) in model.tokenStrings.enumerated() {
            guard let string else { continue }
            w.key(string)
            w.raw(String(id))
        }
        w.endObject()
        w.key("merges")
        w.beginArray()
        for merge in model.merges {
            w.item()
            w.beginArray()
            w.item(); w.string(model.tokenStrings[Int(merge.left)]!)
            w.item(); w.string(model.tokenStrings[Int(merge.right)]!)
            w.endArray()
        }
        w.endArray()
        w.endObject()
        w.endObject()
        return Data(w.bytes)
    }

    /// Writes `tokenizerJSON()` to `url`.
    public func save(tokenizerJSON url: URL) throws(TokenizerError) {
        do {
            try tokenizerJSON().write(to: url, options: .atomic)
        } catch {
            throw TokenizerError.fileAccess(file: url.path, reason: "cannot be written (\(error.localizedDescription))")
        }
    }
}

private func writeByteLevel(_ w: inout JSONWriter, addPrefixSpace: Bool, useRegex: Bool) {
    w.beginObject()
    w.key("type"); w.string("ByteLevel")
    w.key("add_prefix_space"); w.raw(addPrefixSpace ? "true" : "false")
    w.key("trim_offsets"); w.raw("true")
    w.key("use_regex"); w.raw(useRegex ? "true" : "false")
    w.endObject()
}
