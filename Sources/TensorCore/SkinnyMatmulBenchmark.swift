import Foundation

extension CoreBenchmark {
    /// This machine's streaming read bandwidth in GB/s right now: slices of `sliceMegabytes` of a
    /// buffer of `megabytes` (far beyond the caches, so every slice is cold when read), each slice
    /// summed by every kernel thread at once (four independent vector accumulators) and timed as one
    /// call, the median over `repeats` passes of every slice. A slice is about one decoding weight
    /// matrix, so on a shared machine the limit is timed at the grain the kernels are (one long
    /// timing takes the machine's share of the cores over the whole read, and came out below what
    /// single products read).
    public static func readBandwidth(megabytes: Int = 512, repeats: Int = 9, sliceMegabytes: Int = 8) -> Double {
        let n = megabytes << 18   // floats
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { buffer.deallocate() }
        buffer.update(repeating: 1, count: n)   // touch every page before timing
        let threads = Threads.count
        let sums = UnsafeMutablePointer<Float>.allocate(capacity: threads)
        defer { sums.deallocate() }
        let slice = Swift.min(sliceMegabytes << 18, n), slices = n / slice
        let blocks = slice / 32
        var times: [Double] = []
        for pass in 0...repeats {   // pass 0 warms up
            for s in 0..<slices {
                let start = buffer + s &* slice
                let t = time {
                    parallelFor(blocks, grain: 1) { c, lo, hi in
                        var a0 = SIMD8<Float>(), a1 = a0, a2 = a0, a3 = a0
                        var p = start + lo &* 32
                        let end = start + hi &* 32
                        while p < end {
                            a0 += loadVector(p, SIMD8<Float>.self); a1 += loadVector(p + 8, SIMD8<Float>.self)
                            a2 += loadVector(p + 16, SIMD8<Float>.self); a3 += loadVector(p + 24, SIMD8<Float>.self)
                            p += 32
                        }
                        sums[c] = ((a0 + a1) + (a2 + a3)).sum()
                    }
                }
                if pass > 0 { times.append(t) }
            }
        }
        return Double(slice * 4) / medianOf(times) * 1e-9
    }

    /// One few-row product shape: X[m×k]·Wᵀ with W `[n, k]`, the few-row kernel against BLAS.
    public struct SkinnyResult: Sendable {
        /// Rows of X, inner dimension, output columns.
        public let m: Int, k: Int, n: Int
        /// Median seconds of ``skinnyMatmul(m:n:k:_:ldx:_:layout:bias:_:ldy:)``.
        public let kernelSeconds: Double
        /// Median seconds of the BLAS call `linear` makes: `cblas_sgemm` (`cblas_sgemv` when m is 1).
        public let blasSeconds: Double
        /// Bytes of weights one product reads.
        public var weightBytes: Double { Double(k) * Double(n) * 4 }
        /// Floating-point operations of one product.
        public var flops: Double { 2 * Double(m) * Double(k) * Double(n) }
    }

    /// X[m×k]·Wᵀ through the few-row kernel and through BLAS, interleaved so both see the same
    /// machine state. Each call reads a different copy of W, the copies together at least
    /// `coldMegabytes`, so weights come from memory as they do in a decoding step (a 768×768
    /// weight alone would stay in the last-level cache and flatter both sides).
    public static func skinny(m: Int, k: Int, n: Int, repeats: Int, coldMegabytes: Int = 256) -> SkinnyResult {
        let size = k * n
        let copies = Swift.max(2, (coldMegabytes << 18) / size)
        let weights = UnsafeMutablePointer<Float>.allocate(capacity: copies * size)
        defer { weights.deallocate() }
        var rng = RNG(seed: 4)
        let pattern = Tensor.randn([4096], std: 0.02, rng: &rng)
        var i = 0
        while i < copies * size { (weights + i).update(from: pattern.data, count: Swift.min(4096, copies * size - i)); i += 4096 }
        let x = Tensor.randn([m, k], rng: &rng)
        let y = Tensor(uninitialized: [m, n])
        var next = 0
        func weight() -> UnsafePointer<Float> { defer { next = (next + 1) % copies }; return UnsafePointer(weights + next * size) }
        func kernel() { skinnyMatmul(m: m, n: n, k: k, x.data, ldx: k, weight(), layout: .outputMajor, bias: nil, y.data, ldy: n) }
        func blas() { sgemm(false, true, m, n, k, x.data, k, weight(), k, beta: 0, y.data, n) }
        for _ in 0..<Swift.min(copies, 8) { kernel(); blas() }
        var kernelTimes: [Double] = [], blasTimes: [Double] = []
        for _ in 0..<repeats {
            kernelTimes.append(time(kernel))
            blasTimes.append(time(blas))
        }
        return SkinnyResult(m: m, k: k, n: n, kernelSeconds: medianOf(kernelTimes), blasSeconds: medianOf(blasTimes))
    }
}
