#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Optimizers
import TensorCore

/// What a checkpoint holds besides weights and optimizer state: the step, the random stream, the
/// data position and any named values a loop needs to continue (an epoch, a best loss, a KL
/// coefficient, a rollout round) or JSON blobs for anything richer.
public struct CheckpointState: Equatable, Sendable {
    /// Optimizer steps (or rounds) done.
    public var step: Int
    /// The loop's random stream.
    public var rng: RNG?
    /// The JSON of the batch source's position (see ``setDataPosition(_:)``).
    public var dataPosition: Data?
    /// Named numbers (stored exactly; NaN and infinities included).
    public var values: [String: Double]
    /// Named JSON blobs (see ``setJSON(_:forKey:)``).
    public var json: [String: Data]

    /// A state from its parts.
    public init(step: Int, rng: RNG? = nil, dataPosition: Data? = nil, values: [String: Double] = [:],
                json: [String: Data] = [:]) {
        self.step = step
        self.rng = rng
        self.dataPosition = dataPosition
        self.values = values
        self.json = json
    }

    /// The key of ``values`` that holds the number of processes that trained (data parallel);
    /// a resume on another number warns that the results differ in the last bits.
    public static let processesKey = "processes"

    /// Stores `position` as JSON.
    public mutating func setDataPosition<P: Encodable>(_ position: P) throws {
        dataPosition = try JSONEncoder().encode(position)
    }

    /// The stored position decoded as `P`, or nil when none was stored.
    public func dataPosition<P: Decodable>(as type: P.Type) throws -> P? {
        try dataPosition.map { try JSONDecoder().decode(P.self, from: $0) }
    }

    /// Stores `value` as the JSON blob `key`.
    public mutating func setJSON<T: Encodable>(_ value: T, forKey key: String) throws {
        json[key] = try JSONEncoder().encode(value)
    }

    /// The JSON blob `key` decoded as `T`, or nil when there is none.
    public func json<T: Decodable>(_ type: T.Type, forKey key: String) throws -> T? {
        try json[key].map { try JSONDecoder().decode(T.self, from: $0) }
    }
}

/// Saves and restores named arenas and optimizers together with a ``CheckpointState``, so that a
/// kill at any instant leaves a complete checkpoint: the previous one or the new one.
///
/// A checkpoint named `last` in `checkpoints/` is a symbolic link `checkpoints/last` to a version
/// directory `checkpoints/last-00000123/` holding
///
/// - `NAME.safetensors` for each arena (its parameters by name) and each optimizer (its buffers,
///   e.g. `exp_avg` and `exp_avg_sq`), and
/// - `trainer_state.json`: the state, the arenas' names and the optimizers' counters.
///
/// A save writes a fresh version directory, flushes every file and the directory to disk, then
/// flips the link with one `rename` (atomic), and only then removes older versions. The state
/// file is written last: a version without it is incomplete and never read. A reader of
/// `checkpoints/last/trainer_state.json` sees one whole checkpoint; ``resolve(_:)`` also finds the
/// newest complete version when the link itself is missing (a crash while converting an old
/// checkpoint). Checkpoints of the former layout (a plain `last/` directory of `weights`,
/// `optimizer` and an older `trainer_state.json`) still restore.
///
/// Setting the environment variable `REIN_FAULT_CHECKPOINT=N` makes the process exit at the N-th
/// write point of the checkpoints it writes (counted over the whole process), as if killed there:
/// crash tests use it.
public final class Checkpointer {
    /// The arenas saved and restored, by name.
    public let arenas: [(name: String, arena: ParameterArena)]
    /// The optimizers saved and restored, by name.
    public let optimizers: [(name: String, optimizer: any Optimizer)]
    /// Called after each write point of a save with its number (from 1 in each save) and what was
    /// just done; throwing aborts the save there (in-process crash tests).
    public var faultHook: ((_ point: Int, _ label: String) throws -> Void)?

    /// The file in each checkpoint written last.
    public static let stateFileName = "trainer_state.json"
    static let format = 2

