import ArgumentParser
import Datasets
import Foundation
import Recipes
import Store
import TensorCore

/// `rein rate`: human preference ratings at a terminal.
struct Rate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rate",
        abstract: "Rate responses blind at a terminal; make rating tasks, see their statistics, export preference pairs.",
        discussion: """
        Make a task: rein rate new --store S --name NAME --candidates FILE (or --rollouts RUN[:STAGE], or \
        --policies A,B --prompts FILE to sample the candidates). \
        Rate it: rein rate NAME --store S --rater YOU (again: resumes where you stopped). \
        rein rate stats NAME --store S: votes, position bias, agreement, win rates. \
        rein rate export NAME --store S --format trl: {"prompt", "chosen", "rejected"} lines.
        """,
        subcommands: [RateSession.self, RateNew.self, RateStats.self, RateExport.self],
        defaultSubcommand: RateSession.self
    )
}

/// `--store FILE` of the rate commands: an existing store (nothing is created by a typo).
struct RateStoreOption: ParsableArguments {
    @Option(help: ArgumentHelp("The SQLite store holding the task.", valueName: "file"))
    var store: String

    func open() throws -> RunStore {
        guard FileManager.default.fileExists(atPath: store) else { throw CLIError("no store at \(store)") }
        return try RunStore(path: store)
    }
}

