import Alignment
import Checkpoints
import DataParallel
import Datasets
import Evaluation
import Foundation
import NN
import TensorCore
import Tokenizers
import Training

/// What scores a rollout's responses: a reward model on token ids (when it shares the policy's
/// tokenizer, TRL's way), or any judge of the Evaluation target on text.
struct RolloutScorer {
    /// The reward model read on the policy's token ids, with its optional normalization and clip.
    var tokenModel: DecoderModel?
    var stats: RewardStats?
    var clip: Double?
    /// A text judge (reward model with another tokenizer, synthetic task, regex, length, VADER, command).
    var judge: (any RewardFunction)?
    var name: String

    /// Scores of every row of `batch`, in order (before the missing-EOS penalty).
    func scores(_ batch: RolloutBatch, pad: Int32, chunk: Int) throws -> [Float] {
        if let model = tokenModel {
            let post = batch.queryResponses()
            let L = batch.contextLength + batch.responseLength
            var lengths: [Int] = []
            for r in 0..<batch.rows {
                var n = 0
                while n < batch.responseLength && batch.responses[r * batch.responseLength + n] != pad { n += 1 }
                lengths.append(max(n - 1, 0))
            }
            var out: [Float] = []
            var start = 0
            while start < batch.rows {
                let end = min(batch.rows, start + max(1, chunk))
                let inputs = PaddedInputs(ids: Array(post[start * L..<end * L]), rows: end - start, length: L, pad: pad)
                out += rewardModelScores(model, inputs: inputs, at: lengths[start..<end].map { batch.contextLength + $0 })
                start = end
            }
            return out.map { raw in
                var s = Double(raw)
                if let stats { s = (s - stats.mean) / max(stats.std, 1e-8) }
                if let clip { s = min(max(s, -clip), clip) }
                return Float(s)
            }
        }
        guard let judge else { throw RunnerError("no reward model or judge") }
        let scores = try judge.scores(batch.judgeItems)
        guard scores.count == batch.rows else {
            throw RunnerError("the \(judge.name) judge gave \(scores.count) scores for \(batch.rows) responses")
        }
        return scores.map(Float.init)
    }

    /// The scorer a stage's settings ask for: `judge:` when set, else the `reward_model`.
    static func make(_ c: TrainingContext, rollout: RolloutArguments) throws -> RolloutScorer {
        if let spec = rollout.judge, spec != "reward_model" {
            return RolloutScorer(judge: try judge(spec), name: spec.split(separator: ":").first.map(String.init) ?? spec)
        }
        guard c.models["reward_model"] != nil else {
            throw RunnerError("\(c.definitionName): reward_model: required (a reward stage or directory), or set judge: "
                              + "synthetic_task, length, regex:PATTERN, vader or command:PROGRAM")
        }
        let reward = try c.load(role: "reward_model")
        guard reward.model.scoreHead != nil else { throw RunnerError("reward_model: the model has no score head (train it with kind: reward)") }
        reward.model.setInferencePrecision(rollout.rewardPrecision ?? .fp32, scope: .everyForward)
        let stats = try rewardStats(c, rollout: rollout)
        // The same tokenizer: score the policy's token ids directly; otherwise re-tokenize the text.
        let probe = "The quick brown fox, 12 + 30 = 42."
        if reward.model.config.vocabSize == c.lm.model.config.vocabSize,
           reward.tokenizer.encode(probe) == c.lm.tokenizer.encode(probe) {
            return RolloutScorer(tokenModel: reward.model, stats: stats, clip: rollout.rewardClip, name: "reward_model")
        }
        let judge = try RewardModelJudge(model: reward, normalization: stats, clip: rollout.rewardClip)
        return RolloutScorer(judge: judge, name: "reward_model")
    }

    /// The reward model's `reward_stats.json` when `normalize_reward` is set, else nil.
    static func rewardStats(_ c: TrainingContext, rollout: RolloutArguments) throws -> RewardStats? {
        guard rollout.normalizeReward, let reference = c.models["reward_model"] else { return nil }
        guard case .load(let path) = reference else { throw RunnerError("reward_model: not a directory") }
        return try RewardStats.read(URL(fileURLWithPath: path).appendingPathComponent(RewardStats.fileName))
    }