    /// A checkpointer of `arenas` and `optimizers`. Names are file names: letters, digits and `_`,
    /// unique across both lists.
    public init(arenas: [(name: String, arena: ParameterArena)], optimizers: [(name: String, optimizer: any Optimizer)] = []) {
        let names = arenas.map(\.name) + optimizers.map(\.name)
        for name in names {
            precondition(Self.isPlainName(name), "checkpoint part names are letters, digits and _: '\(name)'")
        }
        precondition(Set(names).count == names.count, "checkpoint part names must be unique: \(names)")
        self.arenas = arenas
        self.optimizers = optimizers
    }

    static func isPlainName(_ name: String) -> Bool {
        !name.isEmpty && name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
    }

    // MARK: Saving

    /// Writes the arenas, the optimizers and `state` as the checkpoint `url` (e.g.
    /// `checkpoints/last`), replacing the one there atomically. Returns the version directory.
    @discardableResult
    public func save(_ state: CheckpointState, to url: URL) throws -> URL {
        do { return try write(state, to: url) } catch let abort as HookAbort { throw abort.error }
    }

    /// What the fault hook threw, carried past the wrapping of write errors.
    struct HookAbort: Error { let error: any Error }

    private func write(_ state: CheckpointState, to url: URL) throws -> URL {
        let name = url.lastPathComponent
        let parent = url.deletingLastPathComponent()
        guard Self.isPlainName(name) else {
            throw TrainingError.checkpointWrite(path: url.path, reason: "a checkpoint name is letters, digits and _")
        }
        var point = 0
        func reached(_ label: String) throws {
            point += 1
            do { try faultHook?(point, label) } catch { throw HookAbort(error: error) }
            CheckpointFaults.reached(label)
        }
        func failure(_ what: @autoclosure () -> String) -> TrainingError {
            let code = errno   // before anything else can change it
            return .checkpointWrite(path: url.path, reason: what() + ": " + String(cString: strerror(code)))
        }
        let fm = FileManager.default
        do {
            try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        } catch {
            throw TrainingError.checkpointWrite(path: url.path, reason: "\(error)")
        }
        // A plain directory in the link's place (the former layout) becomes a version first.
        if Self.fileType(url.path) == S_IFDIR {
            let step = Self.storedStep(url) ?? 0
            let moved = Self.freshVersion(name, step: step, in: parent)
            guard !IOFaults.inject("rename \(url.path)"), rename(url.path, parent.appendingPathComponent(moved).path) == 0 else { throw failure("moving the old checkpoint aside") }
            try reached("moved the old checkpoint aside")
        }
        let versionName = Self.freshVersion(name, step: state.step, in: parent)
        let version = parent.appendingPathComponent(versionName)
        guard !IOFaults.inject("mkdir \(version.path)"), mkdir(version.path, 0o755) == 0 else { throw failure("creating \(versionName)") }
        try reached("created \(versionName)")

        var stored = StoredCheckpoint(format: Self.format, step: state.step, rng: state.rng, dataPosition: state.dataPosition,
                                      values: state.values, json: state.json, arenas: arenas.map(\.name), optimizers: [:])
        do {
            for (partName, arena) in arenas {
                var weights: [String: Tensor] = [:]
                for (entry, t) in zip(arena.entries, arena.tensors) { weights[entry.name] = t.detached() }
                try Safetensors.write(weights, to: version.appendingPathComponent(partName + ".safetensors"))
                try reached("wrote \(partName).safetensors")
            }
            for (partName, optimizer) in optimizers {
                let snapshot = optimizer.exportState()
                stored.optimizers[partName] = StoredOptimizer(
                    stepCount: snapshot.stepCount, parameterNames: snapshot.parameterNames,
                    parameterSteps: snapshot.parameterSteps, buffers: snapshot.buffers.keys.sorted())
                guard !snapshot.buffers.isEmpty else { continue }
                try Safetensors.write(snapshot.buffers.mapValues { Tensor(shape: [$0.count], values: $0) },
                                      to: version.appendingPathComponent(partName + ".safetensors"))
                try reached("wrote \(partName).safetensors")
            }
            let bytes = try Self.encoder().encode(stored)
            let byteArray = [UInt8](bytes)
            try AtomicFile.write(to: version.appendingPathComponent(Self.stateFileName)) { file throws(AtomicFileError) in
                try file.write(contentsOf: byteArray)
            }
            try reached("wrote \(Self.stateFileName)")
        } catch let error as TrainingError {
            throw error
        } catch let abort as HookAbort {
            throw abort
        } catch {
            throw TrainingError.checkpointWrite(path: url.path, reason: "\(error)")
        }
        guard Self.syncDirectory(version.path) else { throw failure("flushing \(versionName)") }
        try reached("flushed \(versionName)")

        // The switch: a new link beside the old name, renamed over it in one step.
        let link = parent.appendingPathComponent(".\(name).link-\(getpid())")
        unlink(link.path)
        guard !IOFaults.inject("symlink \(link.path)"), symlink(versionName, link.path) == 0 else { throw failure("linking \(versionName)") }
        try reached("created the new link")
        guard !IOFaults.inject("rename \(url.path)"), rename(link.path, url.path) == 0 else {
            let error = failure("switching \(name) to \(versionName)")
            unlink(link.path)
            throw error
        }
        try reached("switched \(name) to \(versionName)")
        guard Self.syncDirectory(parent.path) else { throw failure("flushing \(parent.lastPathComponent)") }
        try reached("flushed the checkpoint directory")

        // Older versions and leftovers of interrupted saves (of this layout and the former one).
        for entry in (try? fm.contentsOfDirectory(atPath: parent.path)) ?? [] where entry != versionName {
            if Self.parseVersion(entry, of: name) != nil || entry.hasPrefix(".\(name).link-")
                || entry.hasPrefix(".\(name).partial-") || entry.hasPrefix(".\(name).old-") {
                try? fm.removeItem(at: parent.appendingPathComponent(entry))
            }
        }
        try reached("removed older versions")
        return version
    }

