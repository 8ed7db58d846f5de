import Foundation
import Testing
import Checkpoints
import Generation
import NN
import TensorCore
import Tokenizers

/// The SmolLM2-135M-Instruct GGUF from `scripts/fetch-assets.sh` (git-ignored).
let smolLM2GGUFPath = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf").path

/// Loaded once for the suite (about a second).
nonisolated(unsafe) let smolLM2Model: LanguageModel? = FileManager.default.fileExists(atPath: smolLM2GGUFPath)
    ? try? LanguageModel.load(smolLM2GGUFPath) : nil

@Suite(.enabled(if: FileManager.default.fileExists(atPath: smolLM2GGUFPath),
                "assets/smollm2 is missing: run scripts/fetch-assets.sh"),
       .serialized)
struct SmolLM2GoldenTests {
    // Golden values from the design notes (ASSETS.md), made by an independent float32 reference.
    let foxIds: [Int32] = [504, 2365, 6354, 16438, 27003, 690, 260, 23790, 2767, 30]
    let promptIds: [Int32] = [1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198]

    @Test func tokenizerAndChatTemplateGiveTheGoldenIds() throws {
        let lm = try #require(smolLM2Model)
        #expect(lm.tokenizer.encode("The quick brown fox jumps over the lazy dog.") == foxIds)
        let question: [ChatMessage] = [.user("What is the capital of France?")]
        #expect(try ChatTemplate.chatML.encode(question, with: lm.tokenizer, addGenerationPrompt: true).ids == promptIds)
        // The GGUF's own template puts its default system turn first; the golden ids follow it.
        let chat = try lm.chatTemplate.encode(question, with: lm.tokenizer, addGenerationPrompt: true)
        #expect(Array(chat.ids.suffix(promptIds.count)) == promptIds)
        #expect(lm.tokenizer.decode(Array(chat.ids.dropLast(promptIds.count)))
            == "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n")
        #expect(lm.model.config.layers == 30 && lm.model.config.kvHeads == 3 && lm.model.arena.parameterCount == 134_515_008)
    }

    @Test func logitsMatchTheReference() throws {
        let lm = try #require(smolLM2Model)
        let fox = Autograd.withoutGrad { lm.model.logits(ids: foxIds, batch: 1, length: foxIds.count) }
        let expected: [Float] = [15.6553, 6.8245, 10.5912, 5.1094, 6.5944]
        for (i, e) in expected.enumerated() { #expect(abs(fox[0, 0, i] - e) < 1e-2, "fox logits[0, \(i)] = \(fox[0, 0, i])") }

        let logits = Autograd.withoutGrad { lm.model.logits(ids: promptIds, batch: 1, length: promptIds.count) }
        let last = (0..<logits.lastDim).map { logits[0, promptIds.count - 1, $0] }
        let top = last.indices.sorted { last[$0] > last[$1] }.prefix(5)
        let golden: [(Int, Float)] = [(504, 27.859), (60, 26.130), (38634, 26.102), (15319, 25.962), (7026, 25.181)]
        #expect(Array(top) == golden.map(\.0))
        for (id, value) in golden { #expect(abs(last[id] - value) < 1e-2, "logit of \(id) = \(last[id])") }
    }

    @Test func fewRowKernelDecodesAsBLASDoes() throws {
        // Decoding steps of a batch of 3 take the few-row kernel; forced to BLAS: the same greedy
        // tokens, log-probs equal up to float32 summation order.
        let lm = try #require(smolLM2Model)
        let gen = Generator(model: lm.model)
        let prompts = [promptIds, foxIds, Array(foxIds.prefix(4))]
        let options = SamplingOptions(maxNewTokens: 24)
        var r1 = RNG(seed: 0), r2 = RNG(seed: 0)
        let fast = gen.generate(prompts: prompts, options: options, rng: &r1)
        let blas = SkinnyMatmul.$isEnabled.withValue(false) { gen.generate(prompts: prompts, options: options, rng: &r2) }
        #expect(fast.map(\.tokens) == blas.map(\.tokens))
        let worst = zip(fast.flatMap(\.logProbs), blas.flatMap(\.logProbs)).map { abs($0 - $1) }.max() ?? 0
        #expect(worst < 1e-3, "worst log-prob difference \(worst)")
    }

    @Test func greedyAnswersParis() throws {
        let lm = try #require(smolLM2Model)
        let gen = Generator(model: lm.model, decode: { lm.tokenizer.decode($0, skipSpecial: true) })
        var rng = RNG(seed: 0)
        let out = gen.generate(prompts: [promptIds], options: SamplingOptions(maxNewTokens: 20, stopTokens: lm.stopTokenIds), rng: &rng)
        #expect(out[0].text == "The capital of France is Paris.")
        #expect(out[0].stopReason == .stopToken)
    }

    @Test func exportedDirectoryReloadsWithTheSameLogits() throws {
        let lm = try #require(smolLM2Model)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rein-smol-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try lm.save(to: dir)
        let back = try LanguageModel.load(dir.path)
        let ids = Array(foxIds.prefix(6))
        let a = Autograd.withoutGrad { lm.model.logits(ids: ids, batch: 1, length: ids.count) }.values
        let b = Autograd.withoutGrad { back.model.logits(ids: ids, batch: 1, length: ids.count) }.values
        #expect(a == b)
        #expect(back.tokenizer.encode("The quick brown fox jumps over the lazy dog.") == foxIds)
    }
}
