import ArgumentParser
import Dispatch
import Generation
import NN
import TensorCore

/// `rein bench decode`: the few-row kernel against BLAS on each decoding weight shape, and KV-cache
/// generation with and without it, each figure beside the roofline measured in the same run.
struct BenchDecode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Decoding: the few-row kernel against cblas_sgemm per weight shape, and KV-cache tokens/s.",
        discussion: """
        Measures this machine first: streaming read bandwidth (8 MB slices of a 512 MB buffer, each \
        timed as one call like a product, all kernel threads) \
        and the raw sgemm peak (the best median of several shapes), each again after the kernel table; \
        the better of the two readings is the roofline. Weights are read cold (each call a different \
        copy, 256 MB in all), as in a decoding step. The roofline of a product with m rows is \
        min(bandwidth, peak / (m/2 flops per weight byte)). Generation uses random weights of the \
        model's shape, a 16-token prompt per row and 64 new tokens (no stop token); "decode steps" \
        times the 63 steps after the first token, "whole call" includes the prompt's prefill.
        """
    )

    @OptionGroup var options: BenchOptions

    @Option(help: "Model shapes (gpt2, smollm2, tiny).")
    var shapes: [BenchShape] = [.gpt2, .smollm2]

    @Option(help: "Rows of the few-row products (the decoding batch sizes).")
    var rows: [Int] = [1, 4, 8, 16]

    @Option(help: "Batch sizes of the generation runs.")
    var batches: [Int] = [1, 8]

    @Flag(help: "Skip the per-shape kernel table.")
    var generationOnly = false

    @Option(help: "Lower precisions to measure beside fp32 (bf16, q8_0; none: --precisions fp32).")
    var precisions: [WeightPrecision] = [.bf16, .q8_0]

    @Flag(help: "Skip the sgemm path of the generation runs.")
    var noSgemm = false

    func run() throws {
        options.apply()
        options.printHeader()
        let repeats = options.quick ? 5 : 21
        var machine = MachineRoofline.measure(quick: options.quick)
        print(machine.text)
        if !generationOnly {
            for shape in shapes {
                print("")
                print("\(shape.label): X[m x k] . W^T per weight (W [n, k], read cold); GB/s of weights, % of the roofline")
                print("weight             k x n         m   kernel GB/s     %   sgemm GB/s     %   kernel/sgemm")
                for (name, k, n) in Self.weightShapes(shape.config) {
                    for m in rows {
                        let r = CoreBenchmark.skinny(m: m, k: k, n: n, repeats: repeats)
                        let roof = machine.weightRate(rows: m)
                        let kernel = r.weightBytes / r.kernelSeconds * 1e-9, blas = r.weightBytes / r.blasSeconds * 1e-9
                        print("\(name.padding(toLength: 16, withPad: " ", startingAt: 0)) \(fmt(Double(k), 5, 0)) x \(fmt(Double(n), 5, 0))  \(fmt(Double(m), 4, 0))"
                              + "  \(fmt(kernel, 12, 1))  \(fmt(100 * kernel / roof, 4, 0))  \(fmt(blas, 11, 1))  \(fmt(100 * blas / roof, 4, 0))"
                              + "  \(fmt(r.blasSeconds / r.kernelSeconds, 13, 2))")
                    }
                }
            }
            let lower = precisions.filter { $0 != .fp32 }
            for shape in shapes where !lower.isEmpty {
                print("")
                print("\(shape.label): lower-precision weights, X[m x k] . W^T (W read cold); GB/s of the bytes stored, % of the roofline at that precision, speed-up over the fp32 kernel")
                print("weight             k x n         m   fp32 GB/s     %" + lower.map { p in
                    "   \(p.rawValue.padding(toLength: 4, withPad: " ", startingAt: 0)) GB/s     %   x fp32" }.joined())
                for (name, k, n) in Self.weightShapes(shape.config) {
                    for m in rows {
                        var line = "\(name.padding(toLength: 16, withPad: " ", startingAt: 0)) \(fmt(Double(k), 5, 0)) x \(fmt(Double(n), 5, 0))  \(fmt(Double(m), 4, 0))"
                        var fp32Seconds: [Double] = []
                        var columns = ""
                        for p in lower where LowPrecisionMatrix.supports(p, columns: k) {
                            let r = CoreBenchmark.lowPrecision(m: m, k: k, n: n, precision: p, repeats: repeats)
                            fp32Seconds.append(r.fp32Seconds)
                            let rate = r.weightBytes / r.seconds * 1e-9
                            columns += "  \(fmt(rate, 10, 1))  \(fmt(100 * rate / machine.weightRate(rows: m, bytesPerWeight: p.bytesPerWeight), 4, 0))"
                                + "  \(fmt(r.fp32Seconds / r.seconds, 7, 2))"
                        }
                        guard !fp32Seconds.isEmpty else { continue }
                        let fp32Rate = Double(k * n * 4) / median(fp32Seconds) * 1e-9
                        line += "  \(fmt(fp32Rate, 10, 1))  \(fmt(100 * fp32Rate / machine.weightRate(rows: m), 4, 0))" + columns
                        print(line)
                    }
                }
            }
            // The machine again: a reading lowered by a noisy moment is replaced by the better one.
            let again = MachineRoofline.measure(quick: options.quick)
            machine = machine.best(again)
            print("")
            print(again.text + "; roofline from here on: \(fmt(machine.bandwidth, 0, 1)) GB/s, \(fmt(machine.peak, 0, 1)) GFLOP/s")
        }
        for shape in shapes {
            var rng = RNG(seed: 7)
            let model = DecoderModel(config: shape.config, rng: &rng)
            let gen = Generator(model: model)
            print("")
            print("\(shape.label), random weights, 16 + 64 tokens, greedy, medians of \(options.quick ? 3 : 7):")
            print("batch   path      decode steps tok/s   % of roofline   whole call tok/s   % of roofline   x fp32 (steps)")
            for B in batches {
                let prompts = (0..<B).map { _ in (0..<16).map { _ in Int32(rng.int(below: shape.config.vocabSize)) } }
                var runs: [String: [(steps: Double, whole: Double)]] = [:]
                // "kernel" is fp32 with the few-row kernel; a precision path decodes with that inference copy.
                typealias Path = (name: String, kernel: Bool, precision: WeightPrecision)
                var paths: [Path] = [(name: "kernel", kernel: true, precision: WeightPrecision.fp32)]
                if !noSgemm { paths.append((name: "sgemm", kernel: false, precision: WeightPrecision.fp32)) }
                for p in precisions where p != .fp32 { paths.append((name: p.rawValue, kernel: true, precision: p)) }
                for round in 0..<(options.quick ? 4 : 8) {
                    for path in paths {
                        model.setInferencePrecision(path.precision, scope: .generation)
                        let t = SkinnyMatmul.$isEnabled.withValue(path.kernel) { Self.timeGeneration(gen, prompts: prompts) }
                        if round > 0 { runs[path.name, default: []].append(t) }   // round 0 warms up
                    }
                }
                model.setInferencePrecision(.fp32, scope: .generation)
                let fp32Steps = median(runs["kernel"]!.map(\.steps))
                for path in paths {
                    let roof = DecodeRoofline(config: shape.config, batch: B, prompt: 16, newTokens: 64, machine: machine,
                                              bytesPerWeight: path.precision.bytesPerWeight)
                    let steps = median(runs[path.name]!.map(\.steps)), whole = median(runs[path.name]!.map(\.whole))
                    let stepRate = Double(B * 63) / steps, wholeRate = Double(B * 64) / whole
                    print("\(fmt(Double(B), 5, 0))   \(path.name.padding(toLength: 8, withPad: " ", startingAt: 0))"
                          + "  \(fmt(stepRate, 18, 1))   \(fmt(100 * stepRate / roof.stepTokensPerSecond, 13, 0))"
                          + "   \(fmt(wholeRate, 16, 1))   \(fmt(100 * wholeRate / roof.wholeTokensPerSecond, 13, 0))"
                          + "   \(fmt(fp32Steps / steps, 14, 2))")
                    if path.name == "kernel" || path.precision != .fp32 {
                        print("        roofline  \(fmt(roof.stepTokensPerSecond, 18, 1))                   \(fmt(roof.wholeTokensPerSecond, 16, 1))"
                              + "   (\(path.precision.rawValue): \(roof.note))")
                    }
                }
            }
        }
    }

    /// Seconds of the 63 decoding steps after the first token, and of the whole `generate` call.
    static func timeGeneration(_ gen: Generator, prompts: [[Int32]]) -> (steps: Double, whole: Double) {
        var rng = RNG(seed: 1)
        var first: UInt64 = 0, last: UInt64 = 0, seen = 0
        let B = prompts.count
        let t0 = DispatchTime.now().uptimeNanoseconds
        _ = gen.generate(prompts: prompts, options: SamplingOptions(maxNewTokens: 64), rng: &rng) { _, _ in
            seen += 1
            if seen == B { first = DispatchTime.now().uptimeNanoseconds }
            last = DispatchTime.now().uptimeNanoseconds
        }
        let t1 = DispatchTime.now().uptimeNanoseconds
        return (Double(last - first) * 1e-9, Double(t1 - t0) * 1e-9)
    }

    /// The distinct weight matrices a decoding step reads, as (name, k = in, n = out).
    static func weightShapes(_ c: ModelConfig) -> [(String, Int, Int)] {
        let C = c.hiddenSize, F = c.intermediateSize, q = c.heads * c.headDim, kv = c.kvHeads * c.headDim
        switch c.family {
        case .gpt2:
            return [("attn.c_attn", C, 3 * C), ("attn.c_proj", C, C), ("mlp.c_fc", C, F), ("mlp.c_proj", F, C), ("lm_head", C, c.vocabSize)]
        case .llama:
            return [("q_proj, o_proj", C, q), ("k_proj, v_proj", C, kv), ("gate, up_proj", C, F), ("down_proj", F, C), ("lm_head", C, c.vocabSize)]
        }
    }
}

