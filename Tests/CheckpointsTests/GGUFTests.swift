import Checkpoints
import Foundation
import Testing
import TensorCore

// MARK: A GGUF writer for building test files

private func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian, Array.init) }
private func ggufString(_ s: String) -> [UInt8] { le(UInt64(s.utf8.count)) + Array(s.utf8) }

private func encode(_ value: GGUFValue) -> [UInt8] {
    switch value {
    case let .uint8(v): le(v)
    case let .int8(v): le(v)
    case let .uint16(v): le(v)
    case let .int16(v): le(v)
    case let .uint32(v): le(v)
    case let .int32(v): le(v)
    case let .float32(v): le(v.bitPattern)
    case let .bool(v): [v ? 1 : 0]
    case let .string(v): ggufString(v)
    case let .array(type, values): le(type.rawValue) + le(UInt64(values.count)) + values.flatMap(encode)
    case let .uint64(v): le(v)
    case let .int64(v): le(v)
    case let .float64(v): le(v.bitPattern)
    }
}

/// Lays out a GGUF file: header, metadata, tensor infos, padding, then each tensor's bytes at the
/// next multiple of the alignment (the last one unpadded, so it ends the file).
private struct GGUFBuilder {
    struct TensorEntry {
        var name: String
        var dimensions: [Int]
        var type: UInt32
        var data: [UInt8]
    }

    var version: UInt32 = 3
    var metadata: [(String, GGUFValue)] = []
    var tensors: [TensorEntry] = []
    var alignment = 32

    mutating func add(_ name: String, _ dimensions: [Int], _ type: GGMLType, _ data: [UInt8]) {
        tensors.append(TensorEntry(name: name, dimensions: dimensions, type: type.rawValue, data: data))
    }

    func bytes() -> [UInt8] {
        var out = Array("GGUF".utf8) + le(version) + le(UInt64(tensors.count)) + le(UInt64(metadata.count))
        for (key, value) in metadata { out += ggufString(key) + le(value.type.rawValue) + encode(value) }
        var offset = 0
        for t in tensors {
            out += ggufString(t.name) + le(UInt32(t.dimensions.count)) + t.dimensions.flatMap { le(UInt64($0)) }
            out += le(t.type) + le(UInt64(offset))
            offset = padded(offset + t.data.count)
        }
        out += [UInt8](repeating: 0, count: padded(out.count) - out.count)
        for (i, t) in tensors.enumerated() {
            out += t.data
            if i < tensors.count - 1 { out += [UInt8](repeating: 0, count: padded(out.count) - out.count) }
        }
        return out
    }

    private func padded(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }
}

// Quantized blocks from chosen fp16 scales and codes.
private func q8_0Block(d: UInt16, _ q: [Int8]) -> [UInt8] { le(d) + q.map { UInt8(bitPattern: $0) } }
private func nibbles(_ q: [UInt8]) -> [UInt8] { (0..<16).map { q[$0] | q[$0 + 16] << 4 } }
private func q4_0Block(d: UInt16, _ q: [UInt8]) -> [UInt8] { le(d) + nibbles(q) }
private func q4_1Block(d: UInt16, m: UInt16, _ q: [UInt8]) -> [UInt8] { le(d) + le(m) + nibbles(q) }

// fp16 bit patterns used as scales, with their exact values.
private let third: (bits: UInt16, value: Float) = (0x3555, 0.333251953125)
private let half: (bits: UInt16, value: Float) = (0x3800, 0.5)
private let minusOneAndHalf: (bits: UInt16, value: Float) = (0xBE00, -1.5)
private let tiny: (bits: UInt16, value: Float) = (0x0001, 0x1p-24)

private func temporaryFile(_ bytes: [UInt8], name: String = "test.gguf") throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rein-gguf-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let url = dir.appendingPathComponent(name)
    try Data(bytes).write(to: url)
    return url
}

private func remove(_ url: URL) { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }

