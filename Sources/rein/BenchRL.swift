import Alignment
import ArgumentParser
import Checkpoints
import Datasets
import Evaluation
import Foundation
import Generation
import NN
import TensorCore
import Tokenizers

/// The online RL methods `rein bench rl` measures.
enum RLBenchMethod: String, CaseIterable, ExpressibleByArgument {
    case ppo, rloo, grpo
}

/// `rein bench rl`: PPO, RLOO and GRPO updates at the shapes of the peer benchmarks
/// (../shared/bench: trl_ppo_bench.py for PPO, trl_bench.py for RLOO and GRPO), with the share of
/// each update spent in generation, scoring, the no-grad forward passes and training.
struct BenchRL: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rl",
        abstract: "Online RL speed: PPO, RLOO and GRPO episodes/s and where each update's time goes.",
        discussion: """
        Shapes as the peer scripts: random-init GPT-2s (tiny 2 x 128, vocab 512; small 4 x 256, vocab \
        2048), a byte-level BPE tokenizer trained on trl_bench.py's corpus, its prompts (56 / 112 \
        words). PPO: 8 prompts per update, 1 response each, 32 / 64 new tokens with no stop token, \
        temperature 0.7, 4 PPO epochs, 1 minibatch of 8, value and reward models of the policy's shape. \
        RLOO and GRPO: 2 prompts x 4 generations, up to 32 / 64 new tokens (EOS stops), temperature 1.0, \
        the colour-word-fraction reward; RLOO with a reference (beta 0.05), GRPO without (beta 0). \
        --peers takes the JSON lines of `peers.sh trl` and `peers.sh ppo` for the ratios.
        """
    )

    @OptionGroup var options: BenchOptions

    @Option(parsing: .upToNextOption, help: "Methods to measure (ppo, rloo, grpo).")
    var methods: [RLBenchMethod] = RLBenchMethod.allCases

    @Option(parsing: .upToNextOption, help: "Shapes to measure (tiny, small; default both, tiny with --quick).")
    var sizes: [PeerShape] = []

    @Option(help: "Updates timed per method and shape (default 6, 1 with --quick).")
    var updates: Int?

    @Option(help: "Untimed updates before them (default 2, 0 with --quick).")
    var warmup: Int?

    @Option(help: "The JSON lines peers.sh printed (trl and ppo), for the ratios to TRL.")
    var peers: String?

    @Option(help: "Most seconds to wait for a quiet machine before each measurement (default 120, 0 with --quick).")
    var quietTimeout: Double?

    @Flag(help: "Print one JSON line per measurement instead of the table.")
    var json = false

    @Option(help: "Measure rollouts instead: continuous batching against fixed batches, sampling from this policy (a model directory, e.g. runs/quickstart/sft).")
    var rolloutModel: String?

    @Option(help: "The prompts of the rollout measurement (JSONL, e.g. runs/quickstart/data/eval.jsonl).")
    var rolloutPrompts: String?

    @Option(help: "Rollout measurement: rows per batch (the slots of continuous batching).")
    var slots = 16

    @Option(help: "Rollout measurement: samples per prompt (num_generations).")
    var samplesPerPrompt = 1

    @Option(help: "Rollout measurement: rows per rollout (prompts x samples).")
    var rolloutRows = 256

    @Option(help: "Rollout measurement: most new tokens per response.")
    var responseLength = 16

    @Option(help: "Rollout measurement: free slots that refill continuous batching (default a quarter of the slots).")
    var refillWhenFree: Int?

    func validate() throws {
        if let updates, updates < 1 { throw ValidationError("--updates: expected at least 1, found \(updates)") }
        if let warmup, warmup < 0 { throw ValidationError("--warmup: expected 0 or more, found \(warmup)") }
        if let quietTimeout, !(quietTimeout >= 0) { throw ValidationError("--quiet-timeout: expected seconds >= 0") }
        if (rolloutModel == nil) != (rolloutPrompts == nil) {
            throw ValidationError("--rollout-model and --rollout-prompts go together")
        }
        if slots < 1 || samplesPerPrompt < 1 || rolloutRows < 1 || responseLength < 1 {
            throw ValidationError("--slots, --samples-per-prompt, --rollout-rows and --response-length: expected at least 1")
        }
    }

    func run() throws {
        options.apply()
        if let rolloutModel, let rolloutPrompts {
            options.printHeader()
            try RolloutBatchingBench(model: rolloutModel, promptsFile: rolloutPrompts, slots: slots, samplesPerPrompt: samplesPerPrompt,
                                     rows: rolloutRows, responseLength: responseLength, temperature: 0.7, refillWhenFree: refillWhenFree,
                                     repeats: updates ?? (options.quick ? 2 : 5)).run()
            return
        }
        let timed = updates ?? (options.quick ? 1 : 6)
        let untimed = warmup ?? (options.quick ? 0 : 2)
        let quiet = quietTimeout ?? (options.quick ? 0 : 120)
        let shapes = sizes.isEmpty ? (options.quick ? [.tiny] : PeerShape.allCases) : sizes
        let trl = try peers.map { try PeerFigures(jsonLines: $0) }
        if !json { options.printHeader() }
        // The yardstick of the roofline note, measured in this run.
        let peak = methods.contains(.ppo) ? BenchModels.sgemmPeak(repeats: options.quick ? 1 : 5) : 0
        if json {
            print(jsonLine(["kind": "env", "threads": Threads.count, "sgemm_peak_gflops": round4(peak),
                            "peers": peers ?? NSNull(), "updates_timed": timed, "warmup": untimed]))
        } else if peak > 0 {
            print("raw sgemm peak (\(BenchModels.sgemmPeakShape)): \(fmt(peak, 0, 1)) GFLOP/s")
        }
        var results: [RLMeasurement] = []
        for shape in shapes {
            let setup = try RLBenchSetup(shape: shape, promptsNeeded: 8 * (timed + untimed))
            if !json {
                print("")
                print("\(shape.label): tokenizer of \(setup.tokenizer.vocabularySize) ids, prompts of "
                      + "\(fmt(setup.meanPromptTokens, 0, 1)) tokens (mean), \(shape.responseLength) new tokens")
            }
            for method in methods {
                let waited = RLBenchQuiet.wait(timeout: quiet)
                var m: RLMeasurement
                switch method {
                case .ppo: m = try measurePPO(setup, timed: timed, warmup: untimed)
                case .rloo, .grpo: m = try measureCriticFree(method, setup, timed: timed, warmup: untimed)
                }
                m.waited = waited
                results.append(m)
                if json {
                    print(jsonLine(m.json(trl: trl)))
                    if method == .ppo { print(jsonLine(m.roofline(peak: peak).json)) }
                } else {
                    printRow(m, trl: trl)
                    if method == .ppo { print(m.roofline(peak: peak).text) }
                }
            }
        }
        if !json { printNotes(trl: trl) }
    }

    // MARK: PPO

    /// PPO as trl_ppo_bench.py runs TRL 1.9.2's PPOTrainer.
    func measurePPO(_ setup: RLBenchSetup, timed: Int, warmup: Int) throws -> RLMeasurement {
        let shape = setup.shape, config = setup.config
        var rng = RNG(seed: 0)
        let policy = DecoderModel(config: config, rng: &rng)
        func copy(scoreHead: Bool) -> DecoderModel {
            let m = DecoderModel(config: config, rng: &rng)
            m.arena.copyValues(from: policy.arena)
            if scoreHead { m.addScoreHead(rng: &rng) }
            return m
        }
        // TRL's frozen reference copy; value and reward models: GPT2ForSequenceClassification loaded
        // from the policy's weights with a fresh score head.
        let reference = copy(scoreHead: false), valueModel = copy(scoreHead: true), rewardModel = copy(scoreHead: true)
        // stop_token=None: TRL neither stops generation at EOS nor truncates after it, so the
        // post-processing EOS is an id no token has.
        var settings = PPOTrainerSettings(rollout: PPORolloutSettings(eos: -1, pad: setup.pad))
        settings.temperature = 0.7
        settings.numPPOEpochs = 4
        settings.numMiniBatches = 1
        settings.microBatchSize = 8
        settings.gradientAccumulationSteps = 1
        settings.learningRate = 1e-5
        settings.numTotalBatches = timed + warmup
        let trainer = try PPOTrainer(policy: policy, reference: reference, valueModel: valueModel, settings: settings)
        // TRL's PPO generates with eos_token_id = None: every response runs the full length. The
        // rollout engine always stops at EOS, so PPO samples through the generator directly, with the
        // engine's per-row seeds.
        let generator = Generator(model: policy, padId: setup.pad)
        let R = shape.responseLength, rows = 8
        let sampling = SamplingOptions(temperature: 0.7, maxNewTokens: R, stopTokens: [])
        var m = RLMeasurement(method: .ppo, shape: shape, episodesPerUpdate: rows)
        var trainRNG = RNG(seed: 3)
        for update in 0..<(warmup + timed) {
            var clock = RLBenchClock()
            let promptIDs = (0..<rows).map { setup.promptIDs[update * rows + $0] }
            var rngs = (0..<rows).map { RolloutEngine.rng(seed: 0, step: update, prompt: update * rows + $0, sample: 0) }
            let generated = generator.generate(prompts: promptIDs, options: sampling, rngs: &rngs)
            let ctx = promptIDs.map(\.count).max() ?? 1
            var queries = [Int32](repeating: setup.pad, count: rows * ctx)
            var responses = [Int32](repeating: setup.pad, count: rows * R)
            var logProbs = [Float](repeating: 0, count: rows * R)
            for r in 0..<rows {
                let ids = promptIDs[r], n = min(generated[r].tokens.count, R)
                queries.replaceSubrange((r * ctx + ctx - ids.count)..<((r + 1) * ctx), with: ids)
                responses.replaceSubrange((r * R)..<(r * R + n), with: generated[r].tokens.prefix(n))
                logProbs.replaceSubrange((r * R)..<(r * R + n), with: generated[r].logProbs.prefix(n))
            }
            let generation = clock.lap()
            let judge = trainer.rewardModelJudge(rewardModel, contextLength: ctx, responseLength: R)
            var scoring = 0.0
            let rollout = try trainer.rollout(queries: queries, responses: responses, rows: rows, contextLength: ctx, responseLength: R,
                                              policyLogProbs: logProbs) { post, lengths in
                var start = RLBenchClock()
                defer { scoring += start.lap() }
                return try judge(post, lengths)
            }
            let forwards = clock.lap() - scoring
            _ = try trainer.train(rollout, update: update + 1, rng: &trainRNG)
            let training = clock.lap()
            if update >= warmup {
                m.record(total: clock.total, phases: [generation, scoring, forwards, training], foreign: clock.foreignCores(),
                         promptTokens: Double(ctx), completionTokens: Double(R))
            }
        }
        return m
    }

    // MARK: RLOO and GRPO

    /// RLOO or GRPO as trl_bench.py runs TRL 1.16's RLOOTrainer / GRPOTrainer.
    func measureCriticFree(_ method: RLBenchMethod, _ setup: RLBenchSetup, timed: Int, warmup: Int) throws -> RLMeasurement {
        let shape = setup.shape, config = setup.config
        var rng = RNG(seed: 0)
        let policy = DecoderModel(config: config, rng: &rng)
        let lm = LanguageModel(model: policy, tokenizer: setup.tokenizer,
                               chatTemplate: LanguageModel.template(jinja: nil, tokenizer: setup.tokenizer), source: "bench rl")
        let G = 4, promptsPerUpdate = 2, R = shape.responseLength
        let engine = try RolloutEngine(lm: lm, options: RolloutOptions(temperature: 1.0, responseLength: R, samplesPerPrompt: G, seed: 0))
        let prompts = try engine.prompts(setup.prompts.map { .prompt(.text($0)) }, file: "trl_bench.py prompts")
        let rloo = method == .rloo
        // TRL 1.16: RLOO's beta defaults to 0.05 (a reference model, the KL in the reward), GRPO's to 0.
        let objective = CriticFreeObjective(estimator: rloo ? .rloo(normalizeAdvantages: false) : .grpo(scaleRewards: .group),
                                            groupSize: G, beta: rloo ? 0.05 : 0, maxCompletionLength: R)
        var settings = CriticFreeTrainerSettings(objective: objective, eos: engine.eosId, pad: engine.padId)
        settings.temperature = 1.0
        settings.microBatchSize = 8
        settings.gradientAccumulationSteps = 1
        settings.numIterations = 1
        settings.maxGradNorm = 1.0
        var reference: DecoderModel?
        if rloo {
            let copy = DecoderModel(config: config, rng: &rng)
            copy.arena.copyValues(from: policy.arena)
            reference = copy
        }
        let trainer = try CriticFreeTrainer(policy: policy, reference: reference, settings: settings)
        var m = RLMeasurement(method: method, shape: shape, episodesPerUpdate: promptsPerUpdate * G)
        var trainRNG = RNG(seed: 3)
        for update in 0..<(warmup + timed) {
            var clock = RLBenchClock()
            let indices = (0..<promptsPerUpdate).map { update * promptsPerUpdate + $0 }
            let batch = try engine.generate(indices.map { prompts[$0] }, step: update, promptIndices: indices)
            let generation = clock.lap()
            let rewards = batch.responseTexts.map(colourWordFraction)
            let scoring = clock.lap()
            let rollout = try trainer.prepare(queries: batch.queries, responses: batch.responses, rows: batch.rows,
                                              contextLength: batch.contextLength, responseLength: batch.responseLength, rewards: rewards)
            let forwards = clock.lap()
            _ = try trainer.train(rollout, step: update, learningRate: { _ in 1e-4 }, rng: &trainRNG)
            let training = clock.lap()
            if update >= warmup {
                let lengths = rollout.logProbs.rowLengths
                m.record(total: clock.total, phases: [generation, scoring, forwards, training], foreign: clock.foreignCores(),
                         promptTokens: Double(prompts[indices[0]].ids.count + prompts[indices[1]].ids.count) / 2,
                         completionTokens: Double(lengths.reduce(0, +)) / Double(max(1, lengths.count)))
            }
        }
        return m
    }

    // MARK: Output

    func printRow(_ m: RLMeasurement, trl: PeerFigures?) {
        let (trlRate, measured) = PeerFigures.figure(trl, m.method, m.shape)
        let ratio = trlRate.map { m.episodesPerSecond / $0 }
        let shares = m.shares
        print("  \(m.method.rawValue.uppercased().padding(toLength: 5, withPad: " ", startingAt: 0))"
              + " \(fmt(m.medianSeconds, 8, 3)) s/update  \(fmt(m.episodesPerSecond, 7, 1)) episodes/s"
              + "  TRL \(trlRate.map { fmt($0, 0, 1) } ?? "-")\(measured ? "" : "*")"
              + "  ratio \(ratio.map { fmt($0, 0, 2) + "x" } ?? "-")\(measured ? "" : "*")")
        let parts = zip(RLMeasurement.phaseNames, shares).map { "\($0) \(fmt(100 * $1, 0, 0))%" }
        print("        \(parts.joined(separator: ", ")), other \(fmt(100 * m.otherShare, 0, 0))%;"
              + " \(m.seconds.count) updates, completions \(fmt(m.meanCompletionTokens, 0, 1)) tokens,"
              + " prompts \(fmt(m.meanPromptTokens, 0, 1)), other processes \(fmt(m.foreignMedian, 0, 2)) cores"
              + (m.waited > 1 ? ", waited \(fmt(m.waited, 0, 0)) s for quiet" : ""))
    }

    func printNotes(trl: PeerFigures?) {
        print("")
        if trl == nil {
            print("* TRL figures are the orientation figures of ../shared/bench/README.md, NOT measured in this run"
                  + " (pass --peers with peers.sh's output).")
        } else {
            print("* a TRL figure missing from --peers, replaced by the README's orientation figure (not measured).")
        }
        print("""
        Episodes/s: episodes per update / median seconds per update (generation, scoring and every pass included).
        Phases: generation (sampling with the KV cache); scoring (PPO: the reward model, RLOO/GRPO: the colour-word rule);
        no-grad forwards (PPO: reference and value; the old log-probs are the generation's; RLOO: old and reference
        log-probs; GRPO: none at one iteration); training (PPO: 4 epochs of policy + value forward, backward and AdamW;
        RLOO/GRPO: one forward, backward, clip and AdamW step).
        Where this differs from the peer scripts: the tokenizer is Rein's BPE trainer on trl_bench.py's corpus (the same
        Python random stream), so ties between merges may break differently (prompt lengths above are Rein's); prompts
        are taken in the script's order, not TRL's seeded shuffle; weights are a different random init; PPO samples
        through the generator with the rollout engine's per-row seeds because the engine always stops at EOS.
        """)
    }

    func jsonLine(_ object: [String: Any]) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}

