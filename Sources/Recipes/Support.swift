import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Ctrl-C (SIGINT) and SIGTERM handling for long runs: the first signal asks the current stage to
/// stop after its step (it writes a checkpoint); a second one exits at once.
public enum Interrupts {
    static let count = Atomic<Int>(0)

    /// Installs the handlers (idempotent), and unblocks both signals in the calling thread: a
    /// parent that had them blocked (a process launcher's thread) passes its mask on.
    public static func install() {
        signal(SIGINT, handle)
        signal(SIGTERM, handle)
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)
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
        // Static text: nothing is allocated in a signal handler.
        let message: StaticString = signal == SIGTERM
            ? "\nSIGTERM: finishing the current step and writing a checkpoint (a second SIGTERM or Ctrl-C quits at once)\n"
            : "\ninterrupted: finishing the current step and writing a checkpoint (Ctrl-C again to quit at once)\n"
        _ = write(2, message.utf8Start, message.utf8CodeUnitCount)
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