/// The error from opening the file and dequantizing every tensor, or nil when all of it reads.
private func readError(_ url: URL) -> GGUFError? {
    do throws(GGUFError) {
        let file = try GGUFFile(url: url)
        for name in file.tensorNames { _ = try file.tensor(name) }
        return nil
    } catch {
        return error
    }
}

// MARK: Reading

/// A file with every metadata type and every supported tensor type, with known values.
private func sampleFile() -> (GGUFBuilder, expected: [String: (shape: [Int], values: [Float])]) {
    var b = GGUFBuilder()
    b.metadata = [
        ("general.architecture", .string("llama")),
        ("u8", .uint8(200)), ("i8", .int8(-100)), ("u16", .uint16(60000)), ("i16", .int16(-30000)),
        ("llama.block_count", .uint32(30)), ("i32", .int32(-7)), ("llama.rope.freq_base", .float32(100000)),
        ("flag", .bool(true)), ("u64", .uint64(1 << 40)), ("i64", .int64(-(1 << 40))), ("f64", .float64(0.1)),
        ("tokenizer.ggml.tokens", .array(elementType: .string, [.string("<|endoftext|>"), .string("Ġthe"),
                                                                .string("é"), .string("")])),
        ("tokenizer.ggml.token_type", .array(elementType: .int32, [.int32(3), .int32(1), .int32(1), .int32(1)])),
        ("tokenizer.ggml.scores", .array(elementType: .float32, [.float32(0), .float32(-1.5)])),
        ("nested", .array(elementType: .array, [.array(elementType: .uint8, [.uint8(1), .uint8(2)]),
                                                 .array(elementType: .string, [])])),
        ("empty", .array(elementType: .uint64, [])),
    ]
    var expected: [String: (shape: [Int], values: [Float])] = [:]

    // F32, ne0 = 3 (contiguous), ne1 = 2: row-major [2, 3].
    let f32: [Float] = [1, 2, 3, -4, 0.5, .infinity]
    b.add("f32", [3, 2], .f32, f32.flatMap { le($0.bitPattern) })
    expected["f32"] = ([2, 3], f32)

    let f16Bits: [UInt16] = [0x3C00, 0xC000, third.bits, tiny.bits]
    b.add("f16", [4], .f16, f16Bits.flatMap(le))
    expected["f16"] = ([4], [1, -2, third.value, tiny.value])

    let bf16Bits: [UInt16] = [0x3F80, 0xC0A0]
    b.add("bf16", [2], .bf16, bf16Bits.flatMap(le))
    expected["bf16"] = ([2], [1, -5])

    // Q8_0, two rows of two blocks: [2, 64].
    var q8Data: [UInt8] = []
    var q8Values: [Float] = []
    for (block, d) in [third, half, minusOneAndHalf, tiny].enumerated() {
        let q = (0..<32).map { Int8(truncatingIfNeeded: $0 * 8 - 128 + block) }
        q8Data += q8_0Block(d: d.bits, q)
        q8Values += q.map { d.value * Float($0) }
    }
    b.add("q8_0", [64, 2], .q8_0, q8Data)
    expected["q8_0"] = ([2, 64], q8Values)

    // Q4_0, three rows of one block: [3, 32].
    var q40Data: [UInt8] = []
    var q40Values: [Float] = []
    for (block, d) in [third, half, minusOneAndHalf].enumerated() {
        let q = (0..<32).map { UInt8(($0 * 7 + block) % 16) }
        q40Data += q4_0Block(d: d.bits, q)
        q40Values += q.map { d.value * Float(Int($0) - 8) }
    }
    b.add("q4_0", [32, 3], .q4_0, q40Data)
    expected["q4_0"] = ([3, 32], q40Values)

    // Q4_1, one row of two blocks: [64].
    var q41Data: [UInt8] = []
    var q41Values: [Float] = []
    for (block, (d, m)) in [(third, minusOneAndHalf), (minusOneAndHalf, half)].enumerated() {
        let q = (0..<32).map { UInt8(($0 * 5 + block) % 16) }
        q41Data += q4_1Block(d: d.bits, m: m.bits, q)
        q41Values += q.map { d.value * Float($0) + m.value }
    }
    b.add("q4_1", [64], .q4_1, q41Data)
    expected["q4_1"] = ([64], q41Values)
    return (b, expected)
}