func round4(_ x: Double) -> Double { (x * 10_000).rounded() / 10_000 }

/// trl_bench.py's `reward_fn`: the fraction of whitespace-separated words that are colour words.
func colourWordFraction(_ completion: String) -> Float {
    let colours: Set<Substring> = ["red", "green", "blue", "black", "white"]
    let words = completion.split(whereSeparator: \.isWhitespace)
    return Float(words.filter { colours.contains($0) }.count) / Float(max(1, words.count))
}

/// The tokenizer, prompts and model config of one shape.
struct RLBenchSetup {
    let shape: PeerShape
    let config: ModelConfig
    let tokenizer: Tokenizer
    let pad: Int32
    /// trl_bench.py's RL prompts (`task(random.Random(4), rl_prompt_words, 0)[0]`), in order.
    let prompts: [String]
    let promptIDs: [[Int32]]

    var meanPromptTokens: Double { Double(promptIDs.reduce(0) { $0 + $1.count }) / Double(max(1, promptIDs.count)) }

    init(shape: PeerShape, promptsNeeded: Int) throws {
        self.shape = shape
        var config = shape.config
        // trl_bench.py: <|endoftext|> (id 0) is BOS and EOS, <|pad|> (id 1) pads.
        config.bosTokenId = 0
        config.eosTokenId = 0
        config.padTokenId = 1
        self.config = config
        let tokenizer = try Self.trainTokenizer(vocabularySize: config.vocabSize)
        self.tokenizer = tokenizer
        guard let pad = tokenizer.padTokenID, tokenizer.eosTokenID == 0 else {
            throw CLIError("bench rl: the trained tokenizer lacks <|endoftext|> or <|pad|>")
        }
        self.pad = pad
        var rng = PythonRandom(seed: 4)
        let prompts = (0..<promptsNeeded).map { _ in TRLBenchTask.make(&rng, promptWords: shape.promptWords, completionWords: 0).prompt }
        self.prompts = prompts
        promptIDs = prompts.map { tokenizer.encode($0) }
        if let longest = promptIDs.map(\.count).max(), longest + shape.responseLength > config.maxPositions {
            throw CLIError("bench rl: a prompt of \(longest) tokens and \(shape.responseLength) new tokens exceed the context of \(config.maxPositions)")
        }
    }