    /// The judges of text (`judge:`, `eval_judge:`, judge_pairs), by the name before any `:`.
    static let textJudges = ["synthetic_task", "length", "regex", "vader", "command"]

    /// A judge from its spec.
    static func judge(_ spec: String) throws -> any RewardFunction {
        let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
        let name = parts[0], argument = parts.count > 1 ? parts[1] : nil
        switch name {
        case "synthetic_task": return SyntheticTaskJudge()
        case "length": return try LengthJudge(unit: .characters, target: argument.flatMap { Int($0) })
        case "regex":
            guard let argument, !argument.isEmpty else { throw RunnerError("judge: regex needs a pattern (regex:PATTERN)") }
            return try RegexJudge(pattern: argument)
        case "vader": return try VaderJudge(directory: argument ?? "assets/vader")
        case "command":
            let words = (argument ?? "").split(separator: " ").map(String.init)
            guard let program = words.first else { throw RunnerError("judge: command needs a program (command:PROGRAM ARGS...)") }
            return try CommandJudge(executable: program, arguments: Array(words.dropFirst()))
        default:
            let known = ["reward_model"] + textJudges
            throw RunnerError("judge: unknown judge '\(name)'\(Suggestions.nearest(to: name, in: known).map { "; did you mean \($0)?" } ?? ""); "
                              + "expected one of " + known.joined(separator: ", "))
        }
    }
}

extension TrainingContext {
    var definitionName: String {
        switch settings {
        case .ppo: "ppo"
        case .criticFree: "rloo/grpo"
        default: "stage"
        }
    }
}

/// The loop every online RL stage shares: prompts in a seeded resumable order, rollouts, scores,
/// the method's update, metrics and rollouts to the store, checkpoints and exact resume.
struct OnlineRLLoop {
    let c: TrainingContext
    let rollout: RolloutArguments
    /// Completions sampled per prompt (1 for PPO).
    let samplesPerPrompt: Int
    /// Prompts per update.
    let promptsPerUpdate: Int
    /// The gold judge of `eval_judge`, scoring the held-out responses besides the reward.
    var goldJudge: (any RewardFunction)? = nil

    static let policyKey = "policy", policyOptimizerKey = "policy_optimizer"

    func engine() throws -> RolloutEngine {
        c.model.setInferencePrecision(rollout.rolloutPrecision ?? .fp32, scope: .generation)
        let opts = RolloutOptions(temperature: Float(rollout.temperature), topK: rollout.topK.flatMap { $0 > 0 ? $0 : nil },
                                  topP: rollout.topP.map(Float.init), responseLength: rollout.responseLength,
                                  samplesPerPrompt: samplesPerPrompt, seed: c.args.seed)
        return try RolloutEngine(lm: c.lm, options: opts)
    }

    /// Updates to run: `max_steps`, else `total_episodes`, else `num_train_epochs` over the prompts.
    func updates(prompts: Int) -> Int {
        if let m = c.args.maxSteps, m > 0 { return m }
        let episodes = rollout.totalEpisodes ?? Int((Double(prompts * samplesPerPrompt) * (c.args.numTrainEpochs ?? 1)).rounded(.up))
        return max(1, Int((Double(episodes) / Double(promptsPerUpdate * samplesPerPrompt)).rounded(.up)))
    }

    /// Held-out prompts (`eval_prompts`), for the judge's score and the KL before and after.
    func evaluationPrompts(_ engine: RolloutEngine) throws -> [RolloutPrompt] {
        guard let path = c.args.evalPrompts else { return [] }
        let records = try PromptAnswerRecord.read(URL(fileURLWithPath: path))
        return try engine.prompts(records.map { DatasetRecord.prompt($0.prompt) }, file: path)
    }