@Test func readsMetadataAndDequantizesExactly() throws {
    let (builder, expected) = sampleFile()
    let url = try temporaryFile(builder.bytes())
    defer { remove(url) }
    let gguf = try GGUFFile(url: url)

    #expect(gguf.version == 3)
    #expect(gguf.alignment == 32)
    #expect(gguf.metadataKeys == builder.metadata.map(\.0))
    for (key, value) in builder.metadata { #expect(gguf.value(key) == value, "\(key)") }
    #expect(try gguf.string("general.architecture") == "llama")
    #expect(try gguf.int("llama.block_count") == 30)
    #expect(try gguf.int("i8") == -100)
    #expect(try gguf.int("u64") == 1 << 40)
    #expect(try gguf.float("llama.rope.freq_base") == 100000)
    #expect(try gguf.bool("flag"))
    #expect(try gguf.strings("tokenizer.ggml.tokens") == ["<|endoftext|>", "Ġthe", "é", ""])
    #expect(try gguf.ints("tokenizer.ggml.token_type") == [3, 1, 1, 1])
    #expect(try gguf.floats("tokenizer.ggml.scores") == [0, -1.5])
    #expect(try gguf.ints("empty") == [])

    #expect(gguf.tensorNames == ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1"])
    for (name, (shape, values)) in expected {
        let t = try gguf.tensor(name)
        #expect(t.shape == shape, "\(name)")
        #expect(t.name == name)
        #expect(t.values.map(\.bitPattern) == values.map(\.bitPattern), "\(name)")
    }
    let info = try gguf.info("q8_0")
    #expect(info.dimensions == [64, 2] && info.shape == [2, 64] && info.type == .q8_0 && info.byteCount == 136)
    #expect(info.fileOffset % 32 == 0)
}

@Test func metadataAccessorsSayWhatIsWrong() throws {
    let url = try temporaryFile(sampleFile().0.bytes())
    defer { remove(url) }
    let gguf = try GGUFFile(url: url)
    #expect { try gguf.int("general.architecture") } throws: { error in
        guard case .wrongValueType(_, "general.architecture", "an integer", _) = error as? GGUFError else { return false }
        return "\(error)".contains("test.gguf")
    }
    #expect { try gguf.strings("tokenizer.ggml.token_type") } throws: { error in
        "\(error)".contains("an array of 4 int32")
    }
    #expect { try gguf.string("tokenizer.chat_template") } throws: { error in
        guard case .missingKey(_, "tokenizer.chat_template") = error as? GGUFError else { return false }
        return true
    }
    #expect { try gguf.tensor("output.weight") } throws: { error in
        guard case .missingTensor(_, "output.weight") = error as? GGUFError else { return false }
        return true
    }
}

@Test func readsVersion2AndCustomAlignment() throws {
    var b = sampleFile().0
    b.version = 2
    b.alignment = 64
    b.metadata.append(("general.alignment", .uint32(64)))
    let url = try temporaryFile(b.bytes())
    defer { remove(url) }
    let gguf = try GGUFFile(url: url)
    #expect(gguf.version == 2 && gguf.alignment == 64)
    #expect(gguf.tensorInfos.allSatisfy { $0.fileOffset % 64 == 0 })
    #expect(try gguf.tensor("q4_1").values == sampleFile().expected["q4_1"]!.values)
}

// MARK: Errors

@Test func rejectsWrongMagicAndVersion() throws {
    var bytes = sampleFile().0.bytes()
    bytes[0] = UInt8(ascii: "X")
    let badMagic = try temporaryFile(bytes)
    defer { remove(badMagic) }
    guard case .notGGUF = try #require(readError(badMagic)) else { Issue.record("bad magic opened"); return }

    for (version, words) in [(UInt32(1), "versions 2 and 3"), (3 << 24, "big-endian"), (4, "version 4")] {
        var b = sampleFile().0
        b.version = version
        let url = try temporaryFile(b.bytes())
        defer { remove(url) }
        let error = try #require(readError(url))
        guard case .unsupportedVersion = error else { Issue.record("version \(version) opened"); continue }
        #expect(error.description.contains(words), "\(error)")
    }
}

