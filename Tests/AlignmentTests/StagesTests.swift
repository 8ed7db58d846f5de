import Foundation
import Testing
import Alignment
import Datasets
import NN
import Recipes
import TensorCore
import Tokenizers
import Store
import Training

let tinyTokenizer = try! Tokenizer(tokenizerJSON: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../Fixtures/hf-tiny-gpt2/tokenizer.json"))
let eos: Int32 = 0, pad: Int32 = 3

func smallModel(seed: UInt64) -> DecoderModel {
    var rng = RNG(seed: seed)
    return DecoderModel(config: ModelConfig(family: .llama, vocabSize: 512, hiddenSize: 64, layers: 2, heads: 4, kvHeads: 2,
                                            intermediateSize: 128, maxPositions: 128), rng: &rng)
}

func trainerConfig(steps: Int, lr: Double) -> TrainerConfig {
    var c = TrainerConfig()
    c.maxSteps = steps
    c.learningRate = lr
    c.warmupSteps = 5
    c.lrSchedulerType = .constant
    c.seed = 7
    return c
}

/// Preference pairs labelled by a rule: the chosen reply is made of friendly words, the rejected of
/// unfriendly ones.
func rulePairs(count: Int, seed: UInt64) -> [DatasetRecord] {
    let good = ["great", "happy", "thanks", "good", "nice", "love"], bad = ["awful", "sad", "hate", "bad", "angry", "boring"]
    var rng = RNG(seed: seed)
    func reply(_ words: [String]) -> String { (0..<3).map { _ in words[rng.int(below: words.count)] }.joined(separator: " ") }
    return (0..<count).map { _ in
        .preference(prompt: .text("How was your day?"), chosen: .text(" " + reply(good)), rejected: .text(" " + reply(bad)), margin: nil)
    }
}

@Suite(.serialized) struct StagesTests {
    @Test func sftOverfitsEightExamplesOnTheirCompletions() throws {
        let builder = try ExampleBuilder(tokenizer: tinyTokenizer, eosTokenID: eos)
        let records: [DatasetRecord] = (0..<8).map { i in
            .conversation([.user("What is \(i) plus \(i)?"), .assistant("It is \(2 * i).")])
        }
        let (examples, _) = try builder.examples(records)
        let collator = try Collator(padTokenID: pad, eosTokenID: eos)
        // The loss mask covers exactly the assistant reply and its end-of-turn token.
        let first = examples[0]
        let scored = zip(first.ids, first.lossMask).filter(\.1).map(\.0)
        #expect(tinyTokenizer.decode(scored) == "It is 0.<|im_end|>")
        let model = smallModel(seed: 1)
        let sink = MemoryMetricsSink()
        let summary = try Stages.sft(model: model, train: examples, validation: examples, collator: collator, batchSize: 4,
                                     config: trainerConfig(steps: 150, lr: 3e-3), sink: sink)
        #expect(summary.validation["loss"]! < 0.05, "validation loss \(summary.validation)")
        #expect(sink.series("train/loss").first!.value > 3)
    }

    @Test func rewardModelLearnsTheRule() throws {
        let builder = try ExampleBuilder(tokenizer: tinyTokenizer, eosTokenID: eos)
        let (train, _) = try builder.pairs(rulePairs(count: 64, seed: 1))
        let (validation, _) = try builder.pairs(rulePairs(count: 32, seed: 2))
        let model = smallModel(seed: 2)
        var rng = RNG(seed: 3)
        model.addScoreHead(rng: &rng)
        let summary = try Stages.reward(model: model, train: train, validation: validation,
                                        collator: try Collator(padTokenID: pad, eosTokenID: eos), batchSize: 8,
                                        config: trainerConfig(steps: 60, lr: 1e-3))
        #expect(summary.validation["accuracy"]! >= 0.95, "\(summary.validation)")
        #expect(summary.validation["margin"]! > 0)
    }

    @Test func dpoRaisesTheChosenMargin() throws {
        let builder = try ExampleBuilder(tokenizer: tinyTokenizer, eosTokenID: eos)
        let (train, _) = try builder.pairs(rulePairs(count: 64, seed: 3))
        let (validation, _) = try builder.pairs(rulePairs(count: 32, seed: 4))
        let policy = smallModel(seed: 5), reference = smallModel(seed: 5)
        let collator = try Collator(padTokenID: pad, eosTokenID: eos)
        var before = try Stages.dpo(policy: policy, reference: reference, train: train, validation: validation, collator: collator,
                                    batchSize: 8, config: trainerConfig(steps: 0, lr: 1e-3)).validation
        // Policy equals reference: every implicit reward is zero.
        #expect(abs(before["rewards/margins"]!) < 1e-6)
        before = try Stages.dpo(policy: policy, reference: reference, train: train, validation: validation, collator: collator,
                                batchSize: 8, config: trainerConfig(steps: 40, lr: 1e-3), beta: 0.1).validation
        #expect(before["rewards/margins"]! > 0.5, "\(before)")
        #expect(before["rewards/accuracies"]! >= 0.95, "\(before)")
        #expect(before["loss"]! < Foundation.log(2.0))
    }
}

@Suite struct StageResumeTests {
    @Test func anInterruptedSFTStageResumesExactly() throws {
        let builder = try ExampleBuilder(tokenizer: tinyTokenizer, eosTokenID: eos)
        let records: [DatasetRecord] = (0..<20).map { i in .promptCompletion(prompt: .text("Count to \(i):"), completion: .text(" \(i) \(i + 1)")) }
        let (examples, _) = try builder.examples(records)
        let collator = try Collator(padTokenID: pad, eosTokenID: eos)
        var config = trainerConfig(steps: 10, lr: 2e-3)
        config.gradientAccumulationSteps = 2
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rein-stage-resume-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }

        let full = MemoryMetricsSink()
        _ = try Stages.sft(model: smallModel(seed: 8), train: examples, validation: [], collator: collator, batchSize: 3,
                           config: config, sink: full)
        // Interrupted after step 4 (the callback stops it), then resumed by a fresh process-like setup.
        let first = MemoryMetricsSink(), second = MemoryMetricsSink()
        _ = try Stages.sft(model: smallModel(seed: 8), train: examples, validation: [], collator: collator, batchSize: 3,
                           config: config, sink: first, checkpointDirectory: dir) { $0.step < 4 }
        let summary = try Stages.sft(model: smallModel(seed: 123), train: examples, validation: [], collator: collator, batchSize: 3,
                                     config: config, sink: second, checkpointDirectory: dir, resume: true)
        #expect(summary.steps == 10)
        let expected = full.series("train/loss").map { $0.value.bitPattern }
        #expect((first.series("train/loss") + second.series("train/loss")).map { $0.value.bitPattern } == expected)
    }
}

