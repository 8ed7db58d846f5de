import Foundation

/// GPT-2's split pattern as Hugging Face tokenizer.json files spell it in a `Split` pre-tokenizer.
let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

extension Tokenizer {
    /// Loads a Hugging Face `tokenizer.json` (model type BPE, byte-level pre-tokenizer and decoder).
    ///
    /// The ids of the beginning, end and padding tokens come from a `tokenizer_config.json` in the
    /// same folder when there is one. A `post_processor` is ignored: `encode` never adds tokens the
    /// text does not contain.
    public convenience init(tokenizerJSON url: URL) throws(TokenizerError) {
        let bytes = try readFileBytes(url)
        let configURL = url.deletingLastPathComponent().appendingPathComponent("tokenizer_config.json")
        var config: JSONValue?
        if FileManager.default.fileExists(atPath: configURL.path) {
            config = try parseJSONDocument(try readFileBytes(configURL), file: configURL.path)
        }
        try self.init(tokenizerJSONBytes: bytes, file: url.path, config: config, configFile: configURL.path)
    }

    /// Loads `tokenizer.json` content from memory; `file` names it in error messages.
    public convenience init(tokenizerJSONData data: Data, file: String = "tokenizer.json") throws(TokenizerError) {
        try self.init(tokenizerJSONBytes: [UInt8](data), file: file, config: nil, configFile: "")
    }

    private convenience init(tokenizerJSONBytes bytes: [UInt8], file: String, config: JSONValue?,
                             configFile: String) throws(TokenizerError) {
        let root = try parseJSONDocument(bytes, file: file)
        guard case .object = root else {
            throw TokenizerError.invalidField(file: file, field: "(top level)", reason: "must be an object, found \(root.typeName)")
        }
        guard let model = root["model"], !model.isNull else { throw TokenizerError.missingField(file: file, field: "model") }
        let modelFields = JSONFields(model, file: file, path: "model")
        if let type = try modelFields.string("type"), type != "BPE" {
            throw TokenizerError.unsupported(file: file, feature: "model type \(String(reflecting: type)) (Rein reads BPE)")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let value = try modelFields.string(key), !value.isEmpty {
                throw TokenizerError.unsupported(file: file, feature: "model.\(key) \(String(reflecting: value))")
            }
        }
        switch model["dropout"] {
        case nil, .null?, .integer(0)?: break
        case let .double(p)? where p == 0: break
        default: throw TokenizerError.unsupported(file: file, feature: "BPE dropout")
        }

        // Vocabulary: keys stay as UTF-8 bytes.
        guard let vocab = model["vocab"] else { throw TokenizerError.missingField(file: file, field: "model.vocab") }
        let (tokenStrings, index) = try readVocabulary(vocab, file: file, field: "model.vocab")

        // Merges: "a b" strings (older files) or ["a", "b"] pairs (tokenizers 0.20 and later).
        var mergePairs: [(Int32, Int32)] = []
        if let merges = model["merges"], !merges.isNull {
            guard case let .array(list) = merges else {
                throw TokenizerError.invalidField(file: file, field: "model.merges", reason: "must be an array, found \(merges.typeName)")
            }
            mergePairs.reserveCapacity(list.count)
            for (k, entry) in list.enumerated() {
                let location = "merge \(k + 1)"
                let parts: ([UInt8], [UInt8])
                switch entry {
                case let .string(text):
                    guard let split = splitMerge(Array(text.utf8)) else {
                        throw TokenizerError.malformedMerge(file: file, location: location, text: text)
                    }
                    parts = split
                case let .array(pair):
                    guard pair.count == 2, case let .string(a) = pair[0], case let .string(b) = pair[1] else {
                        throw TokenizerError.malformedMerge(file: file, location: location, text: "an array that is not two strings")
                    }
                    parts = (Array(a.utf8), Array(b.utf8))
                default:
                    throw TokenizerError.malformedMerge(file: file, location: location, text: "a value that is \(entry.typeName)")
                }
                mergePairs.append(try resolveMerge(parts, index: index, file: file, location: location))
            }
        }

        var unknownID: Int32?
        if let unk = try modelFields.string("unk_token") {
            guard let id = index[Array(unk.utf8)] else {
                throw TokenizerError.invalidField(file: file, field: "model.unk_token", reason: "names \(String(reflecting: unk)), which is not in the vocabulary")
            }
            unknownID = id
        }
        let ignoreMerges = try modelFields.bool("ignore_merges") ?? false

        let addedTokens = try readAddedTokens(root["added_tokens"], file: file)
        if let normalizer = root["normalizer"], !normalizer.isNull {
            let type = (try? JSONFields(normalizer, file: file, path: "normalizer").string("type")) ?? nil
            throw TokenizerError.unsupported(file: file, feature: "normalizer \(type ?? "(unnamed)") (Rein's byte-level BPE takes text as it is)")
        }
        let preTokenizer = try readPreTokenizer(root["pre_tokenizer"], file: file)
        try checkDecoder(root["decoder"], file: file)

        let built = try buildModel(tokenStrings: tokenStrings, mergePairs: mergePairs, addedTokens: addedTokens,
                                   unknownID: unknownID, ignoreMerges: ignoreMerges, source: file)
        func specialID(_ key: String) throws(TokenizerError) -> Int32? {
            guard let config, let value = config[key], !value.isNull else { return nil }
            var content: String?
            if case let .string(s) = value { content = s }
            if case .object = value, case let .string(s)? = value["content"] { content = s }
            guard let content else {
                throw TokenizerError.invalidField(file: configFile, field: key, reason: "must be a string or an object with 'content'")
            }
            let bytes = Array(content.utf8)
            guard let id = addedTokens.first(where: { Array($0.content.utf8) == bytes })?.id ?? index[bytes] else {
                throw TokenizerError.invalidField(file: configFile, field: key, reason: "names \(String(reflecting: content)), which is not a token")
            }
            return id
        }
        self.init(model: built, preTokenizer: preTokenizer, addedTokens: addedTokens,
                  bos: try specialID("bos_token"), eos: try specialID("eos_token"), pad: try specialID("pad_token"))
    }