/// `rein rate new`: a task from candidates or a run's rollouts.
struct RateNew: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new",
        abstract: "Make a rating task from a candidates file or from a run's rollouts.",
        discussion: """
        --candidates FILE: JSON Lines, {"prompt", "responses": [...]} or {"prompt", "response_a", "response_b"} \
        a line; optional "sources" (or "source_a", "source_b") name where each response came from, for the win \
        rates of rein rate stats (default: the field). --rollouts RUN[:STAGE]: the responses one stage (or every \
        stage) of a run in the store sampled, grouped by prompt. --policies A,B --prompts FILE: Rein samples \
        --num-candidates responses to each prompt (default 2; response k from policy k mod P), seeded by --seed, \
        and records the policies, prompts, sampling options and seed on the task; a policy is a Hugging Face \
        directory, a .gguf file (or hf:PATH, gguf:PATH), or stage:ID, the newest completed stage ID in --store. \
        Pair mode pairs consecutive responses of a prompt, \
        rank mode takes all of them (2 to 9), single mode each alone (a 1-7 score, or thumbs up/down with \
        --scale thumbs). Pairs identical after \
        whitespace normalization are recorded as ties and never shown. --gold FILE ({"prompt", "chosen", \
        "rejected"} lines) mixes pairs with a known answer in, about --gold-rate of the items. --overlap F gives \
        that share of items to two raters, for agreement. A bad line is reported with its file and line and \
        nothing is written.
        """
    )

    @OptionGroup var storeOption: RateStoreOptionForNew
    @Option(help: "The task's name (what rein rate NAME rates).") var name: String
    @Option(help: ArgumentHelp("A JSON Lines file of prompts and responses.", valueName: "file")) var candidates: String?
    @Option(help: ArgumentHelp("A run (id or name) and optionally one stage whose rollouts to rate.", valueName: "run[:stage]"))
    var rollouts: String?
    @Option(help: ArgumentHelp("Policies to sample the candidates from (with --prompts).", valueName: "a,b"))
    var policies: String?
    @Option(help: ArgumentHelp("The prompts the policies answer (with --policies).", valueName: "file")) var prompts: String?
    @Option(help: "With --policies: responses per prompt, over all policies (default 2; rank 4; single 1).") var numCandidates: Int?
    @Option(help: "With --policies: the sampling temperature.") var temperature: Double = 1.0
    @Option(help: "With --policies: keep the k most likely tokens (0: all).") var topK: Int = 0
    @Option(help: "With --policies: nucleus sampling mass (1: all).") var topP: Double = 1.0
    @Option(help: "With --policies: most new tokens per response.") var maxNewTokens: Int = 64
    @Option(help: "With --policies: use only the first N prompts.") var maxPrompts: Int?
    @Option(help: "pair (the default), rank or single.") var mode: String = "pair"
    @Option(help: "Single mode: likert (1-7, the default) or thumbs (up/down).") var scale: String = "likert"
    @Option(help: ArgumentHelp("Pairs with a known answer: {\"prompt\", \"chosen\", \"rejected\"} lines.", valueName: "file"))
    var gold: String?
    @Option(help: "The share of items that are gold pairs (with --gold).") var goldRate: Double = 0.1
    @Option(help: "The share of items given to two raters.") var overlap: Double = 0
    @Option(help: "Seeds the screen layout, the gold positions and the overlapped items.") var seed: Int64 = 0

    func validate() throws {
        if [candidates != nil, rollouts != nil, policies != nil].filter({ $0 }).count != 1 {
            throw ValidationError("give one of --candidates FILE, --rollouts RUN[:STAGE] and --policies A,B --prompts FILE")
        }
        if (policies == nil) != (prompts == nil) { throw ValidationError("--policies and --prompts go together") }
        if RatingMode(rawValue: mode) == nil { throw ValidationError("--mode must be pair, rank or single (got \(mode))") }
        guard let parsedScale = RatingScale(rawValue: self.scale) else { throw ValidationError("--scale must be likert or thumbs (got \(self.scale))") }
        if parsedScale == .thumbs && mode != "single" { throw ValidationError("--scale thumbs needs --mode single") }
        if let policies, policies.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) || policies.isEmpty {
            throw ValidationError("--policies: expected a comma-separated list of models (got '\(policies)')")
        }
        if let n = numCandidates {
            if n < 1 { throw ValidationError("--num-candidates must be at least 1 (got \(n))") }
            if mode == "pair", n % 2 != 0 { throw ValidationError("--num-candidates must be even in pair mode (got \(n))") }
            if mode == "rank", !(2...9).contains(n) { throw ValidationError("--num-candidates must be 2 to 9 in rank mode (got \(n))") }
        }
        if temperature <= 0 { throw ValidationError("--temperature must be positive (got \(temperature))") }
        if topK < 0 { throw ValidationError("--top-k must be at least 0 (got \(topK))") }
        if !(topP > 0 && topP <= 1) { throw ValidationError("--top-p must be in (0, 1] (got \(topP))") }
        if maxNewTokens < 1 { throw ValidationError("--max-new-tokens must be at least 1 (got \(maxNewTokens))") }
        if let maxPrompts, maxPrompts < 1 { throw ValidationError("--max-prompts must be at least 1 (got \(maxPrompts))") }
        if !(0...1).contains(overlap) { throw ValidationError("--overlap must be between 0 and 1 (got \(overlap))") }
        if !(0..<1).contains(goldRate) { throw ValidationError("--gold-rate must be at least 0 and below 1 (got \(goldRate))") }
        if gold != nil && mode != "pair" { throw ValidationError("--gold needs --mode pair") }
        if name.isEmpty || name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw ValidationError("--name must be non-empty without control characters")
        }
    }

    func run() throws {
        let mode = RatingMode(rawValue: mode)!
        let path = storeOption.store
        // Everything is read and checked before the store is opened, so a bad input writes nothing.
        let found: [RatingCandidate]
        let source: String
        var options: String?
        var store: RunStore? = nil
        do {
            if let policies, let prompts {
                let names = policies.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                if names.contains(where: { $0.hasPrefix("stage:") }) {
                    guard FileManager.default.fileExists(atPath: path) else { throw CLIError("no store at \(path) (stage:ID policies are read from it)") }
                    store = try RunStore(path: path)
                }
                let paths = try names.map { try Self.policyPath($0, store: store) }
                guard FileManager.default.fileExists(atPath: prompts) else { throw CLIError("--prompts: no file \(prompts)") }
                let n = numCandidates ?? (mode == .rank ? 4 : mode == .single ? 1 : 2)
                var record = GeneratedCandidates.Record(policies: names, policyPaths: paths, prompts: prompts, numCandidates: n,
                                                        temperature: temperature, topK: topK > 0 ? topK : nil, topP: topP < 1 ? topP : nil,
                                                        maxNewTokens: maxNewTokens, seed: UInt64(bitPattern: seed))
                found = try GeneratedCandidates.generate(&record, promptsPath: prompts, maxPrompts: maxPrompts, note: { Terminal.note($0) })
                source = "policies:" + names.joined(separator: ",")
                options = record.json
            } else if let candidates {
                found = try RatingTasks.readCandidates(URL(fileURLWithPath: candidates), display: candidates)
                source = "candidates:\(candidates)"
            } else {
                guard FileManager.default.fileExists(atPath: path) else { throw CLIError("no store at \(path) (--rollouts reads it)") }
                store = try RunStore(path: path)
                found = try RatingTasks.candidates(fromRollouts: store!, run: rollouts!)
                source = "rollouts:\(rollouts!)"
            }
            let goldPairs = try gold.map { try RatingTasks.readGold(URL(fileURLWithPath: $0), display: $0) } ?? []
            let items = RatingTasks.items(found, mode: mode, gold: goldPairs, goldRate: goldPairs.isEmpty ? 0 : goldRate,
                                          overlap: overlap, seed: seed)
            if mode == .rank, let wide = items.first(where: { $0.responses.count > 9 }) {
                throw CLIError("rank mode rates at most 9 responses a prompt; prompt \(wide.idx + 1) has \(wide.responses.count)")
            }
            guard !items.isEmpty else {
                throw CLIError("no items: " + (mode == .single ? "no responses found" : "no prompt has two responses"))
            }
            let task = try (store ?? RunStore(path: path)).createRatingTask(
                RatingTask(name: name, mode: mode, source: source, seed: seed, overlap: overlap, scale: RatingScale(rawValue: scale)!,
                           options: options), items: items)
            let identical = items.filter(\.identical).count, golds = items.filter { $0.gold != nil }.count
            Terminal.write("task \(task.name): \(count(items.count, "item")) (\(mode.rawValue))"
                           + (identical > 0 ? ", \(identical) identical recorded as ties" : "")
                           + (golds > 0 ? ", \(golds) gold" : "")
                           + (items.contains { $0.raters > 1 } ? ", \(items.filter { $0.raters > 1 }.count) for two raters" : "") + "\n")
            Terminal.write("rate it: rein rate \(task.name) --store \(path) --rater YOUR_NAME\n")
        } catch let error as DatasetError {
            throw CLIError(error.description)
        }
    }

    /// A policy as given: a path (`hf:`/`gguf:` prefixes allowed) that must exist, or `stage:ID`, the
    /// output of the newest completed stage `ID` in the store.
    static func policyPath(_ name: String, store: RunStore?) throws -> String {
        if name.hasPrefix("stage:") {
            let key = String(name.dropFirst(6))
            guard let store else { throw CLIError("\(name): stage references need --store") }
            guard let found = try store.newestCompletedOutput(stageKey: key) else { throw CLIError("--policies: no completed stage '\(key)' in \(store.path)") }
            guard FileManager.default.fileExists(atPath: found) else { throw CLIError("--policies: \(name) wrote \(found), which is gone") }
            return found
        }
        var path = name
        for prefix in ["hf:", "gguf:"] where path.hasPrefix(prefix) { path = String(path.dropFirst(prefix.count)) }
        guard FileManager.default.fileExists(atPath: path) else { throw CLIError("--policies: no model at \(path)") }
        return path
    }
}