    /// trl_bench.py's `build_tokenizer`: byte-level BPE on `corpus(random.Random(0), 3000, 20, 20)`,
    /// special tokens <|endoftext|> and <|pad|>.
    static func trainTokenizer(vocabularySize: Int) throws -> Tokenizer {
        var rng = PythonRandom(seed: 0)
        let corpus = (0..<3000).map { _ -> String in
            let t = TRLBenchTask.make(&rng, promptWords: 20, completionWords: 20)
            return t.prompt + t.completion
        }
        let trained = try BPETrainer(vocabularySize: vocabularySize, minFrequency: 1,
                                     specialTokens: ["<|endoftext|>", "<|pad|>"]).train(on: corpus)
        // The trainer names no EOS or pad; a tokenizer_config.json beside the file does.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rein-bench-rl-\(ProcessInfo.processInfo.processIdentifier)")
        defer { try? FileManager.default.removeItem(at: dir) }
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try trained.save(tokenizerJSON: dir.appendingPathComponent("tokenizer.json"))
            let special = #"{"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|pad|>"}"#
            try Data(special.utf8).write(to: dir.appendingPathComponent("tokenizer_config.json"))
            return try Tokenizer(tokenizerJSON: dir.appendingPathComponent("tokenizer.json"))
        } catch {
            throw CLIError("bench rl: cannot build the tokenizer in \(dir.path): \(error)")
        }
    }
}

