import Dispatch
import Foundation
import TensorCore

// GGUF files in the wild are little-endian; tensor bytes are copied as they are.
#if _endian(big)
#error("the GGUF reader assumes a little-endian host")
#endif

// MARK: Types

/// A ggml tensor element type, by its id in GGUF files.
///
/// Rein dequantizes F32, F16, BF16, Q8_0, Q4_0 and Q4_1; the other ids are known by name so errors
/// can say what a file holds.
public struct GGMLType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The id stored in the tensor info.
    public let rawValue: UInt32

    /// The type with id `rawValue` (any id; unknown ones are named "unknown").
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// 32-bit float.
    public static let f32 = GGMLType(rawValue: 0)
    /// IEEE half precision.
    public static let f16 = GGMLType(rawValue: 1)
    /// Blocks of 32: fp16 scale d, 16 bytes of 4-bit q; value d * (q - 8).
    public static let q4_0 = GGMLType(rawValue: 2)
    /// Blocks of 32: fp16 scale d, fp16 minimum m, 16 bytes of 4-bit q; value d * q + m.
    public static let q4_1 = GGMLType(rawValue: 3)
    /// Blocks of 32: fp16 scale d, 32 int8 q; value d * q.
    public static let q8_0 = GGMLType(rawValue: 8)
    /// bfloat16.
    public static let bf16 = GGMLType(rawValue: 30)

    private static let names = [
        "F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K",
        "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS",
        "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16", "Q4_0_4_4", "Q4_0_4_8", "Q4_0_8_8", "TQ1_0",
        "TQ2_0", "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4",
    ]

    /// The name ggml uses ("Q4_1", "Q5_K"), or "unknown".
    public var name: String {
        rawValue < Self.names.count ? Self.names[Int(rawValue)] : "unknown"
    }

    /// The name and the id, e.g. "Q5_K (type 13)".
    public var description: String { "\(name) (type \(rawValue))" }

    /// Whether ``GGUFFile/tensor(_:)`` dequantizes this type.
    public var isSupported: Bool { layout != nil }

    /// Elements and bytes per block for the supported types.
    var layout: (elements: Int, bytes: Int)? {
        switch self {
        case .f32: (1, 4)
        case .f16, .bf16: (1, 2)
        case .q8_0: (32, 34)
        case .q4_0: (32, 18)
        case .q4_1: (32, 20)
        default: nil
        }
    }

    /// The supported types, for error messages.
    static let supportedList = "F32, F16, BF16, Q8_0, Q4_0, Q4_1"
}

/// The type of a GGUF metadata value, by its id in the file.
public enum GGUFValueType: UInt32, Sendable, CaseIterable {
    /// Unsigned 8-bit integer.
    case uint8 = 0
    /// Signed 8-bit integer.
    case int8 = 1
    /// Unsigned 16-bit integer.
    case uint16 = 2
    /// Signed 16-bit integer.
    case int16 = 3
    /// Unsigned 32-bit integer.
    case uint32 = 4
    /// Signed 32-bit integer.
    case int32 = 5
    /// 32-bit float.
    case float32 = 6
    /// One byte, 0 or 1.
    case bool = 7
    /// UTF-8 string with a u64 byte length.
    case string = 8
    /// Element type, u64 count, elements.
    case array = 9
    /// Unsigned 64-bit integer.
    case uint64 = 10
    /// Signed 64-bit integer.
    case int64 = 11
    /// 64-bit float.
    case float64 = 12

    /// Bytes of a value of this type, or nil when it varies (strings, arrays).
    var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64: 8
        case .string, .array: nil
        }
    }
}

/// A GGUF metadata value.
public enum GGUFValue: Sendable, Equatable {
    /// Unsigned 8-bit integer.
    case uint8(UInt8)
    /// Signed 8-bit integer.
    case int8(Int8)
    /// Unsigned 16-bit integer.
    case uint16(UInt16)
    /// Signed 16-bit integer.
    case int16(Int16)
    /// Unsigned 32-bit integer.
    case uint32(UInt32)
    /// Signed 32-bit integer.
    case int32(Int32)
    /// 32-bit float.
    case float32(Float)
    /// Boolean.
    case bool(Bool)
    /// String.
    case string(String)
    /// Array of values all of `elementType` (arrays may nest).
    case array(elementType: GGUFValueType, [GGUFValue])
    /// Unsigned 64-bit integer.
    case uint64(UInt64)
    /// Signed 64-bit integer.
    case int64(Int64)
    /// 64-bit float.
    case float64(Double)

