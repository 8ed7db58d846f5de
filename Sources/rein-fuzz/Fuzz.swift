// libFuzzer entry point for Rein's parsers of outside data. Built only by `scripts/fuzz.sh`
// (`swift build --sanitize fuzzer --sanitize address -Xswiftc -DREIN_FUZZ`); the ordinary build
// makes a stub that says so. The parser is chosen by REIN_FUZZ_TARGET: safetensors, gguf,
// tokenizer, jsonl, recipe or config.
import Checkpoints
import Datasets
import Foundation
import NN
import Recipes
import TensorCore
import Tokenizers

/// The fuzz targets, by the name `scripts/fuzz.sh` takes.
enum FuzzTarget: String, CaseIterable {
    case safetensors, gguf, tokenizer, jsonl, recipe, config

    /// A scratch file per process: the file parsers map or stream their input from disk.
    static let scratch: URL = {
        let base = ProcessInfo.processInfo.environment["REIN_FUZZ_SCRATCH"] ?? NSTemporaryDirectory()
        let dir = URL(fileURLWithPath: base).appendingPathComponent("rein-fuzz-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }()

    static let current: FuzzTarget = {
        let name = ProcessInfo.processInfo.environment["REIN_FUZZ_TARGET"] ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            FileHandle.standardError.write(Data("REIN_FUZZ_TARGET must be one of \(allCases.map(\.rawValue))\n".utf8))
            exit(2)
        }
        return target
    }()

    /// Runs the parser on `bytes`; errors are the expected outcome of most inputs and are ignored.
    func run(_ bytes: Data) {
        switch self {
        case .safetensors:
            let url = Self.write(bytes, "model.safetensors")
            guard let file = try? SafetensorsFile(url: url) else { return }
            for name in file.names {
                guard let info = try? file.info(name) else { continue }
                if info.dtype.isReadableAsInteger { _ = try? file.ints(name); _ = try? file.int32s(name) } else { _ = try? file.tensor(name) }
            }
        case .gguf:
            let url = Self.write(bytes, "model.gguf")
            guard let file = try? GGUFFile(url: url) else { return }
            for name in file.tensorNames { _ = try? file.tensor(name) }
            for key in file.metadataKeys {
                _ = try? file.strings(key); _ = try? file.ints(key); _ = try? file.floats(key); _ = try? file.string(key)
            }
            if let tokenizer = try? LanguageModel.loadTokenizer(url.path) {
                _ = tokenizer.decode(tokenizer.encode("Hello, world! 12 + 30 = 42 <|im_end|>"))
            }
            _ = try? ModelCheckpoint.loadGGUF(file)
        case .tokenizer:
            guard let tokenizer = try? Tokenizer(tokenizerJSONData: bytes, file: "tokenizer.json") else { return }
            let ids = tokenizer.encode("Hello, world! 12 + 30 = 42 <|im_end|> héllo\u{301} 😀")
            _ = tokenizer.decode(ids)
            _ = tokenizer.decode(ids.map { $0 &+ 1 })
        case .jsonl:
            let url = Self.write(bytes, "data.jsonl")
            let formats: [DatasetFormat?] = [nil, .languageModeling, .promptCompletion, .conversational, .preference, .promptOnly]
            let format = formats[Int(bytes.first ?? 0) % formats.count]
            guard let reader = try? JSONLReader(url: url, format: format, onBadRecord: .skip) else { return }
            var n = 0
            while n < 100_000, (try? reader.next()) != nil { n += 1 }
        case .recipe:
            guard let text = String(data: bytes, encoding: .utf8) else { return }
            _ = try? Recipe.parse(yaml: text, fileName: "fuzz.yaml", baseDirectory: Self.scratch)
        case .config:
            guard let config = try? ModelConfig(huggingFaceJSON: bytes, file: "config.json") else { return }
            // A config the reader accepts is small enough to build when it says little.
            if let count = config.parameterCount, count <= 1 << 20 { _ = DecoderModel(forLoading: config) }
        }
    }

    private static func write(_ bytes: Data, _ name: String) -> URL {
        let url = scratch.appendingPathComponent(name)
        try? bytes.write(to: url)
        return url
    }
}

#if REIN_FUZZ
@_cdecl("LLVMFuzzerTestOneInput")
public func reinFuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzTarget.current.run(Data(bytes: data, count: size))
    return 0
}
#else
@main struct FuzzStub {
    static func main() {
        var arguments = Array(CommandLine.arguments.dropFirst())
        guard !arguments.isEmpty else {
            print("rein-fuzz: build with scripts/fuzz.sh TARGET for libFuzzer; without it, REIN_FUZZ_TARGET=T rein-fuzz FILE... "
                  + "replays inputs and rein-fuzz --mutate N [--seed S] SEED... runs N mutated inputs")
            return
        }
        if arguments.first == "--mutate", arguments.count >= 2, let runs = Int(arguments[1]) {
            arguments.removeFirst(2)
            var seed: UInt64 = 1
            if arguments.first == "--seed", arguments.count >= 2, let s = UInt64(arguments[1]) { seed = s; arguments.removeFirst(2) }
            Mutator.run(target: FuzzTarget.current, runs: runs, seed: seed, seedFiles: arguments)
            return
        }
        // Replay: run the target once over each file, so a crashing input can be rerun in an ordinary build.
        for file in arguments {
            guard let bytes = FileManager.default.contents(atPath: file) else { print("\(file): cannot read"); continue }
            FuzzTarget.current.run(bytes)
            print("\(file): ok")
        }
    }
}