    /// Loads GPT-2's original files: `vocab.json` (`encoder.json`) and `merges.txt` (`vocab.bpe`,
    /// whose first line is a `#version` comment).
    ///
    /// - Parameter specialTokens: vocabulary entries to treat as special added tokens; the first one
    ///   present also becomes the beginning and end token, as `<|endoftext|>` is for GPT-2.
    public convenience init(vocabJSON: URL, merges mergesURL: URL,
                            specialTokens: [String] = ["<|endoftext|>"]) throws(TokenizerError) {
        let vocabFile = vocabJSON.path
        let root = try parseJSONDocument(try readFileBytes(vocabJSON), file: vocabFile)
        let (tokenStrings, index) = try readVocabulary(root, file: vocabFile, field: "(top level)")
        let mergesFile = mergesURL.path
        let text = try readFileBytes(mergesURL)
        if let offset = text.withUnsafeBufferPointer({ UTF8Scalars.firstInvalidOffset($0) }) {
            throw TokenizerError.invalidUTF8(file: mergesFile, offset: offset)
        }
        var mergePairs: [(Int32, Int32)] = []
        var lineNumber = 0
        for rawLine in text.split(separator: 0x0A, omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = Array(rawLine)
            if line.last == 0x0D { line.removeLast() }
            if line.isEmpty || (lineNumber == 1 && line.starts(with: Array("#version".utf8))) { continue }
            let location = "line \(lineNumber)"
            guard let parts = splitMerge(line) else {
                throw TokenizerError.malformedMerge(file: mergesFile, location: location, text: String(decoding: line, as: UTF8.self))
            }
            mergePairs.append(try resolveMerge(parts, index: index, file: mergesFile, location: location))
        }
        let added = specialTokens.compactMap { content in
            index[Array(content.utf8)].map { AddedToken(id: $0, content: content, special: true) }
        }
        let built = try buildModel(tokenStrings: tokenStrings, mergePairs: mergePairs, addedTokens: added,
                                   unknownID: nil, ignoreMerges: false, source: mergesFile)
        let endOfText = added.first?.id
        self.init(model: built, preTokenizer: .gpt2, addedTokens: added, bos: endOfText, eos: endOfText, pad: nil)
    }