/// `--store` for `rate new`, which may create the file.
struct RateStoreOptionForNew: ParsableArguments {
    @Option(help: ArgumentHelp("The SQLite store to add the task to (created if missing).", valueName: "file"))
    var store: String
}

/// `rein rate stats TASK`.
struct RateStats: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Votes, tie and both-bad rates, position bias, raters' gold accuracy and times, agreement, win rates.",
        discussion: """
        Agreement is over items two or more raters answered: the raw share of agreeing rater pairs, Cohen's \
        kappa when two raters overlap and Krippendorff's alpha (nominal) for more. Each source's win rate \
        counts wins against losses (ties apart) on non-gold items, with a 95% Wilson interval.
        """
    )
    @Argument(help: "The task's name.") var task: String
    @OptionGroup var storeOption: RateStoreOption

    func run() throws {
        let store = try storeOption.open()
        let task = try store.ratingTask(named: self.task)
        let stats = RatingStats.compute(items: try store.ratingItems(taskId: task.id!), ratings: try store.ratings(taskId: task.id!))
        Terminal.write(stats.text(task: task))
    }
}

/// `rein rate export TASK --format trl`.
struct RateExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a task's ratings as TRL preference JSON Lines ({\"prompt\", \"chosen\", \"rejected\"}).",
        discussion: """
        Gold items, ties and both-bad answers are left out; rank answers give one pair per two responses of \
        different rank. --aggregate majority (the default) writes one line per item (and response pair) with \
        the answer most of its raters gave (none on a draw); all writes one line per answer. --margin adds \
        TRL's "margin" from the strength (1 significantly .. 4 negligibly better; none given counts as 4): \
        llama-small 1, 2/3, 1/3, 0 and llama-large 3, 2, 1, 0, as Llama 2. --min-gold-accuracy leaves out \
        raters whose gold accuracy is lower (raters who answered no gold item are kept).
        """
    )
    enum Format: String, ExpressibleByArgument { case trl }
    @Argument(help: "The task's name.") var task: String
    @OptionGroup var storeOption: RateStoreOption
    @Option(help: "trl: {\"prompt\", \"chosen\", \"rejected\"[, \"margin\"]} lines.") var format: Format = .trl
    @Option(help: "none, llama-small or llama-large.") var margin: String = "none"
    @Option(help: "majority or all.") var aggregate: String = "majority"
    @Option(help: "Leave out raters whose gold accuracy is below this (0 to 1).") var minGoldAccuracy: Double = 0
    @Option(help: ArgumentHelp("Write here (atomically) instead of stdout.", valueName: "file")) var output: String?

    func validate() throws {
        if RatingExport.Margin(rawValue: margin) == nil { throw ValidationError("--margin must be none, llama-small or llama-large (got \(margin))") }
        if RatingExport.Aggregate(rawValue: aggregate) == nil { throw ValidationError("--aggregate must be majority or all (got \(aggregate))") }
        if !(0...1).contains(minGoldAccuracy) { throw ValidationError("--min-gold-accuracy must be between 0 and 1") }
    }

    func run() throws {
        let store = try storeOption.open()
        let task = try store.ratingTask(named: self.task)
        let lines = try RatingExport.trlLines(items: try store.ratingItems(taskId: task.id!), ratings: try store.ratings(taskId: task.id!),
                                              margin: RatingExport.Margin(rawValue: margin)!,
                                              aggregate: RatingExport.Aggregate(rawValue: aggregate)!, minGoldAccuracy: minGoldAccuracy,
                                              conversational: GeneratedCandidates.record(of: task)?.chatPrompts ?? false)
        let text = lines.map { $0 + "\n" }.joined()
        guard let output else { Terminal.write(text); return }
        let bytes = Data(text.utf8)
        do {
            try AtomicFile.write(to: URL(fileURLWithPath: output)) { file throws(AtomicFileError) in
                let failure: AtomicFileError? = bytes.withUnsafeBytes { raw in
                    do throws(AtomicFileError) { try file.write(raw) } catch { return error }
                    return nil
                }
                if let failure { throw failure }
            }
        } catch {
            throw CLIError("\(error)")
        }
        Terminal.note("wrote \(count(lines.count, "pair")) to \(output)")
    }
}

