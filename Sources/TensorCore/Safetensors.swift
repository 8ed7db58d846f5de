#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

// safetensors data is little-endian and is copied to and from tensors byte for byte.
#if _endian(big)
#error("safetensors I/O assumes a little-endian host")
#endif

// MARK: Types

/// The element types of the safetensors format.
///
/// Rein reads F32, F16 and BF16 as Float32 tensors and I32, I64 as integers. The other types are
/// recognized, so a file holding them opens and its other tensors read, but they are not converted.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    /// 64-bit float.
    case f64 = "F64"
    /// 32-bit float.
    case f32 = "F32"
    /// IEEE half precision.
    case f16 = "F16"
    /// bfloat16.
    case bf16 = "BF16"
    /// 64-bit signed integer.
    case i64 = "I64"
    /// 32-bit signed integer.
    case i32 = "I32"
    /// 16-bit signed integer.
    case i16 = "I16"
    /// 8-bit signed integer.
    case i8 = "I8"
    /// 64-bit unsigned integer.
    case u64 = "U64"
    /// 32-bit unsigned integer.
    case u32 = "U32"
    /// 16-bit unsigned integer.
    case u16 = "U16"
    /// 8-bit unsigned integer.
    case u8 = "U8"
    /// Boolean, one byte.
    case bool = "BOOL"
    /// 8-bit float, 4 exponent bits.
    case f8E4M3 = "F8_E4M3"
    /// 8-bit float, 5 exponent bits.
    case f8E5M2 = "F8_E5M2"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f64, .i64, .u64: 8
        case .f32, .i32, .u32: 4
        case .f16, .bf16, .i16, .u16: 2
        case .i8, .u8, .bool, .f8E4M3, .f8E5M2: 1
        }
    }

    /// Whether ``SafetensorsFile/tensor(_:)`` reads this type (converting to Float32).
    public var isReadableAsFloat: Bool { self == .f32 || self == .f16 || self == .bf16 }

    /// Whether ``SafetensorsFile/int32s(_:)`` and ``SafetensorsFile/ints(_:)`` read this type.
    public var isReadableAsInteger: Bool { self == .i32 || self == .i64 }

    /// The types Rein reads, for error messages.
    static let supportedList = "F32, F16, BF16 (as Float32 tensors), I32, I64 (as integers)"
}

/// Where one tensor lives in a safetensors file.
public struct SafetensorsTensorInfo: Sendable, Equatable {
    /// The tensor's key.
    public let name: String
    /// Its element type.
    public let dtype: SafetensorsDType
    /// Its dimensions, outermost first.
    public let shape: [Int]
    /// Its bytes in the data buffer that follows the header (the header's `data_offsets`).
    public let dataOffsets: Range<Int>

    /// Number of elements (the product of `shape`).
    public var elementCount: Int { dataOffsets.count / dtype.byteSize }
}

/// An integer tensor (token ids, labels) stored beside Float32 tensors.
public struct Int32Tensor: Sendable, Equatable {
    /// Dimensions, outermost first.
    public var shape: [Int]
    /// Elements in row-major order.
    public var values: [Int32]

    /// An integer tensor; `values.count` should equal the product of `shape` (checked on write).
    public init(shape: [Int], values: [Int32]) {
        self.shape = shape
        self.values = values
    }
}

/// Everything in a safetensors file, read at once by ``Safetensors/readAll(url:)``.
public struct SafetensorsContents: Sendable {
    /// The floating-point tensors, converted to Float32, by key.
    public var tensors: [String: Tensor]
    /// The integer tensors (I32, and I64 whose values fit in Int32), by key.
    public var int32s: [String: Int32Tensor]
    /// The `__metadata__` strings.
    public var metadata: [String: String]
}