    /// The value's type.
    public var type: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .float32: .float32
        case .bool: .bool
        case .string: .string
        case .array: .array
        case .uint64: .uint64
        case .int64: .int64
        case .float64: .float64
        }
    }

    /// The value of any integer type, or nil (not an integer, or a UInt64 beyond Int.max).
    public var intValue: Int? {
        switch self {
        case let .uint8(v): Int(v)
        case let .int8(v): Int(v)
        case let .uint16(v): Int(v)
        case let .int16(v): Int(v)
        case let .uint32(v): Int(v)
        case let .int32(v): Int(v)
        case let .uint64(v): Int(exactly: v)
        case let .int64(v): Int(v)
        default: nil
        }
    }

    /// The value of a float type or an integer type, or nil.
    public var doubleValue: Double? {
        switch self {
        case let .float32(v): Double(v)
        case let .float64(v): v
        default: intValue.map(Double.init)
        }
    }

    /// The string, or nil.
    public var stringValue: String? {
        if case let .string(s) = self { s } else { nil }
    }

    /// The boolean, or nil.
    public var boolValue: Bool? {
        if case let .bool(b) = self { b } else { nil }
    }

    /// The elements of an array, or nil.
    public var arrayValue: [GGUFValue]? {
        if case let .array(_, values) = self { values } else { nil }
    }
}

/// One tensor's entry in a GGUF file.
public struct GGUFTensorInfo: Sendable, Equatable {
    /// The tensor's name (llama.cpp names, e.g. `blk.0.attn_q.weight`).
    public let name: String
    /// Dimensions in GGUF order: `ne0`, the fastest-varying (contiguous) one, first.
    public let dimensions: [Int]
    /// Element type.
    public let type: GGMLType
    /// Offset of the tensor's bytes from the start of the file.
    public let fileOffset: Int

    /// Row-major shape, outermost first (the reverse of `dimensions`), as Hugging Face has it:
    /// GGUF `[576, 49152]` is `[49152, 576]`.
    public var shape: [Int] { dimensions.reversed() }

    /// Number of elements.
    public var elementCount: Int { dimensions.reduce(1, *) }

    /// Bytes of the tensor's data, or nil for a type Rein does not decode.
    public var byteCount: Int? {
        type.layout.map { elementCount / $0.elements * $0.bytes }
    }
}

/// Why a GGUF file could not be read. Each case names the file and, where there is one, the tensor
/// or metadata key.
public enum GGUFError: Error, CustomStringConvertible, Sendable {
    /// The file could not be opened or mapped.
    case cannotOpen(file: String, reason: String)
    /// The file does not start with "GGUF".
    case notGGUF(file: String, magic: [UInt8])
    /// A format version other than 2 or 3.
    case unsupportedVersion(file: String, version: UInt32)
    /// The file ends (or a length runs past its end) while reading `what` at `offset`.
    case truncated(file: String, offset: Int, what: String)
    /// A string (key, value or tensor name) is not valid UTF-8.
    case invalidUTF8(file: String, offset: Int, what: String)
    /// A metadata entry is malformed.
    case invalidMetadata(file: String, key: String, reason: String)
    /// A tensor info entry is malformed.
    case invalidTensorInfo(file: String, tensor: String, reason: String)
    /// A tensor's data runs past the end of the file.
    case tensorOutOfBounds(file: String, tensor: String, bytes: Range<Int>, fileSize: Int)
    /// Two tensors' data overlap.
    case overlappingTensors(file: String, first: String, second: String)
    /// A tensor type Rein does not dequantize.
    case unsupportedType(file: String, tensor: String, type: GGMLType)
    /// No tensor has this name.
    case missingTensor(file: String, tensor: String)
    /// No metadata has this key.
    case missingKey(file: String, key: String)
    /// The metadata value has another type than asked for.
    case wrongValueType(file: String, key: String, expected: String, found: String)

