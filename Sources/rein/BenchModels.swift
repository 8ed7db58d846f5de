import ArgumentParser
import Datasets
import Foundation
import Generation
import NN
import Optimizers
import TensorCore
import Tokenizers

/// Model shapes measured by `rein bench models`.
enum BenchShape: String, CaseIterable, ExpressibleByArgument {
    case tiny, gpt2, smollm2

    var config: ModelConfig {
        switch self {
        case .tiny:
            return ModelConfig(family: .gpt2, vocabSize: 512, hiddenSize: 128, layers: 2, heads: 4, maxPositions: 128)
        case .gpt2:
            return ModelConfig(family: .gpt2, vocabSize: 50_257, hiddenSize: 768, layers: 12, heads: 12, maxPositions: 1024)
        case .smollm2:
            return ModelConfig(family: .llama, vocabSize: 49_152, hiddenSize: 576, layers: 30, heads: 9, kvHeads: 3,
                               headDim: 64, intermediateSize: 1536, maxPositions: 8192, ropeTheta: 100_000)
        }
    }

    var label: String {
        switch self {
        case .tiny: return "tiny GPT-2 (2 x 128, vocab 512)"
        case .gpt2: return "GPT-2 124M shape"
        case .smollm2: return "SmolLM2-135M shape"
        }
    }
}

struct BenchModels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "Model speed: forward, forward+backward+AdamW, and KV-cache generation tokens/s."
    )

    @OptionGroup var options: BenchOptions

    @Option(help: "Shapes to measure (tiny, gpt2, smollm2).")
    var shapes: [BenchShape] = BenchShape.allCases

    @Option(help: "Training batch size.")
    var batch = 4

    @Option(help: "Training sequence length.")
    var length = 256

    @Flag(help: "Measure generation only (skips the sgemm peak, forward and training).")
    var generationOnly = false

    func run() throws {
        options.apply()
        options.printHeader()
        let repeats = options.quick ? 3 : 5
        // This machine's sgemm peak right now, the yardstick for the model figures below.
        let peak = generationOnly ? 0 : Self.sgemmPeak()
        if !generationOnly { print("raw sgemm peak (\(Self.sgemmPeakShape)): \(fmt(peak, 0, 1)) GFLOP/s") }
        for shape in shapes {
            var rng = RNG(seed: 7)
            let model = DecoderModel(config: shape.config, rng: &rng)
            let T = min(length, shape.config.maxPositions)
            let B = batch
            print("")
            print("\(shape.label): \(model.arena.parameterCount / 1000)k parameters")
            let ids = (0..<(B * T)).map { _ in Int32(rng.int(below: shape.config.vocabSize)) }

            if !generationOnly {
                let forward = CoreBenchmark.median(repeats: repeats, warmup: 1) {
                    Autograd.withoutGrad { _ = model.logits(ids: ids, batch: B, length: T) }
                }
                let optimizer = AdamW(arena: model.arena, learningRate: 1e-4, weightDecay: 0.1, decayFilter: .matricesOnly)
                let train = CoreBenchmark.median(repeats: repeats, warmup: 1) {
                    let logits = model.logits(ids: ids, batch: B, length: T)
                    model.languageModelingLoss(logits: logits, labels: ids, batch: B, length: T).backward()
                    optimizer.step()
                    model.arena.zeroGrad()
                }
                let tokens = Double(B * T)
                let flopsPerToken = 6.0 * Double(model.arena.parameterCount - (shape.config.family == .gpt2 ? shape.config.maxPositions * shape.config.hiddenSize : 0))
                print("  forward, batch \(B) x \(T):                 \(fmt(tokens / forward, 10, 0)) tokens/s")
                let gflops = flopsPerToken * tokens / train * 1e-9
                print("  forward+backward+AdamW, batch \(B) x \(T):  \(fmt(tokens / train, 10, 0)) tokens/s"
                      + "  (\(fmt(gflops, 0, 0)) GFLOP/s of 6N work = \(fmt(100 * gflops / peak, 0, 0))% of sgemm peak)")
            }

            let gen = Generator(model: model)
            for genBatch in [1, 8] {
                let prompts = (0..<genBatch).map { _ in (0..<16).map { _ in Int32(rng.int(below: shape.config.vocabSize)) } }
                var sampleRNG = RNG(seed: 1)
                let seconds = CoreBenchmark.median(repeats: repeats, warmup: 1) {
                    _ = gen.generate(prompts: prompts, options: SamplingOptions(maxNewTokens: 64), rng: &sampleRNG)
                }
                print("  generation, KV cache, batch \(genBatch), 16 + 64 tokens: \(fmt(Double(genBatch * 64) / seconds, 10, 1)) new tokens/s")
            }
        }
        try benchTokenizer()
    }
}

extension BenchModels {
    /// The shapes of the sgemm peak measurement (M x K x N).
    static let sgemmPeakShapes = [(2048, 768, 3072), (1024, 1024, 1024), (4096, 768, 768)]
    static let sgemmPeakShape = sgemmPeakShapes.map { "\($0.0) x \($0.1) x \($0.2)" }.joined(separator: ", ") + ": best median"

    /// This machine's raw `cblas_sgemm` GFLOP/s right now, the yardstick of `rein bench models`,
    /// `rein bench rl` and `rein bench decode`: the best of the medians (of `repeats` runs each) at
    /// several shapes, so one noisy moment cannot make it low.
    static func sgemmPeak(repeats: Int = 5) -> Double {
        sgemmPeakShapes.map { CoreBenchmark.matmul(m: $0.0, k: $0.1, n: $0.2, repeats: repeats).rawGflops }.max()!
    }

    /// GPT-2 tokenizer encode throughput over the ChatterBot lines, on the calling thread.
    func benchTokenizer() throws {
        let gpt2 = URL(fileURLWithPath: "assets/gpt2"), chatterbot = URL(fileURLWithPath: "assets/chatterbot/english")
        print("")
        guard FileManager.default.fileExists(atPath: gpt2.appendingPathComponent("merges.txt").path),
              FileManager.default.fileExists(atPath: chatterbot.path) else {
            print("GPT-2 tokenizer: needs assets/gpt2 and assets/chatterbot (run scripts/fetch-assets.sh)")
            return
        }
        let tokenizer = try Tokenizer(vocabJSON: gpt2.appendingPathComponent("vocab.json"), merges: gpt2.appendingPathComponent("merges.txt"))
        let lines = try ChatterBotCorpus.utterances(at: chatterbot)
        let result = TokenizerBenchmark.encodeThroughput(tokenizer: tokenizer, lines: lines, repetitions: options.quick ? 3 : 5)
        print("GPT-2 tokenizer encode, 1 thread, \(lines.count) ChatterBot lines: \(result)")
    }
}
