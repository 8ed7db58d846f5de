import ArgumentParser
import Foundation
import Optimizers
import TensorCore

/// `rein bench ...`: speed measurements. Quote medians and ratios.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure Rein's speed on this machine.",
        discussion: """
        Run with the environment a user has: on a machine whose environment forces OpenBLAS kernels \
        (OPENBLAS_CORETYPE), prefix with `env -u OPENBLAS_CORETYPE`.
        """,
        subcommands: [BenchCore.self, BenchModels.self, BenchTrain.self, BenchRL.self, BenchDecode.self, BenchDP.self]
    )
}

/// Shared bench options.
struct BenchOptions: ParsableArguments {
    @Option(help: "Threads for OpenBLAS and Rein's kernels (default: all cores).")
    var threads: Int?

    @Flag(help: "Fewer repetitions, for a quick look.")
    var quick = false

    func apply() {
        Threads.set(threads ?? ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Prints the OpenBLAS core and threads, and the warning when the core is below the CPU's.
    func printHeader() {
        print("OpenBLAS core: \(Threads.blasCoreName), threads: \(Threads.blasThreads) (BLAS), \(Threads.count) (kernels)")
        print("CPU: AVX-512 \(Threads.cpuHasAVX512 ? "yes" : "no"), AVX2 \(Threads.cpuHasAVX2 ? "yes" : "no")")
        if let warning = Threads.blasCoreWarning { print("WARNING: \(warning)") }
    }
}

struct BenchCore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "core",
        abstract: "Tensor core: matmul GFLOP/s against raw cblas_sgemm, kernel ns/element, an MLP step."
    )

    @OptionGroup var options: BenchOptions

    func run() throws {
        options.apply()
        options.printHeader()
        let repeats = options.quick ? 5 : 15
        print("")
        print("matmul (M x K x N)        core GFLOP/s   raw sgemm GFLOP/s   core/raw")
        for (m, k, n) in [(256, 256, 256), (1024, 1024, 1024), (4096, 768, 768), (4096, 768, 3072)] {
            let r = CoreBenchmark.matmul(m: m, k: k, n: n, repeats: m == 256 ? repeats * 20 : repeats)
            let label = "\(m) x \(k) x \(n)".padding(toLength: 24, withPad: " ", startingAt: 0)
            print("\(label)  \(fmt(r.coreGflops, 12, 1))   \(fmt(r.rawGflops, 17, 1))   \(fmt(r.coreGflops / r.rawGflops, 8, 3))")
        }

        print("")
        print("forward+backward, 16M elements   ns/element (1 thread)   ns/element (\(Threads.count) threads)")
        let shape = [16_384, 1024]
        var rng = RNG(seed: 4)
        let w = Tensor.randn([1024], rng: &rng), b = Tensor.randn([1024], rng: &rng)
        let kernels: [(String, (Tensor) -> Tensor)] = [
            ("gelu", { gelu($0) }),
            ("softmax (rows of 1024)", { softmax($0) }),
            ("layerNorm (rows of 1024)", { layerNorm($0, weight: w, bias: b) }),
        ]
        let threads = Threads.count
        for (name, op) in kernels {
            Threads.set(1)
            let one = CoreBenchmark.kernelNanosPerElement(shape: shape, repeats: repeats, op)
            Threads.set(threads)
            let many = CoreBenchmark.kernelNanosPerElement(shape: shape, repeats: repeats, op)
            print("\(name.padding(toLength: 32, withPad: " ", startingAt: 0)) \(fmt(one, 22, 3))   \(fmt(many, 22, 3))")
        }

        print("")
        let ms = TrainingStepBenchmark.mlpStep(batch: 256, inputs: 784, width: 1024, layers: 2, classes: 10, repeats: repeats)
        print("MLP training step (784-1024-1024-10, GELU, batch 256; forward, cross-entropy, backward, clip, AdamW):")
        print("  \(fmt(ms, 0, 2)) ms median (\(fmt(6 * 256 * (784.0 * 1024 + 1024 * 1024 + 1024 * 10) / (ms * 1e-3) * 1e-9, 0, 1)) GFLOP/s of matmul work)")
    }
}

/// A number right-aligned in `width` columns with `decimals` decimals.
func fmt(_ x: Double, _ width: Int, _ decimals: Int) -> String {
    let s = String(format: "%.\(decimals)f", x)
    return s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
}
