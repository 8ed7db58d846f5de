import Foundation
import Testing
import TensorCore

/// The shared test fixtures (see Tests/Fixtures/README.md).
private let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../Fixtures/hf-tiny-gpt2")

/// A fresh directory under the system's temporary directory.
private func makeTemporaryDirectory() throws -> URL {
    let dir = FileManager.default.temporaryDirectory
        .appendingPathComponent("rein-safetensors-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

/// A safetensors file made by hand: the header length, `header` verbatim, then `data`.
private func rawFile(_ header: String, data: [UInt8] = []) -> [UInt8] {
    let json = Array(header.utf8)
    return withUnsafeBytes(of: UInt64(json.count).littleEndian, Array.init) + json + data
}

private func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    values.flatMap { v in withUnsafeBytes(of: v.littleEndian, Array.init) }
}

/// The error from opening `url` and reading each of its tensors with the accessor its dtype needs,
/// or nil when everything reads.
private func readError(_ url: URL) -> SafetensorsError? {
    do throws(SafetensorsError) {
        let file = try SafetensorsFile(url: url)
        for name in file.names {
            if try file.info(name).dtype.isReadableAsInteger { _ = try file.ints(name) } else { _ = try file.tensor(name) }
        }
        return nil
    } catch {
        return error
    }
}

@Test func roundTripF32WithMetadata() throws {
    let dir = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent("model.safetensors")
    let a = Tensor(shape: [2, 3], values: [1, -2, 3.5, .infinity, -0.0, .leastNonzeroMagnitude])
    let b = Tensor(shape: [4], values: [0.1, 0.2, 0.3, 0.4])
    let empty = Tensor(shape: [0, 3], values: [])
    let scalar = Tensor(scalar: 7)
    let ids = Int32Tensor(shape: [2, 2], values: [1, -100, Int32.max, Int32.min])
    let metadata = ["format": "pt", "note": "quote \" backslash \\ newline \n tab \t é"]
    let noIDs = Int32Tensor(shape: [0], values: [])
    try Safetensors.write(["b": b, "a": a, "z.empty": empty, "scalar": scalar],
                          int32s: ["input_ids": ids, "no_ids": noIDs], metadata: metadata, to: url)

    let file = try SafetensorsFile(url: url)
    #expect(file.names == ["a", "b", "input_ids", "no_ids", "scalar", "z.empty"])
    #expect(file.metadata == metadata)
    #expect(try file.info("a").dtype == .f32)
    #expect(try file.info("input_ids").dtype == .i32)
    let readA = try file.tensor("a")
    #expect(readA.shape == [2, 3])
    #expect(readA.name == "a")
    #expect(readA.values.map(\.bitPattern) == a.values.map(\.bitPattern))
    #expect(try file.tensor("b").values == b.values)
    #expect(try file.tensor("z.empty").shape == [0, 3])
    #expect(try file.tensor("scalar").shape == [])
    #expect(try file.tensor("scalar").item == 7)
    #expect(try file.int32s("input_ids") == ids.values)
    #expect(try file.ints("input_ids") == ids.values.map(Int.init))
    #expect(try file.int32s("no_ids") == [])

    // The header is the reference layout: sorted keys, metadata first, padded with spaces to 8 bytes.
    let bytes = try [UInt8](Data(contentsOf: url))
    let length = Int(bytes[0..<8].reversed().reduce(0) { $0 << 8 | UInt64($1) })
    #expect(length % 8 == 0)
    let header = String(decoding: bytes[8..<8 + length], as: UTF8.self)
    #expect(header.hasPrefix(#"{"__metadata__":{"format":"pt","note":"quote \" backslash \\ newline \n tab \t é"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b""#))
    #expect(header.hasSuffix("}") || header.hasSuffix(" "))
    #expect(bytes.count == 8 + length + 4 * (6 + 4 + 0 + 1) + 4 * 4)

    let all = try Safetensors.readAll(url: url)
    #expect(Set(all.tensors.keys) == ["a", "b", "scalar", "z.empty"])
    #expect(all.int32s == ["input_ids": ids, "no_ids": noIDs])
    #expect(all.metadata == metadata)
}

@Test func writeReplacesAtomicallyAndLeavesNoTemporaryFile() throws {
    let dir = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent("model.safetensors")
    try Safetensors.write(["w": Tensor(shape: [2], values: [1, 2])], to: url)
    try Safetensors.write(["w": Tensor(shape: [3], values: [4, 5, 6])], to: url)
    #expect(try SafetensorsFile(url: url).tensor("w").values == [4, 5, 6])
    #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["model.safetensors"])

    let nowhere = dir.appendingPathComponent("missing/model.safetensors")
    #expect {
        try Safetensors.write(["w": Tensor(shape: [2], values: [1, 2])], to: nowhere)
    } throws: { error in
        guard case .writeFailed = error as? SafetensorsError else { return false }
        return "\(error)".contains("missing/model.safetensors")
    }
}