    /// An unused version directory name for a checkpoint `name` at `step`: `name-00000123`, then
    /// `name-00000123.1`, ... when saved again at the same step.
    static func freshVersion(_ name: String, step: Int, in parent: URL) -> String {
        let base = name + "-" + String(repeating: "0", count: max(0, 8 - String(step).count)) + String(step)
        var candidate = base, k = 0
        while fileType(parent.appendingPathComponent(candidate).path) != nil {
            k += 1
            candidate = base + ".\(k)"
        }
        return candidate
    }

    /// The step and repeat number of a version directory name of checkpoint `name`, or nil.
    static func parseVersion(_ entry: String, of name: String) -> (step: Int, repeat: Int)? {
        guard entry.hasPrefix(name + "-") else { return nil }
        let rest = entry.dropFirst(name.count + 1)
        let parts = rest.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let digits = parts.first, !digits.isEmpty, digits.allSatisfy(\.isASCII), let step = Int(digits), step >= 0 else { return nil }
        if parts.count == 2 {
            guard let k = Int(parts[1]), k > 0 else { return nil }
            return (step, k)
        }
        return (step, 0)
    }

    // MARK: Finding and restoring

    /// The complete checkpoint that `url` names: `url` itself when its state file exists, else
    /// the newest complete version of that name beside it; nil when there is none.
    public static func resolve(_ url: URL) -> URL? {
        let fm = FileManager.default
        if fm.fileExists(atPath: url.appendingPathComponent(stateFileName).path) { return url }
        let parent = url.deletingLastPathComponent(), name = url.lastPathComponent
        let versions = ((try? fm.contentsOfDirectory(atPath: parent.path)) ?? []).compactMap { entry -> (String, Int, Int)? in
            guard let v = parseVersion(entry, of: name),
                  fm.fileExists(atPath: parent.appendingPathComponent(entry).appendingPathComponent(stateFileName).path) else { return nil }
            return (entry, v.step, v.repeat)
        }
        guard let newest = versions.max(by: { ($0.1, $0.2) < ($1.1, $1.2) }) else { return nil }
        return parent.appendingPathComponent(newest.0)
    }

