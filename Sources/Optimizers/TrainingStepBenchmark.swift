import TensorCore

/// The MLP training step of `rein bench core`: the tensor core and AdamW together.
public enum TrainingStepBenchmark {
    /// Median milliseconds of one step (forward, cross-entropy, backward, gradient clipping, AdamW,
    /// zeroing) of a GELU MLP `inputs -> width x layers -> classes` on a batch of `batch` rows, its
    /// parameters in one arena.
    public static func mlpStep(batch: Int, inputs: Int, width: Int, layers: Int, classes: Int, repeats: Int) -> Double {
        var rng = RNG(seed: 3)
        let arena = ParameterArena()
        let dims = [inputs] + Array(repeating: width, count: layers) + [classes]
        var weights: [Tensor] = [], biases: [Tensor] = []
        for i in 0..<(dims.count - 1) {
            let w = arena.add(name: "layers.\(i).weight", shape: [dims[i + 1], dims[i]])
            let std = 1 / Float(dims[i]).squareRoot()
            for j in 0..<w.count { w.data[j] = std * rng.normal() }
            weights.append(w)
            biases.append(arena.add(name: "layers.\(i).bias", shape: [dims[i + 1]]))
        }
        let optimizer = AdamW(arena: arena, learningRate: 1e-3, weightDecay: 0.1, decayFilter: .matricesOnly)
        let x = Tensor.randn([batch, inputs], rng: &rng)
        let targets = (0..<batch).map { _ in Int32(rng.int(below: classes)) }
        let seconds = CoreBenchmark.median(repeats: repeats) {
            var h = x
            for i in weights.indices {
                h = linear(h, weight: weights[i], bias: biases[i])
                if i < weights.count - 1 { h = gelu(h) }
            }
            crossEntropy(logits: h, targets: targets).backward()
            arena.clipGradNorm(maxNorm: 1)
            optimizer.step()
            arena.zeroGrad()
        }
        return seconds * 1e3
    }
}
