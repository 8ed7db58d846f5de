import Alignment
import ArgumentParser
import DataParallel
import Datasets
import Foundation
import NN
import TensorCore
import Training

/// `rein bench dp`: data-parallel SFT, 1 process x 1 thread against N processes x 1 thread under
/// `mpirun`, with the same global batch: the speedup and the share of a step spent in the
/// all-reduce.
struct BenchDP: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dp",
        abstract: "Data-parallel training: N processes x 1 thread (mpirun) against 1 x 1, speedup and all-reduce share.",
        discussion: """
        Starts itself twice: alone, and under mpirun -np N --oversubscribe (as root, with \
        OMPI_ALLOW_RUN_AS_ROOT set for mpirun). Each run trains SFT steps of one global batch on \
        synthetic tokens and reports the median step time and the time in the gradient all-reduce.
        """
    )

    @Option(help: "Processes of the data-parallel run.") var processes = 2
    @Option(help: "Model shape (the peer benchmarks' GPT-2 shapes).") var shape: PeerShape = .small
    @Option(help: "Sequences per global batch.") var batch = 8
    @Option(help: "Steps measured (after one warm-up step).") var steps = 6
    @Flag(help: .hidden) var worker = false

    struct Measurement: Codable {
        var processes: Int
        var stepSeconds: Double
        var allReduceSeconds: Double
        var parameters: Int
    }

    func run() throws {
        if worker { return try measure() }
        guard !ProcessGroup.launchedByMPI else { throw CLIError("run rein bench dp itself, not under mpirun: it starts mpirun") }
        guard let mpirun = Self.onPath("mpirun") else {
            throw CLIError("mpirun not found: rein bench dp needs Open MPI (apt-get install openmpi-bin libopenmpi-dev)")
        }
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
        let common = ["bench", "dp", "--worker", "--shape", shape.rawValue, "--batch", String(batch), "--steps", String(steps)]
        print("\(shape.label), global batch \(batch) of ~\(shape.sequenceLength) tokens, \(steps) steps, 1 thread per process")
        let alone = try Self.launch(me, common)
        let parallel = try Self.launch(mpirun.path, ["-np", String(processes), "--oversubscribe", "--bind-to", "core", me] + common)
        let mb = Double(alone.parameters * 4) / 1e6
        print("1 process:  \(fmt(alone.stepSeconds * 1000, 8, 1)) ms/step")
        print("\(processes) processes: \(fmt(parallel.stepSeconds * 1000, 8, 1)) ms/step, all-reduce \(fmt(parallel.allReduceSeconds * 1000, 0, 1)) ms (\(fmt(100 * parallel.allReduceSeconds / parallel.stepSeconds, 0, 1))% of the step, \(fmt(mb, 0, 1)) MB of gradients: \(fmt(mb / 1000 / max(parallel.allReduceSeconds, 1e-9), 0, 2)) GB/s)")
        let speedup = alone.stepSeconds / parallel.stepSeconds
        print("speedup \(fmt(speedup, 0, 2))x, scaling efficiency \(fmt(100 * speedup / Double(processes), 0, 1))%")
    }

    static func onPath(_ name: String) -> URL? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(dir)).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return nil
    }

    /// Runs a worker and reads the JSON line its rank 0 prints last.
    static func launch(_ executable: String, _ arguments: [String]) throws -> Measurement {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        if executable.hasSuffix("mpirun") && getuid() == 0 {
            environment["OMPI_ALLOW_RUN_AS_ROOT"] = environment["OMPI_ALLOW_RUN_AS_ROOT"] ?? "1"
            environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] ?? "1"
        }
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last,
              let m = try? JSONDecoder().decode(Measurement.self, from: Data(line.utf8)) else {
            throw CLIError("\(executable) \(arguments.joined(separator: " ")) failed (status \(process.terminationStatus))")
        }
        return m
    }

    /// One run: SFT steps on synthetic sequences, the median step and all-reduce times.
    func measure() throws {
        Threads.set(1)
        let world = ProcessGroup.world
        let config = shape.config
        var rng = RNG(seed: 11)
        let model = DecoderModel(config: config, rng: &rng)
        let length = shape.sequenceLength
        let data = (0..<64).map { _ in
            TokenizedExample(ids: (0..<length).map { _ in Int32(4 + rng.int(below: config.vocabSize - 4)) },
                             lossMask: (0..<length).map { $0 >= length / 4 })
        }
        let collator = try Collator(padTokenID: 3, eosTokenID: 0)
        let source = try EpochSource(items: data, batchSize: batch, seed: 5) { collator.collate($0) }
        var trainerConfig = TrainerConfig()
        trainerConfig.maxSteps = steps + 1
        trainerConfig.learningRate = 1e-4
        trainerConfig.loggingSteps = 0
        let trainer = Trainer(arena: model.arena, config: trainerConfig, source: source) { b, _ in
            let logits = model.logits(ids: b.ids, batch: b.rows, length: b.length, attentionMask: b.attentionMask)
            let loss = model.languageModelingLoss(logits: logits, labels: b.labels, batch: b.rows, length: b.length)
            var n = 0
            for row in 0..<b.rows {
                for t in 1..<b.length where b.labels[row * b.length + t] != Batch.ignoreIndex { n += 1 }
            }
            return (loss, n, [:])
        }
        var stepTimes: [Double] = [], reduceTimes: [Double] = []
        var last = DispatchTime.now().uptimeNanoseconds, lastReduce = 0.0
        try trainer.run { p in
            let now = DispatchTime.now().uptimeNanoseconds
            let reduce = trainer.optimizerStep.communicationSeconds
            if p.step > 1 {
                stepTimes.append(Double(now - last) * 1e-9)
                reduceTimes.append(reduce - lastReduce)
            }
            last = now
            lastReduce = reduce
            return true
        }
        func median(_ x: [Double]) -> Double { x.sorted()[x.count / 2] }
        guard world.isRoot else { return }
        let m = Measurement(processes: world.size, stepSeconds: median(stepTimes), allReduceSeconds: median(reduceTimes),
                            parameters: model.arena.trainableCount)
        print(String(decoding: try JSONEncoder().encode(m), as: UTF8.self))
    }
}
