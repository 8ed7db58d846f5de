import Foundation
import Testing
import Alignment
import TensorCore

// TRL 1.9.2's PPOTrainer rollout and micro-batch tensors (Tests/Fixtures/ppo-step, see its README):
// from the rollout's inputs (raw responses, log-probs, values, scores) the Swift PPO arithmetic must
// give every intermediate tensor TRL computed, and from each micro-batch's new log-probs and value
// predictions the losses, clip fractions and metrics TRL logged.

let ppoFixtureRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../Fixtures/ppo-step")

/// Every case folder of the fixture (one holding a case.json).
func ppoFixtureCases() -> [String] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: ppoFixtureRoot.path)) ?? []
    return names.filter {
        FileManager.default.fileExists(atPath: ppoFixtureRoot.appendingPathComponent($0).appendingPathComponent("case.json").path)
    }.sorted()
}

/// JSONSerialization's numbers and flags, whichever way the platform's Foundation bridges them.
func jsonNumber(_ a: Any?) -> Double? {
    if let d = a as? Double { return d }
    if let i = a as? Int { return Double(i) }
    if let n = a as? NSNumber { return n.doubleValue }
    return nil
}
func jsonFlag(_ a: Any?) -> Bool? {
    if let b = a as? Bool { return b }
    return jsonNumber(a).map { $0 != 0 }
}
func jsonInts(_ a: Any?) -> [Int]? {
    guard let list = a as? [Any] else { return nil }
    let out = list.compactMap { jsonNumber($0).map { Int($0) } }
    return out.count == list.count ? out : nil
}

/// Worst absolute differences per tensor name, and a comparison that records them.
final class DiffLog {
    var worst: [String: Double] = [:]
    var failures: [String] = []

    /// Checks |a - e| <= tol + 1e-4 |e| elementwise and remembers the largest |a - e|.
    func compare(_ name: String, _ actual: [Float], _ expected: [Float], tol: Double) {
        guard actual.count == expected.count else {
            failures.append("\(name): \(actual.count) elements, expected \(expected.count)")
            return
        }
        var m = 0.0, bad = 0
        for (a, e) in zip(actual, expected) {
            let d = abs(Double(a) - Double(e))
            if !(d <= tol + 1e-4 * abs(Double(e))) { bad += 1 }
            m = max(m, d.isNaN ? .infinity : d)
        }
        let key = DiffLog.tensorName(name)
        worst[key] = max(worst[key] ?? 0, m)
        if bad > 0 { failures.append("\(name): \(bad) elements off, max |diff| \(m) (tolerance \(tol))") }
    }

    func exact<T: Equatable>(_ name: String, _ actual: [T], _ expected: [T]) {
        if actual != expected { failures.append("\(name): \(actual) != expected \(expected)") }
        let key = DiffLog.tensorName(name)
        worst[key] = max(worst[key] ?? 0, actual == expected ? 0 : .infinity)
    }

    /// "u2.e1.mb0.ga1.ratio" -> "ratio": the report gives one worst difference per tensor over all
    /// updates and micro-batches.
    static func tensorName(_ name: String) -> String {
        name.split(separator: ".").last.map(String.init) ?? name
    }

    var report: String {
        worst.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.2e", $0.value))" }.joined(separator: ", ")
    }
}

@Suite struct PPOFixtureTests {
    @Test func everyCaseIsPresent() {
        #expect(ppoFixtureCases().count >= 2, "the ppo-step cases are missing from Tests/Fixtures")
    }

