import ArgumentParser
import Checkpoints
import Foundation
import Recipes

/// `rein convert`: GGUF or Hugging Face directory in, Hugging Face directory out.
struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a .gguf file or a Hugging Face directory to a Hugging Face directory (float32 safetensors).",
        discussion: "Quantized GGUF weights are dequantized. The result loads in transformers and in Rein."
    )

    @Argument(help: ArgumentHelp("A .gguf file or a Hugging Face model directory.", valueName: "in"))
    var input: String

    @Argument(help: ArgumentHelp("The directory to write.", valueName: "out"))
    var output: String

    @Flag(help: "Write into OUT even when it is not empty (files of the same name are replaced).")
    var force = false

    func run() throws {
        let out = URL(fileURLWithPath: output).standardizedFileURL
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: out.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw CLIError("\(output): exists and is not a directory") }
            if out == URL(fileURLWithPath: input).standardizedFileURL {
                throw CLIError("\(output): is the input directory; write to another one")
            }
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? []
            if !entries.isEmpty && !force {
                throw CLIError("\(output): is not empty; pass --force to write into it")
            }
        }
        let clock = ContinuousClock()
        let loadStart = clock.now
        let lm = try LanguageModel.load(input)
        let c = lm.model.config
        print("read \(input): \(c.family.rawValue), \(c.layers) layers, "
              + "\(fmt(Double(lm.model.arena.parameterCount) / 1e6, 0, 1))M parameters (\(fmt(seconds(clock.now - loadStart), 0, 2)) s)")
        let started = Date()
        let saveTime = try clock.measure { try lm.save(to: out) }
        // What save wrote: the files modified since it started (OUT may hold others with --force).
        let written = try FileManager.default.contentsOfDirectory(at: out, includingPropertiesForKeys: [.fileSizeKey, .contentModificationDateKey])
            .filter { ((try? $0.resourceValues(forKeys: [.contentModificationDateKey]))?.contentModificationDate ?? .distantPast) >= started.addingTimeInterval(-1) }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        for file in written {
            let size = (try? file.resourceValues(forKeys: [.fileSizeKey]))?.fileSize ?? 0
            print("wrote \(file.path) (\(byteCount(size)))")
        }
        print("written in \(ReportText.duration(seconds(saveTime)))")
    }

    private func byteCount(_ n: Int) -> String {
        n >= 1_000_000 ? "\(fmt(Double(n) / 1e6, 0, 1)) MB" : n >= 1000 ? "\(fmt(Double(n) / 1e3, 0, 1)) kB" : "\(n) bytes"
    }
}