@Test func everyTruncationIsATypedError() throws {
    let whole = sampleFile().0.bytes()
    let url = try temporaryFile(whole)
    defer { remove(url) }
    #expect(readError(url) == nil)
    for length in 0..<whole.count {
        try Data(whole.prefix(length)).write(to: url)
        let error = try #require(readError(url), "a file cut to \(length) bytes read")
        switch error {
        case .truncated, .tensorOutOfBounds, .notGGUF: break
        default: Issue.record("cut to \(length): \(error)")
        }
        #expect(error.description.contains("test.gguf"))
    }
}

@Test func unsupportedTypesAreNamedWhenRead() throws {
    var b = sampleFile().0
    b.tensors.append(.init(name: "blk.0.ffn_down.weight", dimensions: [256, 1], type: 13, data: [0, 0]))
    b.tensors.append(.init(name: "odd", dimensions: [4], type: 99, data: [0]))
    let url = try temporaryFile(b.bytes())
    defer { remove(url) }
    let gguf = try GGUFFile(url: url)
    #expect(try gguf.tensor("q8_0").shape == [2, 64])
    #expect(try gguf.info("blk.0.ffn_down.weight").byteCount == nil)
    #expect { try gguf.tensor("blk.0.ffn_down.weight") } throws: { error in
        guard case .unsupportedType(_, "blk.0.ffn_down.weight", GGMLType(rawValue: 13)) = error as? GGUFError
        else { return false }
        let text = "\(error)"
        return text.contains("Q5_K (type 13)") && text.contains("supported: F32") && text.contains("test.gguf")
    }
    #expect { try gguf.tensor("odd") } throws: { error in "\(error)".contains("unknown (type 99)") }
}

/// A malformed file, the error it must produce, and a phrase its message must contain.
struct BadGGUF: Sendable, CustomTestStringConvertible {
    let label: String
    let bytes: [UInt8]
    let mentions: String
    let matches: @Sendable (GGUFError) -> Bool
    var testDescription: String { label }
}

private func modified(_ change: (inout GGUFBuilder) -> Void) -> [UInt8] {
    var b = sampleFile().0
    change(&b)
    return b.bytes()
}

/// The header of a file with one metadata entry whose key length is `length` (no key follows).
private let absurdKeyLength = Array("GGUF".utf8) + le(UInt32(3)) + le(UInt64(0)) + le(UInt64(1))
    + le(UInt64(1) << 60) + Array("general".utf8)

