import Testing
import TensorCore

/// Central-difference gradient check.
///
/// The loss is L = Σ f() ⊙ R for a fixed random R, so every output element's gradient is tested.
/// Analytic gradients come from `backward()`; numeric ones from (L(x+ε) - L(x-ε)) / 2ε with L summed in
/// Double. Every element of every input is perturbed (tests keep tensors small).
/// Returns the worst violation ratio |a - n| / (atol + rtol·|n|), which must be <= 1.
@discardableResult
func checkGradients(_ inputs: [Tensor], seed: UInt64 = 99, eps: Float = 1e-2, atol: Float = 2e-3,
                    rtol: Float = 1e-2, sourceLocation: SourceLocation = #_sourceLocation,
                    _ f: () -> Tensor) -> Float {
    for x in inputs {
        x.zeroGrad()
        x.setRequiresGrad()
    }
    var rng = RNG(seed: seed)
    let probe = f()
    let weights = Tensor.randn(probe.shape, rng: &rng)
    (probe * weights).sum().backward()
    let analytic = inputs.map { $0.grad?.values ?? [Float](repeating: 0, count: $0.count) }

    func loss() -> Double {
        Autograd.withoutGrad {
            let y = f()
            var s = 0.0
            for i in 0..<y.count { s += Double(y.data[i]) * Double(weights.data[i]) }
            return s
        }
    }
    var worst: Float = 0
    var worstAt = ""
    for (k, x) in inputs.enumerated() {
        for i in 0..<x.count {
            let saved = x.data[i]
            x.data[i] = saved + eps
            let plus = loss()
            x.data[i] = saved - eps
            let minus = loss()
            x.data[i] = saved
            let numeric = Float((plus - minus) / Double(2 * eps))
            let ratio = abs(analytic[k][i] - numeric) / (atol + rtol * abs(numeric))
            if ratio > worst {
                worst = ratio
                worstAt = "input \(k) \(x.shape) element \(i): analytic \(analytic[k][i]), numeric \(numeric)"
            }
        }
    }
    #expect(worst <= 1, "gradient mismatch at \(worstAt)", sourceLocation: sourceLocation)
    return worst
}

/// A random tensor that requires a gradient.
func param(_ shape: [Int], _ rng: inout RNG, std: Float = 1) -> Tensor {
    Tensor.randn(shape, std: std, rng: &rng, requiresGrad: true)
}

/// Asserts two float arrays agree within `tol` (absolute + relative).
func expectClose(_ a: [Float], _ b: [Float], tol: Float = 1e-5, _ what: String = "",
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.count == b.count, "\(what): \(a.count) vs \(b.count) elements", sourceLocation: sourceLocation)
    var worst: Float = 0, at = 0
    for i in 0..<min(a.count, b.count) {
        let e = abs(a[i] - b[i]) / (1 + abs(b[i]))
        if e > worst || e.isNaN { worst = e.isNaN ? .infinity : e; at = i }
    }
    #expect(worst <= tol, "\(what): element \(at) is \(a.isEmpty ? 0 : a[at]), expected \(b.isEmpty ? 0 : b[at])",
            sourceLocation: sourceLocation)
}