/// trl_bench.py's `task` and `WORDS`.
enum TRLBenchTask {
    static let words = ("apple banana cherry delta echo fox golf hotel india juliet kilo lima mike nova oscar papa "
        + "quebec romeo sierra tango umbrella victor whiskey xray yankee zulu red green blue black white "
        + "north south east west up down left right zero one two three four five six seven eight nine").split(separator: " ").map(String.init)

    /// A reverse / sort / copy task on a word list, drawing from `rng` exactly as the script does.
    static func make(_ rng: inout PythonRandom, promptWords: Int, completionWords: Int) -> (prompt: String, completion: String) {
        let kind = rng.choice(["reverse", "sort", "copy"])
        let xs = (0..<max(1, promptWords - 2)).map { _ in rng.choice(words) }
        let ys: [String] = kind == "reverse" ? xs.reversed() : kind == "sort" ? xs.sorted() : xs
        var out: [String] = []
        while out.count < completionWords { out += ys }
        let completion = Array(out.prefix(completionWords))
        return ("\(kind): " + xs.joined(separator: " ") + " =>", " " + completion.joined(separator: " ") + " .")
    }
}

/// CPython's `random.Random(seed)` for a small non-negative integer seed: MT19937 seeded by
/// `init_by_array([seed])`, and `choice` by rejection sampling on `getrandbits`, so the bench
/// draws the words trl_bench.py draws.
struct PythonRandom {
    private var mt = [UInt32](repeating: 0, count: 624)
    private var index = 624

