import Alignment
import ArgumentParser
import Datasets
import Foundation
import NN
import Recipes
import TensorCore
import Training

/// The GPT-2 shapes of the peer benchmarks (trl_bench.py's `SIZES`, torch_gpt_bench.py's tiny and
/// small), shared by `rein bench train` and `rein bench rl`.
enum PeerShape: String, CaseIterable, ExpressibleByArgument {
    case tiny, small

    /// `n_layer`, `n_embd`, `n_head`, `vocab_size`, `n_positions` as trl_bench.py sets them.
    var config: ModelConfig {
        switch self {
        case .tiny: return ModelConfig(family: .gpt2, vocabSize: 512, hiddenSize: 128, layers: 2, heads: 4, maxPositions: 128)
        case .small: return ModelConfig(family: .gpt2, vocabSize: 2048, hiddenSize: 256, layers: 4, heads: 4, maxPositions: 256)
        }
    }

    var label: String {
        switch self {
        case .tiny: return "GPT-2 style 2 x 128, vocab 512, context 128"
        case .small: return "GPT-2 style 4 x 256, vocab 2048, context 256"
        }
    }

    /// Tokens per training sequence of `rein bench train` (trl_bench.py's "long": ~56 + 56 and ~112 + 112 words).
    var sequenceLength: Int { self == .tiny ? 115 : 228 }

    /// trl_bench.py's `gen_len`: new tokens per RL response.
    var responseLength: Int { self == .tiny ? 32 : 64 }

    /// trl_bench.py's `rl_prompt_words` ("long").
    var promptWords: Int { self == .tiny ? 56 : 112 }
}

/// `rein bench train`: SFT tokens/s, reward and DPO pairs/s through the real stage code.
struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training stages' speed: SFT tokens/s, reward pairs/s, DPO pairs/s (batch 8)."
    )

    @OptionGroup var options: BenchOptions

    @Option(help: "Steps measured per stage (after one warm-up step).")
    var steps = 6

    @Flag(help: "Also measure the SmolLM2-135M shape (full and LoRA, sequences of 128 tokens; a few minutes).")
    var smollm2 = false

    func run() throws {
        options.apply()
        options.printHeader()
        var shapes: [(String, ModelConfig, Int, LoRAConfig?)] = PeerShape.allCases.map { ($0.label, $0.config, $0.sequenceLength, nil) }
        if smollm2 {
            let smol = ModelConfig(family: .llama, vocabSize: 49_152, hiddenSize: 576, layers: 30, heads: 9, kvHeads: 3, headDim: 64,
                                   intermediateSize: 1536, maxPositions: 8192, ropeTheta: 100_000)
            let allLinear = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
            shapes.append(("SmolLM2-135M shape, full", smol, 128, nil))
            shapes.append(("SmolLM2-135M shape, LoRA r=16 on every linear layer", smol, 128, LoRAConfig(r: 16, alpha: 32, targetModules: allLinear)))
        }
        for (label, config, length, lora) in shapes {
            print("")
            print("\(label), batch 8, ~\(length) tokens per sequence:")
            // The trainer counts the tokens that carry loss (the completions: 3/4 of each sequence
            // here); throughput figures elsewhere (TRL's) count every token of the batch.
            var ratio = 1.0
            let sft = try measure(config: config, length: length, stage: .sft, lora: lora, allTokensPerLossToken: &ratio)
            print("  SFT:    \(fmt(sft * ratio, 10, 0)) tokens/s (\(fmt(sft, 0, 0)) completion tokens/s)")
            let reward = try measure(config: config, length: length, stage: .reward, lora: lora, allTokensPerLossToken: &ratio)
            print("  reward: \(fmt(reward, 10, 1)) pairs/s")
            let dpo = try measure(config: config, length: length, stage: .dpo, lora: lora, allTokensPerLossToken: &ratio)
            print("  DPO:    \(fmt(dpo, 10, 1)) pairs/s")
        }
    }

    /// Median items/s over the measured steps of one stage on synthetic data.
    func measure(config: ModelConfig, length: Int, stage: RecipeStageKind, lora: LoRAConfig?,
                 allTokensPerLossToken: inout Double) throws -> Double {
        var rng = RNG(seed: 11)
        let model = DecoderModel(config: config, rng: &rng)
        if stage == .reward { model.addScoreHead(rng: &rng) }
        if let lora { try model.addLoRA(lora, rng: &rng) }
        func tokens(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32(4 + rng.int(below: config.vocabSize - 4)) } }
        func example(_ n: Int, prompt: Int) -> TokenizedExample {
            TokenizedExample(ids: tokens(n), lossMask: (0..<n).map { $0 >= prompt })
        }
        var trainer = TrainerConfig()
        trainer.maxSteps = steps + 1
        trainer.learningRate = 1e-4
        trainer.loggingSteps = 0
        var rates: [Double] = []
        let record: (TrainingProgress) -> Bool = { p in
            if p.step > 1 { rates.append(p.itemsPerSecond) }
            return true
        }
        let collator = try Collator(padTokenID: 3, eosTokenID: 0)
        // Lengths vary a little around `length`, as real data does.
        let variation = max(1, length / 20)
        switch stage {
        case .sft, .pretrain:
            let data = (0..<64).map { _ in example(length - rng.int(below: variation), prompt: length / 4) }
            let collated = collator.collate(data)
            let lossTokens = collated.labels.filter { $0 != Batch.ignoreIndex }.count
            allTokensPerLossToken = Double(data.reduce(0) { $0 + $1.count }) / Double(max(1, lossTokens))
            _ = try Stages.sft(model: model, train: data, validation: [], collator: collator, batchSize: 8, config: trainer, progress: record)
        case .reward, .dpo:
            let pairs = (0..<64).map { _ -> TokenizedPair in
                let prompt = tokens(length / 4)
                let c = example(length - length / 4 - rng.int(below: variation), prompt: 0)
                let r = example(length - length / 4 - rng.int(below: variation), prompt: 0)
                return TokenizedPair(prompt: prompt, chosen: c, rejected: r)
            }
            if stage == .reward {
                _ = try Stages.reward(model: model, train: pairs, validation: [], collator: collator, batchSize: 8,
                                      config: trainer, progress: record)
            } else {
                var refRNG = RNG(seed: 11)
                let reference = DecoderModel(config: config, rng: &refRNG)
                _ = try Stages.dpo(policy: model, reference: reference, train: pairs, validation: [], collator: collator,
                                   batchSize: 8, config: trainer, progress: record)
            }
        default:
            throw CLIError("bench train measures pretrain, sft, reward and dpo, not \(stage.rawValue)")
        }
        return rates.sorted()[rates.count / 2]
    }
}
