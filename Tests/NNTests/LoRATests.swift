import Foundation
import Testing
import NN
import Optimizers
import TensorCore

@Suite struct LoRATests {
    func trainSteps(_ model: DecoderModel, ids: [Int32], steps: Int) {
        let opt = AdamW(arena: model.arena, learningRate: 1e-2, weightDecay: 0)
        for _ in 0..<steps {
            let logits = model.logits(ids: ids, batch: 2, length: ids.count / 2)
            model.languageModelingLoss(logits: logits, labels: ids, batch: 2, length: ids.count / 2).backward()
            opt.step()
            model.arena.zeroGrad()
        }
    }

    @Test(arguments: ["hf-tiny-gpt2", "hf-tiny-llama"])
    func onlyAdaptersTrainAndTheMergedModelMatches(name: String) throws {
        let f = try Fixture(name)
        let model = f.model
        let targets = name.contains("gpt2") ? ["c_attn", "c_fc"] : ["q_proj", "v_proj", "down_proj"]
        let before = Autograd.withoutGrad { model.logits(ids: f.ids, batch: f.batch, length: f.length).values }
        let baseBefore = model.stateDict().mapValues(\.values)
        var rng = RNG(seed: 4)
        let count = try model.addLoRA(LoRAConfig(r: 4, alpha: 8, targetModules: targets), rng: &rng)
        #expect(count == 2 * targets.count)
        // B starts at zero: the adapted model computes the same logits.
        #expect(Autograd.withoutGrad { model.logits(ids: f.ids, batch: f.batch, length: f.length).values } == before)

        trainSteps(model, ids: f.ids, steps: 3)
        #expect(model.stateDict().mapValues(\.values) == baseBefore, "a frozen base parameter changed")
        let adapted = Autograd.withoutGrad { model.logits(ids: f.ids, batch: f.batch, length: f.length).values }
        #expect(adapted != before)

        // Adapters saved and loaded onto a fresh copy of the base give the same logits.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rein-lora-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try model.saveLoRA(to: dir.appendingPathComponent("adapter"))
        let other = try Fixture(name).model
        try other.loadLoRA(from: dir.appendingPathComponent("adapter"))
        #expect(Autograd.withoutGrad { other.logits(ids: f.ids, batch: f.batch, length: f.length).values } == adapted)

        // Merged and exported as a plain model: same logits as base + adapter.
        model.mergeLoRA()
        let plain = DecoderModel(forLoading: model.config)
        try plain.load(stateDict: model.stateDict(), source: "merged")
        let merged = Autograd.withoutGrad { plain.logits(ids: f.ids, batch: f.batch, length: f.length).values }
        #expect(zip(merged, adapted).allSatisfy { abs($0 - $1) < 1e-4 })
    }

    @Test func unknownTargetsNameTheAvailableModules() throws {
        let f = try Fixture("hf-tiny-llama")
        var rng = RNG(seed: 0)
        do {
            try f.model.addLoRA(LoRAConfig(targetModules: ["c_attn"]), rng: &rng)
            Issue.record("adapters added to nothing")
        } catch {
            #expect("\(error)".contains("q_proj") && "\(error)".contains("c_attn"))
        }
    }
}