/// Why a safetensors file could not be read or written. Each case names the file and, where there
/// is one, the tensor.
public enum SafetensorsError: Error, CustomStringConvertible, Sendable {
    /// The file could not be opened or mapped.
    case cannotOpen(file: String, reason: String)
    /// The file is shorter than the 8-byte header length.
    case truncated(file: String, size: Int)
    /// The header length exceeds ``SafetensorsFile/maxHeaderBytes``.
    case headerTooLarge(file: String, length: UInt64)
    /// The header length runs past the end of the file.
    case headerBeyondFile(file: String, length: UInt64, fileSize: Int)
    /// The header is not a JSON object of the expected form.
    case invalidHeader(file: String, reason: String)
    /// One tensor's entry in the header is malformed.
    case invalidEntry(file: String, tensor: String, reason: String)
    /// A dtype Rein does not read (or does not know at all).
    case unsupportedDType(file: String, tensor: String, dtype: String)
    /// A tensor's `data_offsets` reach past the data buffer.
    case offsetsOutsideBuffer(file: String, tensor: String, offsets: Range<Int>, bufferSize: Int)
    /// A tensor's byte range does not hold dtype size x elements bytes.
    case sizeMismatch(file: String, tensor: String, dtype: SafetensorsDType, shape: [Int], expectedBytes: Int,
                      actualBytes: Int)
    /// Two tensors' byte ranges overlap.
    case overlappingTensors(file: String, first: String, second: String)
    /// No tensor has this key.
    case missingTensor(file: String, tensor: String)
    /// The tensor exists but holds another kind of value than the accessor reads.
    case wrongAccessor(file: String, tensor: String, dtype: SafetensorsDType, use: String)
    /// An I64 value does not fit in the Int32 asked for.
    case integerOutOfRange(file: String, tensor: String, value: Int64)
    /// A tensor given to ``Safetensors/write(_:int32s:metadata:to:)`` cannot be written.
    case invalidWrite(file: String, tensor: String, reason: String)
    /// The system refused to write the file.
    case writeFailed(file: String, reason: String)

    /// A message naming the file, the tensor and what was expected.
    public var description: String {
        switch self {
        case let .cannotOpen(file, reason):
            "\(file): cannot open: \(reason)"
        case let .truncated(file, size):
            "\(file): truncated: \(size) bytes, but a safetensors file starts with an 8-byte header length"
        case let .headerTooLarge(file, length):
            "\(file): header length \(length) exceeds the \(SafetensorsFile.maxHeaderBytes)-byte limit; "
                + "the file is corrupt or not safetensors"
        case let .headerBeyondFile(file, length, size):
            "\(file): header length \(length) runs past the end of the \(size)-byte file; "
                + "the file is truncated or not safetensors"
        case let .invalidHeader(file, reason):
            "\(file): invalid header: \(reason)"
        case let .invalidEntry(file, tensor, reason):
            "\(file): tensor \"\(tensor)\": \(reason)"
        case let .unsupportedDType(file, tensor, dtype):
            "\(file): tensor \"\(tensor)\" has dtype \(dtype), which Rein does not read; supported: "
                + SafetensorsDType.supportedList
        case let .offsetsOutsideBuffer(file, tensor, offsets, size):
            "\(file): tensor \"\(tensor)\": data_offsets [\(offsets.lowerBound), \(offsets.upperBound)] "
                + "reach past the \(size)-byte data buffer; the file is truncated or corrupt"
        case let .sizeMismatch(file, tensor, dtype, shape, expected, actual):
            "\(file): tensor \"\(tensor)\": \(dtype.rawValue) \(shape) needs \(expected) bytes, "
                + "but data_offsets span \(actual)"
        case let .overlappingTensors(file, first, second):
            "\(file): tensors \"\(first)\" and \"\(second)\" have overlapping data_offsets"
        case let .missingTensor(file, tensor):
            "\(file): no tensor named \"\(tensor)\""
        case let .wrongAccessor(file, tensor, dtype, use):
            "\(file): tensor \"\(tensor)\" is \(dtype.rawValue); read it with \(use)"
        case let .integerOutOfRange(file, tensor, value):
            "\(file): tensor \"\(tensor)\": value \(value) does not fit in Int32; read it with ints(_:)"
        case let .invalidWrite(file, tensor, reason):
            "\(file): cannot write tensor \"\(tensor)\": \(reason)"
        case let .writeFailed(file, reason):
            "\(file): write failed: \(reason)"
        }
    }
}