/// `rein rate TASK --rater NAME`: the rating screen.
struct RateSession: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "session",
        abstract: "Rate a task's items (the default: rein rate TASK --store S --rater NAME).",
        discussion: """
        Pair keys: a or ← the left response is better, b or → the right one, t tie, x both bad; 1-4 right after \
        a vote adds its strength (1 significantly, 2 better, 3 slightly, 4 negligibly better); s skip (offered \
        again at the end), u undo the last answer (again: the one before), r type a reason for this item, ? \
        help, q quit. j/k or ↓/↑ scroll, space/PgDn and PgUp by a page. Rank mode: press the responses' \
        letters best first (= before a letter ties it with the previous one; Backspace takes one back). Single \
        mode: 1-7, or + / y and - / n on the thumbs scale. Every answer is saved before the next item appears; running the command again resumes at \
        the next item not answered. Without a terminal it reads one answer a line (a, b, t, x, a2 with a \
        strength, s, u, r TEXT, q; rank: letters best first such as cab or c=ab; single: 1-7, or +, -, y, n) and prints \
        each item as text, or as one JSON object a line with --json.
        """
    )
    @Argument(help: "The task's name.") var task: String
    @OptionGroup var storeOption: RateStoreOption
    @Option(help: "Your name (how your answers are recorded).") var rater: String
    @Flag(help: "Show where the responses came from after each answer.") var reveal = false
    @Flag(help: "Without a terminal: print each item as a JSON object a line.") var json = false
    @Option(help: ArgumentHelp("Give back to the pool the items other raters were given and left unanswered this many minutes ago "
                               + "(at once when their rein rate here has ended).", valueName: "minutes"))
    var expireAfter: Double = RunStore.assignmentTimeout / 60

    func validate() throws {
        if rater.isEmpty { throw ValidationError("--rater must not be empty") }
        if !(expireAfter > 0) { throw ValidationError("--expire-after must be a positive number of minutes (got \(expireAfter))") }
        if let bad = rater.unicodeScalars.first(where: { $0.properties.generalCategory == .control || $0.properties.generalCategory == .format }) {
            throw ValidationError("--rater must not contain control characters (found U+\(String(bad.value, radix: 16, uppercase: true)))")
        }
    }

    func run() throws {
        let interactive = Terminal.stdinIsTerminal && isatty(1) != 0 && !json
        if interactive, let size = RawTerminal.size(), size.columns < RatingScreen.minimumWidth {
            throw CLIError("the terminal is \(size.columns) columns wide; rein rate needs at least \(RatingScreen.minimumWidth)")
        }
        let store = try storeOption.open()
        let task = try store.ratingTask(named: self.task)
        let sitting = RatingSitting(store: store, task: task, rater: rater, reveal: reveal, expireAfter: expireAfter * 60)
        if interactive {
            let terminal = try RawTerminal()
            defer { terminal.restore() }
            try sitting.runScreen(terminal)
            terminal.restore()
        } else {
            try sitting.runLines(json: json)
        }
        let progress = try store.progress(taskId: task.id!, rater: rater)
        Terminal.note("\(count(sitting.answered, "answer")) saved this sitting; \(progress.done) done, \(progress.left) left"
                      + (progress.left > 0 ? " (rein rate \(task.name) --store \(storeOption.store) --rater \(rater) resumes)" : ""))
    }
}

