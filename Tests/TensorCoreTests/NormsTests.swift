import Foundation
import Testing
import TensorCore

@Suite struct NormsTests {
    @Test(arguments: [1, 2, 3] as [UInt64])
    func layerNormGradients(seed: UInt64) {
        var rng = RNG(seed: seed)
        let x = param([3, 6], &rng), w = param([6], &rng), b = param([6], &rng)
        checkGradients([x, w, b]) { layerNorm(x, weight: w, bias: b) }
        checkGradients([x, w]) { layerNorm(x, weight: w, bias: nil) }
    }

    @Test(arguments: [1, 2, 3] as [UInt64])
    func rmsNormGradients(seed: UInt64) {
        var rng = RNG(seed: seed)
        let x = param([2, 2, 5], &rng), w = param([5], &rng)
        checkGradients([x, w]) { rmsNorm(x, weight: w, eps: 1e-6) }
    }

    @Test func normValues() {
        var rng = RNG(seed: 4)
        let (N, C) = (5, 9)
        let x = Tensor.randn([N, C], mean: 3, std: 2, rng: &rng)
        let w = Tensor.randn([C], rng: &rng), b = Tensor.randn([C], rng: &rng)
        var ln = [Float](), rms = [Float]()
        let xv = x.values.map(Double.init), wv = w.values.map(Double.init), bv = b.values.map(Double.init)
        for r in 0..<N {
            let row = Array(xv[(r * C)..<(r * C + C)])
            let mean = row.reduce(0, +) / Double(C)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(C)
            ln += (0..<C).map { Float((row[$0] - mean) / (variance + 1e-5).squareRoot() * wv[$0] + bv[$0]) }
            let ms = row.reduce(0) { $0 + $1 * $1 } / Double(C)
            rms += (0..<C).map { Float(row[$0] / (ms + 1e-5).squareRoot() * wv[$0]) }
        }
        expectClose(layerNorm(x, weight: w, bias: b).values, ln, tol: 2e-6, "layerNorm")
        expectClose(rmsNorm(x, weight: w).values, rms, tol: 2e-6, "rmsNorm")
    }

    @Test func parallelRowsMatchSerialRows() {
        // Enough rows to split across threads; the parameter gradients sum per-chunk partials.
        var rng = RNG(seed: 5)
        let x = Tensor.randn([4096, 64], rng: &rng, requiresGrad: true)
        let w = Tensor.randn([64], rng: &rng, requiresGrad: true), b = Tensor.randn([64], rng: &rng, requiresGrad: true)
        let g = Tensor.randn([4096, 64], rng: &rng)
        (layerNorm(x, weight: w, bias: b) * g).sum().backward()
        // Reference: the same rows one at a time.
        var dw = [Double](repeating: 0, count: 64), db = dw
        for r in 0..<4096 {
            let xr = x.slice(axis: 0, r..<(r + 1)).detached(), gr = g.slice(axis: 0, r..<(r + 1))
            let wr = w.detached(), br = b.detached()
            let wl = Tensor(shape: [64], values: wr.values, requiresGrad: true)
            let bl = Tensor(shape: [64], values: br.values, requiresGrad: true)
            (layerNorm(xr, weight: wl, bias: bl) * gr).sum().backward()
            for j in 0..<64 { dw[j] += Double(wl.grad!.data[j]); db[j] += Double(bl.grad!.data[j]) }
        }
        expectClose(w.grad!.values, dw.map(Float.init), tol: 1e-4, "dweight")
        expectClose(b.grad!.values, db.map(Float.init), tol: 1e-4, "dbias")
    }
}