    /// The judge's mean score and the mean summed KL to the reference of one sampled response per
    /// held-out prompt (fixed seed), recorded as `eval/score` and `eval/kl`; with `eval_judge`,
    /// that judge's mean score of the same responses as `eval/judge_score`. Under `mpirun` each
    /// process samples its share of the prompts and the sums are reduced.
    func evaluate(_ prompts: [RolloutPrompt], engine: RolloutEngine, scorer: RolloutScorer, reference: DecoderModel?,
                  step: Int) throws {
        guard !prompts.isEmpty else { return }
        var opts = engine.options
        opts.samplesPerPrompt = 1
        opts.seed = c.args.seed &+ 0x5EED
        let e = try RolloutEngine(lm: c.lm, options: opts)
        c.model.refreshInferenceWeights()
        var scoreSum = 0.0, goldSum = 0.0, kl = 0.0, tokens = 0
        let world = ProcessGroup.world
        let mine = shareRange(count: prompts.count, rank: world.rank, size: world.size)
        for start in stride(from: mine.lowerBound, to: mine.upperBound, by: 64) {
            let part = Array(prompts[start..<min(start + 64, mine.upperBound)])
            let batch = try e.generate(part, step: 0, promptIndices: Array(start..<(start + part.count)))
            scoreSum += try scorer.scores(batch, pad: e.padId, chunk: 16).reduce(0.0) { $0 + Double($1) }
            if let goldJudge {
                let gold = try goldJudge.scores(batch.judgeItems)
                guard gold.count == batch.rows else {
                    throw RunnerError("eval_judge: the \(goldJudge.name) judge gave \(gold.count) scores for \(batch.rows) responses")
                }
                if let bad = gold.firstIndex(where: { !$0.isFinite }) {
                    throw RunnerError("eval_judge: the \(goldJudge.name) judge gave \(gold[bad]) for held-out response \(start + bad + 1)")
                }
                goldSum += gold.reduce(0, +)
            }
            let qr = batch.queryResponses()
            let T = rollout.temperature
            func logProbs(_ model: DecoderModel) -> [Float] {
                responseLogProbsNoGrad(model, queryResponses: qr, rows: batch.rows, contextLength: batch.contextLength,
                                       responseLength: batch.responseLength, pad: e.padId, temperature: T, chunk: 16)
            }
            let policy = logProbs(c.model)
            let ref: [Float]
            if let reference {
                ref = logProbs(reference)
            } else {
                c.model.adaptersEnabled = false
                ref = logProbs(c.model)
                c.model.adaptersEnabled = true
            }
            let R = batch.responseLength
            for r in 0..<batch.rows {
                tokens += batch.responseTokens(row: r).count
                for t in 0..<R where batch.responses[r * R + t] != e.padId { kl += Double(policy[r * R + t] - ref[r * R + t]) }
            }
        }
        var sums = [scoreSum, goldSum, kl, Double(tokens)]
        try world.allReduce(&sums, .sum)
        (scoreSum, goldSum, kl) = (sums[0], sums[1], sums[2])
        tokens = Int(sums[3])
        let n = Double(prompts.count)
        c.sink?.record(step: step, name: "eval/score", value: scoreSum / n)
        if goldJudge != nil { c.sink?.record(step: step, name: "eval/judge_score", value: goldSum / n) }
        c.sink?.record(step: step, name: "eval/kl", value: kl / n)
        c.sink?.record(step: step, name: "eval/response_length", value: Double(tokens) / n)
    }

    /// Whether the held-out evaluation runs after `update` (every `eval_steps`; the last update's
    /// comes after the loop).
    func evaluationDue(_ update: Int, of total: Int) -> Bool {
        c.args.evalSteps > 0 && update < total && update % c.args.evalSteps == 0
    }

    /// Rollout rows for the store.
    func rows(_ batch: RolloutBatch, step: Int, scores: [Float], kl: [Double]?, rewards: [Double]?, advantages: [Double]?) -> [RolloutRow] {
        (0..<batch.rows).map { r in
            RolloutRow(step: step, index: r, prompt: batch.prompts[batch.promptIndex[r]].text, response: batch.responseTexts[r],
                       responseTokenIds: batch.responseTokens(row: r), stopReason: batch.stopReasons[r].rawValue,
                       score: Double(scores[r]), kl: kl?[r], reward: rewards?[r], advantage: advantages?[r],
                       group: batch.promptIndex[r], policyVersion: step - 1)
        }
    }