/// One sitting of one rater on one task: the item loop both front ends share.
final class RatingSitting {
    let store: RunStore
    let task: RatingTask
    let rater: String
    let reveal: Bool
    let session = String(UInt64.random(in: 0...UInt64.max), radix: 16)
    private(set) var answered = 0
    /// Items skipped in this sitting (not offered again in it).
    private var passed: Set<Int64> = []
    /// The item an undo brought back, shown next.
    private var forced: RatingItem?
    /// The last a/b answer of this sitting, while a strength key may still amend it.
    private var amendable: Int64?
    private var reason: String?
    var message = ""

    /// Seconds after which another rater's unanswered item goes back to the pool.
    let expireAfter: TimeInterval

    init(store: RunStore, task: RatingTask, rater: String, reveal: Bool, expireAfter: TimeInterval = RunStore.assignmentTimeout) {
        self.store = store
        self.task = task
        self.rater = rater
        self.reveal = reveal
        self.expireAfter = expireAfter
    }

    var thumbs: Bool { task.mode == .single && task.scale == .thumbs }

    /// What a key or line asks for, in screen terms (positions, not response indices).
    enum Action {
        case vote(position: Int, strength: Int?)
        case tie, bad
        case strength(Int)
        case likert(Int)
        /// Thumbs up (true) or down.
        case thumb(Bool)
        case rank([[Int]])
        case skip, undo, quit, help
        case reason(String)
        case scroll(Int)
    }

    /// The next item to show, or nil when the rater has nothing left.
    func nextItem() throws -> RatingItem? {
        if let forced {
            self.forced = nil
            return forced
        }
        return try store.nextRatingItem(taskId: task.id!, rater: rater, passed: passed, session: session, expireAfter: expireAfter)
    }

    /// Applies `action` to `item` (shown at `shownAt` in `order`): true when the item is done (answered,
    /// skipped, or replaced by an undone one).
    func apply(_ action: Action, item: RatingItem, order: [Int], shownAt: Date) throws -> Bool {
        let swapped = order != Array(order.indices)
        func save(_ vote: RatingVote, strength: Int? = nil, likert: Int? = nil, ranking: String? = nil, thumb: Bool? = nil) throws {
            let rating = try store.record(rating: Rating(itemId: item.id!, rater: rater, session: session, swapped: swapped, vote: vote,
                                                         strength: strength, likert: likert, ranking: ranking, reason: reason,
                                                         shownAt: shownAt, thumb: thumb))
            answered += vote == .skip ? 0 : 1
            reason = nil
            amendable = (vote == .a || vote == .b) && strength == nil ? rating.id : nil
            let words: [RatingVote: String] = [.a: "\(order[0] == 0 ? "left" : "right") better", .b: "\(order[0] == 1 ? "left" : "right") better",
                                               .tie: "tie", .bad: "both bad", .skip: "skipped",
                                               .likert: thumb.map { $0 ? "thumbs up" : "thumbs down" } ?? "score \(likert ?? 0)",
                                               .rank: "ranked"]
            message = "saved: \(words[vote]!)" + (strength.map { ", strength \($0)" } ?? "")
                + ((vote == .a || vote == .b) && strength == nil ? " (1-4 now adds a strength)" : "")
            if reveal { message += " · " + zip(positionNames(order.count), order).map { "\($0): \(item.sources[$1])" }.joined(separator: ", ") }
        }
        switch action {
        case let .vote(position, strength):
            guard task.mode == .pair, position < order.count else { return false }
            try save(order[position] == 0 ? .a : .b, strength: strength)
        case .tie:
            guard task.mode == .pair else { return false }
            try save(.tie)
        case .bad:
            guard task.mode == .pair else { return false }
            try save(.bad)
        case let .likert(value):
            guard task.mode == .single, !thumbs, (1...7).contains(value) else { return false }
            try save(.likert, likert: value)
        case let .thumb(up):
            guard thumbs else { return false }
            try save(.likert, thumb: up)
        case let .rank(positions):
            guard task.mode == .rank else { return false }
            let flat = positions.flatMap { $0 }
            guard Set(flat).count == flat.count, flat.allSatisfy({ $0 < order.count }), flat.count >= order.count - 1 else {
                message = "a ranking names each response once (best first)"
                return false
            }
            var ranks = positions.map { $0.map { order[$0] } }
            if let missing = order.indices.first(where: { !flat.contains($0) }) { ranks.append([order[missing]]) }
            try save(.rank, ranking: RatingStats.rankingText(ranks))
        case let .strength(value):
            guard let id = amendable, (1...4).contains(value) else {
                message = task.mode == .pair ? "a strength (1-4) goes right after a vote for one side" : "no such key here"
                return false
            }
            try store.setStrength(ratingId: id, strength: value)
            amendable = nil
            message = "strength \(value) added to the last answer"
        case .skip:
            try save(.skip)
            passed.insert(item.id!)
            return true
        case .undo:
            amendable = nil
            guard let undone = try store.undoLastRating(taskId: task.id!, rater: rater) else {
                message = "nothing to undo"
                return false
            }
            if undone.vote != .skip { answered -= 1 }
            passed.remove(undone.itemId)
            if undone.itemId == item.id { message = "undone: your earlier answer to this item"; return false }
            forced = try store.ratingItem(undone.itemId)
            message = "undone: the answer to item \((forced?.idx ?? 0) + 1)"
            return true
        case let .reason(text):
            reason = text.isEmpty ? nil : text
            message = text.isEmpty ? "reason cleared" : "reason kept for this item's answer"
            return false
        case .quit, .help, .scroll:
            return false
        }
        if case .strength = action { return false }
        return true
    }

