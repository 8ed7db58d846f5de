import ArgumentParser
import Foundation
import Recipes
import Store
import TensorCore

/// `rein runs export RUN --format jsonl|csv`: a run's metrics and rollouts as text.
struct RunsExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export every metric (and rollout) of a run's stages as JSON Lines or CSV.",
        discussion: """
        jsonl: one JSON object per line, every metric of every stage (in stage and step order), then \
        every rollout. Metric lines: {"type": "metric", run_id, stage, kind, step, name, value}. Rollout \
        lines: {"type": "rollout", run_id, stage, kind, phase, step, idx, group, prompt, response, \
        response_tokens, response_token_ids, stop_reason, score, kl, reward, advantage, policy_version}. \
        phase is train (an RL update's rollouts) or eval (evaluation replies, before the first step and \
        after the last; they have no group, token ids, KL, reward or advantage). NaN, infinities and \
        unmeasured rollout fields are null.

        csv: one table with a header row, quoted per RFC 4180 (fields with commas, quotes or line \
        breaks). By default the metrics, columns run_id, stage, kind, step, name, value (NaN is nan); \
        with --rollouts the rollouts instead, columns run_id, stage, kind, phase, step, idx, group, prompt, \
        response, response_tokens, response_token_ids (a JSON array), stop_reason, score, kl, reward, \
        advantage, policy_version (unmeasured fields empty).

        --rollouts with jsonl writes only the rollouts. --output writes the file atomically: it appears \
        complete or not at all.
        """
    )

    enum Format: String, CaseIterable, ExpressibleByArgument {
        case jsonl, csv
    }

    @Argument(help: ArgumentHelp("The run: its id, or its name (the newest run with that name).", valueName: "run"))
    var runReference: String

    @Option(help: "jsonl (metrics and rollouts, one object per line) or csv (one table).")
    var format: Format = .jsonl

    @Option(help: ArgumentHelp("Write to this file instead of stdout.", valueName: "file"))
    var output: String?

    @Flag(help: "Export the rollouts instead of the metrics.")
    var rollouts = false

    @OptionGroup var stores: StoreOptions

    func run() throws {
        let opened = try stores.open()
        let info = try resolveRun(runReference, in: opened)
        guard let store = opened.first(where: { $0.path == info.storePath })?.store else { return }
        if let output, opened.contains(where: { Self.samePath($0.path, output) }) {
            throw CLIError("\(output): is a run store; pick another --output file")
        }
        let out = try ExportOutput(path: output)
        let runNumber = info.run.id ?? 0, runId = String(runNumber)
        let lines = JSONLinesEncoder()
        var metricCount = 0, rolloutCount = 0
        let wantMetrics = !rollouts, wantRollouts = rollouts || format == .jsonl

        if format == .csv {
            out.write(ReportText.csvRow(rollouts ? Self.rolloutColumns : Self.metricColumns) + "\n")
        }
        if wantMetrics {
            for stage in info.stages {
                for metric in try store.metrics(stageId: stage.id ?? -1) {
                    metricCount += 1
                    switch format {
                    case .jsonl:
                        out.write(try lines.line(MetricLine(runId: runNumber, stage: stage.stageKey, kind: stage.kind, step: metric.step,
                                                            name: metric.name, value: JSONNumber(metric.value))) + "\n")
                    case .csv:
                        out.write(ReportText.csvRow([runId, stage.stageKey, stage.kind, String(metric.step), metric.name,
                                                    "\(metric.value)"]) + "\n")
                    }
                }
            }
        }
        for stage in info.stages {
            let samples = try store.rollouts(stageId: stage.id ?? -1)
            rolloutCount += samples.count
            guard wantRollouts else { continue }
            for r in samples {
                switch format {
                case .jsonl:
                    out.write(try lines.line(RolloutLine(runId: runNumber, stage: stage.stageKey, kind: stage.kind, phase: r.phase,
                                                         step: r.step, idx: r.idx, group: r.groupIndex, prompt: r.prompt,
                                                         response: r.response,
                                                         responseTokens: r.responseTokens, responseTokenIds: r.responseTokenIds,
                                                         stopReason: r.stopReason, score: JSONNumber(r.score), kl: JSONNumber(r.kl),
                                                         reward: JSONNumber(r.reward), advantage: JSONNumber(r.advantage),
                                                         policyVersion: r.policyVersion)) + "\n")
                case .csv:
                    let optional = { (x: Double?) in x.map { "\($0)" } ?? "" }
                    let ids = r.responseTokenIds.map { "[" + $0.map(String.init).joined(separator: ",") + "]" } ?? ""
                    out.write(ReportText.csvRow([runId, stage.stageKey, stage.kind, r.phase, String(r.step), String(r.idx),
                                                r.groupIndex.map(String.init) ?? "", r.prompt, r.response,
                                                String(r.responseTokens), ids, r.stopReason, optional(r.score),
                                                optional(r.kl), optional(r.reward), optional(r.advantage),
                                                String(r.policyVersion)]) + "\n")
                }
            }
        }
        try out.finish()

        let what = [wantMetrics ? count(metricCount, "metric") : nil, wantRollouts ? count(rolloutCount, "rollout") : nil]
            .compactMap { $0 }.joined(separator: " and ")
        if let output { Terminal.note("wrote \(what) of run \(runId) (\(info.run.name)) to \(output)") }
        if !wantRollouts && rolloutCount > 0 {
            Terminal.note("run \(runId) also has \(count(rolloutCount, "rollout")); export them with --rollouts")
        }
    }

    static let metricColumns = ["run_id", "stage", "kind", "step", "name", "value"]
    static let rolloutColumns = ["run_id", "stage", "kind", "phase", "step", "idx", "group", "prompt", "response", "response_tokens",
                                 "response_token_ids", "stop_reason", "score", "kl", "reward", "advantage", "policy_version"]

    /// Whether two paths name one file (after resolving `.`, `..` and symlinks).
    static func samePath(_ a: String, _ b: String) -> Bool {
        URL(fileURLWithPath: a).resolvingSymlinksInPath().path == URL(fileURLWithPath: b).resolvingSymlinksInPath().path
    }
}

