import Foundation
import Testing
import NN
import TensorCore

let fixturesRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures")

/// A fixture model loaded from its directory, with the reference outputs.
struct Fixture {
    let model: DecoderModel
    let expected: SafetensorsFile
    let ids: [Int32], labels: [Int32]
    let batch: Int, length: Int

    init(_ name: String) throws {
        let dir = fixturesRoot.appendingPathComponent(name)
        let config = try ModelConfig(huggingFaceJSON: Data(contentsOf: dir.appendingPathComponent("config.json")), file: "config.json")
        var rng = RNG(seed: 0)
        model = DecoderModel(config: config, rng: &rng)
        let weights = try SafetensorsFile(url: dir.appendingPathComponent("model.safetensors"))
        var dict: [String: Tensor] = [:]
        for n in weights.names { dict[n] = try weights.tensor(n) }
        try model.load(stateDict: dict, source: "model.safetensors")
        expected = try SafetensorsFile(url: dir.appendingPathComponent("expected.safetensors"))
        ids = try expected.int32s("input_ids")
        labels = try expected.int32s("labels")
        let shape = try expected.info("input_ids").shape
        (batch, length) = (shape[0], shape[1])
    }
}

/// max |a - b| allowing `abs` absolute or `rel` relative error per element; the worst offender.
func worstError(_ a: [Float], _ b: [Float], abs absTol: Float, rel: Float) -> (ok: Bool, detail: String) {
    guard a.count == b.count else { return (false, "\(a.count) vs \(b.count) elements") }
    for i in 0..<a.count {
        let d = abs(a[i] - b[i])
        if !(d <= absTol || d <= rel * abs(b[i])) { return (false, "element \(i): \(a[i]) vs \(b[i])") }
    }
    return (true, "")
}

@Suite struct DecoderFixtureTests {
    @Test(arguments: ["hf-tiny-gpt2", "hf-tiny-llama"])
    func logitsLossAndGradientsMatchTransformers(name: String) throws {
        let f = try Fixture(name)
        let logits = f.model.logits(ids: f.ids, batch: f.batch, length: f.length)
        let refLogits = try f.expected.tensor("logits")
        #expect(logits.shape == refLogits.shape)
        let lc = worstError(logits.values, refLogits.values, abs: 1e-4, rel: 0)
        #expect(lc.ok, "\(name) logits: \(lc.detail)")

        let loss = f.model.languageModelingLoss(logits: logits, labels: f.labels, batch: f.batch, length: f.length)
        #expect(abs(loss.item - (try f.expected.tensor("loss")).item) < 1e-4, "\(name) loss \(loss.item)")

        f.model.arena.zeroGrad()
        loss.backward()
        let grads = f.model.gradientDict()
        #expect(grads.count == f.model.arena.entries.count)
        for (key, g) in grads {
            let ref = try f.expected.tensor("grad." + key)
            #expect(g.shape == ref.shape, "\(key) gradient shape")
            let r = worstError(g.values, ref.values, abs: 1e-4, rel: 1e-3)
            #expect(r.ok, "\(name) grad \(key): \(r.detail)")
        }
    }

    @Test(arguments: ["hf-tiny-gpt2", "hf-tiny-llama"])
    func stateDictRoundTripReproducesLogits(name: String) throws {
        let f = try Fixture(name)
        let before = Autograd.withoutGrad { f.model.logits(ids: f.ids, batch: f.batch, length: f.length).values }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rein-roundtrip-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("model.safetensors")
        try Safetensors.write(f.model.stateDict(), to: file)
        var rng = RNG(seed: 1)
        let fresh = DecoderModel(config: f.model.config, rng: &rng)
        let saved = try SafetensorsFile(url: file)
        var dict: [String: Tensor] = [:]
        for n in saved.names { dict[n] = try saved.tensor(n) }
        try fresh.load(stateDict: dict, source: file.lastPathComponent)
        let after = Autograd.withoutGrad { fresh.logits(ids: f.ids, batch: f.batch, length: f.length).values }
        #expect(before == after)
    }

    @Test func strictLoadingNamesTheKey() throws {
        let f = try Fixture("hf-tiny-llama")
        var dict = f.model.stateDict()
        dict.removeValue(forKey: "model.norm.weight")
        #expect(throws: StateDictError.self) { try f.model.load(stateDict: dict, source: "x.safetensors") }
        do { try f.model.load(stateDict: dict, source: "x.safetensors") } catch {
            #expect(error.description.contains("model.norm.weight") && error.description.contains("x.safetensors"))
        }
        dict = f.model.stateDict()
        dict["model.layers.0.self_attn.k_proj.weight"] = Tensor.zeros([64, 64])
        do { try f.model.load(stateDict: dict, source: "y.safetensors"); Issue.record("wrong shape accepted") } catch {
            #expect(error.description.contains("k_proj") && error.description.contains("[32, 64]"))
        }
        dict = f.model.stateDict()
        dict["model.extra.weight"] = Tensor.zeros([1])
        #expect(throws: StateDictError.self) { try f.model.load(stateDict: dict, source: "z.safetensors") }
    }

    @Test(arguments: ["hf-tiny-gpt2", "hf-tiny-llama"])
    func kvCacheMatchesFullForwardWithLeftPadding(name: String) throws {
        let f = try Fixture(name)
        let (B, T) = (2, 10)
        let ids = Array(f.ids.prefix(B * T))
        // Row 0 left-padded by three positions.
        var mask = [Float](repeating: 1, count: B * T)
        for t in 0..<3 { mask[t] = 0 }
        let full = Autograd.withoutGrad { f.model.logits(ids: ids, batch: B, length: T, attentionMask: mask) }
        let cache = f.model.makeCache(batch: B, capacity: 32)
        var pieces: [Tensor] = []
        var start = 0
        for len in [6, 1, 1, 2] {
            let chunk = (0..<B).flatMap { b in ids[(b * T + start)..<(b * T + start + len)] }
            let m = (0..<B).flatMap { b in mask[(b * T)..<(b * T + start + len)] }
            pieces.append(Autograd.withoutGrad { f.model.logits(ids: chunk, batch: B, length: len, attentionMask: m, cache: cache) })
            start += len
        }
        let cached = concat(pieces, axis: 1).values, ref = full.values
        // Padding positions are garbage either way; compare real tokens only.
        let V = f.model.config.vocabSize
        for b in 0..<B { for t in 0..<T where mask[b * T + t] != 0 {
            let r = worstError(Array(cached[((b * T + t) * V)..<((b * T + t + 1) * V)]), Array(ref[((b * T + t) * V)..<((b * T + t + 1) * V)]), abs: 1e-4, rel: 0)
            #expect(r.ok, "\(name) b\(b) t\(t): \(r.detail)")
        } }
        // Left padding does not shift positions: row 0's real tokens see the same logits as unpadded.
        let unpadded = Autograd.withoutGrad { f.model.logits(ids: Array(ids[3..<T]), batch: 1, length: T - 3) }.values
        let r = worstError(Array(ref[(3 * V)..<(T * V)]), unpadded, abs: 1e-4, rel: 0)
        #expect(r.ok, "\(name) left padding: \(r.detail)")
    }
}