// MARK: Reading

/// A safetensors file, mapped and validated on open; tensors are read on request.
///
/// Opening checks the whole header: every dtype, shape and byte range, that ranges lie inside the
/// file and do not overlap. Reading a tensor is then one copy (or conversion) from the mapping.
///
/// ```swift
/// let file = try SafetensorsFile(url: dir.appendingPathComponent("model.safetensors"))
/// let wte = try file.tensor("transformer.wte.weight")   // [512, 64]
/// ```
public final class SafetensorsFile: @unchecked Sendable {
    /// The largest header accepted, as in the reference implementation.
    public static let maxHeaderBytes = 100_000_000

    /// The file read.
    public let url: URL
    /// Tensor keys in the order of their data in the file.
    public let names: [String]
    /// The `__metadata__` strings (empty when the header has none).
    public let metadata: [String: String]

    private let file: MappedFile
    private let infos: [String: SafetensorsTensorInfo]
    /// File offset of the data buffer.
    private let dataStart: Int

    /// Maps `url` and validates its header.
    public init(url: URL) throws(SafetensorsError) {
        self.url = url
        let path = url.path
        do { file = try MappedFile(url: url) } catch { throw .cannotOpen(file: path, reason: error.reason) }
        let size = file.size
        guard size >= 8, let base = file.bytes.baseAddress else { throw .truncated(file: path, size: size) }
        let headerLength = UInt64(littleEndian: base.loadUnaligned(as: UInt64.self))
        guard headerLength <= UInt64(Self.maxHeaderBytes) else {
            throw .headerTooLarge(file: path, length: headerLength)
        }
        guard headerLength <= UInt64(size - 8) else {
            throw .headerBeyondFile(file: path, length: headerLength, fileSize: size)
        }
        dataStart = 8 + Int(headerLength)
        let header = try RawHeader.decode(Data(bytes: base + 8, count: Int(headerLength)), file: path)
        metadata = header.metadata

        let bufferSize = size - dataStart
        var infos: [String: SafetensorsTensorInfo] = [:]
        for (name, entry) in header.entries {
            infos[name] = try entry.validated(name: name, bufferSize: bufferSize, file: path)
        }
        let ordered = infos.values.sorted {
            ($0.dataOffsets.lowerBound, $0.dataOffsets.upperBound, $0.name)
                < ($1.dataOffsets.lowerBound, $1.dataOffsets.upperBound, $1.name)
        }
        for (a, b) in zip(ordered, ordered.dropFirst()) where b.dataOffsets.lowerBound < a.dataOffsets.upperBound {
            throw .overlappingTensors(file: path, first: a.name, second: b.name)
        }
        self.infos = infos
        names = ordered.map(\.name)
    }

    /// Whether the file holds a tensor named `name`.
    public func contains(_ name: String) -> Bool { infos[name] != nil }

    /// The dtype, shape and byte range of tensor `name`.
    public func info(_ name: String) throws(SafetensorsError) -> SafetensorsTensorInfo {
        guard let info = infos[name] else { throw .missingTensor(file: url.path, tensor: name) }
        return info
    }

