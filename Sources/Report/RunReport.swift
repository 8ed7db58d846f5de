import Foundation
import Store

/// What the report shows of one run, read from a store: the run, its stages with their metric
/// series and final metrics, and for stages with training rollouts the highest- and lowest-reward
/// ones of the last step.
struct RunReport: Sendable {
    struct StageReport: Sendable {
        let stage: Stage
        /// Every metric's values by step, by metric name.
        let series: [String: [ChartPoint]]
        /// Each metric's value at its highest step, and that step.
        let final: [(name: String, value: Double, step: Int)]
        /// The last step with training rollouts, how many it has, and its highest- then
        /// lowest-reward rollouts (lowest last).
        let rollouts: (step: Int, count: Int, highest: [Rollout], lowest: [Rollout])?
    }

    let run: Run
    let stages: [StageReport]

    /// Run `runId` of `store`; `examples` rollouts of each kind (highest, lowest reward) per RL stage.
    init(runId: Int64, store: RunStore, examples: Int = 3) throws {
        guard let run = try store.run(runId) else { throw ReportError.runNotFound(id: runId, store: store.path) }
        self.run = run
        stages = try store.stages(runId: runId).map { stage in
            let id = stage.id ?? -1
            var series: [String: [ChartPoint]] = [:]
            for m in try store.metrics(stageId: id) {
                series[m.name, default: []].append(ChartPoint(x: Double(m.step), y: m.value))
            }
            for name in series.keys { series[name]!.sort { $0.x < $1.x } }
            let values = try store.finalMetrics(stageId: id)
            let final = Self.metricOrder(values.keys).map { name in
                (name: name, value: values[name]!, step: Int(series[name]?.last?.x ?? 0))
            }
            var rollouts: (step: Int, count: Int, highest: [Rollout], lowest: [Rollout])?
            if let step = try store.lastRolloutStep(stageId: id, phase: RolloutPhase.train) {
                let highest = try store.rolloutsByReward(stageId: id, step: step, limit: examples, phase: RolloutPhase.train)
                let shown = Set(highest.map(\.idx))
                let lowest = try store.rolloutsByReward(stageId: id, step: step, limit: examples, lowest: true, phase: RolloutPhase.train)
                    .filter { !shown.contains($0.idx) }.reversed()
                let count = try store.rolloutAggregate(stageId: id, steps: step...step, phase: RolloutPhase.train)?.count ?? 0
                rollouts = (step: step, count: count, highest: highest, lowest: Array(lowest))
            }
            return StageReport(stage: stage, series: series, final: final, rollouts: rollouts)
        }
    }

    /// Metric names with `eval/` ones first, each part sorted (as `rein runs show` lists them).
    static func metricOrder(_ names: some Sequence<String>) -> [String] {
        names.sorted { a, b in
            let evalA = a.hasPrefix("eval/"), evalB = b.hasPrefix("eval/")
            return evalA == evalB ? a < b : evalA
        }
    }

    /// The charts of a stage: a metric and its training or evaluation twin share one (`train/loss`
    /// and `eval/loss` the `loss` chart; `train/rewards/margins` and `eval/rewards/margins` theirs),
    /// loss, reward, score and KL first; only metrics with at least two steps are drawn.
    static func chartGroups(_ series: [String: [ChartPoint]]) -> [(name: String, metrics: [String])] {
        var groups: [String: [String]] = [:]
        for (name, points) in series where points.count >= 2 {
            var key = Substring(name)
            for prefix in ["train/", "eval/"] where key.hasPrefix(prefix) && key.count > prefix.count { key = key.dropFirst(prefix.count) }
            groups[String(key), default: []].append(name)
        }
        let first = ["loss", "reward", "score", "judge_score", "kl"]
        let rank = { (key: String) in first.firstIndex(of: key.split(separator: "/").last.map(String.init) ?? key) ?? first.count }
        return groups.keys.sorted { a, b in rank(a) == rank(b) ? a < b : rank(a) < rank(b) }.map { key in
            // Training series before evaluation ones, so `train/loss` keeps the first colour.
            (name: key, metrics: groups[key]!.sorted { ($0.hasPrefix("eval/") ? 1 : 0, $0) < ($1.hasPrefix("eval/") ? 1 : 0, $1) })
        }
    }
}
