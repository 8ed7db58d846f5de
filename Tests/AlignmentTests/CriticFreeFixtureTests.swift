import Foundation
import Testing
import Alignment
import TensorCore

// GRPO and RLOO advantages, losses, gradients and metrics against TRL 1.16 (Tests/Fixtures/rl-advantages,
// see its README). Every variant and every setting is read from expected.json, so another fixture of
// that layout is checked the same way; a setting this implementation does not support fails the test.

private let fixtureDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../Fixtures/rl-advantages")

/// Metrics that are exact ratios of counts (README: compare to 1e-7).
private let countRatioMetrics: Set<String> = [
    "frac_reward_zero_std", "clip_ratio/low_mean", "clip_ratio/low_min", "clip_ratio/high_mean",
    "clip_ratio/high_max", "clip_ratio/region_mean",
]

/// The largest difference seen per kind of value, for the report line.
private struct Worst {
    var values: [String: Double] = [:]
    mutating func note(_ kind: String, _ d: Double) { values[kind] = max(values[kind] ?? 0, d) }
}

private func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Double {
    guard a.count == b.count else { return .infinity }
    return zip(a, b).reduce(0.0) { max($0, abs(Double($1.0) - Double($1.1))) }
}

/// A JSON number (JSONSerialization may hand back NSNumber or a Swift number).
private func number(_ any: Any?) -> Double? {
    switch any {
    case let n as NSNumber: n.doubleValue
    case let d as Double: d
    case let i as Int: Double(i)
    default: nil
    }
}

private func numbers(_ any: Any?) -> [Double]? {
    guard let list = any as? [Any] else { return nil }
    let values = list.compactMap(number)
    return values.count == list.count ? values : nil
}

private func flag(_ any: Any?) -> Bool? {
    switch any {
    case let b as Bool: b
    case let n as NSNumber: n.boolValue
    default: nil
    }
}

