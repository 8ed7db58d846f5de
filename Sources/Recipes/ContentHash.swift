import Crypto
import Foundation
import TensorCore

/// SHA-256 content hashes: a stage's config, and the files it reads (streamed over the mapped
/// file, never read into memory whole), which decide whether a stage is skipped.
public enum ContentHash {
    /// SHA-256 of `data`, as 64 lowercase hex digits.
    public static func hex(of data: Data) -> String {
        hex(SHA256.hash(data: data))
    }

    static func hex(_ digest: SHA256Digest) -> String {
        digest.map { byte in
            let digits = String(byte, radix: 16)
            return byte < 16 ? "0" + digits : digits
        }.joined()
    }

    /// SHA-256 of `parts` joined by NUL bytes (a stage's config hash with its dependencies' and
    /// inputs' hashes).
    public static func combine(_ parts: [String]) -> String {
        var hasher = SHA256()
        for part in parts {
            hasher.update(data: Data(part.utf8))
            hasher.update(data: Data([0]))
        }
        return hex(hasher.finalize())
    }

    /// The hash of a file, or of every regular file under a directory (relative names and
    /// contents, in name order; hidden files left out).
    public static func of(path: String) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw RunnerError("\(path): input not found")
        }
        var hasher = SHA256()
        if isDirectory.boolValue {
            let names = (FileManager.default.subpaths(atPath: path) ?? []).sorted().filter { name in
                var dir: ObjCBool = false
                return !name.split(separator: "/").contains { $0.hasPrefix(".") }
                    && FileManager.default.fileExists(atPath: path + "/" + name, isDirectory: &dir) && !dir.boolValue
            }
            for name in names {
                hasher.update(data: Data(name.utf8))
                hasher.update(data: Data([0]))
                try stream(path + "/" + name, into: &hasher)
            }
        } else {
            try stream(path, into: &hasher)
        }
        return hex(hasher.finalize())
    }

    /// Feeds a file's bytes to `hasher` in 4 MiB slices of its memory map.
    static func stream(_ path: String, into hasher: inout SHA256) throws {
        let file: MappedFile
        do { file = try MappedFile(url: URL(fileURLWithPath: path)) } catch { throw RunnerError("\(path): cannot read (\(error))") }
        let bytes = file.bytes
        let slice = 4 << 20
        var start = 0
        while start < bytes.count {
            let end = min(start + slice, bytes.count)
            hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
            start = end
        }
        withExtendedLifetime(file) {}
    }
}
