import Testing
@testable import TensorCore

@Suite struct LowPrecisionTests {
    // The products multiply by the stored (rounded) weights; checked against the exact (Double)
    // product over those dequantized weights with the float32 summation bound γ(k+1)·Σ|x·ŵ| (as
    // SkinnyMatmulTests does), so any tile, panel or thread split that drops or repeats a term fails.
    func check(_ precision: WeightPrecision, m: Int, n: Int, k: Int, bias withBias: Bool, seed: UInt64,
               sourceLocation: SourceLocation = #_sourceLocation) {
        var rng = RNG(seed: seed)
        let x = Tensor.randn([m, k], rng: &rng)
        let w = Tensor.randn([n, k], std: 0.05, rng: &rng)
        let bias = withBias ? Tensor.randn([n], rng: &rng) : nil
        let q = LowPrecisionMatrix(w, precision: precision)
        let wq = q.dequantized().values, xs = x.values
        var exact = [Double](repeating: 0, count: m * n), magnitude = exact
        for r in 0..<m {
            for j in 0..<n {
                var s = Double(bias?.values[j] ?? 0), a = abs(s)
                for i in 0..<k {
                    let p = Double(xs[r * k + i]) * Double(wq[j * k + i])
                    s += p
                    a += abs(p)
                }
                exact[r * n + j] = s
                magnitude[r * n + j] = a
            }
        }
        let gamma = Double(k + 1) * 0x1p-24 / (1 - Double(k + 1) * 0x1p-24)
        func expectWithinBound(_ y: [Float], _ what: String) {
            var worst = 0.0, at = 0
            for i in y.indices {
                let e = abs(Double(y[i]) - exact[i]) / (gamma * magnitude[i] + Double.leastNormalMagnitude)
                if e > worst || e.isNaN { worst = e.isNaN ? .infinity : e; at = i }
            }
            #expect(worst <= 1, "\(what) \(precision) m \(m) n \(n) k \(k): element \(at) is \(y[at]), exact \(exact[at])",
                    sourceLocation: sourceLocation)
        }
        let y = Tensor(shape: [m, n], repeating: .nan)
        lowPrecisionMatmul(m: m, x.data, ldx: k, q, bias: bias?.data, y.data, ldy: n)
        expectWithinBound(y.values, m > SkinnyMatmul.maxRows ? "tiles + sgemm" : "few-row")
        if m <= SkinnyMatmul.maxRows {
            for width in [8, 16] {
                let z = Tensor(shape: [m, n], repeating: .nan)
                if width == 8 {
                    lowPrecisionSkinny(SIMD8<Float>.self, m: m, x.data, ldx: k, q, bias: bias?.data, z.data, ldy: n)
                } else {
                    lowPrecisionSkinny(SIMD16<Float>.self, m: m, x.data, ldx: k, q, bias: bias?.data, z.data, ldy: n)
                }
                expectWithinBound(z.values, "SIMD\(width)")
            }
        }
    }

    @Test(arguments: [WeightPrecision.bf16, .q8_0])
    func productsMatchTheExactProductOfTheStoredWeights(_ precision: WeightPrecision) {
        var seed: UInt64 = 1
        for m in [1, 2, 3, 4, 5, 8, 13, 16, 17, 40] {
            for (n, k) in [(1, 32), (7, 96), (50, 64), (301, 800)] {
                check(precision, m: m, n: n, k: k, bias: seed % 2 == 0, seed: seed)
                seed += 1
            }
        }
        // Large enough to split over threads (several panels per chunk), and the sgemm tiles.
        check(precision, m: 8, n: 3001, k: 512, bias: true, seed: 99)
        check(precision, m: 24, n: 1100, k: 256, bias: false, seed: 98)
    }

    @Test func bf16RoundsToNearestEven() {
        var rng = RNG(seed: 3)
        let w = Tensor.randn([64, 96], rng: &rng)
        let q = LowPrecisionMatrix(w, precision: .bf16).dequantized().values
        for (a, b) in zip(w.values, q) {
            // 8 significant bits: the nearest bf16 is within half a unit in the last place, 2⁻⁸·|w|.
            #expect(abs(a - b) <= abs(a) * 0x1p-8, "\(a) -> \(b)")
        }
        #expect(HalfFloat.bf16Bits(from: 1 + 0x1p-8) == 0x3F80)          // tie to even: down
        #expect(HalfFloat.bf16Bits(from: 1 + 3 * 0x1p-8) == 0x3F82)      // tie to even: up
        #expect(HalfFloat.bf16Bits(from: -2.5) == 0xC020)
        #expect(HalfFloat.float(fromBF16: HalfFloat.bf16Bits(from: .nan)).isNaN)
    }

    @Test func q8_0KeepsTheBlockError() {
        var rng = RNG(seed: 5)
        let w = Tensor.randn([16, 128], rng: &rng)
        let q = LowPrecisionMatrix(w, precision: .q8_0).dequantized().values
        let ws = w.values
        for b in 0..<(ws.count / 32) {
            let block = ws[(b * 32)..<(b * 32 + 32)]
            let d = block.map(abs).max()! / 127
            // Rounding to the grid (d/2) plus the fp16 rounding of d (2⁻¹¹·d for each of 127 steps).
            for i in block.indices { #expect(abs(ws[i] - q[i]) <= d * (0.5 + 127 * 0x1p-11) * 1.0001, "block \(b): \(ws[i]) -> \(q[i])") }
        }
        // Multiples of an fp16-exact d are stored exactly (d = 0.5 here: the block's largest is 63.5).
        let grid = (0..<64).map { Float(($0 * 37) % 255 - 127) * 0.5 }
        let exact = Tensor(shape: [2, 32], values: grid)
        #expect(LowPrecisionMatrix(exact, precision: .q8_0).dequantized().values == grid)
        #expect(LowPrecisionMatrix(exact, precision: .q8_0).byteCount == 2 * 34)
    }

    @Test func q8_0IsTheGGUFBlock() {
        // The same 32 values through the GGUF reader's block dequantizer: fp16 d = 0.25, q = -3...27
        // and 127 (so the largest is 127·d and quantizing the values gives d again).
        let quants = (0..<32).map { $0 == 31 ? 127 : $0 - 3 }
        var block = [UInt8](repeating: 0, count: 34)
        block[0] = 0x00; block[1] = 0x34   // 0.25 in fp16, little-endian
        for j in 0..<32 { block[2 + j] = UInt8(bitPattern: Int8(quants[j])) }
        var out = [Float](repeating: 0, count: 32)
        block.withUnsafeBytes { src in out.withUnsafeMutableBufferPointer { GGMLBlocks.dequantizeQ8_0(src.baseAddress!, $0.baseAddress!, 1) } }
        let values = quants.map { Float($0) * 0.25 }
        #expect(out == values)
        let stored = LowPrecisionMatrix(Tensor(shape: [1, 32], values: values), precision: .q8_0).dequantized().values
        #expect(stored == values)
    }

    @Test func linearMatchesTheDequantizedLinear() {
        var rng = RNG(seed: 8)
        let x = Tensor.randn([2, 3, 64], rng: &rng)
        let w = Tensor.randn([40, 64], rng: &rng), b = Tensor.randn([40], rng: &rng)
        for precision in [WeightPrecision.bf16, .q8_0] {
            let q = LowPrecisionMatrix(w, precision: precision)
            let y = lowPrecisionLinear(x, weight: q, bias: b), r = linear(x, weight: q.dequantized(), bias: b)
            #expect(y.shape == [2, 3, 40])
            let worst = zip(y.values, r.values).map { abs($0 - $1) }.max()!
            #expect(worst < 1e-4, "\(precision): \(worst)")
        }
    }

    @Test func unknownPrecisionNamesTheKeyAndTheChoices() throws {
        #expect(throws: PrecisionError.unknown(key: "rollout_precision", value: "int4")) {
            try WeightPrecision.parse("int4", key: "rollout_precision")
        }
        #expect(PrecisionError.unknown(key: "rollout_precision", value: "int4").description
                == "rollout_precision: unknown precision \"int4\"; allowed: fp32, bf16, q8_0")
        #expect(try WeightPrecision.parse("q8_0", key: "k") == .q8_0)
    }
}
