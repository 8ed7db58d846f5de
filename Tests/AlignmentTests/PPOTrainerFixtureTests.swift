import Checkpoints
import Foundation
import NN
import Testing
import Alignment
import TensorCore

// The whole PPO update against TRL 1.9.2's own PPOTrainer (Tests/Fixtures/ppo-step, see its
// README): the fixture's models and responses in, Rein's forward passes, losses, backward and
// AdamW; every rollout tensor, micro-batch loss, per-parameter gradient norm, logged metric and
// the trained models' outputs and parameters out. Every setting, path and minibatch order comes
// from each case's case.json, so another fixture of this layout runs unchanged.

@Suite struct PPOTrainerFixtureTests {
    @Test(arguments: ppoFixtureCases())
    func twoUpdatesMatchTRL(caseName: String) throws {
        let dir = ppoFixtureRoot.appendingPathComponent(caseName)
        let json = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("case.json"))) as? [String: Any])
        let s = try #require(json["settings"] as? [String: Any])
        let trl = try #require(json["trl_args"] as? [String: Any])
        func num(_ k: String) throws -> Double { try #require(jsonNumber(s[k]), "settings.\(k)") }
        func arg(_ k: String) throws -> Double { try #require(jsonNumber(trl[k]), "trl_args.\(k)") }
        let rows = Int(try #require(jsonNumber(json["local_batch_size"])))
        let R = Int(try #require(jsonNumber(json["response_length"])))
        let eos = Int32(try #require(jsonNumber(json["eos_token_id"])))
        let pad = Int32(try #require(jsonNumber(json["pad_token_id"])))
        let updates = Int(try num("num_updates"))
        let measured = try #require(json["measured"] as? [String: Any])
        let tolerances = try #require(measured["recommended_float32_abs_tolerance_by_group"] as? [String: Any]).compactMapValues(jsonNumber)
        func tolerance(_ group: String) throws -> Double { try #require(tolerances[group], "tolerance group \(group)") }

        // The models: the initial policy (the reference is a second copy), the value and reward models.
        let initial = try #require(json["policy_initial"] as? [String: Any])
        let policyDir = dir.appendingPathComponent(try #require(initial["path_relative_to_case_dir"] as? String))
        let policy = try ModelCheckpoint.loadHuggingFace(directory: policyDir)
        let reference = try ModelCheckpoint.loadHuggingFace(directory: policyDir)
        let valueModel = try ModelCheckpoint.loadHuggingFace(directory: ppoFixtureRoot.appendingPathComponent("value_model"))
        let rewardModel = try ModelCheckpoint.loadHuggingFace(directory: ppoFixtureRoot.appendingPathComponent("reward_model"))

        var rollout = PPORolloutSettings(eos: eos, pad: pad)
        rollout.klEstimator = try KLEstimator.named(try #require(s["kl_estimator"] as? String))
        rollout.klCoef = Float(try num("kl_coef"))
        rollout.gamma = Float(try num("gamma"))
        rollout.lam = Float(try num("lam"))
        rollout.whitenRewards = try #require(jsonFlag(s["whiten_rewards"]) as Bool?)
        rollout.missingEOSPenalty = jsonNumber(s["missing_eos_penalty"]).map { Float($0) }
        var settings = PPOTrainerSettings(rollout: rollout)
        settings.temperature = try num("temperature")
        settings.numPPOEpochs = Int(try num("num_ppo_epochs"))
        settings.numMiniBatches = Int(try num("num_mini_batches"))
        settings.microBatchSize = Int(try num("per_device_train_batch_size"))
        settings.gradientAccumulationSteps = Int(try num("gradient_accumulation_steps"))
        settings.cliprange = Float(try num("cliprange"))
        settings.cliprangeValue = Float(try num("cliprange_value"))
        settings.vfCoef = Float(try num("vf_coef"))
        settings.learningRate = try num("learning_rate")
        settings.numTotalBatches = Int(try arg("num_total_batches"))
        settings.adamBeta1 = try arg("adam_beta1")
        settings.adamBeta2 = try arg("adam_beta2")
        settings.adamEpsilon = try arg("adam_epsilon")
        settings.weightDecay = try arg("weight_decay")
        settings.forwardBatchSize = Int(try arg("local_rollout_forward_batch_size"))
        #expect(settings.batchRows == rows)
        let trainer = try PPOTrainer(policy: policy, reference: reference, valueModel: valueModel, settings: settings)

        let rolloutFile = try SafetensorsFile(url: dir.appendingPathComponent("rollout.safetensors"))
        let trainFile = try SafetensorsFile(url: dir.appendingPathComponent("train.safetensors"))
        let afterFile = try SafetensorsFile(url: dir.appendingPathComponent("after.safetensors"))
        let microSteps = try #require(json["micro_steps"] as? [[String: Any]])
        let optimizerSteps = try #require(json["optimizer_steps"] as? [[String: Any]])
        let metrics = try #require(json["metrics"] as? [[String: Any]])
        let orders = try #require(json["minibatch_order"] as? [[String: Any]])
        let log = DiffLog()

        // Gradient norms right before each optimizer step, relative to TRL's.
        let gradTol = try tolerance("per-parameter gradient L2 norms at each optimizer step (RELATIVE difference)")
        var optimizerStepIndex = 0
        trainer.beforeOptimizerStep = {
            guard optimizerStepIndex < optimizerSteps.count,
                  let expected = optimizerSteps[optimizerStepIndex]["grad_norm_per_param"] as? [String: Any] else {
                log.failures.append("optimizer step \(optimizerStepIndex + 1) that TRL did not take")
                return
            }
            var seen = 0
            for (prefix, model) in [("policy.", policy), ("value_model.", valueModel)] {
                for entry in model.arena.entries where !entry.frozen {
                    guard let e = jsonNumber(expected[prefix + entry.name]) else {
                        log.failures.append("optimizer step \(optimizerStepIndex + 1): TRL has no gradient for \(prefix + entry.name)")
                        continue
                    }
                    seen += 1
                    var sq = 0.0
                    let g = model.arena.grads.base
                    for i in entry.range { sq += Double(g[i]) * Double(g[i]) }
                    let rel = abs(sq.squareRoot() - e) / Swift.max(e, 1e-12)
                    log.worst["grad_norm(relative)"] = Swift.max(log.worst["grad_norm(relative)"] ?? 0, rel)
                    if !(rel <= gradTol) || (e < 1e-9 && sq.squareRoot() > 1e-7) {
                        log.failures.append("optimizer step \(optimizerStepIndex + 1) \(prefix + entry.name): grad norm \(sq.squareRoot()), TRL \(e)")
                    }
                }
            }
            if seen != expected.count { log.failures.append("optimizer step \(optimizerStepIndex + 1): \(seen) parameters, TRL \(expected.count)") }
            optimizerStepIndex += 1
        }

        var microIndex = 0
        trainer.onMicroBatch = { mb in
            guard microIndex < microSteps.count else { log.failures.append("more micro-batches than TRL ran"); return }
            let step = microSteps[microIndex]
            microIndex += 1
            let p = "u\(mb.update).e\(mb.epoch).mb\(mb.miniBatch).ga\(mb.accumulationIndex)."
            guard let tol = tolerances["micro-step tensors (u\(mb.update))"] else { log.failures.append("no tolerance for \(p)"); return }
            do {
                log.exact(p + "micro_batch_inds", mb.indices, try trainFile.ints(p + "micro_batch_inds"))
                func ft(_ k: String) throws -> [Float] { try trainFile.tensor(p + k).values }
                let masked = zip(mb.newLogProbs, mb.paddingMask).map { $1 ? invalidLogProb : $0 }
                log.compare(p + "new_logprobs", masked, try ft("new_logprobs"), tol: tol)
                log.compare(p + "ratio", mb.loss.policy.ratio, try ft("ratio"), tol: tol)
                log.compare(p + "vpred", mb.loss.value.vpred, try ft("vpred"), tol: tol)
                log.compare(p + "vpredclipped", mb.loss.value.vpredClipped, try ft("vpredclipped"), tol: tol)
                log.compare(p + "entropy", mb.entropies, try ft("entropy"), tol: tol)
                log.compare(p + "pg_loss", [mb.loss.policy.loss.item], try ft("pg_loss"), tol: tol)
                log.compare(p + "vf_loss", [mb.loss.value.loss.item], try ft("vf_loss"), tol: tol)
                log.compare(p + "loss", [mb.loss.loss.item], try ft("loss"), tol: tol)
                log.compare(p + "approxkl", [mb.loss.policy.approxKL], try ft("approxkl"), tol: tol)
                log.compare(p + "pg_clipfrac", [mb.loss.policy.clipFraction], try ft("pg_clipfrac"), tol: 1e-6)
                log.compare(p + "vf_clipfrac", [mb.loss.value.clipFraction], try ft("vf_clipfrac"), tol: 1e-6)
                log.exact(p + "optimizer_step_taken", [mb.optimizerStepped], [jsonFlag(step["optimizer_step_taken"]) ?? false])
            } catch {
                log.failures.append("\(p): \(error)")
            }
        }

        var rng = RNG(seed: 0)
        for u in 1...updates {
            let p = "u\(u)."
            let tol = try tolerance("rollout (u\(u))")
            let queries = try rolloutFile.int32s(p + "queries"), responses = try rolloutFile.int32s(p + "responses")
            let ctx = queries.count / rows
            let judge = trainer.rewardModelJudge(rewardModel, contextLength: ctx, responseLength: R)
            let r = try trainer.rollout(queries: queries, responses: responses, rows: rows, contextLength: ctx, responseLength: R,
                                        score: judge)
            func f(_ n: String) throws -> [Float] { try rolloutFile.tensor(p + n).values }
            log.exact(p + "query_responses", r.queryResponses, try rolloutFile.int32s(p + "query_responses"))
            log.compare(p + "logprobs_raw", r.rawLogProbs, try f("logprobs_raw"), tol: tol)
            log.compare(p + "ref_logprobs_raw", r.rawRefLogProbs, try f("ref_logprobs_raw"), tol: tol)
            log.compare(p + "values_raw", r.rawValues, try f("values_raw"), tol: tol)
            log.compare(p + "scores_raw", r.rawScores, try f("scores_raw"), tol: tol)
            log.compare(p + "kl", r.tensors.kl, try f("kl"), tol: tol)
            log.compare(p + "rewards", r.tensors.rewards, try f("rewards"), tol: tol)
            log.compare(p + "advantages", r.tensors.advantages, try f("advantages"), tol: tol)
            log.compare(p + "returns", r.tensors.returns, try f("returns"), tol: tol)

            let epochOrders = try (0..<settings.numPPOEpochs).map { e in
                try #require(jsonInts(orders.first { jsonNumber($0["update"]) == Double(u) && jsonNumber($0["epoch"]) == Double(e) }?["b_inds"]),
                             "minibatch_order of update \(u) epoch \(e)")
            }
            let m = try trainer.train(r, update: u, orders: epochOrders, rng: &rng)
            let mtol = try tolerance("logged metrics")
            for (k, v) in metrics[u - 1] where k != "eps" {
                guard let e = jsonNumber(v), let mine = m[k] else { log.failures.append("u\(u) metric \(k) missing"); continue }
                log.compare("u\(u).metrics.\(k)", [Float(mine)], [Float(e)], tol: mtol)
            }
        }
        #expect(microIndex == microSteps.count, "\(microIndex) micro-batches, TRL ran \(microSteps.count)")
        #expect(optimizerStepIndex == optimizerSteps.count, "\(optimizerStepIndex) optimizer steps, TRL took \(optimizerSteps.count)")

        // The trained models on each update's query-responses.
        let T = settings.temperature
        for u in 1...updates {
            let p = "u\(u)."
            let qr = try rolloutFile.int32s(p + "query_responses")
            let L = qr.count / rows, ctx = L - R
            let inputs = PaddedInputs(ids: qr, rows: rows, length: L, pad: pad)
            let (logits, values) = Autograd.withoutGrad {
                let h = responseHiddenStates(inputs.hiddenStates(policy), contextLength: ctx, responseLength: R)
                let vh = responseHiddenStates(inputs.hiddenStates(valueModel), contextLength: ctx, responseLength: R)
                return (temperatureScaledLogits(policy.logits(hidden: h), temperature: T),
                        responseValues(valueModel: valueModel, responseHidden: vh))
            }
            let ptol = try tolerance("after-training policy logprobs/logsumexp/entropy")
            let responses = try rolloutFile.int32s(p + "responses")
            log.compare(p + "policy_logprobs", responseLogProbs(logits: logits, responses: responses).values,
                        try afterFile.tensor(p + "policy_logprobs").values, tol: ptol)
            log.compare(p + "policy_entropy", tokenEntropies(logits: logits), try afterFile.tensor(p + "policy_entropy").values, tol: ptol)
            log.compare(p + "values", values.values, try afterFile.tensor(p + "values").values, tol: try tolerance("after-training values"))
            if afterFile.contains(p + "policy_logits") {
                log.compare(p + "policy_logits", logits.values, try afterFile.tensor(p + "policy_logits").values,
                            tol: try tolerance("after-training policy logits"))
            }
        }
        // Every trained parameter: the small ones element by element, all by their sums.
        let stats = try #require(json["final_param_stats"] as? [String: Any])
        for (prefix, key, model, group) in [("policy.", "policy", policy, "final policy parameters"),
                                            ("value_model.", "value_model", valueModel, "final value-model parameters")] {
            let tol = try tolerance(group)
            for name in afterFile.names where name.hasPrefix(prefix) {
                let t = try #require(model.arena.tensor(named: String(name.dropFirst(prefix.count))), "\(name) is not a parameter")
                log.compare(name, t.values, try afterFile.tensor(name).values, tol: tol)
            }
            let perParam = try #require(stats[key] as? [String: Any])
            for (name, v) in perParam {
                let entry = try #require(v as? [String: Any])
                // A tied LM head is the embedding (one parameter, listed under both names by torch).
                let alias = name == "lm_head.weight" && model.config.tieEmbeddings ? "model.embed_tokens.weight" : name
                let t = try #require(model.arena.tensor(named: alias), "\(key).\(name) is not a parameter")
                let e = try #require(jsonNumber(entry["sum"]))
                let sum = t.values.reduce(0.0) { $0 + Double($1) }
                // A sum of n elements each within tol.
                log.compare("\(key).\(name).sum", [Float(sum)], [Float(e)], tol: tol * Double(t.count).squareRoot())
            }
        }
        print("ppo-trainer \(caseName) worst |diff|: \(log.report)")
        #expect(log.failures.isEmpty, "\(caseName):\n\(log.failures.prefix(40).joined(separator: "\n"))")
    }
}