    /// A message naming the file, the tensor or key, and what was expected.
    public var description: String {
        switch self {
        case let .cannotOpen(file, reason):
            "\(file): cannot open: \(reason)"
        case let .notGGUF(file, magic):
            "\(file): not a GGUF file: it starts with bytes \(magic.map { String($0, radix: 16) }), not \"GGUF\""
        case let .unsupportedVersion(file, version):
            version > 0xFFFF && version.byteSwapped <= 3
                ? "\(file): big-endian GGUF (version \(version.byteSwapped)) is not supported"
                : "\(file): GGUF version \(version) is not supported; Rein reads versions 2 and 3"
        case let .truncated(file, offset, what):
            "\(file): truncated or corrupt: \(what) at byte \(offset) runs past the end of the file"
        case let .invalidUTF8(file, offset, what):
            "\(file): corrupt: \(what) at byte \(offset) is not valid UTF-8"
        case let .invalidMetadata(file, key, reason):
            "\(file): metadata \"\(key)\": \(reason)"
        case let .invalidTensorInfo(file, tensor, reason):
            "\(file): tensor \"\(tensor)\": \(reason)"
        case let .tensorOutOfBounds(file, tensor, bytes, size):
            "\(file): tensor \"\(tensor)\": data at bytes \(bytes.lowerBound)..<\(bytes.upperBound) runs past the "
                + "end of the \(size)-byte file; the file is truncated"
        case let .overlappingTensors(file, first, second):
            "\(file): tensors \"\(first)\" and \"\(second)\" overlap"
        case let .unsupportedType(file, tensor, type):
            "\(file): tensor \"\(tensor)\" is \(type), which Rein cannot dequantize; supported: "
                + GGMLType.supportedList
        case let .missingTensor(file, tensor):
            "\(file): no tensor named \"\(tensor)\""
        case let .missingKey(file, key):
            "\(file): no metadata key \"\(key)\""
        case let .wrongValueType(file, key, expected, found):
            "\(file): metadata \"\(key)\" is \(found), expected \(expected)"
        }
    }
}

// MARK: Reading

/// A GGUF file (versions 2 and 3): metadata and tensor table parsed and checked on open, tensors
/// dequantized to Float32 on request.
///
/// ```swift
/// let gguf = try GGUFFile(url: assets.appendingPathComponent("SmolLM2-135M-Instruct.Q4_1.gguf"))
/// let layers = try gguf.int("llama.block_count")          // 30
/// let tokens = try gguf.strings("tokenizer.ggml.tokens")  // 49152
/// let embed = try gguf.tensor("token_embd.weight")        // [49152, 576]
/// ```
///
/// Shapes follow Hugging Face (row-major, outermost first). Llama Q and K projections keep the row
/// order llama.cpp's converter gave them; undoing it is the model loader's job.
public final class GGUFFile: @unchecked Sendable {
    /// The file read.
    public let url: URL
    /// Format version (2 or 3; they differ only in big-endian support).
    public let version: Int
    /// Alignment of tensor data (`general.alignment`, 32 when absent).
    public let alignment: Int
    /// Metadata by key.
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// Tensor entries in file order.
    public let tensorInfos: [GGUFTensorInfo]

    private let file: MappedFile
    private let infoByName: [String: GGUFTensorInfo]

    /// Tensor names in file order.
    public var tensorNames: [String] { tensorInfos.map(\.name) }

    /// Maps `url` and parses its header, metadata and tensor table, checking every length and range.
    public init(url: URL) throws(GGUFError) {
        self.url = url
        let path = url.path
        do { file = try MappedFile(url: url) } catch { throw .cannotOpen(file: path, reason: error.reason) }
        var reader = ByteReader(bytes: file.bytes, file: path)

        let magic = try reader.take(4, "the magic number")
        guard Array(UnsafeRawBufferPointer(start: magic, count: 4)) == Array("GGUF".utf8) else {
            throw .notGGUF(file: path, magic: Array(UnsafeRawBufferPointer(start: magic, count: 4)))
        }
        let version = try reader.u32("the version")
        guard version == 2 || version == 3 else { throw .unsupportedVersion(file: path, version: version) }
        self.version = Int(version)
        let tensorCount = try reader.count("the tensor count", minimumSize: 24)
        let keyCount = try reader.count("the metadata count", minimumSize: 13)

        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        keys.reserveCapacity(keyCount)
        for i in 0..<keyCount {
            let key = try reader.string("the key of metadata entry \(i)")
            let rawType = try reader.u32("the type of \"\(key)\"")
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw .invalidMetadata(file: path, key: key, reason: "unknown value type \(rawType)")
            }
            let value = try reader.value(of: type, key: key, depth: 0)
            guard metadata.updateValue(value, forKey: key) == nil else {
                throw .invalidMetadata(file: path, key: key, reason: "the key appears twice")
            }
            keys.append(key)
        }
        self.metadata = metadata
        metadataKeys = keys

