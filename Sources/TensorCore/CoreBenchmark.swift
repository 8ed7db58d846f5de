import COpenBLAS
import Foundation

/// Measurements behind `rein bench core`: matmul through the core against raw `cblas_sgemm`,
/// elementwise and row kernels forward+backward. (The MLP training step lives with the optimizers.)
public enum CoreBenchmark {
    /// Median seconds of `body` over `repeats` runs after `warmup` runs.
    public static func median(repeats: Int, warmup: Int = 2, _ body: () -> Void) -> Double {
        for _ in 0..<warmup { body() }
        var times: [Double] = []
        for _ in 0..<repeats {
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9)
        }
        times.sort()
        return times[times.count / 2]
    }

    /// One matmul shape's result.
    public struct MatmulResult: Sendable {
        /// M, K, N of an (M×K)·(K×N) product.
        public let m: Int, k: Int, n: Int
        /// Median GFLOP/s through `matmul`, including output allocation.
        public let coreGflops: Double
        /// Median GFLOP/s of `cblas_sgemm` on preallocated buffers.
        public let rawGflops: Double
    }

    /// (M×K)·(K×N) through `matmul` and through raw `cblas_sgemm`, interleaved so both see the same
    /// machine state; each side's median over `repeats` runs.
    public static func matmul(m: Int, k: Int, n: Int, repeats: Int) -> MatmulResult {
        var rng = RNG(seed: 1)
        let a = Tensor.randn([m, k], rng: &rng), b = Tensor.randn([k, n], rng: &rng)
        let c = Tensor(uninitialized: [m, n])
        let flops = 2 * Double(m) * Double(k) * Double(n)
        func raw() {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a.data, Int32(k),
                        b.data, Int32(n), 0, c.data, Int32(n))
        }
        func core() { _ = TensorCore.matmul(a, b) }
        for _ in 0..<2 { raw(); core() }
        var rawTimes: [Double] = [], coreTimes: [Double] = []
        for _ in 0..<repeats {
            rawTimes.append(time(raw))
            coreTimes.append(time(core))
        }
        return MatmulResult(m: m, k: k, n: n, coreGflops: flops / medianOf(coreTimes) * 1e-9,
                            rawGflops: flops / medianOf(rawTimes) * 1e-9)
    }

    /// Nanoseconds per element of forward + backward of `op` on `shape` (median).
    public static func kernelNanosPerElement(shape: [Int], repeats: Int, _ op: (Tensor) -> Tensor) -> Double {
        var rng = RNG(seed: 2)
        let x = Tensor.randn(shape, rng: &rng, requiresGrad: true)
        let g = Tensor.randn(shape, rng: &rng)
        let seconds = median(repeats: repeats) {
            x.zeroGrad()
            op(x).backward(gradient: g)
        }
        return seconds * 1e9 / Double(x.count)
    }

    static func time(_ body: () -> Void) -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
    }

    static func medianOf(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }
}