    init(seed: UInt32) {
        mt[0] = 19_650_218
        for i in 1..<624 { mt[i] = 1_812_433_253 &* (mt[i - 1] ^ (mt[i - 1] >> 30)) &+ UInt32(i) }
        var i = 1
        for _ in 0..<624 {   // max(624, key length 1)
            mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) &* 1_664_525)) &+ seed
            i += 1
            if i >= 624 { mt[0] = mt[623]; i = 1 }
        }
        for _ in 0..<623 {
            mt[i] = (mt[i] ^ ((mt[i - 1] ^ (mt[i - 1] >> 30)) &* 1_566_083_941)) &- UInt32(i)
            i += 1
            if i >= 624 { mt[0] = mt[623]; i = 1 }
        }
        mt[0] = 0x8000_0000
    }

    mutating func next32() -> UInt32 {
        if index >= 624 {
            for k in 0..<624 {
                let y = (mt[k] & 0x8000_0000) | (mt[(k + 1) % 624] & 0x7FFF_FFFF)
                mt[k] = mt[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1) != 0 ? 0x9908_B0DF : 0)
            }
            index = 0
        }
        var y = mt[index]
        index += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9D2C_5680
        y ^= (y << 15) & 0xEFC6_0000
        y ^= y >> 18
        return y
    }

    /// `_randbelow(n)` for 0 < n < 2^32.
    mutating func below(_ n: Int) -> Int {
        let k = Int.bitWidth - n.leadingZeroBitCount
        while true {
            let r = Int(next32() >> UInt32(32 - k))
            if r < n { return r }
        }
    }

    mutating func choice<T>(_ xs: [T]) -> T { xs[below(xs.count)] }
}