@Suite struct CriticFreeFixtureTests {
    @Test func everyVariantMatchesTRL() throws {
        let json = try #require(try JSONSerialization.jsonObject(
            with: Data(contentsOf: fixtureDirectory.appendingPathComponent("expected.json"))) as? [String: Any])
        let file = try SafetensorsFile(url: fixtureDirectory.appendingPathComponent("expected.safetensors"))
        let variants = try #require(json["variants"] as? [String: Any])
        #expect(!variants.isEmpty)

        let rewards = try file.tensor("inputs.rewards").values
        let current = try file.tensor("inputs.per_token_logps")
        let N = current.shape[0], T = current.shape[1]
        let mask = try file.ints("inputs.completion_mask").map(Float.init)
        let old = try file.tensor("inputs.old_per_token_logps").values
        let ref = try file.tensor("inputs.ref_per_token_logps").values
        let entropies = try file.tensor("inputs.entropies").values
        #expect(rewards.count == N && mask.count == N * T)

        var worst = Worst()
        var checkedMetrics = 0
        for name in variants.keys.sorted() {
            let variant = try #require(variants[name] as? [String: Any], "\(name)")
            let s = try #require(variant["resolved"] as? [String: Any], "\(name): resolved")
            let trainer = try #require(variant["trainer"] as? String)
            let isGRPO = trainer.contains("GRPO"), isRLOO = trainer.contains("RLOO")
            try #require(isGRPO != isRLOO, "\(name): unknown trainer \(trainer)")
            let method = isGRPO ? "grpo " : "rloo "

            // Settings this implementation does not have must be at the value it implements.
            if let level = s["importance_sampling_level"] as? String { #expect(level == "token", "\(name)") }
            if let delta = s["delta"] { #expect(delta is NSNull, "\(name): delta is not supported") }
            if let aggregation = s["multi_objective_aggregation"] as? String {
                #expect(aggregation == "sum_then_normalize", "\(name)")
            }
            if let clip = s["reward_clip_range"] { #expect(clip is NSNull, "\(name): reward_clip_range is not supported") }

            let estimator: AdvantageEstimator
            let lossType: GRPOLossType
            if isGRPO {
                // TRL 1.16 also accepts the booleans of older versions for scale_rewards.
                let scaling = (s["scale_rewards"] as? String) ?? flag(s["scale_rewards"]).map { $0 ? "true" : "false" }
                estimator = .grpo(scaleRewards: try RewardScaling(setting: try #require(scaling, "\(name): scale_rewards")))
                lossType = try GRPOLossType(setting: try #require(s["loss_type"] as? String))
            } else {
                estimator = .rloo(normalizeAdvantages: try #require(flag(s["normalize_advantages"]) as Bool?))
                lossType = .dapo   // unused by RLOO
            }
            let gas = Int(try #require(number(s["current_gradient_accumulation_steps"])))
            let spg = Int(try #require(number(s["steps_per_generation"])))
            let objective = CriticFreeObjective(
                estimator: estimator,
                groupSize: Int(try #require(number(s["num_generations"]))),
                beta: Float(try #require(number(s["beta"]))),
                epsilonLow: Float(try #require(number(s["epsilon_low"]))),
                epsilonHigh: Float(try #require(number(s["epsilon_high"]))),
                lossType: lossType,
                useBiasCorrectionKL: flag(s["use_bias_correction_kl"]) ?? true,
                maxCompletionLength: Int(try #require(number(s["max_completion_length"]))),
                gradientAccumulationSteps: gas, stepsPerGeneration: spg)

            // TRL scores the old log-probs only when it needs them (logps_calls says what it asked
            // for); without them the ratio is exactly 1.
            let usesOld: Bool
            if let calls = variant["logps_calls"] as? [String] {
                usesOld = calls.contains("old")
            } else {
                usesOld = isRLOO || Int(number(s["num_iterations"]) ?? 1) > 1 || spg > gas
            }
            let batch = try CompletionLogProbs(rows: N, width: T, mask: mask, old: usesOld ? old : nil, ref: ref,
                                               entropies: entropies)

            // Advantages.
            let adv = try objective.advantages(rewards: rewards, logProbs: batch)
            let expectedAdvantages = try file.tensor("\(name).advantages").values
            let dAdv = maxAbsDiff(adv.advantages, expectedAdvantages)
            worst.note(method + "advantages", dAdv)
            #expect(dAdv <= 1e-6, "\(name): advantages differ by \(dAdv)")
            if let listed = numbers(variant["advantages"]) {
                #expect(maxAbsDiff(adv.advantages, listed.map { Float($0) }) <= 1e-6, "\(name): JSON advantages")
            }

            // Micro-batches: one loss and one backward each; the loss and gradient are their sums.
            let micro = try #require(variant["micro_batches"] as? [[String: Any]], "\(name): micro_batches")
            let items = number(variant["num_items_in_batch"]).map { Int($0) }
            var grad = [Float](repeating: 0, count: N * T)
            var total: Float = 0
            var intermediates: [String: [Float]] = [:]
            var microMetrics: [[String: Double]] = []
            for mb in micro {
                let rows = try #require(numbers(mb["rows"]), "\(name): rows").map { Int($0) }
                let part = try gatherRows(batch, rows)
                var values = [Float]()
                for r in rows { values += current.values[r * T..<(r + 1) * T] }
                let leaf = Tensor(shape: [rows.count, T], values: values, requiresGrad: true)
                let out = try objective.loss(logProbs: leaf, batch: part, advantages: rows.map { adv.advantages[$0] },
                                             tokensInGenerationBatch: items)
                out.loss.backward()
                let g = try #require(leaf.grad, "\(name): no gradient").values
                for (k, r) in rows.enumerated() {
                    for t in 0..<T { grad[r * T + t] += g[k * T + t] }
                }
                if let expected = number(mb["loss"]) {
                    let d = abs(Double(out.loss.item) - expected)
                    worst.note(method + "micro-batch loss", d)
                    #expect(d <= 1e-6, "\(name) rows \(rows.first ?? 0)...: micro loss \(out.loss.item) vs \(expected)")
                }
                total += out.loss.item
                for (key, tensor) in out.tensors {
                    let width = tensor.count / max(rows.count, 1)
                    var full = intermediates[key] ?? [Float](repeating: .nan, count: N * width)
                    let v = tensor.values
                    for (k, r) in rows.enumerated() {
                        for j in 0..<width { full[r * width + j] = v[k * width + j] }
                    }
                    intermediates[key] = full
                }
                microMetrics.append(out.metrics)
            }
            let expectedLoss = try file.tensor("\(name).loss").item
            let dLoss = abs(Double(total) - Double(expectedLoss))
            worst.note(method + "loss", dLoss)
            #expect(dLoss <= 1e-6, "\(name): loss \(total) vs \(expectedLoss)")
            if let listed = number(variant["loss"]) { #expect(abs(Double(total) - listed) <= 1e-6, "\(name): JSON loss") }
            let dGrad = maxAbsDiff(grad, try file.tensor("\(name).grad_per_token_logps").values)
            worst.note(method + "gradient", dGrad)
            #expect(dGrad <= 1e-6, "\(name): gradient differs by \(dGrad)")

            // Every intermediate tensor the fixture has for this variant: 1e-6 absolute. RLOO's
            // per-sequence values come from float32 row sums of the log-probs (|sum| ~ 10, where one
            // float32 ulp is 9.5e-7) that TRL itself rounds differently from the exact sum by up to an
            // ulp; their tolerance adds that rounding of the two sums, carried through exp to the
            // ratio and the loss: 1e-6 + (ulp(logps) + ulp(old_logps)) · max(1, coef_1 · max(1, |A|)).
            let prefix = name + "."
            var rowSlack = [Double](repeating: 0, count: N)
            if isRLOO, let logps = intermediates["logps"], let oldLogps = intermediates["old_logps"],
               let coef = intermediates["coef_1"] {
                for i in 0..<N {
                    let sumUlps = Double(logps[i].ulp) + Double(oldLogps[i].ulp)
                    rowSlack[i] = sumUlps * max(1, Double(coef[i]) * max(1, abs(Double(adv.advantages[i]))))
                }
            }
            for key in file.names where key.hasPrefix(prefix) {
                let local = String(key.dropFirst(prefix.count))
                guard !["advantages", "loss", "grad_per_token_logps"].contains(local), !local.contains(".") else { continue }
                let mine = try #require(intermediates[local], "\(name): no \(local) computed")
                let expected = try file.tensor(key).values
                try #require(mine.count == expected.count, "\(name): \(local) has \(mine.count) values, TRL \(expected.count)")
                let perRow = mine.count == N
                var excess = 0.0
                for i in 0..<mine.count {
                    let d = abs(Double(mine[i]) - Double(expected[i]))
                    worst.note(method + local, d)
                    excess = max(excess, d - (1e-6 + (perRow ? rowSlack[i] : 0)))
                }
                #expect(excess <= 0, "\(name): \(local) differs by \(excess) more than its tolerance")
            }

            // Metrics: the advantage ones once per generation batch, the loss ones per micro-batch.
            let logged = try #require(variant["metrics"] as? [String: Any], "\(name): metrics")
            let metrics = logged.compactMapValues(numbers)
            #expect(metrics.count == logged.count, "\(name): a metric that is not a list of numbers")
            for (key, list) in metrics {
                let tolerance = countRatioMetrics.contains(key) ? 1e-7 : 1e-6
                var mine: [Double]?
                if let v = adv.metrics[key] {
                    mine = [v]
                } else if microMetrics.allSatisfy({ $0[key] != nil }) && !microMetrics.isEmpty {
                    mine = microMetrics.map { $0[key]! }
                }
                guard let mine else { continue }   // completions/*, num_tokens, per-function rewards: not ours
                #expect(mine.count == list.count, "\(name): \(key) logged \(list.count) times")
                for (a, b) in zip(mine, list) {
                    let d = abs(a - b)
                    worst.note(method + "metric " + key, d)
                    #expect(d <= tolerance, "\(name): \(key) \(a) vs \(b)")
                }
                checkedMetrics += 1
            }
            // The metrics this implementation computes must all be in the fixture's log.
            for key in adv.metrics.keys { #expect(metrics[key] != nil, "\(name): \(key) computed but TRL did not log it") }
        }
        #expect(checkedMetrics > 0)
        print("rl-advantages: \(variants.count) variants, \(checkedMetrics) metric series; worst differences:",
              worst.values.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
    }
}

/// The rows `rows` of a batch, in that order.
func gatherRows(_ batch: CompletionLogProbs, _ rows: [Int]) throws -> CompletionLogProbs {
    let T = batch.width
    func pick(_ a: [Float]?) -> [Float]? { a.map { a in rows.flatMap { a[$0 * T..<($0 + 1) * T] } } }
    return try CompletionLogProbs(rows: rows.count, width: T, mask: pick(batch.mask)!, old: pick(batch.old),
                                  ref: pick(batch.ref), entropies: pick(batch.entropies))
}