    /// Builds a tokenizer from GGUF metadata arrays (`tokenizer.ggml.model = gpt2`).
    ///
    /// - Parameters:
    ///   - tokens: `tokenizer.ggml.tokens`, the vocabulary in byte-level form, by id.
    ///   - merges: `tokenizer.ggml.merges`, "left right" strings in rank order.
    ///   - tokenTypes: `tokenizer.ggml.token_type`; control tokens (3) become special added tokens
    ///     and user-defined tokens (4) plain added tokens.
    ///   - preTokenizer: from `tokenizer.ggml.pre`, see `PreTokenizer(ggufName:)`.
    ///   - bosTokenID, eosTokenID, padTokenID, unknownTokenID: the `tokenizer.ggml.*_token_id` values.
    public convenience init(
        ggufTokens tokens: [String], merges: [String], tokenTypes: [Int32]? = nil,
        preTokenizer: PreTokenizer = .gpt2, bosTokenID: Int32? = nil, eosTokenID: Int32? = nil,
        padTokenID: Int32? = nil, unknownTokenID: Int32? = nil
    ) throws(TokenizerError) {
        let source = "GGUF metadata"
        if let tokenTypes, tokenTypes.count != tokens.count {
            throw TokenizerError.invalidField(file: source, field: "tokenizer.ggml.token_type",
                                              reason: "has \(tokenTypes.count) entries for \(tokens.count) tokens")
        }
        let tokenStrings = tokens.map { Optional(Array($0.utf8)) }
        var index: [[UInt8]: Int32] = [:]
        index.reserveCapacity(tokens.count)
        for (id, string) in tokenStrings.enumerated() { index[string!] = Int32(id) }  // the last id wins, as in llama.cpp
        var mergePairs: [(Int32, Int32)] = []
        mergePairs.reserveCapacity(merges.count)
        for (k, merge) in merges.enumerated() {
            let location = "tokenizer.ggml.merges entry \(k + 1)"
            guard let parts = splitMerge(Array(merge.utf8)) else {
                throw TokenizerError.malformedMerge(file: source, location: location, text: merge)
            }
            mergePairs.append(try resolveMerge(parts, index: index, file: source, location: location))
        }
        var added: [AddedToken] = []
        for (id, type) in (tokenTypes ?? []).enumerated() where type == 3 || type == 4 {
            added.append(AddedToken(id: Int32(id), content: tokens[id], special: type == 3))
        }
        for (field, id) in [("bos", bosTokenID), ("eos", eosTokenID), ("padding", padTokenID), ("unknown", unknownTokenID)] {
            if let id, id < 0 || Int(id) >= tokens.count {
                throw TokenizerError.invalidField(file: source, field: "tokenizer.ggml.\(field)_token_id",
                                                  reason: "is \(id), outside the \(tokens.count) tokens")
            }
        }
        let built = try buildModel(tokenStrings: tokenStrings, mergePairs: mergePairs, addedTokens: added,
                                   unknownID: unknownTokenID, ignoreMerges: false, source: source)
        self.init(model: built, preTokenizer: preTokenizer, addedTokens: added,
                  bos: bosTokenID, eos: eosTokenID, pad: padTokenID)
    }
}

extension PreTokenizer {
    /// The pre-tokenizer for a GGUF `tokenizer.ggml.pre` name ("gpt2", "smollm"), or nil when Rein
    /// does not know it.
    public init?(ggufName: String) {
        switch ggufName {
        case "gpt2": self = .gpt2
        case "smollm": self = .smolLM2
        default: return nil
        }
    }
}

/// Typed access to the fields of one JSON object, with errors that name the file and field path.
private struct JSONFields {
    let value: JSONValue
    let file: String
    let path: String

    init(_ value: JSONValue, file: String, path: String = "") {
        self.value = value
        self.file = file
        self.path = path
    }

