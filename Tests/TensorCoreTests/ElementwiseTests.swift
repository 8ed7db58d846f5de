import Foundation
import Testing
import TensorCore

/// Random small shapes from a seed: rank 1 to 3, dimensions 1 to 5.
func randomShape(_ rng: inout RNG) -> [Int] {
    (0..<(1 + rng.int(below: 3))).map { _ in 1 + rng.int(below: 5) }
}

@Suite struct ElementwiseGradients {
    @Test(arguments: [1, 2, 3] as [UInt64])
    func smoothUnaryOps(seed: UInt64) {
        var rng = RNG(seed: seed)
        let shape = randomShape(&rng)
        let x = param(shape, &rng)
        checkGradients([x]) { exp(x) }
        checkGradients([x]) { tanh(x) }
        checkGradients([x]) { sigmoid(x) }
        checkGradients([x]) { logSigmoid(x * 3) }
        checkGradients([x]) { gelu(x) }
        checkGradients([x]) { silu(x) }
        checkGradients([x]) { -x * 2.5 + 1 }
        checkGradients([x]) { 1 - x / 4 }
        let positive = Tensor.uniform(shape, 0.5, 2, rng: &rng, requiresGrad: true)
        checkGradients([positive]) { log(positive) }
        checkGradients([positive]) { sqrt(positive) }
    }

    @Test(arguments: [4, 5] as [UInt64])
    func kinkedUnaryOps(seed: UInt64) {
        // Inputs kept 0.1 away from the kinks so central differences are exact.
        var rng = RNG(seed: seed)
        let values = (0..<12).map { _ in (rng.uniform() < 0.5 ? -1 : 1) * rng.uniform(0.1, 2) }
        let x = Tensor(shape: [3, 4], values: values, requiresGrad: true)
        checkGradients([x]) { relu(x) }
        // Clamp bounds placed between the values, never within ε of one.
        let near = values.map { abs(abs($0) - 1) < 0.05 ? $0 * 1.2 : $0 }
        let y = Tensor(shape: [3, 4], values: near, requiresGrad: true)
        checkGradients([y]) { clamp(y, min: -1, max: 1) }
    }
}

@Suite struct ElementwiseValues {
    @Test func activationsMatchDoubleFormulas() {
        let xs: [Float] = stride(from: -12, through: 12, by: 0.37).map { Float($0) }
        let x = Tensor(shape: [xs.count], values: xs)
        func ref(_ f: (Double) -> Double) -> [Float] { xs.map { Float(f(Double($0))) } }
        expectClose(exp(x).values, ref { Foundation.exp($0) }, tol: 1e-6, "exp")
        expectClose(tanh(x).values, ref { Foundation.tanh($0) }, tol: 1e-6, "tanh")
        expectClose(sigmoid(x).values, ref { 1 / (1 + Foundation.exp(-$0)) }, tol: 1e-6, "sigmoid")
        expectClose(logSigmoid(x).values, ref { -Foundation.log1p(Foundation.exp(-$0)) }, tol: 1e-6, "logSigmoid")
        expectClose(silu(x).values, ref { $0 / (1 + Foundation.exp(-$0)) }, tol: 1e-6, "silu")
        expectClose(relu(x).values, ref { max($0, 0) }, tol: 0, "relu")
        // GPT-2's gelu_new: 0.5 x (1 + tanh(√(2/π)(x + 0.044715 x³))).
        expectClose(gelu(x).values, ref { 0.5 * $0 * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * ($0 + 0.044715 * $0 * $0 * $0))) },
                    tol: 1e-6, "gelu")
        expectClose(clamp(x, min: -1, max: 2).values, ref { min(max($0, -1), 2) }, tol: 0, "clamp")
    }

    @Test func extremeInputsStayFinite() {
        let x = Tensor(shape: [6], values: [-1e4, -100, -88, 88, 100, 1e4])
        for (name, y) in [("sigmoid", sigmoid(x)), ("tanh", tanh(x)), ("gelu", gelu(x)), ("silu", silu(x)), ("logSigmoid", logSigmoid(x))] {
            #expect(y.values.allSatisfy { $0.isFinite }, "\(name) of extreme inputs: \(y.values)")
        }
        #expect(sigmoid(x).values == [0, 0, 0, 1, 1, 1].map { Float($0) } || sigmoid(x).values.first! < 1e-30)
        #expect(gelu(x).values.last == 1e4)
    }
}