        var alignment = 32
        if let value = metadata["general.alignment"] {
            guard let a = value.intValue, a > 0, a <= 1 << 30, a & (a - 1) == 0 else {
                throw .invalidMetadata(file: path, key: "general.alignment",
                                       reason: "must be a power of two up to 2^30, got \(value)")
            }
            alignment = a
        }
        self.alignment = alignment

        var entries: [(name: String, dimensions: [Int], type: GGMLType, offset: UInt64)] = []
        entries.reserveCapacity(tensorCount)
        for i in 0..<tensorCount {
            let name = try reader.string("the name of tensor \(i)")
            let rank = try reader.u32("the dimension count of \"\(name)\"")
            guard rank <= 4 else {
                throw .invalidTensorInfo(file: path, tensor: name, reason: "\(rank) dimensions; GGUF allows at most 4")
            }
            var dimensions: [Int] = []
            var elements = 1
            for _ in 0..<rank {
                let d = try reader.u64("the dimensions of \"\(name)\"")
                let (product, overflow) = elements.multipliedReportingOverflow(by: Int(clamping: d))
                guard d <= UInt64(Int.max), !overflow else {
                    throw .invalidTensorInfo(file: path, tensor: name, reason: "dimension \(d) is too large")
                }
                elements = product
                dimensions.append(Int(d))
            }
            let type = GGMLType(rawValue: try reader.u32("the type of \"\(name)\""))
            let offset = try reader.u64("the data offset of \"\(name)\"")
            entries.append((name, dimensions, type, offset))
        }
        let dataStart = (reader.offset + alignment - 1) / alignment * alignment