    /// Restores the arenas and optimizers from the checkpoint `url` names (see ``resolve(_:)``)
    /// and returns its state. Everything is checked first: on an error the arenas and optimizers
    /// are unchanged (short of a file failing to read after the checks).
    public func restore(from url: URL) throws -> CheckpointState {
        func fail(_ reason: String) -> TrainingError { .checkpoint(path: url.path, reason: reason) }
        guard let directory = Self.resolve(url) else { throw fail("\(Self.stateFileName) is missing") }
        let stored = try Self.readState(directory)

        // Weight files are checked (names, shapes, types) now and read into the arenas last.
        var weightFiles: [SafetensorsFile] = []
        for (name, arena) in arenas {
            guard stored.arenas.contains(name) else { throw fail("it holds no weights named '\(name)'") }
            let fileName = name + ".safetensors"
            let file: SafetensorsFile
            do { file = try SafetensorsFile(url: directory.appendingPathComponent(fileName)) } catch { throw fail("\(error)") }
            for entry in arena.entries {
                guard file.contains(entry.name) else { throw fail("\(fileName) lacks \(entry.name)") }
                let info: SafetensorsTensorInfo
                do { info = try file.info(entry.name) } catch { throw fail("\(error)") }
                guard info.shape == entry.shape else { throw fail("\(entry.name) has shape \(info.shape), the model has \(entry.shape)") }
                guard info.dtype.isReadableAsFloat else { throw fail("\(entry.name) is \(info.dtype.rawValue), not floating point") }
            }
            weightFiles.append(file)
        }
        var snapshots: [OptimizerSnapshot] = []
        for (name, _) in optimizers {
            guard let o = stored.optimizers[name] else { throw fail("it holds no optimizer state named '\(name)'") }
            var buffers: [String: [Float]] = [:]
            if !o.buffers.isEmpty {
                let fileName = name + ".safetensors"
                do {
                    let file = try SafetensorsFile(url: directory.appendingPathComponent(fileName))
                    for b in o.buffers {
                        guard file.contains(b) else { throw fail("\(fileName) lacks \(b)") }
                        buffers[b] = try file.tensor(b).values
                    }
                } catch let error as TrainingError { throw error } catch { throw fail("\(error)") }
            }
            snapshots.append(OptimizerSnapshot(stepCount: o.stepCount, parameterNames: o.parameterNames,
                                               parameterSteps: o.parameterSteps, buffers: buffers))
        }
        // Optimizers first (each checks its state and may refuse it), rolled back if a later one refuses.
        let backups = optimizers.map { $0.optimizer.exportState() }
        for (k, (name, optimizer)) in optimizers.enumerated() {
            do { try optimizer.importState(snapshots[k]) } catch {
                for j in 0..<k { try? optimizers[j].optimizer.importState(backups[j]) }
                throw fail("optimizer '\(name)': \(error)")
            }
        }
        for ((_, arena), file) in zip(arenas, weightFiles) {
            for (entry, t) in zip(arena.entries, arena.tensors) {
                let w: Tensor
                do { w = try file.tensor(entry.name) } catch { throw fail("\(error)") }
                t.data.update(from: w.data, count: w.count)
            }
        }
        return CheckpointState(step: stored.step, rng: stored.rng, dataPosition: stored.dataPosition, values: stored.values,
                               json: stored.json)
    }

    /// The step recorded in the checkpoint at `directory`, if it has a readable state file.
    public static func storedStep(_ directory: URL) -> Int? {
        try? readState(directory).step
    }

    /// The named values recorded in the checkpoint at `directory`, if it has a readable state file.
    public static func storedValues(_ directory: URL) -> [String: Double]? {
        try? readState(directory).values
    }

    static func readState(_ directory: URL) throws -> StoredCheckpoint {
        let path = directory.appendingPathComponent(stateFileName).path
        func fail(_ reason: String) -> TrainingError { .checkpoint(path: directory.path, reason: reason) }
        guard let data = FileManager.default.contents(atPath: path) else { throw fail("\(stateFileName) is missing") }
        do {
            let probe = try decoder().decode(FormatProbe.self, from: data)
            guard let format = probe.format else { return try decoder().decode(LegacyTrainerState.self, from: data).converted }
            guard format <= Self.format else {
                throw fail("\(stateFileName) has format \(format), newer than this build reads (\(Self.format))")
            }
            return try decoder().decode(StoredCheckpoint.self, from: data)
        } catch let error as TrainingError {
            throw error
        } catch {
            throw fail("\(stateFileName) is unreadable (\(error))")
        }
    }

