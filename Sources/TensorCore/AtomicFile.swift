#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Writes files so that a crash never leaves half of one: the bytes go to a temporary file in the
/// same directory, which is flushed to disk and then renamed over the destination.
public enum AtomicFile {
    /// Appends bytes to the temporary file.
    public struct Writer {
        fileprivate let fd: Int32
        fileprivate let url: URL

        /// Writes all of `bytes`.
        public func write(_ bytes: UnsafeRawBufferPointer) throws(AtomicFileError) {
            guard var p = bytes.baseAddress else { return }
            var remaining = bytes.count
            while remaining > 0 {
                let n = systemWrite(fd, p, min(remaining, 1 << 30))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw AtomicFileError(url: url, reason: AtomicFile.systemError())
                }
                p += n
                remaining -= n
            }
        }

        /// Writes the bytes of `values`.
        public func write<T: BitwiseCopyable>(contentsOf values: [T]) throws(AtomicFileError) {
            let failure: AtomicFileError? = values.withUnsafeBytes { bytes in
                do throws(AtomicFileError) { try write(bytes) } catch { return error }
                return nil
            }
            if let failure { throw failure }
        }
    }

    /// Creates `url` (replacing any file there) with what `body` writes, atomically.
    public static func write(to url: URL, _ body: (Writer) throws(AtomicFileError) -> Void) throws(AtomicFileError) {
        let directory = url.deletingLastPathComponent()
        let temporary = directory.appendingPathComponent(
            ".\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp")
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw AtomicFileError(url: url, reason: systemError()) }
        var closed = false
        do throws(AtomicFileError) {
            try body(Writer(fd: fd, url: url))
            if IOFaults.inject("write \(url.path)") { throw AtomicFileError(url: url, reason: systemError()) }
            guard !IOFaults.inject("fsync \(url.path)"), fsync(fd) == 0 else { throw AtomicFileError(url: url, reason: "fsync: " + systemError()) }
            closed = true
            guard close(fd) == 0 else { throw AtomicFileError(url: url, reason: "close: " + systemError()) }
            guard !IOFaults.inject("rename \(url.path)"), rename(temporary.path, url.path) == 0 else {
                throw AtomicFileError(url: url, reason: "rename: " + systemError())
            }
        } catch {
            if !closed { close(fd) }
            unlink(temporary.path)
            throw error
        }
        // Make the rename itself durable; failing here loses nothing already written.
        let dirFD = open(directory.path, O_RDONLY | O_CLOEXEC)
        if dirFD >= 0 {
            fsync(dirFD)
            close(dirFD)
        }
    }

    /// Creates `url` (replacing any file there) holding `data`, atomically.
    public static func write(_ data: Data, to url: URL) throws(AtomicFileError) {
        let bytes = [UInt8](data)
        try write(to: url) { file throws(AtomicFileError) in try file.write(contentsOf: bytes) }
    }

    fileprivate static func systemError() -> String { String(cString: strerror(errno)) }
}

/// `write(2)`, named apart from ``AtomicFile/Writer/write(_:)``.
@inline(__always)
private func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
    #if canImport(Glibc)
    Glibc.write(fd, p, n)
    #else
    Darwin.write(fd, p, n)
    #endif
}

/// Why an atomic write failed.
public struct AtomicFileError: Error, CustomStringConvertible, Sendable {
    /// The destination file.
    public let url: URL
    /// The system's explanation.
    public let reason: String

    /// A one-line explanation naming the file.
    public var description: String { "cannot write \(url.path): \(reason)" }
}