let badFiles: [BadGGUF] = [
    BadGGUF(label: "invalid UTF-8 key",
            bytes: modified { $0.metadata = [("k", .uint8(1))] }.enumerated().map { $0.offset == 32 ? 0xFF : $0.element },
            mentions: "not valid UTF-8") {
        if case .invalidUTF8(_, 24, _) = $0 { true } else { false }
    },
    BadGGUF(label: "absurd string length", bytes: absurdKeyLength, mentions: "the key of metadata entry 0") {
        if case .truncated(_, 24, _) = $0 { true } else { false }
    },
    BadGGUF(label: "absurd tensor count",
            bytes: Array("GGUF".utf8) + le(UInt32(3)) + le(UInt64.max) + le(UInt64(0)), mentions: "tensor count") {
        if case .truncated = $0 { true } else { false }
    },
    BadGGUF(label: "absurd array length",
            bytes: modified { $0.metadata = [("a", .array(elementType: .uint32, [.uint32(1)]))] }
                .enumerated().map { $0.offset == 48 ? 0xFF : $0.element },
            mentions: "the length of \"a\"") {
        if case .truncated = $0 { true } else { false }
    },
    BadGGUF(label: "unknown value type",
            bytes: modified { $0.metadata = [("k", .uint8(1))] }.enumerated().map { $0.offset == 33 ? 77 : $0.element },
            mentions: "unknown value type 77") {
        if case .invalidMetadata(_, "k", _) = $0 { true } else { false }
    },
    BadGGUF(label: "bool not 0 or 1",
            bytes: modified { $0.metadata = [("b", .bool(true))] }.enumerated().map { $0.offset == 37 ? 2 : $0.element },
            mentions: "0 or 1") {
        if case .invalidMetadata(_, "b", _) = $0 { true } else { false }
    },
    BadGGUF(label: "duplicate key", bytes: modified { $0.metadata += [("flag", .bool(false))] },
            mentions: "twice") {
        if case .invalidMetadata(_, "flag", _) = $0 { true } else { false }
    },
    BadGGUF(label: "alignment not a power of two",
            bytes: modified { $0.metadata.append(("general.alignment", .uint32(24))) }, mentions: "power of two") {
        if case .invalidMetadata(_, "general.alignment", _) = $0 { true } else { false }
    },
    BadGGUF(label: "tensor past the end of the file",
            bytes: modified { $0.tensors[5].dimensions = [96] }, mentions: "runs past the end") {
        if case .tensorOutOfBounds(_, "q4_1", _, _) = $0 { true } else { false }
    },
    BadGGUF(label: "row length not a multiple of the block",
            bytes: modified { $0.tensors[3].dimensions = [48, 2] }, mentions: "blocks of 32") {
        if case .invalidTensorInfo(_, "q8_0", _) = $0 { true } else { false }
    },
    BadGGUF(label: "too many dimensions",
            bytes: modified { $0.tensors[0].dimensions = [1, 1, 1, 1, 6] }, mentions: "at most 4") {
        if case .invalidTensorInfo(_, "f32", _) = $0 { true } else { false }
    },
    BadGGUF(label: "duplicate tensor name", bytes: modified { $0.tensors[1].name = "f32" }, mentions: "twice") {
        if case .invalidTensorInfo(_, "f32", _) = $0 { true } else { false }
    },
    BadGGUF(label: "overlapping tensors", bytes: modified { $0.tensors[0].dimensions = [3, 20] }, mentions: "overlap") {
        if case .overlappingTensors(_, "f32", "f16") = $0 { true } else { false }
    },
    BadGGUF(label: "dimension too large",
            bytes: modified { $0.tensors[0].dimensions = [1 << 62, 1 << 62] }, mentions: "too large") {
        if case .invalidTensorInfo(_, "f32", _) = $0 { true } else { false }
    },
]

@Test(arguments: badFiles)
func malformedFileGivesTypedError(_ bad: BadGGUF) throws {
    let url = try temporaryFile(bad.bytes)
    defer { remove(url) }
    let error = try #require(readError(url))
    #expect(bad.matches(error), "got: \(error)")
    #expect(error.description.contains(url.path))
    #expect(error.description.contains(bad.mentions), "got: \(error)")
}

@Test func misalignedTensorOffsetIsRejected() throws {
    var bytes = sampleFile().0.bytes()
    // The f32 tensor's u64 offset is the last field of the first tensor info; make it 4.
    let name = Array("f32".utf8)
    let at = (0..<bytes.count).first { bytes[$0..<min($0 + 3, bytes.count)].elementsEqual(name) }!
    let offsetField = at + 3 + 4 + 2 * 8 + 4
    bytes[offsetField] = 4
    let url = try temporaryFile(bytes)
    defer { remove(url) }
    guard case .invalidTensorInfo(_, "f32", let reason) = try #require(readError(url)) else {
        Issue.record("a misaligned offset opened")
        return
    }
    #expect(reason.contains("not a multiple of the alignment 32"))
}

@Test func randomCorruptionNeverCrashes() throws {
    let whole = sampleFile().0.bytes()
    let url = try temporaryFile(whole)
    defer { remove(url) }
    var rng = RNG(seed: 7)
    let headerEnd = whole.count - 400  // the tensor data is the last few hundred bytes
    for _ in 0..<300 {
        var bytes = whole
        for _ in 0..<Int(rng.next() % 4 + 1) {
            bytes[Int(rng.next() % UInt64(headerEnd))] = UInt8(truncatingIfNeeded: rng.next())
        }
        try Data(bytes).write(to: url)
        _ = readError(url)  // any outcome but a crash
    }
}