    // MARK: Files

    static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }

    /// The type bits of what is at `path` (not following a link), or nil when nothing is there.
    static func fileType(_ path: String) -> mode_t? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return st.st_mode & S_IFMT
    }

    /// Flushes a directory's entries to disk (file systems that cannot sync a directory count as
    /// done).
    static func syncDirectory(_ path: String) -> Bool {
        if IOFaults.inject("fsync \(path)") { return false }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return fsync(fd) == 0 || errno == EINVAL
    }
}

/// `REIN_FAULT_CHECKPOINT=N`: exit at the N-th checkpoint write point of this process.
enum CheckpointFaults {
    static let exitAt: Int? = ProcessInfo.processInfo.environment["REIN_FAULT_CHECKPOINT"].flatMap { Int($0) }
    nonisolated(unsafe) static var passed = 0
    static let lock = NSLock()

    static func reached(_ label: String) {
        guard let exitAt else { return }
        lock.lock()
        passed += 1
        let now = passed
        lock.unlock()
        guard now == exitAt else { return }
        let message = "REIN_FAULT_CHECKPOINT: exiting at write point \(now) (\(label))\n"
        message.withCString { _ = write(2, $0, strlen($0)) }
        _exit(86)
    }
}

/// `trainer_state.json` of this layout.
struct StoredCheckpoint: Codable {
    var format: Int
    var step: Int
    var rng: RNG?
    var dataPosition: Data?
    var values: [String: Double]
    var json: [String: Data]
    var arenas: [String]
    var optimizers: [String: StoredOptimizer]

    enum CodingKeys: String, CodingKey {
        case format, step, rng, dataPosition = "data_position", values, json, arenas, optimizers
    }
}

/// An optimizer's counters; its buffers are in `NAME.safetensors`.
struct StoredOptimizer: Codable {
    var stepCount: Int
    var parameterNames: [String]
    var parameterSteps: [Int]
    var buffers: [String]

    enum CodingKeys: String, CodingKey {
        case stepCount = "step_count", parameterNames = "parameter_names", parameterSteps = "parameter_steps", buffers
    }
}

struct FormatProbe: Decodable { var format: Int? }

/// `trainer_state.json` as the trainer wrote it before the checkpointer (format 1): one AdamW
/// optimizer (`optimizer.safetensors`) over the weights (`weights.safetensors`).
struct LegacyTrainerState: Codable {
    var step: Int
    var epoch: Int
    var rng: RNG
    var positionJSON: Data
    var bestEvalLoss: Double?
    var evaluationsWithoutImprovement: Int
    var optimizerStepCount: Int
    var optimizerParameterNames: [String]
    var optimizerParameterSteps: [Int]

    /// The same checkpoint in this layout's terms, with the trainer's names.
    var converted: StoredCheckpoint {
        var values: [String: Double] = [TrainerKeys.epoch: Double(epoch),
                                        TrainerKeys.evaluationsWithoutImprovement: Double(evaluationsWithoutImprovement)]
        if let bestEvalLoss { values[TrainerKeys.bestEvalLoss] = bestEvalLoss }
        return StoredCheckpoint(
            format: 1, step: step, rng: rng, dataPosition: positionJSON, values: values, json: [:], arenas: [TrainerKeys.weights],
            optimizers: [TrainerKeys.optimizer: StoredOptimizer(stepCount: optimizerStepCount, parameterNames: optimizerParameterNames,
                                                                parameterSteps: optimizerParameterSteps,
                                                                buffers: ["exp_avg", "exp_avg_sq"])])
    }
}

/// The names the supervised trainer saves under.
enum TrainerKeys {
    static let weights = "weights"
    static let optimizer = "optimizer"
    static let epoch = "epoch"
    static let bestEvalLoss = "best_eval_loss"
    static let evaluationsWithoutImprovement = "evaluations_without_improvement"
}