private func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

/// The two limits of this machine, measured now.
struct MachineRoofline {
    /// Streaming read GB/s.
    var bandwidth: Double
    /// Raw sgemm GFLOP/s.
    var peak: Double

    static func measure(quick: Bool) -> MachineRoofline {
        MachineRoofline(bandwidth: CoreBenchmark.readBandwidth(repeats: quick ? 3 : 9),
                        peak: BenchModels.sgemmPeak(repeats: quick ? 3 : 7))
    }

    func best(_ other: MachineRoofline) -> MachineRoofline {
        MachineRoofline(bandwidth: max(bandwidth, other.bandwidth), peak: max(peak, other.peak))
    }

    var text: String {
        "read bandwidth: \(fmt(bandwidth, 0, 1)) GB/s (\(Threads.count) threads, 8 MB slices of 512 MB); raw sgemm peak: \(fmt(peak, 0, 1)) GFLOP/s"
    }

    /// GB/s of weights a product with `rows` rows can reach: bandwidth, or the peak at m/2 flops per byte.
    func weightRate(rows m: Int) -> Double { weightRate(rows: m, bytesPerWeight: 4) }

    /// The same for weights stored in `bytesPerWeight` bytes (GB/s of those bytes): 2m flops per weight.
    func weightRate(rows m: Int, bytesPerWeight: Double) -> Double { min(bandwidth, peak * bytesPerWeight / (2 * Double(m))) }
}