    /// Tensor `name` as Float32 (F16 and BF16 converted exactly), named `name`.
    public func tensor(_ name: String) throws(SafetensorsError) -> Tensor {
        let info = try info(name)
        guard info.dtype.isReadableAsFloat else {
            if info.dtype.isReadableAsInteger {
                throw .wrongAccessor(file: url.path, tensor: name, dtype: info.dtype, use: "int32s(_:) or ints(_:)")
            }
            throw .unsupportedDType(file: url.path, tensor: name, dtype: info.dtype.rawValue)
        }
        let out = Tensor(uninitialized: info.shape)
        out.name = name
        let n = info.elementCount
        let source = bytes(of: info)
        file.willRead(dataStart + info.dataOffsets.lowerBound..<dataStart + info.dataOffsets.upperBound)
        let destination = out.data
        // Chunks of a few MB so two threads share the page faults of the copy.
        parallelFor(n, grain: 1 << 20) { _, lo, hi in
            switch info.dtype {
            case .f16: HalfFloat.convertF16(source + lo &* 2, to: destination + lo, count: hi &- lo)
            case .bf16: HalfFloat.convertBF16(source + lo &* 2, to: destination + lo, count: hi &- lo)
            default: UnsafeMutableRawPointer(destination + lo).copyMemory(from: source + lo &* 4,
                                                                          byteCount: (hi &- lo) &* 4)
            }
        }
        return out
    }

    /// The elements of integer tensor `name` (I32, or I64 whose values all fit) in row-major order.
    public func int32s(_ name: String) throws(SafetensorsError) -> [Int32] {
        let info = try integerInfo(name)
        let n = info.elementCount
        let source = bytes(of: info)
        if info.dtype == .i32 {
            return [Int32](unsafeUninitializedCapacity: n) { buffer, count in
                if let p = buffer.baseAddress { UnsafeMutableRawPointer(p).copyMemory(from: source, byteCount: n &* 4) }
                count = n
            }
        }
        var out = [Int32]()
        out.reserveCapacity(n)
        for i in 0..<n {
            let v = Int64(littleEndian: source.loadUnaligned(fromByteOffset: i &* 8, as: Int64.self))
            guard let narrow = Int32(exactly: v) else {
                throw .integerOutOfRange(file: url.path, tensor: name, value: v)
            }
            out.append(narrow)
        }
        return out
    }

    /// The elements of integer tensor `name` (I32 or I64) in row-major order.
    public func ints(_ name: String) throws(SafetensorsError) -> [Int] {
        let info = try integerInfo(name)
        let source = bytes(of: info)
        return (0..<info.elementCount).map { i in
            info.dtype == .i32
                ? Int(Int32(littleEndian: source.loadUnaligned(fromByteOffset: i &* 4, as: Int32.self)))
                : Int(Int64(littleEndian: source.loadUnaligned(fromByteOffset: i &* 8, as: Int64.self)))
        }
    }

    private func integerInfo(_ name: String) throws(SafetensorsError) -> SafetensorsTensorInfo {
        let info = try info(name)
        guard info.dtype.isReadableAsInteger else {
            if info.dtype.isReadableAsFloat {
                throw .wrongAccessor(file: url.path, tensor: name, dtype: info.dtype, use: "tensor(_:)")
            }
            throw .unsupportedDType(file: url.path, tensor: name, dtype: info.dtype.rawValue)
        }
        return info
    }

    /// The first byte of a tensor's data (validated on open to lie in the mapping).
    private func bytes(of info: SafetensorsTensorInfo) -> UnsafeRawPointer {
        file.bytes.baseAddress! + dataStart + info.dataOffsets.lowerBound
    }
}

/// The header as JSON gives it, before validation.
private struct RawHeader: Decodable {
    /// Numbers decode as Double so that a fraction is reported against its field rather than as
    /// invalid JSON (what JSONDecoder says when a number does not fit an Int).
    struct Entry: Decodable {
        let dtype: String
        let shape: [Double]
        let data_offsets: [Double]
    }

    struct Key: CodingKey {
        let stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    var entries: [(String, Entry)] = []
    var metadata: [String: String] = [:]

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        for key in container.allKeys {
            if key.stringValue == "__metadata__" {
                metadata = try container.decode([String: String].self, forKey: key)
            } else {
                entries.append((key.stringValue, try container.decode(Entry.self, forKey: key)))
            }
        }
    }

