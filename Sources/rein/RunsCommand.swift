import ArgumentParser
import Foundation
import Recipes
import Store
import Yams

/// `rein runs ...`: what the run stores hold.
struct Runs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List recorded runs; show one with its stages, metrics and loss chart; export its metrics and rollouts.",
        discussion: """
        Runs are read from the SQLite stores `rein run` and `rein train --store` write (schema and \
        sqlite3 queries: docs/store.md). Without --store, every runs/*.sqlite in the current \
        directory is read (the recipes' default store location).
        """,
        subcommands: [RunsList.self, RunsShow.self, RunsExport.self],
        defaultSubcommand: RunsList.self
    )
}

/// `--store FILE`, or every `runs/*.sqlite`.
struct StoreOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A run store (SQLite file). Default: every runs/*.sqlite in the current directory.",
                               valueName: "file"))
    var store: String?

    /// The stores to read: the one given, or each `runs/*.sqlite` that opens (others are noted on stderr).
    func open() throws -> [OpenedStore] {
        if let store {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: store, isDirectory: &isDirectory) else {
                throw CLIError("\(store): no such store file")
            }
            guard !isDirectory.boolValue else { throw CLIError("\(store): is a directory, not a store file") }
            return [try OpenedStore(path: store)]
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "runs")) ?? []
        let paths = names.filter { $0.hasSuffix(".sqlite") }.sorted().map { "runs/\($0)" }
        guard !paths.isEmpty else { throw CLIError("no run stores in runs/; pass --store FILE") }
        var opened: [OpenedStore] = []
        for path in paths {
            do { opened.append(try OpenedStore(path: path)) } catch { Terminal.note("skipping \(error)") }
        }
        guard !opened.isEmpty else { throw CLIError("none of the stores in runs/ could be opened; pass --store FILE") }
        return opened
    }
}

/// A store and the path it was named by.
struct OpenedStore {
    let path: String
    let store: RunStore

    init(path: String) throws {
        self.path = path
        do { store = try RunStore(path: path) } catch { throw CLIError("\(path): cannot open as a run store: \(error)") }
    }
}

/// A run as the commands present it: its stages, whether its process is gone, its recipe's stage count.
struct RunInfo {
    let storePath: String
    let run: Store.Run
    let stages: [Store.Stage]
    /// Marked running, but its process has exited (killed, crashed): it will not finish by itself.
    let processGone: Bool
    /// Stages in the recipe, when the recipe text lists them.
    let plannedStages: Int?

    init(storePath: String, run: Store.Run, stages: [Store.Stage], currentHost: String) {
        self.storePath = storePath
        self.run = run
        self.stages = stages
        processGone = run.status == .running && ReportText.processIsGone(pid: run.pid, host: run.host, currentHost: currentHost)
        plannedStages = Self.stageCount(recipe: run.recipe)
    }

    /// `running (process gone)` for a dead running run, else the status.
    var statusLabel: String { processGone ? "running (process gone)" : run.status.rawValue }

    /// Seconds from start to finish; to now while it runs; unknown once its process is gone.
    var durationSeconds: Double? {
        Self.duration(from: run.startedAt, to: run.finishedAt, running: run.status == .running, gone: processGone)
    }

    var stageProgress: String { ReportText.stageProgress(stages, planned: plannedStages) }

    /// The length of `[from, to]`; to now for live running rows; nil for rows whose process is gone.
    static func duration(from start: Date, to end: Date?, running: Bool, gone: Bool) -> Double? {
        if let end { return end.timeIntervalSince(start) }
        return running && !gone ? Date().timeIntervalSince(start) : nil
    }

    /// The number of entries under `stages:` of a recipe's YAML text, or nil for other text
    /// (`rein train --store` records its config JSON there).
    static func stageCount(recipe: String) -> Int? {
        guard let root = (try? Yams.load(yaml: recipe)) as? [String: Any] else { return nil }
        return (root["stages"] as? [Any])?.count
    }
}

/// Every run of `stores`, newest first.
func allRuns(_ stores: [OpenedStore]) throws -> [RunInfo] {
    let host = ProcessInfo.processInfo.hostName
    var infos: [RunInfo] = []
    for opened in stores {
        for summary in try opened.store.runs() {
            infos.append(RunInfo(storePath: opened.path, run: summary.run, stages: summary.stages, currentHost: host))
        }
    }
    return infos.sorted { ($0.run.startedAt, $0.run.id ?? 0) > ($1.run.startedAt, $1.run.id ?? 0) }
}

/// The run `reference` names in `stores`: a numeric id, or a name (the newest run with it).
/// Throws a message listing what exists when nothing or more than one run matches.
func resolveRun(_ reference: String, in stores: [OpenedStore]) throws -> RunInfo {
    var candidates: [(store: OpenedStore, run: Store.Run)] = []
    if let id = Int64(reference) {
        for opened in stores { if let run = try opened.store.run(id) { candidates.append((opened, run)) } }
    }
    let named = try stores.compactMap { opened in try opened.store.run(named: reference).map { (store: opened, run: $0) } }
    if let newest = named.max(by: { ($0.run.startedAt, $0.run.id ?? 0) < ($1.run.startedAt, $1.run.id ?? 0) }),
       !candidates.contains(where: { $0.store.path == newest.store.path && $0.run.id == newest.run.id }) {
        candidates.append(newest)
    }
    let searched = stores.map(\.path).joined(separator: ", ")
    guard candidates.count == 1, let found = candidates.first else {
        if candidates.isEmpty {
            let runs = try allRuns(stores)
            if runs.isEmpty { throw CLIError("no run '\(reference)': \(searched) \(stores.count == 1 ? "holds" : "hold") no runs") }
            let shown = runListing(runs.prefix(10).map { ($0.storePath, $0.run) })
            let more = runs.count > 10 ? ["  ... and \(runs.count - 10) more (rein runs lists them all)"] : []
            throw CLIError((["no run with id or name '\(reference)' in \(searched); the runs there:"] + shown + more)
                .joined(separator: "\n"))
        }
        let listed = runListing(candidates.map { ($0.store.path, $0.run) })
        var hints: [String] = []
        if Set(candidates.map(\.store.path)).count > 1 { hints.append("pass --store FILE to pick a store") }
        if !named.isEmpty { hints.append("'\(reference)' is both an id and a name: give the id of the run you mean") }
        throw CLIError((["'\(reference)' matches more than one run:"] + listed + [hints.joined(separator: "; ")])
            .joined(separator: "\n"))
    }
    let stages = try found.store.store.stages(runId: found.run.id ?? -1)
    return RunInfo(storePath: found.store.path, run: found.run, stages: stages, currentHost: ProcessInfo.processInfo.hostName)
}

/// Indented table lines of `runs` for error messages.
private func runListing(_ runs: [(store: String, run: Store.Run)]) -> [String] {
    let rows = [["ID", "NAME", "STATUS", "STARTED", "STORE"]]
        + runs.map { [String($0.run.id ?? 0), $0.run.name, $0.run.status.rawValue, ReportText.shortDate($0.run.startedAt), $0.store] }
    return ReportText.table(rows, rightAligned: [0]).map { "  " + $0 }
}

/// An optional JSON field written as `null` when absent (synthesized `Encodable` leaves nil fields out).
@propertyWrapper
struct Nullable<Value: Encodable>: Encodable {
    var wrappedValue: Value?

    init(wrappedValue: Value?) { self.wrappedValue = wrappedValue }

    func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue { try container.encode(wrappedValue) } else { try container.encodeNil() }
    }
}

/// Pretty-printed JSON with sorted keys and ISO 8601 dates, and a final newline.
func jsonDocument(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    return String(decoding: try encoder.encode(value), as: UTF8.self) + "\n"
}

/// `rein runs [list]`: a table of runs, newest first.
struct RunsList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List runs newest first: id, name, status, start, duration, stages, store.",
        discussion: """
        STAGES is completed/total; stages skipped because an identical completed stage exists count as \
        completed and are counted again in "(N skipped)". A run still marked running whose process has \
        exited on this host shows as "running (process gone)"; `rein run` resumes it.
        """
    )

    @OptionGroup var stores: StoreOptions

    @Flag(help: "Print a JSON array instead of the table.")
    var json = false

    func run() throws {
        let opened = try stores.open()
        let runs = try allRuns(opened)
        if json {
            Terminal.write(try jsonDocument(runs.map(RunListEntry.init)))
            return
        }
        guard !runs.isEmpty else {
            Terminal.write("no runs in \(opened.map(\.path).joined(separator: ", "))\n")
            return
        }
        var rows = [["ID", "NAME", "STATUS", "STARTED", "DURATION", "STAGES", "STORE"]]
        for info in runs {
            rows.append([String(info.run.id ?? 0), info.run.name, info.statusLabel, ReportText.shortDate(info.run.startedAt),
                         info.durationSeconds.map(ReportText.duration) ?? "-", info.stageProgress, info.storePath])
        }
        Terminal.write(ReportText.table(rows, rightAligned: [0]).joined(separator: "\n") + "\n")
    }
}

/// One run in `rein runs --json`.
struct RunListEntry: Encodable {
    struct StageCounts: Encodable {
        let completed: Int
        let skipped: Int
        let total: Int
    }

    let store: String
    let id: Int64
    let name: String
    let status: String
    let processGone: Bool
    let startedAt: Date
    @Nullable var finishedAt: Date?
    @Nullable var durationSeconds: Double?
    let stages: StageCounts
    @Nullable var outputDir: String?
    @Nullable var pid: Int64?
    @Nullable var host: String?

    init(_ info: RunInfo) {
        store = info.storePath
        id = info.run.id ?? 0
        name = info.run.name
        status = info.run.status.rawValue
        processGone = info.processGone
        startedAt = info.run.startedAt
        finishedAt = info.run.finishedAt
        durationSeconds = info.durationSeconds
        let completed = info.stages.filter { $0.status == .completed }
        stages = StageCounts(completed: completed.count, skipped: completed.filter { $0.reusedStageId != nil }.count,
                             total: max(info.stages.count, info.plannedStages ?? 0))
        outputDir = info.run.outputDir
        pid = info.run.pid
        host = info.run.host
    }
}
