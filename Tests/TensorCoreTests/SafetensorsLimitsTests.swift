import Foundation
import Testing
import TensorCore

// Header lengths a hostile file may claim: refused from the first 8 bytes, nothing allocated for them.

@Suite struct SafetensorsLimitsTests {
    private func file(_ bytes: [UInt8]) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rein-st-limits-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent("hostile.safetensors")
        try Data(bytes).write(to: url)
        return url
    }

    private func openError(_ url: URL) -> SafetensorsError? {
        do throws(SafetensorsError) { _ = try SafetensorsFile(url: url); return nil } catch { return error }
    }

    @Test func aHeaderLengthOf2To63IsRefused() throws {
        let url = try file(withUnsafeBytes(of: (UInt64(1) << 63).littleEndian, Array.init) + Array("{}".utf8))
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        let error = try #require(openError(url))
        guard case let .headerTooLarge(name, length) = error else { Issue.record("\(error)"); return }
        #expect(name.hasSuffix("hostile.safetensors"))
        #expect(length == UInt64(1) << 63)
        #expect(error.description.contains("9223372036854775808") && error.description.contains("100000000"))
    }

    @Test func aHeaderJustOver100MBIsRefusedAndOneInsideTheLimitButPastTheFileToo() throws {
        let over = try file(withUnsafeBytes(of: UInt64(100_000_001).littleEndian, Array.init) + Array("{}".utf8))
        defer { try? FileManager.default.removeItem(at: over.deletingLastPathComponent()) }
        guard case .headerTooLarge = try #require(openError(over)) else { Issue.record("expected headerTooLarge"); return }
        let past = try file(withUnsafeBytes(of: UInt64(99_999_999).littleEndian, Array.init) + Array("{}".utf8))
        defer { try? FileManager.default.removeItem(at: past.deletingLastPathComponent()) }
        guard case .headerBeyondFile = try #require(openError(past)) else { Issue.record("expected headerBeyondFile"); return }
    }

    @Test func deeplyNestedHeaderJSONIsAnErrorNotAStackOverflow() throws {
        let json = Array(String(repeating: "[", count: 200_000).utf8)
        let url = try file(withUnsafeBytes(of: UInt64(json.count).littleEndian, Array.init) + json)
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        let error = try #require(openError(url))
        #expect(error.description.contains("hostile.safetensors"), "\(error)")
    }

    @Test func overlappingAndOutOfFileRangesAreRefused() throws {
        let overlap = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        let u1 = try file(withUnsafeBytes(of: UInt64(overlap.utf8.count).littleEndian, Array.init) + Array(overlap.utf8)
            + [UInt8](repeating: 0, count: 12))
        defer { try? FileManager.default.removeItem(at: u1.deletingLastPathComponent()) }
        guard case .overlappingTensors = try #require(openError(u1)) else { Issue.record("expected overlap"); return }
        let past = #"{"a":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,18446744073709551615]}}"#
        let u2 = try file(withUnsafeBytes(of: UInt64(past.utf8.count).littleEndian, Array.init) + Array(past.utf8))
        defer { try? FileManager.default.removeItem(at: u2.deletingLastPathComponent()) }
        let error = try #require(openError(u2))
        #expect(error.description.contains("\"a\""), "\(error)")
    }
}
