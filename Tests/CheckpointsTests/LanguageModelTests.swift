import Foundation
import Testing
import Checkpoints
import TensorCore

@Suite struct LanguageModelTests {
    let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures")

    @Test func loadsAFixtureDirectory() throws {
        let lm = try LanguageModel.load(fixtures.appendingPathComponent("hf-tiny-llama").path)
        #expect(lm.model.config.family == .llama && lm.tokenizer.vocabularySize == 512)
    }

    @Test func aTokenizerLargerThanTheModelIsRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rein-vocab-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let source = fixtures.appendingPathComponent("hf-tiny-gpt2")
        for f in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(at: source.appendingPathComponent(f), to: dir.appendingPathComponent(f))
        }
        // The fixture's tokenizer with one extra special token past the model's 512 ids.
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: source.appendingPathComponent("tokenizer.json"))) as! [String: Any]
        var added = json["added_tokens"] as! [[String: Any]]
        added.append(["id": 512, "content": "<|extra|>", "single_word": false, "lstrip": false, "rstrip": false,
                      "normalized": false, "special": true])
        json["added_tokens"] = added
        try JSONSerialization.data(withJSONObject: json).write(to: dir.appendingPathComponent("tokenizer.json"))
        do {
            _ = try LanguageModel.load(dir.path)
            Issue.record("a 513-token tokenizer was accepted for a 512-token model")
        } catch {
            #expect("\(error)".contains("513") && "\(error)".contains("tokenizer.json"))
        }
    }
}

@Suite struct RewardModelRoundTripTests {
    @Test func aSavedRewardModelLoadsWithItsHead() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures")
        let lm = try LanguageModel.load(fixtures.appendingPathComponent("hf-tiny-llama").path)
        var rng = RNG(seed: 1)
        lm.model.addScoreHead(rng: &rng)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rein-rm-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try lm.save(to: dir)
        let back = try LanguageModel.load(dir.path)
        let ids: [Int32] = [5, 6, 7, 8]
        let a = Autograd.withoutGrad { lm.model.rewards(ids: ids, batch: 1, length: 4) }.item
        let b = Autograd.withoutGrad { back.model.rewards(ids: ids, batch: 1, length: 4) }.item
        #expect(a == b)
    }
}
