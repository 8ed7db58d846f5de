#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// A test switch that makes one write fail, as a full or failing disk would.
///
/// Every write, fsync and rename of a checkpoint, an exported model, a stage's output file and
/// every commit of the run store passes through ``inject(_:)``, which counts them over the whole
/// process. With the environment variable `REIN_FAULT_AT=N` the N-th of them fails with
/// `REIN_FAULT_KIND` (`ENOSPC`, the default, or `EIO`) in `errno`; the caller reports it as it
/// would a real failure. `REIN_FAULT_AT=0` fails nothing and lists every point on stderr
/// (`rein-fault-point: N what`), so a test can pick the points to fail. Unset, a point costs one
/// load of a constant.
public enum IOFaults {
    struct Plan: Sendable {
        var at: Int
        var code: Int32
    }

    static let plan: Plan? = {
        let environment = ProcessInfo.processInfo.environment
        guard let text = environment["REIN_FAULT_AT"], let at = Int(text), at >= 0 else { return nil }
        let code: Int32 = environment["REIN_FAULT_KIND"]?.uppercased() == "EIO" ? EIO : ENOSPC
        return Plan(at: at, code: code)
    }()

    static let passed = Atomic<Int>(0)

    /// Counts one write point named `what` (e.g. `rename PATH`); true, with `errno` set to the
    /// fault's code, when it is the one to fail.
    @inline(__always)
    public static func inject(_ what: @autoclosure () -> String) -> Bool {
        guard let plan else { return false }
        return reached(plan, what())
    }

    /// The system's message for the injected error, e.g. "No space left on device".
    public static var injectedReason: String {
        String(cString: strerror(plan?.code ?? ENOSPC))
    }

    private static func reached(_ plan: Plan, _ what: String) -> Bool {
        let n = passed.add(1, ordering: .relaxed).newValue
        if plan.at == 0 {
            note("rein-fault-point: \(n) \(what)\n")
            return false
        }
        guard n == plan.at else { return false }
        note("rein-fault: failing write point \(n) (\(what)) with \(plan.code == EIO ? "EIO" : "ENOSPC")\n")
        errno = plan.code
        return true
    }

    private static func note(_ line: String) {
        line.utf8CString.withUnsafeBufferPointer { _ = write(2, $0.baseAddress, $0.count - 1) }
    }
}