    /// Decodes `json`, turning decoding errors into messages that say which key is wrong and how.
    static func decode(_ json: Data, file: String) throws(SafetensorsError) -> RawHeader {
        do {
            return try JSONDecoder().decode(RawHeader.self, from: json)
        } catch let error as DecodingError {
            let (path, detail): ([any CodingKey], String) = switch error {
            case let .typeMismatch(_, c), let .valueNotFound(_, c), let .dataCorrupted(c):
                (c.codingPath, c.debugDescription)
            case let .keyNotFound(key, c):
                (c.codingPath, "missing field \"\(key.stringValue)\"")
            @unknown default:
                ([], "\(error)")
            }
            guard let top = path.first?.stringValue else {
                throw .invalidHeader(file: file, reason: "expected a JSON object of tensor entries (\(detail))")
            }
            if top == "__metadata__" {
                throw .invalidHeader(file: file, reason: "__metadata__ must map strings to strings (\(detail))")
            }
            let field = path.count > 1 ? path[1].stringValue : ""
            let expected = switch field {
            case "shape": "\"shape\" must be a list of non-negative integers"
            case "data_offsets": "\"data_offsets\" must be two non-negative integers [begin, end]"
            case "dtype": "\"dtype\" must be a string"
            default: "expected {\"dtype\": string, \"shape\": [int], \"data_offsets\": [begin, end]}"
            }
            throw .invalidEntry(file: file, tensor: top, reason: "\(expected) (\(detail))")
        } catch {
            throw .invalidHeader(file: file, reason: "\(error)")
        }
    }
}

extension RawHeader.Entry {
    /// Checks dtype, shape and offsets against each other and the data buffer.
    func validated(name: String, bufferSize: Int, file: String) throws(SafetensorsError) -> SafetensorsTensorInfo {
        guard let type = SafetensorsDType(rawValue: dtype) else {
            throw .unsupportedDType(file: file, tensor: name, dtype: dtype)
        }
        let shape = self.shape.compactMap { Int(exactly: $0) }
        guard shape.count == self.shape.count, shape.allSatisfy({ $0 >= 0 }) else {
            throw .invalidEntry(file: file, tensor: name, reason: "\"shape\" must be a list of non-negative "
                + "integers, got \(Self.listed(self.shape))")
        }
        let bounds = data_offsets.compactMap { Int(exactly: $0) }
        guard bounds.count == 2, data_offsets.count == 2, bounds[0] >= 0, bounds[0] <= bounds[1] else {
            throw .invalidEntry(file: file, tensor: name, reason: "\"data_offsets\" must be two integers "
                + "[begin, end] with 0 <= begin <= end, got \(Self.listed(data_offsets))")
        }
        let offsets = bounds[0]..<bounds[1]
        guard offsets.upperBound <= bufferSize else {
            throw .offsetsOutsideBuffer(file: file, tensor: name, offsets: offsets, bufferSize: bufferSize)
        }
        var bytes = type.byteSize
        for d in shape {
            let (product, overflow) = bytes.multipliedReportingOverflow(by: d)
            guard !overflow else {
                throw .invalidEntry(file: file, tensor: name, reason: "shape \(shape) is too large")
            }
            bytes = product
        }
        guard bytes == offsets.count else {
            throw .sizeMismatch(file: file, tensor: name, dtype: type, shape: shape, expectedBytes: bytes,
                                actualBytes: offsets.count)
        }
        return SafetensorsTensorInfo(name: name, dtype: type, shape: shape, dataOffsets: offsets)
    }

    /// Numbers as JSON wrote them: `[2, 2.5]`, not `[2.0, 2.5]`.
    private static func listed(_ numbers: [Double]) -> String {
        "[" + numbers.map { Int(exactly: $0).map(String.init) ?? "\($0)" }.joined(separator: ", ") + "]"
    }
}

