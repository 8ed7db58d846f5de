import Foundation

extension CoreBenchmark {
    /// One few-row product shape at a lower precision against the fp32 few-row kernel.
    public struct LowPrecisionResult: Sendable {
        /// Rows of X, inner dimension, output columns.
        public let m: Int, k: Int, n: Int
        public let precision: WeightPrecision
        /// Median seconds of ``lowPrecisionMatmul(m:_:ldx:_:bias:_:ldy:)``.
        public let seconds: Double
        /// Median seconds of the fp32 few-row kernel on the same shape.
        public let fp32Seconds: Double
        /// Bytes of weights one low-precision product reads.
        public var weightBytes: Double { Double(k) * Double(n) * precision.bytesPerWeight }
    }

    /// X[m×k]·Wᵀ with W `[n, k]` stored at `precision`, against the fp32 kernel, interleaved; each
    /// call reads a different copy of W (at least `coldMegabytes` of fp32 copies, and as many
    /// low-precision copies), so weights come from memory as in a decoding step.
    public static func lowPrecision(m: Int, k: Int, n: Int, precision: WeightPrecision, repeats: Int,
                                    coldMegabytes: Int = 256) -> LowPrecisionResult {
        let size = k * n
        let copies = Swift.max(2, (coldMegabytes << 18) / size)
        var rng = RNG(seed: 4)
        let w = Tensor.randn([n, k], std: 0.02, rng: &rng)
        let fp32 = UnsafeMutablePointer<Float>.allocate(capacity: copies * size)
        defer { fp32.deallocate() }
        for c in 0..<copies { (fp32 + c * size).update(from: w.data, count: size) }
        let stored = (0..<copies).map { _ in LowPrecisionMatrix(w, precision: precision) }
        let x = Tensor.randn([m, k], rng: &rng)
        let y = Tensor(uninitialized: [m, n])
        var next = 0
        func kernel() {
            lowPrecisionMatmul(m: m, x.data, ldx: k, stored[next], bias: nil, y.data, ldy: n)
            next = (next + 1) % copies
        }
        func reference() {
            skinnyMatmul(m: m, n: n, k: k, x.data, ldx: k, fp32 + next * size, layout: .outputMajor, bias: nil, y.data, ldy: n)
            next = (next + 1) % copies
        }
        for _ in 0..<Swift.min(copies, 8) { kernel(); reference() }
        var times: [Double] = [], fp32Times: [Double] = []
        for _ in 0..<repeats {
            times.append(time(kernel))
            fp32Times.append(time(reference))
        }
        return LowPrecisionResult(m: m, k: k, n: n, precision: precision, seconds: medianOf(times), fp32Seconds: medianOf(fp32Times))
    }
}
