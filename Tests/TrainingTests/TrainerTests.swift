import Foundation
import Testing
import NN
import Optimizers
import TensorCore
import Training

/// Synthetic language-modeling batches: a fixed seeded token stream, reshuffled each epoch.
struct SyntheticBatches: BatchSource {
    struct Position: Codable, Equatable { var epoch: Int; var index: Int }
    let rows: [[Int32]]
    let batch: Int
    var order: [Int]
    var position = Position(epoch: 0, index: 0)

    init(rows: [[Int32]], batch: Int) {
        self.rows = rows
        self.batch = batch
        order = Self.order(count: rows.count, epoch: 0)
    }

    static func order(count: Int, epoch: Int) -> [Int] {
        var rng = RNG(seed: 1000 + UInt64(epoch))
        var o = Array(0..<count)
        o.shuffle(using: &rng)
        return o
    }

    mutating func next() -> [[Int32]]? {
        guard position.index + batch <= order.count else { return nil }
        defer { position.index += batch }
        return order[position.index..<(position.index + batch)].map { rows[$0] }
    }

    mutating func startNextEpoch() {
        position = Position(epoch: position.epoch + 1, index: 0)
        order = Self.order(count: rows.count, epoch: position.epoch)
    }

    mutating func restore(_ p: Position) throws {
        position = p
        order = Self.order(count: rows.count, epoch: p.epoch)
    }
}

func tinyLM(seed: UInt64) -> DecoderModel {
    var rng = RNG(seed: seed)
    return DecoderModel(config: ModelConfig(family: .llama, vocabSize: 61, hiddenSize: 32, layers: 2, heads: 4, kvHeads: 2,
                                            intermediateSize: 48, maxPositions: 32), rng: &rng)
}

func syntheticRows() -> [[Int32]] {
    // Rows with a learnable rule: each token is the previous plus 3, modulo 61.
    var rng = RNG(seed: 5)
    return (0..<24).map { _ in
        let start = Int32(rng.int(below: 61))
        return (0..<12).map { (start + 3 * Int32($0)) % 61 }
    }
}

func makeTrainer(_ model: DecoderModel, sink: MetricsSink? = nil, maxSteps: Int = 8) -> Trainer<SyntheticBatches> {
    var config = TrainerConfig()
    config.learningRate = 3e-3
    config.maxSteps = maxSteps
    config.warmupSteps = 2
    config.gradientAccumulationSteps = 2
    config.weightDecay = 0.01
    return Trainer(arena: model.arena, config: config, source: SyntheticBatches(rows: syntheticRows(), batch: 4), sink: sink) { rows, rng in
        // Dropout-like use of the stage RNG, so resume must restore it too.
        let ids = rows.flatMap { $0 }
        let logits = model.logits(ids: ids, batch: rows.count, length: 12)
        let noisy = dropout(logits, p: 0.1, rng: &rng)
        return (model.languageModelingLoss(logits: noisy, labels: ids, batch: rows.count, length: 12), ids.count, [:])
    }
}

@Suite struct TrainerTests {
    @Test func learnsAndLogs() throws {
        let sink = MemoryMetricsSink()
        let trainer = makeTrainer(tinyLM(seed: 1), sink: sink, maxSteps: 30)
        try trainer.run()
        let losses = sink.series("train/loss").map(\.value)
        #expect(losses.count == 30)
        #expect(losses.last! < losses.first! * 0.75, "loss \(losses.first!) -> \(losses.last!)")
        #expect(sink.series("train/learning_rate").first!.value == 0)   // warmup starts at 0
        #expect(trainer.epoch > 0)   // 24 rows / (4 x 2) per step: several epochs
    }

    @Test func resumedRunReproducesTheUninterruptedLosses() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rein-resume-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let full = MemoryMetricsSink()
        try makeTrainer(tinyLM(seed: 2), sink: full).run()