/// Wall time of an update's phases, and the CPU other processes used meanwhile.
struct RLBenchClock {
    private let start: UInt64
    private var last: UInt64
    private let cpu0: RLBenchQuiet.Sample?

    init() {
        cpu0 = RLBenchQuiet.Sample.now()
        start = DispatchTime.now().uptimeNanoseconds
        last = start
    }

    /// Seconds since the previous lap (or the start).
    mutating func lap() -> Double {
        let now = DispatchTime.now().uptimeNanoseconds
        defer { last = now }
        return Double(now - last) * 1e-9
    }

    var total: Double { Double(last - start) * 1e-9 }

    /// Cores other processes kept busy since the start (0 where /proc is missing).
    func foreignCores() -> Double {
        guard let cpu0, let cpu1 = RLBenchQuiet.Sample.now() else { return 0 }
        return cpu1.foreignCores(since: cpu0)
    }
}

/// quiet.py's helpers: the machine's busy CPU time from /proc/stat minus this process's own.
enum RLBenchQuiet {
    struct Sample {
        let wall: Double, busy: Double, own: Double

        static func now() -> Sample? {
            guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
                  let own = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
                  let cpu = stat.split(separator: "\n").first, let close = own.lastIndex(of: ")") else { return nil }
            let v = cpu.split(separator: " ").dropFirst().prefix(8).compactMap { Double($0) }
            let fields = own[own.index(after: close)...].split(separator: " ")
            guard v.count == 8, fields.count > 12, let utime = Double(fields[11]), let stime = Double(fields[12]) else { return nil }
            let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
            return Sample(wall: Double(DispatchTime.now().uptimeNanoseconds) * 1e-9,
                          busy: (v.reduce(0, +) - v[3] - v[4]) / hz, own: (utime + stime) / hz)
        }

        func foreignCores(since s: Sample) -> Double {
            max(0, ((busy - s.busy) - (own - s.own)) / max(wall - s.wall, 1e-9))
        }
    }