/// What bandwidth and the sgemm peak allow for `generate` with a KV cache: each decoding step reads
/// every linear weight and the LM head once (plus the cache so far) and does 2 flops per weight and
/// row; the prefill does the same for every prompt row, the LM head for the last one only.
struct DecodeRoofline {
    let stepTokensPerSecond: Double
    let wholeTokensPerSecond: Double
    let note: String

    init(config c: ModelConfig, batch B: Int, prompt P: Int, newTokens: Int, machine: MachineRoofline,
         bytesPerWeight w: Double = 4) {
        let C = Double(c.hiddenSize), F = Double(c.intermediateSize)
        let q = Double(c.heads * c.headDim), kv = Double(c.kvHeads * c.headDim), L = Double(c.layers)
        let perLayer = c.family == .gpt2 ? C * 3 * C + C * C + 2 * C * F : C * q + 2 * C * kv + q * C + 3 * C * F
        let layerWeights = L * perLayer, head = Double(c.vocabSize) * C
        let bw = machine.bandwidth * 1e9, peak = machine.peak * 1e9
        let b = Double(B)
        // One step at cache length S: weights and cache read, matmul and attention flops.
        func limits(_ S: Double) -> (memory: Double, compute: Double) {
            let bytes = w * (layerWeights + head) + 4 * L * b * S * 2 * kv
            let flops = 2 * b * (layerWeights + head) + L * b * 4 * S * q
            return (bytes / bw, flops / peak)
        }
        func step(_ S: Double) -> Double { let l = limits(S); return max(l.memory, l.compute) }
        let steps = (1..<newTokens).map { step(Double(P + $0)) }.reduce(0, +)
        let rows = b * Double(P)
        let prefill = max(w * layerWeights / bw, 2 * rows * layerWeights / peak) + max(w * head / bw, 2 * b * head / peak)
        stepTokensPerSecond = b * Double(newTokens - 1) / steps
        wholeTokensPerSecond = b * Double(newTokens) / (prefill + steps)
        let weightsMB = w * (layerWeights + head) / 1e6
        let middle = limits(Double(P + newTokens / 2))
        note = "\(fmt(weightsMB, 0, 0)) MB of weights per step; a step is "
            + (middle.compute > middle.memory ? "compute-bound" : "bandwidth-bound")
    }
}