        var infos: [GGUFTensorInfo] = []
        var byName: [String: GGUFTensorInfo] = [:]
        for entry in entries {
            let name = entry.name
            guard entry.offset % UInt64(alignment) == 0 else {
                throw .invalidTensorInfo(file: path, tensor: name,
                                         reason: "data offset \(entry.offset) is not a multiple of the alignment \(alignment)")
            }
            let rowLength = entry.dimensions.first ?? 1
            if let layout = entry.type.layout, rowLength % layout.elements != 0 {
                throw .invalidTensorInfo(file: path, tensor: name, reason: "\(entry.type.name) stores blocks of "
                    + "\(layout.elements), but the row length (ne0) is \(rowLength)")
            }
            // Saturating arithmetic: a corrupt offset or size must fail the bounds check, not overflow.
            let start = dataStart.addingSaturating(Int(clamping: entry.offset))
            let info = GGUFTensorInfo(name: name, dimensions: entry.dimensions, type: entry.type, fileOffset: start)
            let byteCount = entry.type.layout.map {
                (info.elementCount / $0.elements).multipliedSaturating(by: $0.bytes)
            }
            let end = start.addingSaturating(byteCount ?? 0)
            guard end <= file.size else {
                throw .tensorOutOfBounds(file: path, tensor: name, bytes: start..<end, fileSize: file.size)
            }
            guard byName.updateValue(info, forKey: name) == nil else {
                throw .invalidTensorInfo(file: path, tensor: name, reason: "the name appears twice")
            }
            infos.append(info)
        }
        let placed = infos.filter { $0.byteCount != nil }.sorted { $0.fileOffset < $1.fileOffset }
        for (a, b) in zip(placed, placed.dropFirst()) where a.fileOffset + a.byteCount! > b.fileOffset {
            throw .overlappingTensors(file: path, first: a.name, second: b.name)
        }
        tensorInfos = infos
        infoByName = byName
    }

    // MARK: Tensors

    /// The entry of tensor `name`.
    public func info(_ name: String) throws(GGUFError) -> GGUFTensorInfo {
        guard let info = infoByName[name] else { throw .missingTensor(file: url.path, tensor: name) }
        return info
    }

    /// Tensor `name` dequantized to Float32, in row-major shape (``GGUFTensorInfo/shape``), named `name`.
    public func tensor(_ name: String) throws(GGUFError) -> Tensor {
        let info = try info(name)
        guard let layout = info.type.layout else {
            throw .unsupportedType(file: url.path, tensor: name, type: info.type)
        }
        let kernel: (UnsafeRawPointer, UnsafeMutablePointer<Float>, Int) -> Void = switch info.type {
        case .q8_0: GGMLBlocks.dequantizeQ8_0
        case .q4_0: GGMLBlocks.dequantizeQ4_0
        case .q4_1: GGMLBlocks.dequantizeQ4_1
        case .f16: { HalfFloat.convertF16($0, to: $1, count: $2) }
        case .bf16: { HalfFloat.convertBF16($0, to: $1, count: $2) }
        default: { UnsafeMutableRawPointer($1).copyMemory(from: $0, byteCount: $2 &* 4) }
        }
        let out = Tensor(uninitialized: info.shape)
        out.name = name
        let source = file.bytes.baseAddress! + info.fileOffset
        let destination = out.data
        let blocks = info.elementCount / layout.elements
        file.willRead(info.fileOffset..<info.fileOffset + blocks * layout.bytes)
        inChunks(blocks, grain: max(1, (1 << 16) / layout.elements)) { lo, hi in
            kernel(source + lo &* layout.bytes, destination + lo &* layout.elements, hi &- lo)
        }
        return out
    }

    // MARK: Metadata

    /// The value for `key`, or nil when absent.
    public func value(_ key: String) -> GGUFValue? { metadata[key] }

    /// The string at `key`.
    public func string(_ key: String) throws(GGUFError) -> String {
        try typed(key, "a string") { $0.stringValue }
    }

    /// The integer at `key` (any integer type).
    public func int(_ key: String) throws(GGUFError) -> Int {
        try typed(key, "an integer") { $0.intValue }
    }

    /// The number at `key` (a float type, or an integer type), as Float.
    public func float(_ key: String) throws(GGUFError) -> Float {
        try typed(key, "a number") { $0.doubleValue.map(Float.init) }
    }

    /// The boolean at `key`.
    public func bool(_ key: String) throws(GGUFError) -> Bool {
        try typed(key, "a bool") { $0.boolValue }
    }

    /// The array of strings at `key` (e.g. `tokenizer.ggml.tokens`, `tokenizer.ggml.merges`).
    public func strings(_ key: String) throws(GGUFError) -> [String] {
        try typed(key, "an array of strings") { v in
            guard case let .array(.string, values) = v else { return nil }
            return values.map { $0.stringValue! }
        }
    }

    /// The array of integers at `key` (any integer element type, e.g. `tokenizer.ggml.token_type`).
    public func ints(_ key: String) throws(GGUFError) -> [Int] {
        try typed(key, "an array of integers") { v in
            guard let values = v.arrayValue else { return nil }
            let ints = values.compactMap(\.intValue)
            return ints.count == values.count ? ints : nil
        }
    }

    /// The array of numbers at `key` (float or integer elements, e.g. `tokenizer.ggml.scores`), as Float.
    public func floats(_ key: String) throws(GGUFError) -> [Float] {
        try typed(key, "an array of numbers") { v in
            guard let values = v.arrayValue else { return nil }
            let floats = values.compactMap { $0.doubleValue.map(Float.init) }
            return floats.count == values.count ? floats : nil
        }
    }

    private func typed<T>(_ key: String, _ expected: String, _ convert: (GGUFValue) -> T?) throws(GGUFError) -> T {
        guard let value = metadata[key] else { throw .missingKey(file: url.path, key: key) }
        guard let converted = convert(value) else {
            throw .wrongValueType(file: url.path, key: key, expected: expected, found: Self.describe(value))
        }
        return converted
    }

    private static func describe(_ value: GGUFValue) -> String {
        if case let .array(elementType, values) = value { return "an array of \(values.count) \(elementType)" }
        return "\(value.type) \(value)"
    }
}

// MARK: Parsing