    /// Whether the policy after `update` is exported as a model (every `export_steps`; the last
    /// update's model is the stage's own output).
    func exportDue(_ update: Int, of total: Int) -> Bool {
        rollout.exportSteps > 0 && update < total && update % rollout.exportSteps == 0
    }

    /// Writes the policy after `update` to `steps/UPDATE` (the Hugging Face layout, adapters
    /// merged) and records it as a `model` checkpoint: `rein compare` reads it as `stage:ID@UPDATE`.
    /// Written beside and renamed into place, so a kill leaves no half-written model.
    func exportModel(update: Int) throws {
        guard ProcessGroup.world.isRoot else { return }
        let steps = c.checkpointDirectory.deletingLastPathComponent().appendingPathComponent("steps")
        let final = steps.appendingPathComponent("\(update)")
        let partial = steps.appendingPathComponent(".\(update).partial")
        let fm = FileManager.default
        try? fm.removeItem(at: partial)
        try c.model.withLoRAMerged {
            try LanguageModel(model: c.model, tokenizer: c.lm.tokenizer, chatTemplate: c.lm.chatTemplate, source: final.path).save(to: partial)
        }
        try? fm.removeItem(at: final)
        if IOFaults.inject("rename \(final.path)") {
            throw RunnerError("cannot export the model after update \(update) to \(final.path): \(IOFaults.injectedReason)")
        }
        try fm.moveItem(at: partial, to: final)
        try c.onCheckpoint?("model", update, final)
    }

    /// `checkpoints/last`.
    var lastCheckpoint: URL { c.checkpointDirectory.appendingPathComponent("last") }

    /// Restores weights, optimizers, the prompt order and the random stream from `checkpoints/last`
    /// when resuming; returns the update it holds and the method's own values.
    func resume(_ checkpointer: Checkpointer, order: inout PromptOrder, rng: inout RNG, total: Int) throws
        -> (update: Int, values: [String: Double])? {
        guard c.args.resume, let resolved = Checkpointer.resolve(lastCheckpoint) else { return nil }
        let state = try checkpointer.restore(from: resolved)
        rng = state.rng ?? rng
        if let p = try state.dataPosition(as: PromptOrder.Position.self) { try order.restore(p) }
        c.note("resumed from update \(state.step) of \(total)")
        return (state.step, state.values)
    }

    /// Makes the metrics and rollouts so far durable, then writes `checkpoints/last`.
    func save(_ checkpointer: Checkpointer, update: Int, order: PromptOrder, rng: RNG, values: [String: Double]) throws {
        let world = ProcessGroup.world
        guard world.isRoot else { return }   // data-parallel: rank 0 writes
        try c.sink?.flush()
        try c.rolloutSink?.flush()
        var state = CheckpointState(step: update, rng: rng, values: values)
        state.values[CheckpointState.processesKey] = Double(world.size)
        try state.setDataPosition(order.position)
        let dir = try checkpointer.save(state, to: lastCheckpoint)
        try c.onCheckpoint?("last", update, dir)
    }

    func progress(step: Int, of total: Int, loss: Double, lr: Double, gradNorm: Double, episodes: Int, seconds: Double) throws -> Bool {
        try agreed(c.progress(TrainingProgress(step: step, maxSteps: total, loss: loss, learningRate: lr, gradNorm: gradNorm,
                                               itemsPerSecond: Double(episodes) / max(seconds, 1e-9), evalLoss: nil)))
    }
}