    func positionNames(_ n: Int) -> [String] {
        task.mode == .pair ? ["left", "right"] : (0..<n).map { String(UnicodeScalar(UInt8(65 + $0))) }
    }

    func labels(_ n: Int) -> [String] {
        switch task.mode {
        case .pair: ["LEFT (a)", "RIGHT (b)"]
        case .rank: (0..<n).map { "RESPONSE \(String(UnicodeScalar(UInt8(65 + $0))))" }
        case .single: ["RESPONSE"]
        }
    }

    var keyLine: String {
        switch task.mode {
        case .pair: "? help  q quit  a/← left  b/→ right  t tie  x both bad  s skip  u undo  1-4 strength  r reason  j/k scroll"
        case .rank: "? help  q quit  letters best first (= ties)  ⌫ back  s skip  u undo  r reason  j/k scroll"
        case .single where thumbs: "? help  q quit  + or y thumbs up  - or n thumbs down  s skip  u undo  r reason  j/k scroll"
        case .single: "? help  q quit  1 (worst) .. 7 (best)  s skip  u undo  r reason  j/k scroll"
        }
    }

    func progressLine(_ item: RatingItem) throws -> String {
        let p = try store.progress(taskId: task.id!, rater: rater)
        let gold = p.goldAnswered > 0 ? " · gold \(Int((100 * Double(p.goldCorrect) / Double(p.goldAnswered)).rounded()))% of \(p.goldAnswered)" : ""
        return "\(task.name) · \(rater) · item \(item.idx + 1) · \(p.done) done / \(p.left) left\(gold)"
    }

    // MARK: - Lines (no terminal)

    /// Reads one answer a line from stdin until the items or the input end, or `q`.
    func runLines(json: Bool) throws {
        let width = max(RatingScreen.minimumWidth, Int(ProcessInfo.processInfo.environment["COLUMNS"] ?? "") ?? 80)
        let encoder = JSONLinesEncoder()
        while let item = try nextItem() {
            let order = RatingTasks.layout(task: task, item: item, rater: rater)
            let shownAt = Date()
            if json {
                let p = try store.progress(taskId: task.id!, rater: rater)
                Terminal.write(try encoder.line(ItemJSON(task: task.name, mode: task.mode.rawValue, item: item.idx, prompt: item.prompt,
                                                         responses: order.map { item.responses[$0] }, labels: positionNames(order.count),
                                                         done: p.done, left: p.left, message: message)) + "\n")
            } else {
                Terminal.write("\n" + [try progressLine(item), message].filter { !$0.isEmpty }.joined(separator: "\n") + "\n")
                let body = RatingScreen.body(item: item, order: order, labels: labels(order.count), cells: width)
                Terminal.write(body.map { trimTrailing($0) }.joined(separator: "\n") + "\n" + keyLine + "\n> ")
            }
            message = ""
            var done = false
            while !done {
                guard let line = readLine() else { return }
                guard let action = parseLine(line.trimmingCharacters(in: .whitespaces), count: order.count) else {
                    message = "not an answer: \(line)"
                    Terminal.writeError(message + "\n")
                    continue
                }
                if case .quit = action { return }
                if case .help = action { Terminal.write(keyLine + "\n> "); continue }
                done = try apply(action, item: item, order: order, shownAt: shownAt)
                if !done, !message.isEmpty { Terminal.writeError(message + "\n") }
            }
        }
        Terminal.write((json ? "" : "\n") + "nothing left to rate in \(task.name)\n")
    }

