import RealModule

// Fused losses over logits [N, V]: one pass computes each row's log-sum-exp, the backward writes
// softmax minus one-hot directly, so the [N, V] log-probabilities are never materialized.

/// Token ids below zero (such as -100, the Hugging Face convention) are ignored by the losses.
public let ignoreIndex: Int32 = -100

/// For each row of `x` (`[N, V]`) whose target is not negative: its log-sum-exp into `lse[r]` and
/// log softmax(x)[target] into `out[r]`; rows with a negative target get `out[r] = 0`.
func targetLogProbs(_ x: UnsafePointer<Float>, N: Int, V: Int, targets: [Int32], lse: UnsafeMutablePointer<Float>,
                    out: UnsafeMutablePointer<Float>, op: StaticString) {
    targets.withUnsafeBufferPointer { tp in
        nonisolated(unsafe) let tp = tp
        parallelFor(N, grain: rowGrain(V)) { _, lo, hi in
            for r in lo..<hi {
                let t = Int(tp[r])
                precondition(t < V, "\(op): target \(t) outside vocabulary of \(V)")
                guard t >= 0 else { out[r] = 0; continue }
                let l = logSumExpRow(x + r &* V, V)
                lse[r] = l
                out[r] = x[r &* V &+ t] - l
            }
        }
    }
}

/// The backward of a per-row log-probability: for each row with a target, d[r, :] += c_r·(onehot − softmax);
/// rows with a negative target get nothing (zeros when `d` is fresh).
func targetLogProbsBackward(_ x: UnsafePointer<Float>, N: Int, V: Int, targets: [Int32], lse: UnsafePointer<Float>,
                            coefficient: (Int) -> Float, into d: UnsafeMutablePointer<Float>, accumulate: Bool) {
    withoutActuallyEscaping(coefficient) { coefficient in
        nonisolated(unsafe) let coefficient = coefficient
        targets.withUnsafeBufferPointer { tp in
            nonisolated(unsafe) let tp = tp
            parallelFor(N, grain: rowGrain(V)) { _, lo, hi in
                for r in lo..<hi {
                    let dr = d + r &* V, xr = x + r &* V
                    let t = Int(tp[r])
                    if t < 0 {
                        if !accumulate { dr.update(repeating: 0, count: V) }
                        continue
                    }
                    let l = lse[r], c = coefficient(r)
                    var j = 0
                    if accumulate {
                        while j < V { dr[j] -= fastExp(xr[j] - l) * c; j &+= 1 }
                    } else {
                        while j < V { dr[j] = -fastExp(xr[j] - l) * c; j &+= 1 }
                    }
                    dr[t] += c
                }
            }
        }
    }
}

/// Mean cross-entropy of `logits` `[..., V]` against `targets` (one id per row), over the rows
/// whose target is not negative. No valid rows gives 0 (and a zero gradient), not NaN.
public func crossEntropy(logits: Tensor, targets: [Int32]) -> Tensor {
    let V = logits.lastDim, N = logits.count / Swift.max(V, 1)
    precondition(targets.count == N, "crossEntropy: \(targets.count) targets for logits \(logits.shape)")
    let lses = Tensor(uninitialized: [N]), logps = Tensor(uninitialized: [N])
    targetLogProbs(logits.data, N: N, V: V, targets: targets, lse: lses.data, out: logps.data, op: "crossEntropy")
    var total: Double = 0, count = 0
    for r in 0..<N where targets[r] >= 0 {
        total -= Double(logps.data[r])
        count += 1
    }
    let out = Tensor(scalar: count == 0 ? 0 : Float(total / Double(count)))
    record(out, inputs: [logits]) { _, g in
        let (dx, acc) = logits.gradBuffer()
        let scale = count == 0 ? 0 : g.data[0] / Float(count)
        targetLogProbsBackward(logits.data, N: N, V: V, targets: targets, lse: lses.data, coefficient: { _ in -scale },
                               into: dx, accumulate: acc)
    }
    return out
}

/// log softmax(logits)[id] for each row of `logits` `[..., V]`: the per-token log-probabilities of
/// the given ids, shaped like the leading dimensions. A negative id gives 0 and no gradient.
public func gatherLogProbs(logits: Tensor, ids: [Int32]) -> Tensor {
    let V = logits.lastDim, N = logits.count / Swift.max(V, 1)
    precondition(ids.count == N, "gatherLogProbs: \(ids.count) ids for logits \(logits.shape)")
    let out = Tensor(uninitialized: Array(logits.shape.dropLast()))
    let lses = Tensor(uninitialized: [N])
    targetLogProbs(logits.data, N: N, V: V, targets: ids, lse: lses.data, out: out.data, op: "gatherLogProbs")
    record(out, inputs: [logits]) { _, g in
        let (dx, acc) = logits.gradBuffer()
        let gp = g.data
        targetLogProbsBackward(logits.data, N: N, V: V, targets: ids, lse: lses.data, coefficient: { gp[$0] },
                               into: dx, accumulate: acc)
    }
    return out
}