    /// Waits until two consecutive 1 s windows see other processes use under 0.15 cores, at most
    /// `timeout` seconds; returns the seconds waited.
    static func wait(timeout: Double) -> Double {
        guard timeout > 0, Sample.now() != nil else { return 0 }
        let t0 = DispatchTime.now().uptimeNanoseconds
        var quiet = 0
        while Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9 < timeout {
            guard let a = Sample.now() else { break }
            Thread.sleep(forTimeInterval: 1)
            guard let b = Sample.now() else { break }
            quiet = b.foreignCores(since: a) < 0.15 ? quiet + 1 : 0
            if quiet >= 2 { break }
        }
        return Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
    }
}

/// The timed updates of one method and shape.
struct RLMeasurement {
    static let phaseNames = ["generation", "scoring", "no-grad forwards", "training"]
    static let phaseKeys = ["generation", "scoring", "forwards", "training"]

    let method: RLBenchMethod
    let shape: PeerShape
    let episodesPerUpdate: Int
    var seconds: [Double] = []
    var phaseSums = [Double](repeating: 0, count: 4)
    var foreign: [Double] = []
    var promptTokens: [Double] = []
    var completionTokens: [Double] = []
    var waited = 0.0

    init(method: RLBenchMethod, shape: PeerShape, episodesPerUpdate: Int) {
        self.method = method
        self.shape = shape
        self.episodesPerUpdate = episodesPerUpdate
    }

    mutating func record(total: Double, phases: [Double], foreign f: Double, promptTokens p: Double, completionTokens c: Double) {
        seconds.append(total)
        for (k, x) in phases.enumerated() { phaseSums[k] += x }
        foreign.append(f)
        promptTokens.append(p)
        completionTokens.append(c)
    }

    static func median(_ xs: [Double]) -> Double {
        guard !xs.isEmpty else { return 0 }
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    var medianSeconds: Double { Self.median(seconds) }
    var episodesPerSecond: Double { Double(episodesPerUpdate) / max(medianSeconds, 1e-12) }
    var totalSeconds: Double { seconds.reduce(0, +) }
    var shares: [Double] { phaseSums.map { $0 / max(totalSeconds, 1e-12) } }
    var otherShare: Double { max(0, 1 - shares.reduce(0, +)) }
    var foreignMedian: Double { Self.median(foreign) }
    var meanPromptTokens: Double { promptTokens.reduce(0, +) / Double(max(1, promptTokens.count)) }
    var meanCompletionTokens: Double { completionTokens.reduce(0, +) / Double(max(1, completionTokens.count)) }

    func json(trl: PeerFigures?) -> [String: Any] {
        let (trlRate, measured) = PeerFigures.figure(trl, method, shape)
        var shareObject: [String: Any] = [:]
        for (k, s) in zip(Self.phaseKeys, shares) { shareObject[k] = round4(s) }
        shareObject["other"] = round4(otherShare)
        return ["kind": "rein", "trainer": method.rawValue, "size": shape.rawValue, "episodes_per_step": episodesPerUpdate,
                "steps_timed": seconds.count, "step_s_median": round4(medianSeconds), "step_s_min": round4(seconds.min() ?? 0),
                "episodes_per_s": round4(episodesPerSecond), "shares": shareObject,
                "prompt_tokens_mean": round4(meanPromptTokens), "completion_tokens_mean": round4(meanCompletionTokens),
                "response_length": shape.responseLength, "foreign_cores_median": round4(foreignMedian), "waited_s": round4(waited),
                "trl_episodes_per_s": trlRate ?? NSNull(), "trl_measured": measured,
                "ratio_to_trl": trlRate.map { round4(episodesPerSecond / $0) } ?? NSNull()]
    }

    /// The matmul FLOPs of PPO's passes against the sgemm peak.
    func roofline(peak: Double) -> RLRoofline {
        let c = shape.config, C = Double(c.hiddenSize), n = Double(c.layers), V = Double(c.vocabSize)
        let rows = Double(episodesPerUpdate), R = Double(shape.responseLength), L = meanPromptTokens + R
        // Per token of one forward: the linear layers (QKV, output, MLP: 12 C^2 weights, 2 FLOPs
        // each) and causal attention (QK^T and AV over L/2 positions on average: 2 C L).
        let body = rows * L * n * (24 * C * C + 2 * C * L)
        let head = rows * R * 2 * V * C   // logits at the response positions only
        let policyForward = body + head, valueForward = body
        let training = 4 * 3 * (policyForward + valueForward)   // forward + backward (2x) for 4 epochs
        let forwards = policyForward + 2 * valueForward         // reference, value, reward model
        let trainingSeconds = phaseSums[3] / Double(max(1, seconds.count))
        let forwardSeconds = (phaseSums[1] + phaseSums[2]) / Double(max(1, seconds.count))
        return RLRoofline(size: shape.rawValue, trainingFlops: training, forwardFlops: forwards, trainingSeconds: trainingSeconds,
                          forwardSeconds: forwardSeconds, peak: peak, sixN: 4 * 6 * 2 * Double(paramsWithoutPositions) * rows * L)
    }

    var paramsWithoutPositions: Int {
        let c = shape.config
        return 12 * c.layers * c.hiddenSize * c.hiddenSize + c.vocabSize * c.hiddenSize
    }
}

/// The roofline arithmetic of one PPO shape.
struct RLRoofline {
    let size: String
    let trainingFlops: Double, forwardFlops: Double
    let trainingSeconds: Double, forwardSeconds: Double
    let peak: Double
    /// The rule of thumb 6 N tokens x 4 epochs for policy + value (N without position embeddings).
    let sixN: Double

