import COpenBLAS
import Dispatch
import Foundation

/// Thread settings shared by the BLAS library and Rein's own kernels.
public enum Threads {
    nonisolated(unsafe) private static var kernelThreads = ProcessInfo.processInfo.activeProcessorCount

    /// Threads used by Rein's row-parallel kernels (elementwise, norms, attention softmax).
    public static var count: Int { kernelThreads }

    /// Sets both OpenBLAS's thread count and the kernels' (at least 1).
    public static func set(_ n: Int) {
        let n = max(1, n)
        kernelThreads = n
        openblas_set_num_threads(Int32(n))
    }

    /// Threads OpenBLAS uses.
    public static var blasThreads: Int { Int(openblas_get_num_threads()) }

    /// The OpenBLAS kernel family in use (`Haswell`, `SkylakeX`, ...).
    public static var blasCoreName: String { String(cString: openblas_get_corename()) }

    /// OpenBLAS build configuration string.
    public static var blasConfig: String { String(cString: openblas_get_config()) }

    /// Whether this CPU supports AVX-512F (read from /proc/cpuinfo on Linux).
    public static var cpuHasAVX512: Bool { cpuFlags.contains("avx512f") }

    /// Whether this CPU supports AVX2.
    public static var cpuHasAVX2: Bool { cpuFlags.contains("avx2") }

    private static let cpuFlags: Set<Substring> = {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " "))
    }()

    /// A warning when OpenBLAS runs kernels below what the CPU supports, typically because the
    /// `OPENBLAS_CORETYPE` environment variable forces them; nil when all is well.
    public static var blasCoreWarning: String? {
        let core = blasCoreName.lowercased()
        let forced = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"]
        let avx512Cores = ["skylakex", "cooperlake", "sapphirerapids"]
        if cpuHasAVX512 && !avx512Cores.contains(core) {
            let cause = forced.map { "OPENBLAS_CORETYPE=\($0) forces it" } ?? "OpenBLAS chose it"
            return "OpenBLAS uses \(blasCoreName) kernels on a CPU with AVX-512 (\(cause)); matmuls run "
                + "at about half speed. Unset OPENBLAS_CORETYPE (env -u OPENBLAS_CORETYPE ...)."
        }
        if let forced, !cpuHasAVX512, cpuHasAVX2, !["haswell", "zen"].contains(core) {
            return "OPENBLAS_CORETYPE=\(forced) forces \(blasCoreName) kernels on a CPU with AVX2."
        }
        return nil
    }
}

/// How many chunks ``parallelFor(_:grain:_:)`` splits `n` items into.
@inline(__always)
func workerCount(_ n: Int, grain: Int) -> Int {
    max(1, min(Threads.count, n / max(grain, 1)))
}

/// Splits `0..<n` into contiguous chunks run on the kernel threads when there are at least
/// `2 * grain` items; `body(chunk, lo, hi)` handles one chunk (chunks are numbered from 0 to
/// `workerCount(n, grain:) - 1`).
@inline(__always)
func parallelFor(_ n: Int, grain: Int, _ body: (Int, Int, Int) -> Void) {
    let workers = workerCount(n, grain: grain)
    if workers <= 1 {
        if n > 0 { body(0, 0, n) }
        return
    }
    withoutActuallyEscaping(body) { body in
        nonisolated(unsafe) let run = body
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            run(w, n &* w / workers, n &* (w &+ 1) / workers)
        }
    }
}

/// Elements per chunk below which a kernel stays on one thread.
let elementGrain = 1 << 16
