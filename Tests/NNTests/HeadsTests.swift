import Foundation
import Testing
import NN
import TensorCore

@Suite struct HeadsTests {
    @Test(arguments: ["hf-tiny-gpt2", "hf-tiny-llama"])
    func rewardIsReadAtTheLastRealTokenUnderAnyPadding(name: String) throws {
        let f = try Fixture(name)
        var rng = RNG(seed: 1)
        f.model.addScoreHead(rng: &rng)
        let seq = Array(f.ids.prefix(7))
        let alone = Autograd.withoutGrad { f.model.rewards(ids: seq, batch: 1, length: 7) }.item
        // Right padding (training) and left padding (generation) with three pad tokens.
        let right = Autograd.withoutGrad {
            f.model.rewards(ids: seq + [3, 3, 3], batch: 1, length: 10, attentionMask: Array(repeating: 1, count: 7) + [0, 0, 0])
        }.item
        let left = Autograd.withoutGrad {
            f.model.rewards(ids: [3, 3, 3] + seq, batch: 1, length: 10, attentionMask: [0, 0, 0] + Array(repeating: 1, count: 7))
        }.item
        #expect(abs(right - alone) < 1e-4 && abs(left - alone) < 1e-4, "\(alone) \(right) \(left)")

        // The head receives a gradient, and it is part of the exported state.
        let r = f.model.rewards(ids: seq, batch: 1, length: 7)
        r.sum().backward()
        #expect(f.model.scoreHead!.grad!.values.contains { $0 != 0 })
        #expect(f.model.stateDict()["score.weight"]?.shape == [1, 64])
    }

    @Test func valueHeadGivesOneValuePerToken() throws {
        let f = try Fixture("hf-tiny-llama")
        var rng = RNG(seed: 2)
        f.model.addValueHead(rng: &rng)
        let h = f.model.hiddenStates(ids: f.ids, batch: f.batch, length: f.length)
        let v = f.model.values(hidden: h)
        #expect(v.shape == [f.batch, f.length])
        v.sum().backward()
        #expect(f.model.arena.tensor(named: "v_head.summary.bias")!.grad!.item == Float(f.batch * f.length))
    }
}