// MARK: Whole files

/// Reading and writing whole safetensors files.
public enum Safetensors {
    /// Every tensor of the file at `url`: floating-point tensors as Float32, I32 and I64 as
    /// ``Int32Tensor``; any other dtype is an error.
    public static func readAll(url: URL) throws(SafetensorsError) -> SafetensorsContents {
        let file = try SafetensorsFile(url: url)
        var contents = SafetensorsContents(tensors: [:], int32s: [:], metadata: file.metadata)
        for name in file.names {
            let info = try file.info(name)
            if info.dtype.isReadableAsInteger {
                contents.int32s[name] = Int32Tensor(shape: info.shape, values: try file.int32s(name))
            } else {
                contents.tensors[name] = try file.tensor(name)
            }
        }
        return contents
    }

    /// Writes `tensors` as F32 and `int32s` as I32, with `metadata`, to `url`, atomically: the bytes
    /// go to a temporary file in the same directory, which is flushed and then renamed over `url`,
    /// so a crash leaves either the old file or the new one, never half of one.
    ///
    /// Keys are sorted and the header is padded with spaces to a multiple of 8 bytes, as the
    /// reference implementation writes it.
    public static func write(_ tensors: [String: Tensor], int32s: [String: Int32Tensor] = [:],
                             metadata: [String: String] = [:], to url: URL) throws(SafetensorsError) {
        let path = url.path
        enum Source { case floats(Tensor), ints([Int32]) }
        var items: [(name: String, shape: [Int], source: Source)] = tensors.map { ($0.key, $0.value.shape, .floats($0.value)) }
        for (name, t) in int32s {
            guard tensors[name] == nil else {
                throw .invalidWrite(file: path, tensor: name, reason: "the key names both a Float32 and an Int32 tensor")
            }
            guard t.shape.allSatisfy({ $0 >= 0 }), t.shape.reduce(1, *) == t.values.count else {
                throw .invalidWrite(file: path, tensor: name,
                                    reason: "\(t.values.count) values do not fill shape \(t.shape)")
            }
            items.append((name, t.shape, .ints(t.values)))
        }
        if tensors["__metadata__"] != nil || int32s["__metadata__"] != nil {
            throw .invalidWrite(file: path, tensor: "__metadata__", reason: "the key is reserved for metadata")
        }
        items.sort { $0.name < $1.name }

        var fields: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.sorted { $0.key < $1.key }.map { JSONText.quoted($0.key) + ":" + JSONText.quoted($0.value) }
            fields.append(JSONText.quoted("__metadata__") + ":{" + pairs.joined(separator: ",") + "}")
        }
        var offset = 0
        for item in items {
            let (dtype, count): (SafetensorsDType, Int) = switch item.source {
            case let .floats(t): (.f32, t.count)
            case let .ints(v): (.i32, v.count)
            }
            let shape = item.shape.map(String.init).joined(separator: ",")
            fields.append(JSONText.quoted(item.name) + ":{\"dtype\":\"\(dtype.rawValue)\",\"shape\":[\(shape)],"
                + "\"data_offsets\":[\(offset),\(offset + count * 4)]}")
            offset += count * 4
        }
        var header = Array(("{" + fields.joined(separator: ",") + "}").utf8)
        header += repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8)

        do throws(AtomicFileError) {
            try AtomicFile.write(to: url) { file throws(AtomicFileError) in
                try file.write(contentsOf: [UInt64(header.count).littleEndian])
                try file.write(contentsOf: header)
                for item in items {
                    switch item.source {
                    case let .floats(t):
                        try file.write(UnsafeRawBufferPointer(start: t.data, count: t.count * 4))
                    case let .ints(v):
                        try file.write(contentsOf: v)
                    }
                }
            }
        } catch {
            throw .writeFailed(file: path, reason: error.reason)
        }
    }
}
