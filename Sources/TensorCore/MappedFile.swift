#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A whole file mapped read-only into memory, so checkpoint readers copy each tensor straight from
/// the page cache into its buffer and never read tensors nobody asked for.
///
/// The mapping is private and read-only. If another process truncates the file while it is mapped,
/// touching the lost pages raises SIGBUS: checkpoints are replaced by rename, never rewritten in place.
public final class MappedFile: @unchecked Sendable {
    /// The file that is mapped.
    public let url: URL
    /// The file's bytes; valid while this object lives. Empty (nil base) for an empty file.
    public let bytes: UnsafeRawBufferPointer

    /// Size of the file in bytes.
    public var size: Int { bytes.count }

    /// Maps the regular file at `url`; throws with the system's reason when it cannot.
    public init(url: URL) throws(MappedFileError) {
        self.url = url
        let fd = open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw MappedFileError(url: url, reason: Self.systemError()) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw MappedFileError(url: url, reason: Self.systemError()) }
        guard info.st_mode & 0o170000 == 0o100000 else {  // S_IFMT, S_IFREG
            throw MappedFileError(url: url, reason: "not a regular file")
        }
        let size = Int(info.st_size)
        guard size > 0 else {  // mmap rejects a zero length
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let base, base != UnsafeMutableRawPointer(bitPattern: -1) else {  // MAP_FAILED
            throw MappedFileError(url: url, reason: "mmap failed: " + Self.systemError())
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }

    /// Asks the kernel to start reading `range` from disk now, in large requests: a cold read of a
    /// large tensor then runs about three times faster than page faults alone would fetch it.
    public func willRead(_ range: Range<Int>) {
        guard let base = bytes.baseAddress, range.count >= 1 << 20 else { return }
        let page = Int(getpagesize())
        let start = range.lowerBound / page * page
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), range.upperBound - start, MADV_WILLNEED)
    }

    private static func systemError() -> String { String(cString: strerror(errno)) }
}

/// Why a file could not be mapped.
public struct MappedFileError: Error, CustomStringConvertible, Sendable {
    /// The file.
    public let url: URL
    /// The system's explanation (for example "No such file or directory").
    public let reason: String

    /// A one-line explanation naming the file.
    public var description: String { "cannot open \(url.path): \(reason)" }
}