        // Stop after step 3 (the progress callback says so), then resume in a fresh process-like setup.
        let first = MemoryMetricsSink()
        try makeTrainer(tinyLM(seed: 2), sink: first).run(checkpointDirectory: dir) { $0.step < 3 }
        let second = MemoryMetricsSink()
        let resumed = makeTrainer(tinyLM(seed: 99), sink: second)   // different init: the checkpoint must overwrite it
        try resumed.resume(from: dir.appendingPathComponent("last"))
        #expect(resumed.step == 3)
        try resumed.run(checkpointDirectory: dir)
        let expected = full.series("train/loss").map { $0.value.bitPattern }
        let got = (first.series("train/loss") + second.series("train/loss")).map { $0.value.bitPattern }
        #expect(got == expected)
        #expect(second.series("train/loss").map(\.step) == Array(4...8))
    }

    @Test func aCheckpointOfTheFormerLayoutResumesExactly() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rein-legacy-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let full = MemoryMetricsSink()
        try makeTrainer(tinyLM(seed: 4), sink: full).run()
        let first = MemoryMetricsSink()
        try makeTrainer(tinyLM(seed: 4), sink: first).run(checkpointDirectory: dir.appendingPathComponent("new")) { $0.step < 3 }

        // The same checkpoint as the trainer wrote it before the checkpointer: a plain `last`
        // directory, the AdamW counters in trainer_state.json.
        let version = dir.appendingPathComponent("new/last")
        let legacy = dir.appendingPathComponent("old/last")
        try FileManager.default.createDirectory(at: legacy, withIntermediateDirectories: true)
        for file in ["weights.safetensors", "optimizer.safetensors"] {
            try FileManager.default.copyItem(at: version.appendingPathComponent(file), to: legacy.appendingPathComponent(file))
        }
        let new = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: version.appendingPathComponent("trainer_state.json"))) as? [String: Any])
        let values = try #require(new["values"] as? [String: Double])
        let optimizer = try #require((new["optimizers"] as? [String: Any])?["optimizer"] as? [String: Any])
        let old: [String: Any] = [
            "step": new["step"]!, "epoch": Int(values["epoch"]!), "rng": new["rng"]!, "positionJSON": new["data_position"]!,
            "evaluationsWithoutImprovement": Int(values["evaluations_without_improvement"]!),
            "optimizerStepCount": optimizer["step_count"]!, "optimizerParameterNames": optimizer["parameter_names"]!,
            "optimizerParameterSteps": optimizer["parameter_steps"]!,
        ]
        try JSONSerialization.data(withJSONObject: old).write(to: legacy.appendingPathComponent("trainer_state.json"))

        // The first save over it moves the plain directory aside as a version; a crash right then
        // (no link yet) still leaves it to resume from.
        let crashing = makeTrainer(tinyLM(seed: 97))
        crashing.checkpointer.faultHook = { point, _ in if point == 1 { throw CancellationError() } }
        #expect(throws: CancellationError.self) { try crashing.saveCheckpoint(to: legacy) }
        #expect(Checkpointer.resolve(legacy)?.lastPathComponent == "last-00000003")

        let second = MemoryMetricsSink()
        let resumed = makeTrainer(tinyLM(seed: 98), sink: second)
        try resumed.resume(from: legacy)
        #expect(resumed.step == 3)
        try resumed.run(checkpointDirectory: dir.appendingPathComponent("old"))
        let expected = full.series("train/loss").map { $0.value.bitPattern }
        #expect((first.series("train/loss") + second.series("train/loss")).map { $0.value.bitPattern } == expected)
        // The next save replaced the plain directory by the link to a version.
        #expect(linkTarget(legacy) == "last-00000008")
        #expect(entries(dir.appendingPathComponent("old")) == ["last", "last-00000008"])
    }

    @Test func anotherOptimizerTrainsAndResumesExactly() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rein-sgd-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        func sgdTrainer(_ model: DecoderModel, _ sink: MemoryMetricsSink) -> Trainer<SyntheticBatches> {
            var config = TrainerConfig()
            config.maxSteps = 6
            config.gradientAccumulationSteps = 2
            config.learningRate = 0.05
            config.lrSchedulerType = .constant
            let optimizer = SGD(arena: model.arena, learningRate: 0.05, momentum: 0.9)
            return Trainer(arena: model.arena, config: config, source: SyntheticBatches(rows: syntheticRows(), batch: 4), sink: sink,
                           optimizer: optimizer) { rows, _ in
                let ids = rows.flatMap { $0 }
                return (model.languageModelingLoss(logits: model.logits(ids: ids, batch: rows.count, length: 12), labels: ids,
                                                   batch: rows.count, length: 12), rows.count * 11, [:])
            }
        }
        let full = MemoryMetricsSink()
        let trainer = sgdTrainer(tinyLM(seed: 6), full)
        #expect(trainer.optimizer is SGD)
        try trainer.run()
        let losses = full.series("train/loss").map(\.value)
        #expect(losses.last! < losses.first!)
        let first = MemoryMetricsSink(), second = MemoryMetricsSink()
        try sgdTrainer(tinyLM(seed: 6), first).run(checkpointDirectory: dir) { $0.step < 2 }
        let resumed = sgdTrainer(tinyLM(seed: 60), second)
        try resumed.resume(from: dir.appendingPathComponent("last"))
        try resumed.run(checkpointDirectory: dir)
        #expect((first.series("train/loss") + second.series("train/loss")).map { $0.value.bitPattern } == losses.map(\.bitPattern))
    }

    @Test func badCheckpointsAreClearErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rein-badckpt-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let trainer = makeTrainer(tinyLM(seed: 3), maxSteps: 1)
        try trainer.run(checkpointDirectory: dir)
        // A model of another shape cannot resume from it.
        var rng = RNG(seed: 0)
        let other = DecoderModel(config: ModelConfig(family: .llama, vocabSize: 61, hiddenSize: 16, layers: 2, heads: 4,
                                                     kvHeads: 2, intermediateSize: 48, maxPositions: 32), rng: &rng)
        do {
            try makeTrainer(other).resume(from: dir.appendingPathComponent("last"))
            Issue.record("resumed into a differently shaped model")
        } catch {
            #expect("\(error)".contains("shape"))
        }
        do {
            try makeTrainer(tinyLM(seed: 3)).resume(from: dir.appendingPathComponent("missing"))
            Issue.record("resumed from nothing")
        } catch {
            #expect("\(error)".contains("trainer_state.json"))
        }
    }
}
