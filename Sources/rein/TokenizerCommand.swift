import ArgumentParser
import Foundation
import Recipes
import Tokenizers

/// `rein tokenizer ...`: making tokenizers.
struct TokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Train tokenizers.",
        subcommands: [TokenizerTrain.self]
    )
}

/// `rein tokenizer train`: a byte-level BPE tokenizer from text files.
struct TokenizerTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a byte-level BPE tokenizer (GPT-2 pre-tokenizer) and write DIR/tokenizer.json.",
        discussion: """
        FILES are .txt (the whole file), .jsonl (the "text" field of each line) or ChatterBot .yml files \
        (each utterance), or directories, whose files of those kinds are all read.
        """
    )

    @Option(help: "Vocabulary size, special tokens and the 256 byte tokens included.")
    var vocabSize: Int

    @Option(help: ArgumentHelp("A special token, such as <|endoftext|> (repeatable); they take ids 0, 1, ...", valueName: "token"))
    var special: [String] = []

    @Option(help: "Merge only pairs seen at least this many times (training may stop below --vocab-size).")
    var minFrequency = 2

    @Argument(help: ArgumentHelp("Training text files or directories.", valueName: "files"))
    var files: [String]

    @Option(help: ArgumentHelp("The directory to write tokenizer.json into (created if needed).", valueName: "dir"))
    var out: String

    func validate() throws {
        if vocabSize < 256 + special.count {
            throw ValidationError("--vocab-size must be at least \(256 + special.count): 256 bytes + \(special.count) special tokens (got \(vocabSize))")
        }
        if minFrequency < 1 { throw ValidationError("--min-frequency must be at least 1 (got \(minFrequency))") }
        if special.contains("") { throw ValidationError("--special needs a non-empty token") }
        if files.isEmpty { throw ValidationError("give at least one training file") }
    }

    func run() throws {
        var texts: [String] = []
        var fileCount = 0
        for path in files {
            for file in try expand(path) {
                texts += try TextCorpus.texts(of: file)
                fileCount += 1
            }
        }
        let bytes = texts.reduce(0) { $0 + $1.utf8.count }
        guard bytes > 0 else { throw CLIError("no training text in \(files.joined(separator: ", "))") }
        print("read \(count(texts.count, "text")), \(fmt(Double(bytes) / 1e6, 0, 2)) MB, from \(count(fileCount, "file"))")

        let trainer = BPETrainer(vocabularySize: vocabSize, minFrequency: minFrequency, specialTokens: special)
        let clock = ContinuousClock()
        let start = clock.now
        let tokenizer = try trainer.train(on: texts)
        let took = clock.now - start
        let note = tokenizer.vocabularySize < vocabSize ? " (stopped early: no pair left seen \(minFrequency)+ times)" : ""
        print("trained a vocabulary of \(tokenizer.vocabularySize)\(note) in \(ReportText.duration(seconds(took)))")

        let dir = URL(fileURLWithPath: out)
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        } catch {
            throw CLIError("\(out): cannot create the directory (\(error.localizedDescription))")
        }
        let file = dir.appendingPathComponent("tokenizer.json")
        try tokenizer.save(tokenizerJSON: file)
        print("wrote \(file.path)")
    }

    /// A file as is; a directory as its files of the kinds `TextCorpus` reads, in name order.
    private func expand(_ path: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw CLIError("\(path): no such file") }
        guard isDirectory.boolValue else { return [path] }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        let found = names.filter { TextCorpus.extensions.contains(URL(fileURLWithPath: $0).pathExtension.lowercased()) }.sorted()
        guard !found.isEmpty else { throw CLIError("\(path): a directory without .txt, .jsonl or .yml files") }
        return found.map { URL(fileURLWithPath: path).appendingPathComponent($0).path }
    }
}