    var trainingGflops: Double { trainingFlops / max(trainingSeconds, 1e-12) * 1e-9 }
    var forwardGflops: Double { forwardFlops / max(forwardSeconds, 1e-12) * 1e-9 }

    var text: String {
        let pct = peak > 0 ? " = \(fmt(100 * trainingGflops / peak, 0, 0))% of the sgemm roofline" : ""
        let fpct = peak > 0 ? " = \(fmt(100 * forwardGflops / peak, 0, 0))%" : ""
        return "        roofline: training \(fmt(trainingFlops * 1e-9, 0, 2)) GFLOP per update (6N x tokens x 4 epochs would say "
            + "\(fmt(sixN * 1e-9, 0, 2))) in \(fmt(trainingSeconds, 0, 3)) s = \(fmt(trainingGflops, 0, 1)) GFLOP/s\(pct);"
            + " scoring + forwards \(fmt(forwardFlops * 1e-9, 0, 2)) GFLOP in \(fmt(forwardSeconds, 0, 3)) s = \(fmt(forwardGflops, 0, 1)) GFLOP/s\(fpct)"
            + (peak > 0 ? "; at the peak of \(fmt(peak, 0, 1)) GFLOP/s these passes would take \(fmt((trainingFlops + forwardFlops) / (peak * 1e9), 0, 3)) s" : "")
    }

    var json: [String: Any] {
        ["kind": "rein_roofline", "trainer": "ppo", "size": size, "training_gflop_per_update": round4(trainingFlops * 1e-9),
         "six_n_gflop_per_update": round4(sixN * 1e-9), "forward_gflop_per_update": round4(forwardFlops * 1e-9),
         "training_s": round4(trainingSeconds), "forward_s": round4(forwardSeconds), "training_gflops": round4(trainingGflops),
         "forward_gflops": round4(forwardGflops), "sgemm_peak_gflops": round4(peak),
         "training_share_of_peak": peak > 0 ? round4(trainingGflops / peak) : NSNull()]
    }
}

/// TRL's episodes/s from peers.sh's JSON lines, with the README's orientation figures as fallback.
struct PeerFigures {
    var rates: [String: Double] = [:]

    /// Lines of `{"kind": "trl", "trainer": ..., "size": ..., "episodes_per_s" or "examples_per_s": ...}`.
    init(jsonLines path: String) throws {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw CLIError("--peers: cannot read \(path)")
        }
        for line in text.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  object["kind"] as? String == "trl", let trainer = object["trainer"] as? String, let size = object["size"] as? String,
                  let rate = (object["episodes_per_s"] ?? object["examples_per_s"]) as? Double else { continue }
            rates["\(trainer)/\(size)"] = rate
        }
    }

    /// ../shared/bench/README.md's figures for this kind of machine (orientation only).
    static let orientation: [String: Double] = ["ppo/tiny": 6.1, "ppo/small": 1.5, "grpo/tiny": 45, "grpo/small": 6.4,
                                                "rloo/tiny": 35, "rloo/small": 4.9]

    /// TRL's figure and whether this run measured it.
    static func figure(_ peers: PeerFigures?, _ method: RLBenchMethod, _ shape: PeerShape) -> (Double?, Bool) {
        let key = "\(method.rawValue)/\(shape.rawValue)"
        if let rate = peers?.rates[key] { return (rate, true) }
        return (orientation[key], false)
    }
}