    private struct ItemJSON: Encodable {
        var task: String, mode: String, item: Int, prompt: String, responses: [String], labels: [String], done: Int, left: Int, message: String
    }

    /// One line's answer: a, b, t, x (a2 / a 2 with a strength), 1-7, s, u, r TEXT, q, ?; rank: letters best first (= ties).
    func parseLine(_ line: String, count: Int) -> Action? {
        let lower = line.lowercased()
        if lower.hasPrefix("r ") || lower == "r" { return .reason(String(line.dropFirst(1)).trimmingCharacters(in: .whitespaces)) }
        switch lower {
        case "q", "quit": return .quit
        case "u", "undo": return .undo
        case "s", "skip": return .skip
        case "?", "help": return .help
        case "t", "tie": if task.mode == .pair { return .tie }
        case "x", "bad": if task.mode == .pair { return .bad }
        default: break
        }
        if thumbs {
            if ["+", "y", "yes", "up"].contains(lower) { return .thumb(true) }
            if ["-", "n", "no", "down"].contains(lower) { return .thumb(false) }
            return nil
        }
        if let n = Int(lower) { return task.mode == .single ? .likert(n) : .strength(n) }
        if task.mode == .pair {
            let compact = lower.replacingOccurrences(of: " ", with: "")
            for (position, names) in [(0, ["a", "left"]), (1, ["b", "right"])] {
                for name in names where compact.hasPrefix(name) {
                    let rest = compact.dropFirst(name.count)
                    if rest.isEmpty { return .vote(position: position, strength: nil) }
                    if let s = Int(rest), (1...4).contains(s) { return .vote(position: position, strength: s) }
                }
            }
            return nil
        }
        if task.mode == .rank { return rankAction(lower.filter { $0 != " " && $0 != ">" }, count: count) }
        return nil
    }

    /// `c=ab` as ranks of screen positions `[[2, 0], [1]]`.
    func rankAction(_ text: String, count: Int) -> Action? {
        var ranks: [[Int]] = [], tie = false
        for c in text {
            if c == "=" { tie = true; continue }
            guard let ascii = c.asciiValue, ascii >= 97, Int(ascii - 97) < count else { return nil }
            if tie, !ranks.isEmpty { ranks[ranks.count - 1].append(Int(ascii - 97)) } else { ranks.append([Int(ascii - 97)]) }
            tie = false
        }
        return ranks.isEmpty ? nil : .rank(ranks)
    }

    // MARK: - The screen

    /// The raw-mode screen: draws the item, reads keys until it is done, for every item.
    func runScreen(_ terminal: RawTerminal) throws {
        var showHelp = false
        while let item = try nextItem() {
            let order = RatingTasks.layout(task: task, item: item, rater: rater)
            let shownAt = Date()
            var scroll = 0
            var picks: [[Int]] = [], tieNext = false
            var done = false
            while !done {
                guard let size = RawTerminal.size(), size.columns >= RatingScreen.minimumWidth else {
                    Terminal.write("\u{1B}[H\u{1B}[2J" + "the terminal is too narrow: widen it to \(RatingScreen.minimumWidth) columns (q quits)")
                    guard let key = terminal.readKey(), !["q", "ctrl-c", "ctrl-d"].contains(key) else { return }
                    continue
                }
                let width = size.columns, height = max(size.rows, 8)
                let body = showHelp ? helpLines(width) : RatingScreen.body(item: item, order: order, labels: labels(order.count), cells: width)
                let viewport = height - 4
                scroll = max(0, min(scroll, body.count - viewport))
                var lines = [RatingScreen.pad(try progressLine(item), to: width), String(repeating: "─", count: width)]
                lines += body[scroll..<min(body.count, scroll + viewport)]
                lines += Array(repeating: RatingScreen.pad("", to: width), count: max(0, viewport - (body.count - scroll)))
                var status = message
                if body.count > viewport { status = "lines \(scroll + 1)-\(min(body.count, scroll + viewport)) of \(body.count) (j/k)  " + status }
                if task.mode == .rank, !picks.isEmpty { status = "ranking: " + picks.map { $0.map { positionNames(order.count)[$0] }.joined(separator: "=") }.joined(separator: " > ") + "  " + status }
                if let reason { status += (status.isEmpty ? "" : "  ") + "reason: \(reason)" }
                lines.append(RatingScreen.pad(RatingScreen.printable(status).replacingOccurrences(of: "\n", with: " "), to: width))
                lines.append(RatingScreen.pad(keyLine, to: width))
                Terminal.write("\u{1B}[H" + lines.joined(separator: "\r\n") + "\u{1B}[J")
                guard let key = terminal.readKey() else { return }
                let action: Action?
                switch key {
                case "q", "ctrl-c", "ctrl-d": return
                case "?": showHelp.toggle(); scroll = 0; continue
                case "j", "down": action = .scroll(1)
                case "k", "up": action = .scroll(-1)
                case " ", "pagedown": action = .scroll(viewport - 1)
                case "pageup": action = .scroll(-(viewport - 1))
                case "s": action = .skip
                case "u": action = .undo
                case "r":
                    action = .reason(readReason(terminal, width: width, height: height))
                default:
                    action = keyAction(key, count: order.count, picks: &picks, tieNext: &tieNext)
                }
                guard let action else { continue }
                if case let .scroll(delta) = action { scroll += delta; continue }
                showHelp = false
                done = try apply(action, item: item, order: order, shownAt: shownAt)
                if case .rank = action, !done { picks = [] }
            }
        }
    }