/// A seeded mutator for toolchains or builds without libFuzzer: starts from the seed files and
/// changes bytes, lengths, counts and offsets (little-endian integers of interesting sizes),
/// inserts, deletes and repeats chunks, and splices seeds. Each input is written to
/// `REIN_FUZZ_SCRATCH/current` before it runs, so the one that crashes the process is left there;
/// inputs slower than a second are kept as `slow-N`.
enum Mutator {
    struct SplitMix {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }
    }

    static let interesting: [UInt64] = [0, 1, 2, 3, 4, 7, 8, 16, 31, 32, 33, 63, 64, 127, 128, 255, 256, 1023, 1024, 4096,
                                        65535, 65536, 1 << 24, 1 << 31, (1 << 31) - 1, 1 << 32, (1 << 32) - 1, 1 << 40,
                                        1 << 62, 1 << 63, UInt64.max, UInt64.max - 1]
    static let tokens = ["[", "]", "{", "}", "\"", ":", ",", "- ", "\n", "  ", "&a ", "*a", "null", "true", "-1", "0",
                         "1e308", "99999999999999999999", "\\u0000", "\\ud800", "\u{FF}", "#", "'", "\t", "\r\n"]

    static func mutate(_ input: [UInt8], seeds: [[UInt8]], rng: inout SplitMix) -> [UInt8] {
        var b = input
        for _ in 0..<(1 + rng.below(6)) {
            switch rng.below(10) {
            case 0 where !b.isEmpty:
                b[rng.below(b.count)] ^= UInt8(1 << rng.below(8))
            case 1 where !b.isEmpty:
                b[rng.below(b.count)] = [0, 0xFF, 0x7F, 0x80, 0x20, 0x22, 0x5B][rng.below(7)]
            case 2 where b.count >= 8, 3 where b.count >= 8:
                // An integer of 1, 2, 4 or 8 bytes at any offset: lengths, counts, offsets, dimensions.
                let width = [1, 2, 4, 8][rng.below(4)]
                let at = rng.below(b.count - width + 1)
                let v = rng.below(3) == 0 ? rng.next() : interesting[rng.below(interesting.count)]
                for k in 0..<width { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
            case 4:
                let t = Array(tokens[rng.below(tokens.count)].utf8)
                b.insert(contentsOf: t, at: rng.below(b.count + 1))
            case 5 where !b.isEmpty:
                let at = rng.below(b.count), n = min(b.count - at, 1 + rng.below(64))
                b.removeSubrange(at..<at + n)
            case 6 where !b.isEmpty:
                let at = rng.below(b.count), n = min(b.count - at, 1 + rng.below(32))
                let chunk = Array(b[at..<at + n])
                let times = 1 + rng.below(rng.below(4) == 0 ? 2000 : 8)
                for _ in 0..<times where b.count < 1 << 20 { b.insert(contentsOf: chunk, at: at) }
            case 7 where !b.isEmpty:
                b.removeLast(rng.below(b.count))
            case 8:
                let other = seeds[rng.below(seeds.count)]
                if !other.isEmpty {
                    let at = rng.below(other.count), n = min(other.count - at, 1 + rng.below(256))
                    b.insert(contentsOf: other[at..<at + n], at: rng.below(b.count + 1))
                }
            default:
                if !b.isEmpty {
                    let digits = Array(String(interesting[rng.below(interesting.count)]).utf8)
                    b.insert(contentsOf: digits, at: rng.below(b.count + 1))
                }
            }
        }
        return b
    }

    static func run(target: FuzzTarget, runs: Int, seed: UInt64, seedFiles: [String]) {
        let seeds = seedFiles.compactMap { FileManager.default.contents(atPath: $0).map { [UInt8]($0) } }
        guard !seeds.isEmpty else { print("rein-fuzz --mutate: no readable seed files"); exit(2) }
        var rng = SplitMix(state: seed)
        let current = FuzzTarget.scratch.appendingPathComponent("current")
        let clock = ContinuousClock()
        var slowest = Duration.zero, slow = 0, largest = 0
        let start = clock.now
        for i in 0..<runs {
            let input = mutate(seeds[rng.below(seeds.count)], seeds: seeds, rng: &rng)
            largest = max(largest, input.count)
            try? Data(input).write(to: current)
            let t = clock.now
            target.run(Data(input))
            let took = clock.now - t
            slowest = max(slowest, took)
            if took > .seconds(1) {
                slow += 1
                try? Data(input).write(to: FuzzTarget.scratch.appendingPathComponent("slow-\(i)"))
            }
        }
        let seconds = Double((clock.now - start).components.seconds) + Double((clock.now - start).components.attoseconds) / 1e18
        print("rein-fuzz \(target.rawValue): \(runs) inputs (seed \(seed), \(seeds.count) seed files) in "
              + String(format: "%.1f", seconds) + " s, no crash; slowest input \(slowest), \(slow) over 1 s, largest \(largest) bytes")
    }
}
#endif
