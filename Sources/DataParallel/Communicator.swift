import CMPIShim
import Foundation

/// The processes that train one model together, and the few collectives data-parallel training
/// needs. Every process calls the same collectives in the same order with the same sizes.
public protocol Communicator: AnyObject, Sendable {
    /// This process's index, 0 ..< size (rank 0 writes the store, checkpoints and logs).
    var rank: Int { get }
    /// Processes in the group.
    var size: Int { get }
    /// Sums `count` floats at `buffer` over every process, in place (every process gets the sum).
    func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws
    /// Reduces `values` over every process, in place.
    func allReduce(_ values: inout [Double], _ op: ReduceOp) throws
    /// Copies `bytes` bytes at `buffer` from process `root` to every other process.
    func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) throws
    /// Waits until every process has called it.
    func barrier() throws
}

/// How ``Communicator/allReduce(_:_:)`` combines values.
public enum ReduceOp: Int32, Sendable {
    case sum = 0, max = 1, min = 2
}

extension Communicator {
    /// True on the process that writes (rank 0).
    public var isRoot: Bool { rank == 0 }
    /// True when more than one process trains.
    public var isDistributed: Bool { size > 1 }
}

extension Communicator {
    /// Sends `data` from `root` to every process (the others pass nil) and returns it: a length,
    /// then the bytes.
    public func broadcast(_ data: Data?, root: Int) throws -> Data {
        var count = Int64(rank == root ? data?.count ?? 0 : 0)
        try withUnsafeMutableBytes(of: &count) { try broadcast($0.baseAddress!, bytes: 8, root: root) }
        guard count > 0 else { return Data() }
        var bytes = rank == root ? [UInt8](data!) : [UInt8](repeating: 0, count: Int(count))
        try bytes.withUnsafeMutableBytes { try broadcast($0.baseAddress!, bytes: Int(count), root: root) }
        return Data(bytes)
    }

    /// Every process's `data`, in rank order, on every process (one broadcast per process: for
    /// the few kilobytes of a rollout share, not for gradients).
    public func allGather(_ data: Data) throws -> [Data] {
        try (0..<size).map { root in try broadcast(root == rank ? data : nil, root: root) }
    }
}

/// One process alone: every collective is the identity (the default, without `mpirun`).
public final class SingleProcess: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {}
    public func allReduce(_ values: inout [Double], _ op: ReduceOp) throws {}
    public func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) throws {}
    public func barrier() throws {}
}

/// An MPI call failed, or MPI cannot be used.
public struct CommunicatorError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// MPI_COMM_WORLD of Open MPI, loaded at run time (see `CMPIShim`): no MPI library is linked, so
/// the same binary runs without MPI installed.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int

    /// Loads libmpi, initializes MPI and reads this process's rank.
    public init() throws {
        var message = [CChar](repeating: 0, count: 512)
        guard rein_mpi_load(&message, message.count) == 0 else {
            throw CommunicatorError(String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        var r: Int32 = 0, s: Int32 = 0
        try Self.check(rein_mpi_init(&r, &s), "MPI_Init")
        rank = Int(r)
        size = Int(s)
    }

    static func check(_ code: Int32, _ call: String) throws {
        guard code != 0 else { return }
        var text = [CChar](repeating: 0, count: 512)
        rein_mpi_error_string(code, &text, text.count)
        let message = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw CommunicatorError("\(call) failed (\(code)): \(message.isEmpty ? "MPI error" : message); another process of the job may have died")
    }

    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) throws {
        try Self.check(rein_mpi_allreduce_sum_float(buffer, Int64(count)), "MPI_Allreduce")
    }

    public func allReduce(_ values: inout [Double], _ op: ReduceOp) throws {
        guard !values.isEmpty else { return }
        let n = Int32(values.count)
        try values.withUnsafeMutableBufferPointer { try Self.check(rein_mpi_allreduce_double($0.baseAddress, n, op.rawValue), "MPI_Allreduce") }
    }

    public func broadcast(_ buffer: UnsafeMutableRawPointer, bytes: Int, root: Int) throws {
        try Self.check(rein_mpi_broadcast(buffer, Int64(bytes), Int32(root)), "MPI_Bcast")
    }

    public func barrier() throws { try Self.check(rein_mpi_barrier(), "MPI_Barrier") }

    /// Ends MPI in this process (after the last collective).
    public func finalize() { _ = rein_mpi_finalize() }

    /// Ends every process of the job with `code` (after an error on one of them, so none waits in
    /// a collective forever).
    public func abort(code: Int32) -> Never {
        _ = rein_mpi_abort(code)
        exit(code)
    }
}

/// The communicator of this process: ``SingleProcess`` unless ``start()`` found `mpirun`.
public enum ProcessGroup {
    nonisolated(unsafe) private static var current: any Communicator = SingleProcess()

    /// The group this process trains in.
    public static var world: any Communicator { current }

    /// True when the environment says this process was started by Open MPI's `mpirun`.
    public static var launchedByMPI: Bool { ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil }

    /// Joins the MPI job when started by `mpirun` (`OMPI_COMM_WORLD_SIZE` is set); otherwise stays a
    /// single process. Call once, before any training.
    @discardableResult
    public static func start() throws -> any Communicator {
        guard launchedByMPI, current is SingleProcess else { return current }
        do { current = try MPICommunicator() } catch let error as CommunicatorError {
            throw CommunicatorError("started by mpirun (OMPI_COMM_WORLD_SIZE=\(ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"]!)) but MPI is unusable: \(error.description)")
        }
        return current
    }

    /// Uses `communicator` from now on (tests).
    public static func use(_ communicator: any Communicator) { current = communicator }

    /// Ends MPI after a successful run (a no-op without MPI).
    public static func finish() {
        (current as? MPICommunicator)?.finalize()
    }

    /// After an error: with several processes, ends them all with `code` so none hangs in a
    /// collective; alone, returns.
    public static func abortIfDistributed(code: Int32) {
        guard let mpi = current as? MPICommunicator, mpi.size > 1 else { return }
        mpi.abort(code: code)
    }
}