/// A cursor over the mapped file that checks every read against its end.
private struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    let file: String
    var offset = 0

    init(bytes: UnsafeRawBufferPointer, file: String) {
        self.bytes = bytes
        self.file = file
    }

    /// Nested arrays deeper than this are refused rather than recursed into.
    static let maxDepth = 16

    /// The next `n` bytes, or a truncation error naming `what`.
    mutating func take(_ n: Int, _ what: @autoclosure () -> String) throws(GGUFError) -> UnsafeRawPointer {
        guard n <= bytes.count &- offset, let base = bytes.baseAddress else {
            throw .truncated(file: file, offset: offset, what: what())
        }
        defer { offset &+= n }
        return base + offset
    }

    mutating func load<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws(GGUFError) -> T {
        T(littleEndian: try take(MemoryLayout<T>.size, what()).loadUnaligned(as: T.self))
    }

    mutating func u32(_ what: @autoclosure () -> String) throws(GGUFError) -> UInt32 {
        try load(UInt32.self, what())
    }

    mutating func u64(_ what: @autoclosure () -> String) throws(GGUFError) -> UInt64 {
        try load(UInt64.self, what())
    }

    /// A u64 count of things at least `minimumSize` bytes each, refused when they cannot fit in the
    /// rest of the file (so a corrupt count never drives a huge allocation).
    mutating func count(_ what: @autoclosure () -> String, minimumSize: Int) throws(GGUFError) -> Int {
        let start = offset
        let n = try u64(what())
        guard n <= UInt64(bytes.count &- offset) / UInt64(max(minimumSize, 1)) else {
            throw .truncated(file: file, offset: start, what: "\(what()) (\(n))")
        }
        return Int(n)
    }

    /// A u64-length-prefixed UTF-8 string.
    mutating func string(_ what: @autoclosure () -> String) throws(GGUFError) -> String {
        let start = offset
        let length = try count(what(), minimumSize: 1)
        let p = try take(length, what())
        let raw = UnsafeRawBufferPointer(start: p, count: length)
        let decoded: String? = if #available(macOS 15, *) {
            String(validating: raw, as: UTF8.self)
        } else {
            String(bytes: raw, encoding: .utf8)
        }
        guard let s = decoded else {
            throw .invalidUTF8(file: file, offset: start, what: what())
        }
        return s
    }

    /// A metadata value of `type` for `key`.
    mutating func value(of type: GGUFValueType, key: String, depth: Int) throws(GGUFError) -> GGUFValue {
        let what = "the value of \"\(key)\""
        switch type {
        case .uint8: return .uint8(try load(UInt8.self, what))
        case .int8: return .int8(try load(Int8.self, what))
        case .uint16: return .uint16(try load(UInt16.self, what))
        case .int16: return .int16(try load(Int16.self, what))
        case .uint32: return .uint32(try load(UInt32.self, what))
        case .int32: return .int32(try load(Int32.self, what))
        case .float32: return .float32(Float(bitPattern: try load(UInt32.self, what)))
        case .uint64: return .uint64(try load(UInt64.self, what))
        case .int64: return .int64(try load(Int64.self, what))
        case .float64: return .float64(Double(bitPattern: try load(UInt64.self, what)))
        case .string: return .string(try string(what))
        case .bool:
            let b = try load(UInt8.self, what)
            guard b <= 1 else {
                throw .invalidMetadata(file: file, key: key, reason: "a bool must be 0 or 1, got \(b)")
            }
            return .bool(b == 1)
        case .array:
            guard depth < Self.maxDepth else {
                throw .invalidMetadata(file: file, key: key, reason: "arrays nested deeper than \(Self.maxDepth)")
            }
            let rawType = try u32("the element type of \"\(key)\"")
            guard let elementType = GGUFValueType(rawValue: rawType) else {
                throw .invalidMetadata(file: file, key: key, reason: "unknown array element type \(rawType)")
            }
            // A string is at least its 8-byte length, an array its type and count.
            let n = try count("the length of \"\(key)\"", minimumSize: elementType.fixedSize
                ?? (elementType == .string ? 8 : 12))
            var values: [GGUFValue] = []
            values.reserveCapacity(n)
            for _ in 0..<n { values.append(try value(of: elementType, key: key, depth: depth + 1)) }
            return .array(elementType: elementType, values)
        }
    }
}

extension Int {
    fileprivate func addingSaturating(_ other: Int) -> Int {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }

    fileprivate func multipliedSaturating(by other: Int) -> Int {
        let (product, overflow) = multipliedReportingOverflow(by: other)
        return overflow ? .max : product
    }
}

// MARK: Dequantization

/// Runs `body(lo, hi)` over `0..<n` split into chunks on the kernel threads; one chunk when `n` is
/// below `2 * grain`.
private func inChunks(_ n: Int, grain: Int, _ body: (Int, Int) -> Void) {
    let chunks = max(1, min(Threads.count * 4, n / grain))
    if chunks == 1 {
        if n > 0 { body(0, n) }
        return
    }
    withoutActuallyEscaping(body) { body in
        nonisolated(unsafe) let body = body
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            body(n &* c / chunks, n &* (c &+ 1) / chunks)
        }
    }
}