/// One metric line of `rein runs export --format jsonl`.
struct MetricLine: Encodable {
    let type = "metric"
    let runId: Int64
    let stage: String
    let kind: String
    let step: Int
    let name: String
    let value: JSONNumber

    enum CodingKeys: String, CodingKey {
        case type, runId = "run_id", stage, kind, step, name, value
    }
}

/// One rollout line of `rein runs export --format jsonl`.
struct RolloutLine: Encodable {
    let type = "rollout"
    let runId: Int64
    let stage: String
    let kind: String
    /// `train` or `eval`.
    let phase: String
    let step: Int
    let idx: Int
    /// The prompt group (null for evaluation replies).
    @Nullable var group: Int?
    let prompt: String
    let response: String
    let responseTokens: Int
    /// The generated token ids (null when the stage did not record them).
    @Nullable var responseTokenIds: [Int32]?
    let stopReason: String
    let score: JSONNumber
    let kl: JSONNumber
    let reward: JSONNumber
    let advantage: JSONNumber
    let policyVersion: Int

    enum CodingKeys: String, CodingKey {
        case type, runId = "run_id", stage, kind, phase, step, idx, group, prompt, response, responseTokens = "response_tokens"
        case responseTokenIds = "response_token_ids", stopReason = "stop_reason", score, kl, reward, advantage
        case policyVersion = "policy_version"
    }
}

/// Buffered writes to stdout, or to a file that is written atomically once complete (`finish`):
/// an export that fails midway leaves no partial file and any previous file intact.
final class ExportOutput {
    private let path: String?
    private var buffer = Data()
    private var failure: Error?

    init(path: String?) throws {
        self.path = path
        if let path {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                throw CLIError("\(path): is a directory; --output names a file")
            }
        }
    }

    func write(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        if path == nil, buffer.count >= 1 << 16 { flushStandardOutput() }
    }

    private func flushStandardOutput() {
        guard failure == nil, !buffer.isEmpty else { return }
        do { try FileHandle.standardOutput.write(contentsOf: buffer) } catch { failure = error }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Writes what is buffered (the whole file, atomically, for `--output`); throws the first write error.
    func finish() throws {
        guard let path else {
            flushStandardOutput()
            if let failure { throw CLIError("stdout: write failed: \(failure)") }
            return
        }
        let bytes = buffer
        buffer = Data()
        do {
            try AtomicFile.write(to: URL(fileURLWithPath: path)) { file throws(AtomicFileError) in
                let writeError: AtomicFileError? = bytes.withUnsafeBytes { raw in
                    do throws(AtomicFileError) { try file.write(raw) } catch { return error }
                    return nil
                }
                if let writeError { throw writeError }
            }
        } catch {
            throw CLIError("\(error)")
        }
    }
}
