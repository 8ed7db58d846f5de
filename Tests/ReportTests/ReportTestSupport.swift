import Foundation
import Store
@testable import Report

/// A temporary directory removed when the value goes away.
final class TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("rein-report-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }
}

/// The hostile prompt the fixtures use: markup, an ampersand, both quotes, an emoji.
let hostilePrompt = "<script>alert(\"x\")</script> & 'q' 😀"

/// A 2,000-character response.
let longResponse = String((0..<200).map { "response\($0 % 10) " }.joined().prefix(1995)) + " END."

/// A small finished run written through the store API: an SFT stage (train and eval loss, a
/// constant learning rate, exact match before and after) and a PPO stage (KL, reward, loss, eval
/// score, and training rollouts at steps 6 and 12).
struct TinyRun {
    let directory: TemporaryDirectory
    let store: RunStore
    let run: Run
    let sft: Stage
    let ppo: Stage
    /// The rewards of the rollouts at step 12, by index.
    static let rewards = [-0.9, 0.4, 1.3, -0.2, 0.8, 0.0]

    init() throws {
        directory = try TemporaryDirectory()
        store = try RunStore(path: directory.url.appendingPathComponent("runs.sqlite").path)
        let start = Date(timeIntervalSince1970: 1_764_590_400)  // 2025-12-01 12:00 UTC
        let created = try store.createRun(name: "tiny-ppo", recipe: "name: tiny-ppo\nseed: 3\nstages:\n  - id: sft\n    kind: sft\n",
                                          seed: 3, outputDir: "out/tiny", pid: nil, host: "test-host", startedAt: start)
        let runId = created.id!
        var sft = try store.createStage(runId: runId, stageKey: "sft", kind: "sft", configJSON: "{}", configHash: "a", startedAt: start)
        var metrics: [Metric] = []
        for step in 1...30 {
            metrics.append(Metric(stageId: sft.id!, step: step, name: "train/loss", value: 3 * pow(0.9, Double(step)) + 0.5))
            metrics.append(Metric(stageId: sft.id!, step: step, name: "train/learning_rate", value: 1e-4))
        }
        for step in [10, 20, 30] { metrics.append(Metric(stageId: sft.id!, step: step, name: "eval/loss", value: 2.5 - Double(step) / 40)) }
        metrics.append(Metric(stageId: sft.id!, step: 0, name: "eval/exact_match", value: 0.125))
        metrics.append(Metric(stageId: sft.id!, step: 30, name: "eval/exact_match", value: 0.375))
        try store.record(metrics: metrics)
        sft = try store.setStageStatus(sft.id!, .completed, at: start.addingTimeInterval(271))

        var ppo = try store.createStage(runId: runId, stageKey: "ppo", kind: "ppo", configJSON: "{}", configHash: "b",
                                        startedAt: start.addingTimeInterval(271))
        metrics = []
        for step in 1...12 {
            metrics.append(Metric(stageId: ppo.id!, step: step, name: "objective/kl", value: 0.05 * Double(step)))
            metrics.append(Metric(stageId: ppo.id!, step: step, name: "reward", value: -1 + 0.15 * Double(step)))
            metrics.append(Metric(stageId: ppo.id!, step: step, name: "loss", value: 0.5 / Double(step)))
        }
        for step in [0, 6, 12] { metrics.append(Metric(stageId: ppo.id!, step: step, name: "eval/score", value: 0.1 + Double(step) / 60)) }
        try store.record(metrics: metrics)
        var rollouts: [Rollout] = []
        for (i, reward) in Self.rewards.enumerated() {
            rollouts.append(Rollout(stageId: ppo.id!, phase: RolloutPhase.train, step: 12, idx: i,
                                    prompt: i == 2 ? hostilePrompt : "prompt \(i)", response: i == 0 ? longResponse : "reply \(i)",
                                    responseTokens: 10 + i, stopReason: "eos", score: reward / 2, kl: 0.1, reward: reward, policyVersion: 12))
            rollouts.append(Rollout(stageId: ppo.id!, phase: RolloutPhase.train, step: 6, idx: i, prompt: "early \(i)",
                                    response: "early reply", responseTokens: 5, stopReason: "length", reward: 5, policyVersion: 6))
        }
        try store.record(rollouts: rollouts)
        ppo = try store.setStageStatus(ppo.id!, .completed, at: start.addingTimeInterval(271 + 3725))
        run = try store.setRunStatus(runId, .completed, at: start.addingTimeInterval(271 + 3725))
        self.sft = sft
        self.ppo = ppo
    }

    /// The metric series of `stage` with at least two steps, by name.
    func chartedSeries(_ stage: Stage) throws -> [String: [(step: Int, value: Double)]] {
        var series: [String: [(step: Int, value: Double)]] = [:]
        for name in Set(try store.metrics(stageId: stage.id!).map(\.name)) {
            let values = try store.series(stageId: stage.id!, name: name)
            if values.count >= 2 { series[name] = values }
        }
        return series
    }
}

/// `Tests/Fixtures/report/comparison.json`.
func comparisonFixture() throws -> ComparisonReportData {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../Fixtures/report/comparison.json")
    let decoder = JSONDecoder()
    decoder.dateDecodingStrategy = .iso8601
    return try decoder.decode(ComparisonReportData.self, from: Data(contentsOf: url))
}

/// Every `<tag ...>` start tag of `html` whose attributes include `marker`, as attribute dictionaries
/// (values unescaped), in document order. Enough for the report's own markup.
func startTags(_ html: String, tag: String, containing marker: String) -> [[String: String]] {
    var found: [[String: String]] = []
    var rest = html[...]
    while let open = rest.range(of: "<\(tag) ") {
        guard let close = rest[open.upperBound...].firstIndex(of: ">") else { break }
        let body = rest[open.upperBound..<close]
        rest = rest[close...]
        guard body.contains(marker) else { continue }
        var attributes: [String: String] = [:]
        var scan = body[...]
        while let eq = scan.range(of: "=\"") {
            let name = scan[..<eq.lowerBound].trimmingCharacters(in: .whitespaces)
            guard let end = scan[eq.upperBound...].firstIndex(of: "\"") else { break }
            attributes[name] = unescapeHTML(String(scan[eq.upperBound..<end]))
            scan = scan[scan.index(after: end)...]
        }
        found.append(attributes)
    }
    return found
}

/// The text of `html` with the five entities Mustache writes turned back into characters.
func unescapeHTML(_ text: String) -> String {
    text.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
        .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
        .replacingOccurrences(of: "&amp;", with: "&")
}