    private func name(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func string(_ key: String) throws(TokenizerError) -> String? {
        guard let v = value[key], !v.isNull else { return nil }
        guard case let .string(s) = v else {
            throw TokenizerError.invalidField(file: file, field: name(key), reason: "must be a string, found \(v.typeName)")
        }
        return s
    }

    func bool(_ key: String) throws(TokenizerError) -> Bool? {
        guard let v = value[key], !v.isNull else { return nil }
        guard case let .bool(b) = v else {
            throw TokenizerError.invalidField(file: file, field: name(key), reason: "must be true or false, found \(v.typeName)")
        }
        return b
    }

    func integer(_ key: String) throws(TokenizerError) -> Int? {
        guard let v = value[key], !v.isNull else { return nil }
        guard case let .integer(i) = v else {
            throw TokenizerError.invalidField(file: file, field: name(key), reason: "must be an integer, found \(v.typeName)")
        }
        return i
    }
}

/// A `{token: id}` object as (strings by id, bytes -> id).
private func readVocabulary(_ vocab: JSONValue, file: String, field: String) throws(TokenizerError)
    -> ([[UInt8]?], [[UInt8]: Int32]) {
    guard case let .object(members) = vocab else {
        throw TokenizerError.invalidField(file: file, field: field, reason: "must be an object of token to id, found \(vocab.typeName)")
    }
    var maxID = -1
    for member in members {
        guard case let .integer(id) = member.value, id >= 0, id < maxTokenID else {
            throw TokenizerError.invalidField(file: file, field: field,
                                              reason: "gives token \(String(reflecting: member.key)) an id that is not an integer in 0..<\(maxTokenID)")
        }
        maxID = max(maxID, id)
    }
    // Ids index arrays, so a handful of tokens with ids near the limit must not allocate for all of them.
    guard maxID < members.count + maxTokenIDGap else {
        throw TokenizerError.invalidField(file: file, field: field,
                                          reason: "has \(members.count) tokens but ids up to \(maxID); ids must be dense "
                                              + "(at most \(maxTokenIDGap) unused below the largest)")
    }
    var strings = [[UInt8]?](repeating: nil, count: maxID + 1)
    var index: [[UInt8]: Int32] = [:]
    index.reserveCapacity(members.count)
    for member in members {
        guard case let .integer(id) = member.value else { continue }
        let bytes = Array(member.key.utf8)
        if let existing = strings[id] {
            throw TokenizerError.invalidField(
                file: file, field: field,
                reason: "gives id \(id) to both \(String(reflecting: String(decoding: existing, as: UTF8.self))) and \(String(reflecting: member.key))")
        }
        if index[bytes] != nil {
            throw TokenizerError.invalidField(file: file, field: field, reason: "has the token \(String(reflecting: member.key)) twice")
        }
        strings[id] = bytes
        index[bytes] = Int32(id)
    }
    return (strings, index)
}

/// Splits "left right" at its only space; nil unless there are exactly two non-empty parts.
private func splitMerge(_ line: [UInt8]) -> ([UInt8], [UInt8])? {
    guard let space = line.firstIndex(of: 0x20), space > 0, space < line.count - 1,
          !line[(space + 1)...].contains(0x20) else { return nil }
    return (Array(line[..<space]), Array(line[(space + 1)...]))
}

private func resolveMerge(_ parts: ([UInt8], [UInt8]), index: [[UInt8]: Int32], file: String,
                          location: String) throws(TokenizerError) -> (Int32, Int32) {
    guard let left = index[parts.0] else {
        throw TokenizerError.unknownMergeToken(file: file, location: location, token: String(decoding: parts.0, as: UTF8.self))
    }
    guard let right = index[parts.1] else {
        throw TokenizerError.unknownMergeToken(file: file, location: location, token: String(decoding: parts.1, as: UTF8.self))
    }
    return (left, right)
}

private func readAddedTokens(_ value: JSONValue?, file: String) throws(TokenizerError) -> [AddedToken] {
    guard let value, !value.isNull else { return [] }
    guard case let .array(list) = value else {
        throw TokenizerError.invalidField(file: file, field: "added_tokens", reason: "must be an array, found \(value.typeName)")
    }
    var tokens: [AddedToken] = []
    for (k, entry) in list.enumerated() {
        let fields = JSONFields(entry, file: file, path: "added_tokens[\(k)]")
        guard let id = try fields.integer("id") else { throw TokenizerError.missingField(file: file, field: "added_tokens[\(k)].id") }
        guard let content = try fields.string("content") else {
            throw TokenizerError.missingField(file: file, field: "added_tokens[\(k)].content")
        }
        guard id >= 0 && id < maxTokenID else {
            throw TokenizerError.invalidField(file: file, field: "added_tokens[\(k)].id", reason: "is \(id), outside 0..<\(maxTokenID)")
        }
        tokens.append(AddedToken(id: Int32(id), content: content, special: try fields.bool("special") ?? false))
    }
    return tokens
}

/// Maps Hugging Face pre-tokenizer configurations onto `PreTokenizer`: `ByteLevel` alone, or a
/// `Sequence` of `Digits(individual_digits)` / `Split` with the GPT-2 or `\p{N}` pattern, then `ByteLevel`.
private func readPreTokenizer(_ value: JSONValue?, file: String) throws(TokenizerError) -> PreTokenizer {
    guard let value, !value.isNull else {
        throw TokenizerError.unsupported(file: file, feature: "pre_tokenizer null (Rein needs a ByteLevel pre-tokenizer)")
    }
    var steps = [value]
    let top = JSONFields(value, file: file, path: "pre_tokenizer")
    if try top.string("type") == "Sequence" {
        guard case let .array(list)? = value["pretokenizers"] else {
            throw TokenizerError.missingField(file: file, field: "pre_tokenizer.pretokenizers")
        }
        steps = list
    }
    var result = PreTokenizer(useRegex: false)
    var sawByteLevel = false
    for (k, step) in steps.enumerated() {
        let fields = JSONFields(step, file: file, path: steps.count > 1 ? "pre_tokenizer.pretokenizers[\(k)]" : "pre_tokenizer")
        let type = try fields.string("type") ?? "(unnamed)"
        switch type {
        case "ByteLevel":
            sawByteLevel = true
            // Hugging Face's defaults when a field is absent.
            result.addPrefixSpace = try fields.bool("add_prefix_space") ?? true
            if try fields.bool("use_regex") ?? true { result.useRegex = true }
        case "Digits":
            guard try fields.bool("individual_digits") == true else {
                throw TokenizerError.unsupported(file: file, feature: "pre-tokenizer Digits without individual_digits")
            }
            guard !result.useRegex else {
                throw TokenizerError.unsupported(file: file, feature: "pre-tokenizer Digits after the GPT-2 split")
            }
            result.individualDigits = true
        case "Split":
            var pattern: String?
            if case let .string(p)? = step["pattern"]?["Regex"] { pattern = p }
            let behavior = try fields.string("behavior") ?? "Isolated"
            let invert = try fields.bool("invert") ?? false
            guard behavior == "Isolated", !invert, let pattern, pattern == gpt2Pattern || pattern == #"\p{N}"# else {
                throw TokenizerError.unsupported(
                    file: file, feature: "pre-tokenizer Split \(pattern.map { String(reflecting: $0) } ?? "(not a regex)") with behavior \(behavior)\(invert ? ", inverted" : "") (Rein knows the GPT-2 pattern and \\p{N})")
            }
            if pattern == gpt2Pattern {
                result.useRegex = true
            } else {
                guard !result.useRegex else {
                    throw TokenizerError.unsupported(file: file, feature: "pre-tokenizer Split \\p{N} after the GPT-2 split")
                }
                result.individualDigits = true
            }
        default:
            throw TokenizerError.unsupported(file: file, feature: "pre-tokenizer \(type)")
        }
    }
    guard sawByteLevel else {
        throw TokenizerError.unsupported(file: file, feature: "pre_tokenizer without ByteLevel (Rein's BPE is byte-level)")
    }
    if result.addPrefixSpace && result.individualDigits {
        throw TokenizerError.unsupported(file: file, feature: "ByteLevel add_prefix_space together with Digits")
    }
    return result
}

private func checkDecoder(_ value: JSONValue?, file: String) throws(TokenizerError) {
    guard let value, !value.isNull else { return }
    let type = try JSONFields(value, file: file, path: "decoder").string("type")
    if type == "ByteLevel" { return }
    if type == "Sequence", case let .array(list)? = value["decoders"],
       list.allSatisfy({ if case .string("ByteLevel")? = $0["type"] { return true } else { return false } }) {
        return
    }
    throw TokenizerError.unsupported(file: file, feature: "decoder \(type ?? "(unnamed)") (Rein decodes byte-level BPE)")
}