@Test func writeRejectsBadInput() throws {
    let dir = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent("bad.safetensors")
    let t = Tensor(shape: [1], values: [1])
    let cases: [() throws -> Void] = [
        { try Safetensors.write(["x": t], int32s: ["x": Int32Tensor(shape: [1], values: [1])], to: url) },
        { try Safetensors.write([:], int32s: ["ids": Int32Tensor(shape: [2, 2], values: [1])], to: url) },
        { try Safetensors.write(["__metadata__": t], to: url) },
    ]
    for write in cases {
        #expect { try write() } throws: { error in
            guard case .invalidWrite = error as? SafetensorsError else { return false }
            return true
        }
    }
    #expect(!FileManager.default.fileExists(atPath: url.path))
}

@Test func readsTinyGPT2Checkpoint() throws {
    let file = try SafetensorsFile(url: fixtures.appendingPathComponent("model.safetensors"))
    #expect(file.names.count == 28)
    #expect(file.metadata == ["format": "pt"])
    let wte = try file.tensor("transformer.wte.weight")
    #expect(wte.shape == [512, 64])
    #expect(Array(wte.values.prefix(4)) == [-0.006036731880158186, -0.022536074742674828,
                                             -0.018297236412763596, 0.01929568313062191])
    #expect(Array(wte.values.suffix(2)) == [-0.006914705503731966, 0.012041237205266953])
    #expect(try file.info("transformer.h.0.attn.c_attn.weight").shape == [64, 192])
}

@Test func readsReferenceOutputs() throws {
    let file = try SafetensorsFile(url: fixtures.appendingPathComponent("expected.safetensors"))
    let expected = try JSONSerialization.jsonObject(
        with: Data(contentsOf: fixtures.appendingPathComponent("expected.json"))) as! [String: Any]
    let sampleIDs = (expected["sample_ids"] as! [Int]).map(Int32.init)

    #expect(try file.info("input_ids").shape == [2, 16])
    let ids = try file.int32s("input_ids")
    #expect(ids.count == 32)
    #expect(Array(ids[16...]) == Array(sampleIDs.prefix(16)))
    let labels = try file.int32s("labels")
    #expect(Array(labels.prefix(5)) == [-100, -100, -100, -100, -100])
    #expect(Array(labels[5...]) == Array(ids[5...]))

    let loss = try file.tensor("loss")
    #expect(loss.shape == [1])
    #expect(loss.item == Float(expected["loss"] as! Double))
    let logits = try file.tensor("logits")
    #expect(logits.shape == [2, 16, 512])
    #expect(Array(logits.values.prefix(3)) == [0.08601611107587814, 0.14462222158908844, 0.022134091705083847])
    #expect(file.names.filter { $0.hasPrefix("grad.") }.count == 28)

    let all = try Safetensors.readAll(url: fixtures.appendingPathComponent("expected.safetensors"))
    #expect(all.tensors.count == 58)
    #expect(all.int32s["labels"]?.values == labels)
}