    @Test(arguments: ppoFixtureCases())
    func rolloutAndMicroBatchesMatchTRL(caseName: String) throws {
        let dir = ppoFixtureRoot.appendingPathComponent(caseName)
        let json = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("case.json"))) as? [String: Any])
        let s = try #require(json["settings"] as? [String: Any])
        func num(_ k: String) throws -> Double { try #require(jsonNumber(s[k]), "settings.\(k)") }
        let rows = try #require(jsonNumber(json["local_batch_size"]).map { Int($0) })
        let R = try #require(jsonNumber(json["response_length"]).map { Int($0) })
        let eos = Int32(try #require(jsonNumber(json["eos_token_id"]).map { Int($0) }))
        let pad = Int32(try #require(jsonNumber(json["pad_token_id"]).map { Int($0) }))
        #expect(s["stop_token"] as? String == "eos")
        var settings = PPORolloutSettings(eos: eos, pad: pad)
        settings.klEstimator = try KLEstimator.named(try #require(s["kl_estimator"] as? String))
        settings.klCoef = Float(try num("kl_coef"))
        settings.gamma = Float(try num("gamma"))
        settings.lam = Float(try num("lam"))
        settings.whitenRewards = try #require(jsonFlag(s["whiten_rewards"]) as Bool?)
        settings.missingEOSPenalty = jsonNumber(s["missing_eos_penalty"]).map { Float($0) }
        let cliprange = Float(try num("cliprange")), cliprangeValue = Float(try num("cliprange_value"))
        let vfCoef = Float(try num("vf_coef"))
        let updates = Int(try num("num_updates"))
        let microSize = Int(try num("per_device_train_batch_size")), numMini = Int(try num("num_mini_batches"))
        let measured = try #require(json["measured"] as? [String: Any])
        let tolerances = try #require(measured["recommended_float32_abs_tolerance_by_group"] as? [String: Any]).compactMapValues(jsonNumber)
        let metrics = try #require(json["metrics"] as? [[String: Any]])
        let microSteps = try #require(json["micro_steps"] as? [[String: Any]])
        let order = try #require(json["minibatch_order"] as? [[String: Any]])

        let rollout = try SafetensorsFile(url: dir.appendingPathComponent("rollout.safetensors"))
        let train = try SafetensorsFile(url: dir.appendingPathComponent("train.safetensors"))
        let log = DiffLog()
        var processed: [Int: PPORolloutTensors] = [:]

        for u in 1...updates {
            let p = "u\(u)."
            let tol = try #require(tolerances["rollout (u\(u))"])
            func f(_ n: String) throws -> [Float] { try rollout.tensor(p + n).values }
            func i(_ n: String) throws -> [Int32] { try rollout.int32s(p + n) }
            let responses = try i("responses")
            let t = try processPPORollout(responses: responses, logProbs: try f("logprobs_raw"),
                                          refLogProbs: try f("ref_logprobs_raw"), values: try f("values_raw"),
                                          rawScores: try f("scores_raw"), rows: rows, length: R, settings: settings)
            processed[u] = t
            log.exact(p + "postprocessed_responses", t.postprocessedResponses, try i("postprocessed_responses"))
            log.exact(p + "sequence_lengths", t.masks.sequenceLengths.map(Int32.init), try i("sequence_lengths"))
            log.exact(p + "contain_eos_token", t.masks.containsEOS.map { $0 ? Int32(1) : 0 }, try i("contain_eos_token"))
            log.exact(p + "padding_mask", t.masks.paddingMask.map { $0 ? Int32(1) : 0 }, try i("padding_mask"))
            log.exact(p + "padding_mask_p1", t.masks.paddingMaskP1.map { $0 ? Int32(1) : 0 }, try i("padding_mask_p1"))
            log.exact(p + "actual_end", t.masks.scorePositions.map(Int32.init), try i("actual_end"))
            log.compare(p + "scores", t.scores, try f("scores"), tol: tol)
            log.compare(p + "logprobs", t.logProbs, try f("logprobs"), tol: tol)
            log.compare(p + "ref_logprobs", t.refLogProbs, try f("ref_logprobs"), tol: tol)
            log.compare(p + "values", t.values, try f("values"), tol: tol)
            log.compare(p + "logr", zip(t.refLogProbs, t.logProbs).map { $0 - $1 }, try f("logr"), tol: tol)
            log.compare(p + "kl", t.kl, try f("kl"), tol: tol)
            log.compare(p + "non_score_reward", t.nonScoreRewards, try f("non_score_reward"), tol: tol)
            log.compare(p + "rewards", t.rewards, try f("rewards"), tol: tol)
            log.compare(p + "rewards_final", t.finalRewards, try f("rewards_final"), tol: tol)
            log.compare(p + "advantages_raw", t.rawAdvantages, try f("advantages_raw"), tol: tol)
            log.compare(p + "returns", t.returns, try f("returns"), tol: tol)
            log.compare(p + "advantages", t.advantages, try f("advantages"), tol: tol)

            // The rollout metrics TRL logged for this update.
            let mtol = try #require(tolerances["logged metrics"])
            let m = ppoRolloutMetrics(t, rawResponses: responses, eos: eos)
            for (k, v) in m {
                let e = try #require(jsonNumber(metrics[u - 1][k]).map { Float($0) }, "metric \(k)")
                log.compare("metrics.\(k)", [Float(v)], [e], tol: mtol)
            }

            // The case that kept the generation logits: the log-probs TRL took from them.
            if rollout.contains(p + "generation_logits") {
                let logits = try rollout.tensor(p + "generation_logits")
                log.compare(p + "logprobs_raw(from generation_logits)", gatherLogProbs(logits: logits, ids: responses).values,
                            try f("logprobs_raw"), tol: tol)
            }
        }

        // The micro-batches: indices from the recorded permutations, losses from the recorded new
        // log-probs and value predictions with this code's rollout tensors as the old ones.
        var stats: [Int: PPOUpdateStats] = [:]
        var stepTakenBefore = false
        let trlArgs = try #require(json["trl_args"] as? [String: Any])
        let totalBatches = Int(try #require(jsonNumber(trlArgs["num_total_batches"]), "trl_args.num_total_batches"))
        let baseLR = try num("learning_rate")
        // TRL's scheduler as Rein builds it (its defaults: linear, no warmup), stepped per update.
        var schedule = PPOTrainerSettings(rollout: PPORolloutSettings(eos: 0, pad: 1))
        schedule.learningRate = baseLR
        schedule.numTotalBatches = totalBatches
        var accumulation = GradientAccumulationCounter(steps: Int(try num("gradient_accumulation_steps")))
        for step in microSteps {
            func n(_ k: String) throws -> Int { try #require(jsonNumber(step[k]).map { Int($0) } as Int?, "\(k)") }
            let u = try n("update"), e = try n("ppo_epoch_idx"), mb = try n("minibatch_idx"), ga = try n("gradient_accumulation_idx")
            let p = "u\(u).e\(e).mb\(mb).ga\(ga)."
            let tol = try #require(tolerances["micro-step tensors (u\(u))"])
            let t = try #require(processed[u])
            let perm = try #require(jsonInts(order.first { jsonNumber($0["update"]) == Double(u) && jsonNumber($0["epoch"]) == Double(e) }?["b_inds"]))
            let slices = ppoMicroBatches(order: perm, numMiniBatches: numMini, microBatchSize: microSize)
            let inds = try train.ints(p + "micro_batch_inds")
            log.exact(p + "micro_batch_inds", slices[mb][ga], inds)
            log.exact(p + "micro_batch_inds(case file)", inds, try #require(jsonInts(step["micro_batch_inds"])))

            let newLP = try train.tensor(p + "new_logprobs")
            let vpred = try train.tensor(p + "vpred")
            let newLPParam = Tensor(shape: newLP.shape, values: newLP.values, requiresGrad: true)
            let vpredParam = Tensor(shape: vpred.shape, values: vpred.values, requiresGrad: true)
            let l = try ppoLoss(newLogProbs: newLPParam, values: vpredParam,
                                oldLogProbs: gatherRows(t.logProbs, indices: inds, length: R),
                                oldValues: gatherRows(t.values, indices: inds, length: R),
                                advantages: gatherRows(t.advantages, indices: inds, length: R),
                                returns: gatherRows(t.returns, indices: inds, length: R),
                                paddingMask: gatherRows(t.masks.paddingMask, indices: inds, length: R),
                                paddingMaskP1: gatherRows(t.masks.paddingMaskP1, indices: inds, length: R),
                                cliprange: cliprange, cliprangeValue: cliprangeValue, vfCoef: vfCoef)
            func ft(_ k: String) throws -> [Float] { try train.tensor(p + k).values }
            log.compare(p + "logprobs_diff", l.policy.logProbsDiff, try ft("logprobs_diff"), tol: tol)
            log.compare(p + "ratio", l.policy.ratio, try ft("ratio"), tol: tol)
            log.compare(p + "pg_losses", l.policy.pgLosses, try ft("pg_losses"), tol: tol)
            log.compare(p + "pg_losses2", l.policy.pgLosses2, try ft("pg_losses2"), tol: tol)
            log.compare(p + "vpredclipped", l.value.vpredClipped, try ft("vpredclipped"), tol: tol)
            log.compare(p + "vf_losses1", l.value.vfLosses1, try ft("vf_losses1"), tol: tol)
            log.compare(p + "vf_losses2", l.value.vfLosses2, try ft("vf_losses2"), tol: tol)
            log.compare(p + "pg_loss", [l.policy.loss.item], try ft("pg_loss"), tol: tol)
            log.compare(p + "vf_loss", [l.value.loss.item], try ft("vf_loss"), tol: tol)
            log.compare(p + "loss", [l.loss.item], try ft("loss"), tol: tol)
            log.compare(p + "approxkl", [l.policy.approxKL], try ft("approxkl"), tol: tol)
            // Clip decisions are discrete: the fractions must be the same counts (1e-6 << 1/count).
            log.compare(p + "pg_clipfrac", [l.policy.clipFraction], try ft("pg_clipfrac"), tol: 1e-6)
            log.compare(p + "vf_clipfrac", [l.value.clipFraction], try ft("vf_clipfrac"), tol: 1e-6)
            let ratioMean = Float(try #require(jsonNumber(step["ratio_mean"])))
            log.compare(p + "ratio_mean", [l.policy.ratioMean], [ratioMean], tol: tol)

            // The loss backpropagates: a gradient lands on every valid token's log-prob or nowhere
            // (clipped), and never on a padded position.
            l.loss.backward()
            let g = try #require(newLPParam.grad).values
            let padded = gatherRows(t.masks.paddingMask, indices: inds, length: R)
            #expect(zip(g, padded).allSatisfy { !$1 || $0 == 0 }, "\(p): gradient on a padded log-prob")
            #expect(try #require(vpredParam.grad).values.contains { $0 != 0 })

            // Entropy needs the training forward's logits; until the first optimizer step they are
            // the generation logits (same policy), which one case keeps.
            var entropyMean: Float? = try train.tensor(p + "entropy").values.reduce(0, +) / Float(inds.count * R)
            if u == 1, !stepTakenBefore, rollout.contains("u1.generation_logits") {
                let logits = try rollout.tensor("u1.generation_logits")
                let V = logits.lastDim
                let picked = Tensor(shape: [inds.count, R, V], values: gatherRows(logits.values, indices: inds, length: R * V))
                let ent = tokenEntropies(logits: picked)
                log.compare(p + "entropy(from generation_logits)", ent, try ft("entropy"), tol: tol)
                let lp = gatherLogProbs(logits: picked, ids: gatherRows(try rollout.int32s("u1.responses"), indices: inds, length: R))
                let masked = zip(lp.values, padded).map { $1 ? invalidLogProb : $0 }
                log.compare(p + "new_logprobs(from generation_logits)", masked, newLP.values, tol: tol)
                entropyMean = ent.reduce(0, +) / Float(ent.count)
            }
            // accelerate's accumulation and the per-update linear schedule.
            let taken = accumulation.microStep(endOfDataloader: jsonFlag(step["end_of_dataloader"]) == true)
            log.exact(p + "optimizer_step_taken", [taken], [try #require(jsonFlag(step["optimizer_step_taken"]) as Bool?)])
            log.exact(p + "accelerator_step_counter", [accumulation.counter], [try n("accelerator_step_counter")])
            let lr = try #require(jsonNumber(step["lr"]), "micro-step lr")
            log.compare(p + "lr", [Float(schedule.learningRate(update: u))],
                        [Float(lr)], tol: 0)
            if taken { stepTakenBefore = true }
            stats[u, default: PPOUpdateStats()].record(l, entropyMean: entropyMean)
        }

        // The per-update averages TRL logged.
        let mtol = try #require(tolerances["logged metrics"])
        for u in 1...updates {
            for (k, v) in try #require(stats[u]).metrics {
                let e = try #require(jsonNumber(metrics[u - 1][k]).map { Float($0) }, "metric \(k)")
                log.compare("u\(u).metrics.\(k)", [Float(v)], [e], tol: mtol)
            }
        }

        print("ppo-step \(caseName) worst |diff|: \(log.report)")
        #expect(log.failures.isEmpty, "\(caseName):\n\(log.failures.joined(separator: "\n"))")
    }
}