extension StageKinds {
    /// PPO: policy, frozen reference (or the LoRA base), value model (default: the reward model,
    /// head included), and the reward model or a judge.
    static func trainPPO(_ c: TrainingContext) throws -> StageSummary {
        guard case .ppo(let config) = c.settings else { throw RunnerError("ppo: wrong settings") }
        let batchRows = config.args.batchSize * config.args.gradientAccumulationSteps
        var loop = OnlineRLLoop(c: c, rollout: config.rollout, samplesPerPrompt: 1, promptsPerUpdate: batchRows)
        loop.goldJudge = try config.rollout.evalJudge.map { try RolloutScorer.judge($0) }
        let engine = try loop.engine()
        let prompts = try engine.prompts(c.train, file: c.args.data ?? "data")
        guard !prompts.isEmpty else { throw RunnerError("ppo: \(c.args.data ?? "data") holds no prompts") }
        let scorer = try RolloutScorer.make(c, rollout: config.rollout)
        let lora = c.model.loraConfig != nil
        let reference = lora && c.models["ref_model"] == nil ? nil : try c.load(role: "ref_model").model
        reference?.setInferencePrecision(config.rollout.refPrecision ?? .fp32, scope: .everyForward)
        let valueModel: DecoderModel
        if config.sharedValueHead {
            guard c.models["value_model"] == nil else {
                throw RunnerError("ppo: shared_value_head: true puts the value head on the policy; remove value_model, or set shared_value_head: false")
            }
            guard c.model.valueHead != nil else { throw RunnerError("ppo: shared_value_head: the policy has no value head") }
            valueModel = c.model
        } else if c.models["value_model"] != nil {
            valueModel = try c.load(role: "value_model").model
        } else if c.models["reward_model"] != nil {
            valueModel = try c.load(role: "reward_model").model
            let scoredByTheRewardModel = config.rollout.judge == nil || config.rollout.judge == "reward_model"
            let stats = scoredByTheRewardModel ? try RolloutScorer.rewardStats(c, rollout: config.rollout) : nil
            if let score = valueModel.scoreHead, valueModel.valueHead == nil, stats != nil || !scoredByTheRewardModel {
                // The critic starts in the units of the rewards it predicts: with normalized
                // scores, the reward head rescaled (w / std, bias -mean / std); with another
                // judge, a head of zeros on the reward model's trunk. Otherwise the first
                // advantages would be the raw head's V(s') - V(s) at another scale than the
                // rewards, which clipped value updates (cliprange_value) take many updates to undo.
                var rng = RNG(seed: c.args.seed &+ 11)
                valueModel.addValueHead(rng: &rng)
                let head = valueModel.valueHead!
                let scale = stats.map { Float(1 / $0.std) } ?? 0
                for i in 0..<head.weight.count { head.weight.data[i] = score.data[i] * scale }
                head.bias.data[0] = stats.map { Float(-$0.mean / $0.std) } ?? 0
            }
        } else {
            // No reward model to start from: a copy of the policy's trunk with a value head of zeros,
            // so the first advantages are the rewards' own (a random head would add a random
            // V(s') - V(s) to every token's advantage until the critic has learned).
            valueModel = try StageExecutor.startingLanguageModel(c.start, seed: c.args.seed).model
            var rng = RNG(seed: c.args.seed &+ 11)
            if valueModel.scoreHead == nil { valueModel.addScoreHead(rng: &rng) }
            if let head = valueModel.scoreHead { head.data.update(repeating: 0, count: head.count) }
        }
        guard let eos = c.lm.eosTokenId ?? engine.stopTokenIds.first else { throw RunnerError("ppo: the tokenizer has no EOS token") }
        var rs = try PPORolloutSettings(config: config, eos: engine.eosId, pad: engine.padId)
        _ = eos
        rs.eos = engine.eosId
        var s = PPOTrainerSettings(rollout: rs)
        s.temperature = config.rollout.temperature
        s.numPPOEpochs = config.numPPOEpochs
        s.numMiniBatches = config.rollout.numMiniBatches
        s.microBatchSize = config.args.batchSize
        s.gradientAccumulationSteps = config.args.gradientAccumulationSteps
        s.cliprange = Float(config.cliprange)
        s.cliprangeValue = Float(config.cliprangeValue)
        s.vfCoef = Float(config.vfCoef)
        s.learningRate = config.args.learningRate
        s.lrDecay = config.args.lrSchedulerType
        s.warmupUpdates = config.args.warmupSteps
        s.minLR = config.args.minLR
        s.adamBeta1 = config.args.adamBeta1
        s.adamBeta2 = config.args.adamBeta2
        s.weightDecay = config.args.weightDecay
        s.forwardBatchSize = max(batchRows, 1)
        if let target = config.klTarget { s.adaptiveKL = (target, config.klHorizon) }
        let total = loop.updates(prompts: prompts.count)
        s.numTotalBatches = total
        guard batchRows % s.numMiniBatches == 0 else {
            throw RunnerError("ppo: num_mini_batches \(s.numMiniBatches) must divide batch_size × gradient_accumulation_steps = \(batchRows)")
        }
        let trainer = try PPOTrainer(policy: c.model, reference: reference, valueModel: valueModel, settings: s)
        trainer.communicator = ProcessGroup.world
        let checkpointer = trainer.sharesTrunk
            ? Checkpointer(arenas: [(OnlineRLLoop.policyKey, c.model.arena)],
                           optimizers: [(OnlineRLLoop.policyOptimizerKey, trainer.policyOptimizer)])
            : Checkpointer(arenas: [(OnlineRLLoop.policyKey, c.model.arena), ("value", valueModel.arena)],
                           optimizers: [(OnlineRLLoop.policyOptimizerKey, trainer.policyOptimizer),
                                        ("value_optimizer", trainer.valueOptimizer)])
        var order = try PromptOrder(count: prompts.count, seed: c.args.seed)
        var rng = RNG(seed: c.args.seed &+ 1)
        var update = 0
        if let (step, values) = try loop.resume(checkpointer, order: &order, rng: &rng, total: total) {
            update = step
            if let k = values["kl_coef"] { trainer.klCoef = Float(k) }
            trainer.restoreAccumulation(counter: Int(values["accumulation"] ?? 0))
        }
        try loop.checkSameStart(update)
        func save() throws {
            try loop.save(checkpointer, update: update, order: order, rng: rng,
                          values: ["kl_coef": Double(trainer.klCoef), "accumulation": Double(trainer.accumulation.counter)])
        }
        let held = try loop.evaluationPrompts(engine)
        if update == 0 { try loop.evaluate(held, engine: engine, scorer: scorer, reference: reference, step: 0) }
        c.note("ppo: \(prompts.count) prompts, \(total) updates of \(batchRows) episodes, judge \(scorer.name)")
        var interrupted = false
        var lastLoss = 0.0
        let saveEvery = c.args.saveSteps
        while update < total {
            let started = DispatchTime.now().uptimeNanoseconds
            let indices = order.next(batchRows)
            c.model.refreshInferenceWeights()   // the rollout copy samples with the weights of the last update
            let (batch, scores) = try loop.sampleAndScore(engine, prompts: prompts, indices: indices, step: update + 1) {
                try scorer.scores($0, pad: engine.padId, chunk: s.forwardBatchSize)
            }
            let r = try trainer.rollout(queries: batch.queries, responses: batch.responses, rows: batch.rows,
                                        contextLength: batch.contextLength, responseLength: batch.responseLength,
                                        policyLogProbs: batch.logProbs) { _, _ in scores }
            var metrics = try trainer.train(r, update: update + 1, rng: &rng)
            update += 1
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) * 1e-9
            let t = r.tensors, R = batch.responseLength
            let kl = (0..<batch.rows).map { row in (0..<R).reduce(0.0) { $0 + Double(t.kl[row * R + $1]) } }
            let nonScore = (0..<batch.rows).map { row in (0..<R).reduce(0.0) { $0 + Double(t.nonScoreRewards[row * R + $1]) } }
            let advantages = (0..<batch.rows).map { row -> Double in
                let n = t.masks.sequenceLengths[row] + 1
                return (0..<n).reduce(0.0) { $0 + Double(t.advantages[row * R + $1]) } / Double(max(n, 1))
            }
            let lengths = (0..<batch.rows).map { batch.responseTokens(row: $0).count }
            metrics["eps"] = Double(batch.rows) / seconds
            metrics["completions/mean_length"] = Double(lengths.reduce(0, +)) / Double(batch.rows)
            for (k, v) in metrics { c.sink?.record(step: update, name: k, value: v) }
            try c.rolloutSink?.record(rollouts: loop.rows(batch, step: update, scores: t.scores, kl: kl,
                                                          rewards: zip(t.scores, nonScore).map { Double($0) + $1 },
                                                          advantages: advantages))
            lastLoss = (metrics["loss/policy_avg"] ?? 0) + Double(s.vfCoef) * (metrics["loss/value_avg"] ?? 0)
            if loop.evaluationDue(update, of: total) {
                try loop.evaluate(held, engine: engine, scorer: scorer, reference: reference, step: update)
            }
            if loop.exportDue(update, of: total) { try loop.exportModel(update: update) }
            let due = update == total || (saveEvery > 0 && update % saveEvery == 0)
            if due { try save() }
            if try !loop.progress(step: update, of: total, loss: lastLoss, lr: metrics["lr"] ?? 0, gradNorm: 0, episodes: batch.rows,
                              seconds: seconds) {
                if !due { try save() }
                interrupted = update < total
                break
            }
        }
        if !interrupted {
            try loop.evaluate(held, engine: engine, scorer: scorer, reference: reference, step: update)
            if !trainer.sharesTrunk && ProcessGroup.world.isRoot {   // a shared value head is saved with the policy
                let valueDir = c.checkpointDirectory.deletingLastPathComponent().appendingPathComponent("value_model")
                try ModelCheckpoint.saveHuggingFace(valueModel, to: valueDir)
            }
        }
        return StageSummary(steps: update, finalTrainLoss: lastLoss, validation: [:], interrupted: interrupted)
    }

    /// RLOO and GRPO: the same loop, their advantage estimator the only difference.
    static func trainCriticFree(_ c: TrainingContext, estimator: AdvantageEstimator) throws -> StageSummary {
        guard case .criticFree(let config) = c.settings else { throw RunnerError("rloo/grpo: wrong settings") }
        let name = { if case .rloo = estimator { return "rloo" } else { return "grpo" } }()
        let G = config.numGenerations
        var beta = config.beta ?? 0
        if case .rloo = estimator, config.beta == nil { beta = 0.05 }
        let rows = config.args.batchSize * config.args.gradientAccumulationSteps
        guard rows % G == 0 else {
            throw RunnerError("\(name): batch_size × gradient_accumulation_steps = \(rows) completions must be a multiple of num_generations \(G)")
        }
        var loop = OnlineRLLoop(c: c, rollout: config.rollout, samplesPerPrompt: G, promptsPerUpdate: rows / G)
        loop.goldJudge = try config.rollout.evalJudge.map { try RolloutScorer.judge($0) }
        let engine = try loop.engine()
        let prompts = try engine.prompts(c.train, file: c.args.data ?? "data")
        guard !prompts.isEmpty else { throw RunnerError("\(name): \(c.args.data ?? "data") holds no prompts") }
        let scorer = try RolloutScorer.make(c, rollout: config.rollout)
        let lora = c.model.loraConfig != nil
        let reference = beta == 0 || (lora && c.models["ref_model"] == nil) ? nil : try c.load(role: "ref_model").model
        reference?.setInferencePrecision(config.rollout.refPrecision ?? .fp32, scope: .everyForward)
        let objective = CriticFreeObjective(estimator: estimator, groupSize: G, beta: Float(beta),
                                            epsilonLow: Float(config.epsilon), lossType: try GRPOLossType(setting: config.lossType),
                                            maxCompletionLength: config.rollout.responseLength,
                                            gradientAccumulationSteps: config.args.gradientAccumulationSteps)
        var s = CriticFreeTrainerSettings(objective: objective, eos: engine.eosId, pad: engine.padId)
        s.temperature = config.rollout.temperature
        s.microBatchSize = config.args.batchSize
        s.gradientAccumulationSteps = config.args.gradientAccumulationSteps
        s.numIterations = config.numIterations
        s.maxGradNorm = config.args.maxGradNorm
        s.adamBeta1 = config.args.adamBeta1
        s.adamBeta2 = config.args.adamBeta2
        s.weightDecay = config.args.weightDecay
        s.forwardBatchSize = max(rows, 1)
        let trainer = try CriticFreeTrainer(policy: c.model, reference: reference, settings: s)
        trainer.communicator = ProcessGroup.world
        let total = loop.updates(prompts: prompts.count)
        var schedule = c.trainerConfig(examples: 1)
        schedule.maxSteps = total * max(1, config.numIterations)
        let lrSchedule = schedule.schedule
        let checkpointer = Checkpointer(arenas: [(OnlineRLLoop.policyKey, c.model.arena)],
                                        optimizers: [(OnlineRLLoop.policyOptimizerKey, trainer.optimizer)])
        var order = try PromptOrder(count: prompts.count, seed: c.args.seed)
        var rng = RNG(seed: c.args.seed &+ 1)
        var update = 0
        if let (step, _) = try loop.resume(checkpointer, order: &order, rng: &rng, total: total) { update = step }
        try loop.checkSameStart(update)
        func save() throws { try loop.save(checkpointer, update: update, order: order, rng: rng, values: [:]) }
        let held = try loop.evaluationPrompts(engine)
        // The KL to the starting policy is reported even when beta = 0 keeps it out of the loss.
        let evalReference = try reference ?? (lora || held.isEmpty ? nil : c.load(role: "ref_model").model)
        if update == 0 { try loop.evaluate(held, engine: engine, scorer: scorer, reference: evalReference, step: 0) }
        c.note("\(name): \(prompts.count) prompts, \(total) updates of \(rows / G) prompts × \(G) completions, judge \(scorer.name)")
        var interrupted = false, lastLoss = 0.0
        while update < total {
            let started = DispatchTime.now().uptimeNanoseconds
            let indices = order.next(rows / G)
            c.model.refreshInferenceWeights()   // the rollout copy samples with the weights of the last update
            let sampled = try loop.sampleAndScore(engine, prompts: prompts, indices: indices, step: update + 1) {
                try scorer.scores($0, pad: engine.padId, chunk: s.forwardBatchSize)
            }
            let batch = sampled.batch
            var scores = sampled.scores
            if let penalty = config.rollout.missingEOSPenalty {
                for r in 0..<batch.rows where batch.stopReasons[r] != .stopToken { scores[r] -= Float(penalty) }
            }
            let prepared: CriticFreeRollout
            do {
                prepared = try trainer.prepare(queries: batch.queries, responses: batch.responses, rows: batch.rows,
                                               contextLength: batch.contextLength, responseLength: batch.responseLength, rewards: scores)
            } catch OnlineRLError.nonFinite(_, let quantity) {
                // The trainer does not know the update number; the message names it.
                throw OnlineRLError.nonFinite(update: update + 1, quantity: quantity)
            }
            var metrics = try trainer.train(prepared, step: update * max(1, config.numIterations),
                                            learningRate: { lrSchedule.lr(at: $0) }, rng: &rng)
            update += 1
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) * 1e-9
            metrics["eps"] = Double(batch.rows) / seconds
            metrics["episode"] = Double(update * batch.rows)
            for (k, v) in metrics { c.sink?.record(step: update, name: k, value: v) }
            try c.rolloutSink?.record(rollouts: loop.rows(batch, step: update, scores: scores, kl: prepared.sequenceKL?.map(Double.init),
                                                          rewards: prepared.advantage.shapedRewards.map(Double.init),
                                                          advantages: prepared.advantage.advantages.map(Double.init)))
            lastLoss = metrics["loss"] ?? 0
            if loop.evaluationDue(update, of: total) {
                try loop.evaluate(held, engine: engine, scorer: scorer, reference: evalReference, step: update)
            }
            if loop.exportDue(update, of: total) { try loop.exportModel(update: update) }
            let due = update == total || (c.args.saveSteps > 0 && update % c.args.saveSteps == 0)
            if due { try save() }
            if try !loop.progress(step: update, of: total, loss: lastLoss, lr: metrics["learning_rate"] ?? 0,
                              gradNorm: metrics["grad_norm"] ?? 0, episodes: batch.rows, seconds: seconds) {
                if !due { try save() }
                interrupted = update < total
                break
            }
        }
        if !interrupted { try loop.evaluate(held, engine: engine, scorer: scorer, reference: evalReference, step: update) }
        return StageSummary(steps: update, finalTrainLoss: lastLoss, validation: [:], interrupted: interrupted)
    }
}