@Test func convertsF16ExactlyAtAnyAlignment() throws {
    let dir = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let cases: [(UInt16, Float)] = [
        (0x0000, 0), (0x8000, -0.0), (0x3C00, 1), (0xC000, -2), (0x3555, 0.333251953125),
        (0x7BFF, 65504), (0xFBFF, -65504), (0x0400, 0x1p-14), (0x0001, 0x1p-24), (0x8001, -0x1p-24),
        (0x03FF, 1023 * 0x1p-24), (0x0200, 0x1p-15), (0x7C00, .infinity), (0xFC00, -.infinity),
    ]
    let nans: [UInt16] = [0x7E00, 0xFE00, 0x7C01, 0x7FFF]
    let bits = cases.map(\.0) + nans
    // A one-byte tensor first puts the F16 data at an odd offset.
    let header = #"{"pad":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"#
        + #""h":{"dtype":"F16","shape":[\#(bits.count)],"data_offsets":[1,\#(1 + 2 * bits.count)]}}"#
    let url = dir.appendingPathComponent("f16.safetensors")
    try Data(rawFile(header, data: [0xAB] + littleEndianBytes(bits))).write(to: url)

    let values = try SafetensorsFile(url: url).tensor("h").values
    for (i, (_, expected)) in cases.enumerated() {
        #expect(values[i].bitPattern == expected.bitPattern, "F16 \(String(bits[i], radix: 16))")
    }
    for (i, nan) in nans.enumerated() {
        let v = values[cases.count + i]
        #expect(v.isNaN)
        #expect(v.sign == (nan & 0x8000 != 0 ? .minus : .plus))
    }
}

@Test func convertsBF16Exactly() throws {
    let dir = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let cases: [(UInt16, Float)] = [
        (0x0000, 0), (0x8000, -0.0), (0x3F80, 1), (0xC0A0, -5), (0x4049, 3.140625),
        (0x0001, Float(bitPattern: 0x0001_0000)), (0x007F, Float(bitPattern: 0x007F_0000)),
        (0x7F7F, Float(bitPattern: 0x7F7F_0000)), (0x7F80, .infinity), (0xFF80, -.infinity),
    ]
    let bits = cases.map(\.0) + [0x7FC0, 0xFFC1]
    let header = #"{"b":{"dtype":"BF16","shape":[2,6],"data_offsets":[0,24]}}"#
    let url = dir.appendingPathComponent("bf16.safetensors")
    try Data(rawFile(header, data: littleEndianBytes(bits))).write(to: url)

    let t = try SafetensorsFile(url: url).tensor("b")
    #expect(t.shape == [2, 6])
    let values = t.values
    for (i, (b, expected)) in cases.enumerated() {
        #expect(values[i].bitPattern == expected.bitPattern, "BF16 \(String(b, radix: 16))")
    }
    #expect(values[10].isNaN && values[11].isNaN)
}

@Test func readsI64AsIntegers() throws {
    let dir = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let small: [Int64] = [1, -100, 49151]
    let large: [Int64] = [1, Int64(Int32.max) + 1]
    let header = #"{"ids":{"dtype":"I64","shape":[3],"data_offsets":[0,24]},"#
        + #""big":{"dtype":"I64","shape":[2],"data_offsets":[24,40]}}"#
    let url = dir.appendingPathComponent("ids.safetensors")
    try Data(rawFile(header, data: littleEndianBytes(small + large))).write(to: url)

    let file = try SafetensorsFile(url: url)
    #expect(try file.int32s("ids") == [1, -100, 49151])
    #expect(try file.ints("big") == [1, Int(Int32.max) + 1])
    #expect { try file.int32s("big") } throws: { error in
        guard case .integerOutOfRange(_, "big", 2_147_483_648) = error as? SafetensorsError else { return false }
        return true
    }
    #expect { try file.tensor("ids") } throws: { error in
        guard case .wrongAccessor(_, "ids", .i64, _) = error as? SafetensorsError else { return false }
        return "\(error)".contains("int32s(_:)")
    }
    #expect { try file.tensor("nope") } throws: { error in
        guard case .missingTensor(_, "nope") = error as? SafetensorsError else { return false }
        return "\(error)".contains("ids.safetensors")
    }
}

