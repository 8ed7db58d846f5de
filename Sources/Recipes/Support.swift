import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Ctrl-C (SIGINT) and SIGTERM handling for long runs: the first signal asks the current stage to
/// stop after its step (it writes a checkpoint); a second one exits at once.
public enum Interrupts {
    static let count = Atomic<Int>(0)

    /// Installs the handlers (idempotent).
    public static func install() {
        signal(SIGINT, handle)
        signal(SIGTERM, handle)
    }

    /// Whether a stop was requested.
    public static var requested: Bool { count.load(ordering: .relaxed) > 0 }

    /// Requests a stop as a signal would (tests, and the first Ctrl-C).
    public static func request() { count.add(1, ordering: .relaxed) }

    /// Forgets earlier requests.
    public static func reset() { count.store(0, ordering: .relaxed) }
}

private func handle(_ signal: Int32) {
    let previous = Interrupts.count.add(1, ordering: .relaxed).oldValue
    if previous == 0 {
        let message = "\ninterrupted: finishing the current step and writing a checkpoint (Ctrl-C again to quit at once)\n"
        message.utf8CString.withUnsafeBufferPointer { buffer in _ = write(2, buffer.baseAddress, buffer.count - 1) }
    } else {
        _exit(130)
    }
}

/// An exclusive advisory lock on a file (flock), released when the process exits, even by kill -9.
final class FileLock {
    let path: String
    private let fd: Int32

    /// Opens (creating) the lock file; `onWait` is called once if another process holds the lock.
    init(path: String, onWait: () -> Void) throws {
        self.path = path
        try FileManager.default.createDirectory(at: URL(fileURLWithPath: path).deletingLastPathComponent(),
                                                withIntermediateDirectories: true)
        fd = open(path, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw RunnerError("\(path): cannot open the lock file (\(String(cString: strerror(errno))))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            onWait()
            while flock(fd, LOCK_EX) != 0 {
                guard errno == EINTR else {
                    close(fd)
                    throw RunnerError("\(path): cannot lock (\(String(cString: strerror(errno))))")
                }
            }
        }
        let pid = "\(getpid())\n"
        _ = ftruncate(fd, 0)
        _ = pid.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}

/// Content hashes of input files, for deciding whether a stage's inputs changed.
enum ContentHash {
    /// 64-bit FNV-1a, folded 8 bytes at a time (fast enough for model files of a few hundred MB).
    static func of(bytes: UnsafeRawBufferPointer, into hash: inout UInt64) {
        let n = bytes.count
        var i = 0
        while i &+ 8 <= n {
            let word = bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            hash = (hash ^ word) &* 0x0000_0100_0000_01b3
            hash ^= hash >> 29
            i &+= 8
        }
        while i < n {
            hash = (hash ^ UInt64(bytes[i])) &* 0x0000_0100_0000_01b3
            i &+= 1
        }
    }

    static func mix(_ hash: inout UInt64, _ text: String) {
        var h = hash
        text.utf8CString.withUnsafeBytes { of(bytes: $0, into: &h) }
        hash = h
    }

    /// The hash of a file, or of every regular file under a directory (names and contents, in name order).
    static func of(path: String) throws -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw RunnerError("\(path): input not found")
        }
        let files: [String]
        if isDirectory.boolValue {
            let names = (FileManager.default.subpaths(atPath: path) ?? []).sorted()
            files = names.filter { name in
                var dir: ObjCBool = false
                return !name.hasPrefix(".") && FileManager.default.fileExists(atPath: path + "/" + name, isDirectory: &dir) && !dir.boolValue
            }.map { path + "/" + $0 }
            for name in names { mix(&hash, name) }
        } else {
            files = [path]
        }
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { throw RunnerError("\(file): cannot read") }
            data.withUnsafeBytes { of(bytes: $0, into: &hash) }
        }
        return hash
    }

    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
