import Checkpoints
import Foundation
import NN
import Testing
import TensorCore
import Tokenizers

// Files built to make a reader allocate or loop without bound: each must be refused with a message
// naming the file and the field, before anything the size of the claim is allocated.

private func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
private func ggufString(_ s: String) -> [UInt8] { le(UInt64(s.utf8.count)) + Array(s.utf8) }

private func scratch() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rein-hostile-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// The message of what `body` throws, or nil when it returns.
private func message(_ body: () throws -> Void) -> String? {
    do { try body(); return nil } catch { return "\(error)" }
}

@Suite struct HostileFileTests {
    @Test func aBillionLayerConfigIsRefusedBeforeAllocating() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = #"{"model_type": "llama", "vocab_size": 49152, "hidden_size": 576, "num_hidden_layers": 1000000000,"#
            + #" "num_attention_heads": 9, "num_key_value_heads": 3, "intermediate_size": 1536, "max_position_embeddings": 2048}"#
        try Data(config.utf8).write(to: dir.appendingPathComponent("config.json"))
        let text = try #require(message { _ = try ModelCheckpoint.loadHuggingFace(directory: dir) })
        #expect(text.contains("config.json"), "\(text)")
        #expect(text.contains("num_hidden_layers is 1000000000"), "\(text)")
        #expect(text.contains("limit of \(ModelConfig.Limits.layers)"), "\(text)")
    }

    @Test(arguments: [
        (#""vocab_size": 1099511627776"#, "vocab_size", "below 2^31"),
        (#""vocab_size": 1e300"#, "vocab_size", "an integer"),
        (#""vocab_size": 100000000"#, "vocab_size is 100000000", "limit"),
        (#""hidden_size": 1000000"#, "hidden_size is 1000000", "limit"),
        (#""num_attention_heads": 0"#, "num_attention_heads", "positive"),
        (#""intermediate_size": -5"#, "intermediate_size", "positive"),
        (#""max_position_embeddings": 9999999999"#, "max_position_embeddings", "below 2^31"),
    ])
    func absurdSizesNameTheirKey(field: String, key: String, expected: String) throws {
        var fields = [
            "model_type": #""llama""#, "vocab_size": "64", "hidden_size": "16", "num_hidden_layers": "2",
            "num_attention_heads": "2", "intermediate_size": "32", "max_position_embeddings": "32",
        ]
        let name = String(field.split(separator: ":")[0].dropFirst().dropLast())
        fields[name] = String(field.split(separator: ":", maxSplits: 1)[1])
        let json = "{" + fields.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ") + "}"
        let text = try #require(message { _ = try ModelConfig(huggingFaceJSON: Data(json.utf8), file: "cfg/config.json") })
        #expect(text.contains("cfg/config.json"), "\(text)")
        #expect(text.contains(key), "\(text)")
        #expect(text.contains(expected), "\(text)")
    }

    @Test func aConfigLargerThanItsWeightsIsRefused() throws {
        // Every size within the limits, but 4 GB of parameters against a 100-byte weights file.
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let config = #"{"model_type": "llama", "vocab_size": 32000, "hidden_size": 4096, "num_hidden_layers": 32,"#
            + #" "num_attention_heads": 32, "intermediate_size": 11008, "max_position_embeddings": 2048}"#
        try Data(config.utf8).write(to: dir.appendingPathComponent("config.json"))
        try Data(le(UInt64(2)) + Array("{}".utf8)).write(to: dir.appendingPathComponent("model.safetensors"))
        let text = try #require(message { _ = try ModelCheckpoint.loadHuggingFace(directory: dir) })
        #expect(text.contains("config.json"), "\(text)")
        #expect(text.contains("parameters"), "\(text)")
        #expect(text.contains("bytes of weights"), "\(text)")
    }

    @Test func aGGUFTensorCountOf2To40IsRefused() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("huge-count.gguf")
        try Data(Array("GGUF".utf8) + le(UInt32(3)) + le(UInt64(1) << 40) + le(UInt64(0)) + [UInt8](repeating: 0, count: 64))
            .write(to: url)
        let text = try #require(message { _ = try GGUFFile(url: url) })
        #expect(text.contains("huge-count.gguf"), "\(text)")
        #expect(text.contains("the tensor count (1099511627776)"), "\(text)")
        #expect(text.contains("at byte 8"), "\(text)")
    }

    @Test func aGGUFStringOrArrayLengthPastTheFileIsRefused() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let head = Array("GGUF".utf8) + le(UInt32(3)) + le(UInt64(0)) + le(UInt64(1))
        let cases: [([UInt8], String)] = [
            (head + le(UInt64(1) << 62) + [UInt8](repeating: 0, count: 16), "the key of metadata entry 0"),
            (head + ggufString("k") + le(UInt32(8)) + le(UInt64.max), "the value of \"k\""),
            (head + ggufString("k") + le(UInt32(9)) + le(UInt32(10)) + le(UInt64(1) << 61), "the length of \"k\""),
            (head + ggufString("k") + le(UInt32(9)) + le(UInt32(9)) + le(UInt64(1) << 40), "the length of \"k\""),
        ]
        for (i, (bytes, expected)) in cases.enumerated() {
            let url = dir.appendingPathComponent("case\(i).gguf")
            try Data(bytes).write(to: url)
            let text = try #require(message { _ = try GGUFFile(url: url) })
            #expect(text.contains("case\(i).gguf") && text.contains(expected) && text.contains("runs past the end"), "\(text)")
        }
    }

    @Test func aGGUFModelLargerThanItsFileIsRefused() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("big.gguf")
        let entries: [(String, UInt32, [UInt8])] = [
            ("general.architecture", 8, ggufString("llama")), ("llama.attention.head_count", 4, le(UInt32(32))),
            ("llama.embedding_length", 4, le(UInt32(4096))), ("llama.block_count", 4, le(UInt32(1000))),
            ("llama.feed_forward_length", 4, le(UInt32(11008))), ("llama.context_length", 4, le(UInt32(2048))),
            ("llama.vocab_size", 4, le(UInt32(32000))),
        ]
        var bytes = Array("GGUF".utf8) + le(UInt32(3)) + le(UInt64(0)) + le(UInt64(entries.count))
        for (key, type, value) in entries { bytes += ggufString(key) + le(type) + value }
        try Data(bytes).write(to: url)
        let text = try #require(message { _ = try ModelCheckpoint.load(url.path) })
        #expect(text.contains("big.gguf") && text.contains("parameters"), "\(text)")

        // 10^9 layers names the GGUF key.
        bytes = Array("GGUF".utf8) + le(UInt32(3)) + le(UInt64(0)) + le(UInt64(entries.count))
        for (key, type, value) in entries {
            bytes += ggufString(key) + le(type) + (key == "llama.block_count" ? le(UInt32(1_000_000_000)) : value)
        }
        try Data(bytes).write(to: url)
        let layers = try #require(message { _ = try ModelCheckpoint.load(url.path) })
        #expect(layers.contains("llama.block_count is 1000000000"), "\(layers)")

        // Zero heads is an error, not a division by zero.
        bytes = Array("GGUF".utf8) + le(UInt32(3)) + le(UInt64(0)) + le(UInt64(entries.count))
        for (key, type, value) in entries {
            bytes += ggufString(key) + le(type) + (key == "llama.attention.head_count" ? le(UInt32(0)) : value)
        }
        try Data(bytes).write(to: url)
        let heads = try #require(message { _ = try ModelCheckpoint.load(url.path) })
        #expect(heads.contains("llama.attention.head_count"), "\(heads)")
    }

    @Test func aSparseVocabularyIsRefusedBeforeAllocatingForEveryId() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("tokenizer.json")
        let json = #"{"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {"a": 0, "b": 16777000}, "merges": []}}"#
        try Data(json.utf8).write(to: url)
        let text = try #require(message { _ = try Tokenizer(tokenizerJSON: url) })
        #expect(text.contains("tokenizer.json") && text.contains("ids up to 16777000") && text.contains("dense"), "\(text)")

        let added = #"{"added_tokens": [{"id": 16777000, "content": "<x>", "special": true}], "#
            + #""pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}"#
        try Data(added.utf8).write(to: url)
        let addedText = try #require(message { _ = try Tokenizer(tokenizerJSON: url) })
        #expect(addedText.contains("added_tokens") && addedText.contains("16777000"), "\(addedText)")
    }
}
