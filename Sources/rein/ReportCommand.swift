import ArgumentParser
import Foundation
import Recipes
import Report
import Store
import TensorCore

/// `rein report RUN -o FILE.html`: a run as one self-contained HTML page.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a run's HTML report: its stages, every stage's metric curves, final metrics, RL rollouts and recipe.",
        discussion: """
        The report is one HTML file with its style and SVG charts inline: it fetches nothing and runs \
        no script, so it opens offline, mails as one file and prints. Each stage gets a chart per \
        metric family over steps (train/loss and eval/loss share the loss chart; loss, reward, score \
        and KL come first; metrics logged at a single step are only listed), its final metrics, and \
        for RL stages the highest- and lowest-reward rollouts of the last step. Every drawn point \
        carries its value in a data-value attribute and a tooltip.
        """
    )

    @Argument(help: ArgumentHelp("The run: its id, or its name (the newest run with that name).", valueName: "run"))
    var runReference: String

    @OptionGroup var stores: StoreOptions

    @Option(name: [.short, .customLong("output")], help: ArgumentHelp("The HTML file to write (replaced if it exists).", valueName: "file"))
    var output: String

    func validate() throws {
        guard !output.isEmpty else { throw ValidationError("-o needs a file name, e.g. -o report.html") }
    }

    func run() throws {
        let url = try Self.checkedOutput(output)
        let opened = try stores.open()
        if runReference.hasPrefix("comparison:") {
            try comparisonReport(String(runReference.dropFirst(11)), opened: opened, url: url)
            return
        }
        let info = try resolveRun(runReference, in: opened)
        guard let store = opened.first(where: { $0.path == info.storePath })?.store, let id = info.run.id else {
            throw CLIError("run '\(runReference)' vanished from \(info.storePath) while it was read")
        }
        let html = try ReportRenderer.render(runId: id, store: store)
        try Self.write(html, to: url)
        Terminal.write("wrote \(output): run \(id) (\(info.run.name)), \(count(info.stages.count, "stage")), "
                       + "\(count(html.components(separatedBy: "<svg ").count - 1, "chart")), \(html.utf8.count / 1024) KiB\n")
    }

    /// `rein report comparison:ID`: a stored comparison's page.
    func comparisonReport(_ idText: String, opened: [OpenedStore], url: URL) throws {
        guard let id = Int64(idText) else { throw CLIError("comparison:\(idText): expected comparison:ID with a number (rein report lists none; see the compareSession table)") }
        var found: [(OpenedStore, CompareSession)] = []
        for store in opened { if let session = try store.store.compareSession(id) { found.append((store, session)) } }
        guard found.count == 1, let (store, session) = found.first else {
            if found.isEmpty {
                let known = try opened.flatMap { try $0.store.compareSessions().prefix(10).map { "  \($0.id ?? 0)  \($0.name)  \($0.status)" } }
                throw CLIError((["no comparison \(id) in \(opened.map(\.path).joined(separator: ", "))" + (known.isEmpty ? " (it holds none)" : "; the comparisons there:")] + known)
                    .joined(separator: "\n"))
            }
            throw CLIError("comparison \(id) is in more than one store (\(found.map(\.0.path).joined(separator: ", "))); pass --store FILE")
        }
        guard let json = session.summaryJSON, session.status == "completed" else {
            throw CLIError("comparison \(id) is \(session.status); only a completed comparison has a report")
        }
        let summary: CompareSummary
        do { summary = try JSONDecoder().decode(CompareSummary.self, from: Data(json.utf8)) } catch {
            throw CLIError("comparison \(id): its stored summary does not decode (\(error)); run the comparison again")
        }
        let html = try ReportRenderer.render(comparison: ComparisonReportData(summary: summary, session: session), store: store.store)
        try Self.write(html, to: url)
        Terminal.write("wrote \(output): comparison \(id) (\(session.name)), \(summary.policies.count) polic\(summary.policies.count == 1 ? "y" : "ies"), "
                       + "\(count(summary.judges.count, "judge")), \(html.utf8.count / 1024) KiB\n")
    }

    /// `path` as a file URL, after checking that its directory exists and that it is no directory.
    static func checkedOutput(_ path: String) throws -> URL {
        let url = URL(fileURLWithPath: path)
        // The directory as the user wrote it (NSString.deletingLastPathComponent traps on "." on Linux).
        let directory = path.lastIndex(of: "/").map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw CLIError("-o \(path): the directory \(directory) does not exist (create it, or write elsewhere)")
        }
        guard isDirectory.boolValue else { throw CLIError("-o \(path): \(directory) is a file, not a directory") }
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw CLIError("-o \(path): is a directory; name the HTML file to write, e.g. -o \(path)/report.html")
        }
        return url
    }

    /// Writes `html` to `url` atomically: a failed write leaves any earlier file as it was.
    static func write(_ html: String, to url: URL) throws {
        let bytes = Data(html.utf8)
        do {
            try AtomicFile.write(to: url) { file throws(AtomicFileError) in
                let failure: AtomicFileError? = bytes.withUnsafeBytes { raw in
                    do throws(AtomicFileError) { try file.write(raw) } catch { return error }
                    return nil
                }
                if let failure { throw failure }
            }
        } catch {
            throw CLIError("\(error)")
        }
    }
}