/// A malformed file, the error it must produce, and a word the message must contain.
struct CorruptFile: Sendable, CustomTestStringConvertible {
    let label: String
    let bytes: [UInt8]
    let mentions: String
    let matches: @Sendable (SafetensorsError) -> Bool
    var testDescription: String { label }
}

private let f32x4 = [UInt8](repeating: 0, count: 16)

let corruptFiles: [CorruptFile] = [
    CorruptFile(label: "empty file", bytes: [], mentions: "8-byte header length") {
        if case .truncated(_, 0) = $0 { true } else { false }
    },
    CorruptFile(label: "5 bytes", bytes: [1, 0, 0, 0, 0], mentions: "truncated") {
        if case .truncated(_, 5) = $0 { true } else { false }
    },
    CorruptFile(label: "header length past the end", bytes: littleEndianBytes([UInt64(64)]) + Array("{}".utf8),
                mentions: "runs past the end") {
        if case .headerBeyondFile(_, 64, 10) = $0 { true } else { false }
    },
    CorruptFile(label: "header over 100 MB", bytes: littleEndianBytes([UInt64(100_000_001)]) + Array("{}".utf8),
                mentions: "100000000") {
        if case .headerTooLarge(_, 100_000_001) = $0 { true } else { false }
    },
    CorruptFile(label: "invalid JSON", bytes: rawFile(#"{"w": {"dtype": "F32""#), mentions: "invalid header") {
        if case .invalidHeader = $0 { true } else { false }
    },
    CorruptFile(label: "header not an object", bytes: rawFile("[1, 2]"), mentions: "JSON object") {
        if case .invalidHeader = $0 { true } else { false }
    },
    CorruptFile(label: "metadata not strings", bytes: rawFile(#"{"__metadata__": {"epoch": 3}}"#),
                mentions: "__metadata__") {
        if case .invalidHeader = $0 { true } else { false }
    },
    CorruptFile(label: "missing field", bytes: rawFile(#"{"w": {"dtype": "F32", "shape": [4]}}"#, data: f32x4),
                mentions: "data_offsets") {
        if case .invalidEntry(_, "w", _) = $0 { true } else { false }
    },
    CorruptFile(label: "offsets outside the buffer",
                bytes: rawFile(#"{"w": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}}"#, data: f32x4),
                mentions: "w") {
        if case .offsetsOutsideBuffer(_, "w", 0..<32, 16) = $0 { true } else { false }
    },
    CorruptFile(label: "offsets not matching dtype x shape",
                bytes: rawFile(#"{"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}}"#, data: f32x4),
                mentions: "needs 16 bytes") {
        if case .sizeMismatch(_, "w", .f32, [2, 2], 16, 12) = $0 { true } else { false }
    },
    CorruptFile(label: "overlapping ranges",
                bytes: rawFile(#"{"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}, "#
                    + #""b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}"#, data: f32x4),
                mentions: "overlapping") {
        if case .overlappingTensors(_, "a", "b") = $0 { true } else { false }
    },
    CorruptFile(label: "begin after end",
                bytes: rawFile(#"{"w": {"dtype": "F32", "shape": [0], "data_offsets": [16, 8]}}"#, data: f32x4),
                mentions: "begin <= end") {
        if case .invalidEntry(_, "w", _) = $0 { true } else { false }
    },
    CorruptFile(label: "unknown dtype",
                bytes: rawFile(#"{"w": {"dtype": "Q9", "shape": [4], "data_offsets": [0, 4]}}"#, data: f32x4),
                mentions: "supported: F32, F16, BF16") {
        if case .unsupportedDType(_, "w", "Q9") = $0 { true } else { false }
    },
    CorruptFile(label: "unsupported dtype F8_E4M3",
                bytes: rawFile(#"{"w": {"dtype": "F8_E4M3", "shape": [16], "data_offsets": [0, 16]}}"#, data: f32x4),
                mentions: "supported: F32, F16, BF16") {
        if case .unsupportedDType(_, "w", "F8_E4M3") = $0 { true } else { false }
    },
    CorruptFile(label: "negative shape",
                bytes: rawFile(#"{"w": {"dtype": "F32", "shape": [-1, 4], "data_offsets": [0, 16]}}"#, data: f32x4),
                mentions: "non-negative integers") {
        if case .invalidEntry(_, "w", _) = $0 { true } else { false }
    },
    CorruptFile(label: "non-integer shape",
                bytes: rawFile(#"{"w": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 10]}}"#, data: f32x4),
                mentions: "non-negative integers") {
        if case .invalidEntry(_, "w", _) = $0 { true } else { false }
    },
    CorruptFile(label: "shape too large",
                bytes: rawFile(#"{"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "#
                    + #""data_offsets": [0, 16]}}"#, data: f32x4),
                mentions: "too large") {
        if case .invalidEntry(_, "w", _) = $0 { true } else { false }
    },
]

@Test(arguments: corruptFiles)
func corruptFileGivesTypedError(_ corrupt: CorruptFile) throws {
    let dir = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent("corrupt.safetensors")
    try Data(corrupt.bytes).write(to: url)
    let error = try #require(readError(url))
    #expect(corrupt.matches(error), "got: \(error)")
    #expect(error.description.contains(url.path))
    #expect(error.description.contains(corrupt.mentions), "got: \(error)")
}

@Test func truncatedCheckpointGivesTypedError() throws {
    let dir = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent("cut.safetensors")
    let whole = try Data(contentsOf: fixtures.appendingPathComponent("model.safetensors"))
    try whole.prefix(whole.count - 100).write(to: url)
    let error = try #require(readError(url))
    guard case .offsetsOutsideBuffer(_, "transformer.wte.weight", _, _) = error else {
        Issue.record("got: \(error)")
        return
    }
    try whole.prefix(1000).write(to: url)
    guard case .headerBeyondFile = try #require(readError(url)) else {
        Issue.record("a file cut inside its header opened")
        return
    }
    let missing = dir.appendingPathComponent("absent.safetensors")
    guard case .cannotOpen = try #require(readError(missing)) else {
        Issue.record("a missing file opened")
        return
    }
}

@Test func randomHeaderCorruptionNeverCrashes() throws {
    let dir = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent("fuzzed.safetensors")
    let tensors = ["wte": Tensor(shape: [4, 2], values: [1, 2, 3, 4, 5, 6, 7, 8]), "ln.bias": Tensor(shape: [2], values: [0, 1])]
    try Safetensors.write(tensors, int32s: ["ids": Int32Tensor(shape: [1, 3], values: [1, 2, 3])],
                          metadata: ["format": "pt"], to: url)
    let whole = try [UInt8](Data(contentsOf: url))
    let headerEnd = whole.count - 52
    var rng = RNG(seed: 11)
    var opened = 0
    for _ in 0..<300 {
        var bytes = whole
        for _ in 0..<Int(rng.next() % 3 + 1) {
            bytes[Int(rng.next() % UInt64(headerEnd))] = UInt8(truncatingIfNeeded: rng.next())
        }
        try Data(bytes).write(to: url)
        if readError(url) == nil { opened += 1 }  // any outcome but a crash
    }
    #expect(opened < 300)
}