    /// A key's action in the task's mode (rank keys build `picks` until every response has a place).
    private func keyAction(_ key: String, count: Int, picks: inout [[Int]], tieNext: inout Bool) -> Action? {
        switch task.mode {
        case .pair:
            switch key {
            case "a", "left": return .vote(position: 0, strength: nil)
            case "b", "right": return .vote(position: 1, strength: nil)
            case "t": return .tie
            case "x": return .bad
            case "1", "2", "3", "4": return .strength(Int(key)!)
            default: return nil
            }
        case .single where thumbs:
            if key == "+" || key == "y" { return .thumb(true) }
            if key == "-" || key == "n" { return .thumb(false) }
            return nil
        case .single:
            if let n = Int(key), (1...7).contains(n) { return .likert(n) }
            return nil
        case .rank:
            if key == "=" { tieNext = !picks.isEmpty; return nil }
            if key == "backspace" {
                if var last = picks.popLast() { last.removeLast(); if !last.isEmpty { picks.append(last) } }
                return nil
            }
            guard key.count == 1, let ascii = key.first?.asciiValue, ascii >= 97, Int(ascii - 97) < count,
                  !picks.joined().contains(Int(ascii - 97)) else { return nil }
            if tieNext { picks[picks.count - 1].append(Int(ascii - 97)) } else { picks.append([Int(ascii - 97)]) }
            tieNext = false
            return picks.joined().count >= count - 1 ? .rank(picks) : nil
        }
    }

    /// A line of text typed at the bottom of the screen (Enter keeps it, Esc cancels).
    private func readReason(_ terminal: RawTerminal, width: Int, height: Int) -> String {
        var text = reason ?? ""
        while true {
            Terminal.write("\u{1B}[\(height);1H\u{1B}[2K" + RatingScreen.pad("reason (Enter keeps, Esc cancels): " + text, to: width - 1))
            guard let key = terminal.readKey() else { return text }
            switch key {
            case "enter": return text
            case "escape", "ctrl-c": return reason ?? ""
            case "backspace": if !text.isEmpty { text.removeLast() }
            default: if key.count == 1, let c = key.first, !c.isASCII || (c.asciiValue ?? 0) >= 32 { text.append(c) }
            }
        }
    }

    private func helpLines(_ width: Int) -> [String] {
        let text = """
        HELP (? again closes)
        Which response answers the prompt better? You do not see where the responses came from.
        a or ←   the left response is better        b or →   the right response is better
        t        a tie                              x        both are bad
        1-4      right after a vote: how much better (1 significantly, 2 better, 3 slightly, 4 negligibly)
        s        skip this item (it comes back at the end)
        u        undo the last answer (press again for the one before)
        r        type a reason for this item's answer
        j k ↓ ↑  scroll a line; space, PgDn, PgUp: a page
        q        quit: every answer is saved already; run the same command again to go on
        Rank mode: the responses' letters best first; = before a letter ties it with the previous one.
        Single mode: 1 (worst) to 7 (best); on the thumbs scale + or y thumbs up, - or n thumbs down.
        """
        return text.split(separator: "\n", omittingEmptySubsequences: false).flatMap { RatingScreen.wrap(String($0), cells: width) }
            .map { RatingScreen.pad($0, to: width) }
    }

    private func trimTrailing(_ s: String) -> String {
        var s = s
        while s.last == " " { s.removeLast() }
        return s
    }
}