// MARK: The real SmolLM2 file

private let smolLM2 = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")

@Test(.enabled(if: FileManager.default.fileExists(atPath: smolLM2.path)))
func readsSmolLM2() throws {
    let start = ContinuousClock.now
    let gguf = try GGUFFile(url: smolLM2)
    let parsed = ContinuousClock.now
    #expect(gguf.version == 3)
    #expect(try gguf.string("general.architecture") == "llama")
    #expect(try gguf.int("llama.block_count") == 30)
    #expect(try gguf.int("llama.embedding_length") == 576)
    #expect(try gguf.int("llama.feed_forward_length") == 1536)
    #expect(try gguf.int("llama.attention.head_count") == 9)
    #expect(try gguf.int("llama.attention.head_count_kv") == 3)
    #expect(try gguf.float("llama.rope.freq_base") == 100000)
    #expect(try gguf.float("llama.attention.layer_norm_rms_epsilon") == 1e-5)
    #expect(try gguf.string("tokenizer.ggml.model") == "gpt2")
    #expect(try gguf.string("tokenizer.ggml.pre") == "smollm")
    let tokens = try gguf.strings("tokenizer.ggml.tokens")
    #expect(tokens.count == 49152)
    #expect(Array(tokens.prefix(3)) == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    #expect(try gguf.strings("tokenizer.ggml.merges").count == 48900)
    #expect(try gguf.int("tokenizer.ggml.bos_token_id") == 1)
    #expect(try gguf.int("tokenizer.ggml.eos_token_id") == 2)
    #expect(try gguf.string("tokenizer.chat_template").contains("<|im_start|>"))

    #expect(gguf.tensorInfos.count == 272)
    #expect(try gguf.info("token_embd.weight").shape == [49152, 576])
    #expect(try gguf.info("token_embd.weight").type == .q8_0)
    #expect(try gguf.info("blk.0.attn_q.weight").type == .q4_1)
    #expect(try gguf.info("blk.0.attn_k.weight").shape == [192, 576])
    #expect(try gguf.info("blk.0.ffn_down.weight").shape == [576, 1536])
    #expect(try gguf.info("output_norm.weight").type == .f32)

    // Spot values from an independent NumPy dequantization of the same file.
    let embedding = try gguf.tensor("token_embd.weight")
    #expect(Array(embedding.values[504 * 576..<504 * 576 + 4])
        == [0.1096038818359375, 0.017436981201171875, -0.09465789794921875, 0.08220291137695312])
    let q = try gguf.tensor("blk.0.attn_q.weight")
    #expect(Array(q.values[5 * 576..<5 * 576 + 4]) == [0.076171875, -0.274658203125, -0.040771484375, 0.894775390625])
    #expect(Array(try gguf.tensor("blk.29.ffn_down.weight").values.suffix(3)) == [0.203125, -0.08984375, 0.056640625])
    #expect(Array(try gguf.tensor("output_norm.weight").values.prefix(3)) == [1.7578125, 1.8203125, 1.78125])

    let loadStart = ContinuousClock.now
    let tensors = try gguf.tensorInfos.map { info throws(GGUFError) in try gguf.tensor(info.name) }
    let loaded = ContinuousClock.now
    print("SmolLM2 GGUF: parsed in \(parsed - start), all \(tensors.count) tensors dequantized in \(loaded - loadStart)")
    #expect(tensors.reduce(0) { $0 + $1.count } == 134_515_008)
    for (info, t) in zip(gguf.tensorInfos, tensors) {
        let p = t.data
        #expect((0..<t.count).allSatisfy { p[$0].isFinite }, "\(info.name)")
        if info.name.hasSuffix("norm.weight") { #expect(info.type == .f32, "\(info.name)") }
    }
}