@Suite struct StageStoreTests {
    @Test func aStageRecordsEveryStepInTheStoreWithoutDuplicatesOnResume() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rein-stage-store-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try RunStore(path: dir.appendingPathComponent("runs.sqlite").path)
        let run = try store.createRun(name: "t", recipe: "{}", seed: 1)
        let stage = try store.createStage(runId: run.id!, stageKey: "sft", kind: "sft", configJSON: "{}", configHash: "h")
        let builder = try ExampleBuilder(tokenizer: tinyTokenizer, eosTokenID: eos)
        let (examples, _) = try builder.examples((0..<8).map { .promptCompletion(prompt: .text("Say \($0):"), completion: .text(" \($0)")) })
        let collator = try Collator(padTokenID: pad, eosTokenID: eos)
        let config = trainerConfig(steps: 6, lr: 1e-3)
        let checkpoints = dir.appendingPathComponent("ckpt")
        // Interrupted after step 3, resumed: the sink of each process writes to the same stage.
        let first = StoreMetricsSink(store: store, stageId: stage.id!)
        _ = try Stages.sft(model: smallModel(seed: 9), train: examples, validation: [], collator: collator, batchSize: 4,
                           config: config, sink: first, checkpointDirectory: checkpoints) { $0.step < 3 }
        try first.flush()
        let second = StoreMetricsSink(store: store, stageId: stage.id!)
        _ = try Stages.sft(model: smallModel(seed: 9), train: examples, validation: [], collator: collator, batchSize: 4,
                           config: config, sink: second, checkpointDirectory: checkpoints, resume: true)
        try second.flush()
        let losses = try store.metrics(stageId: stage.id!).filter { $0.name == "train/loss" }
        #expect(losses.map(\.step).sorted() == [1, 2, 3, 4, 5, 6])
        #expect(try store.latestStep(stageId: stage.id!) == 6)
    }
}
