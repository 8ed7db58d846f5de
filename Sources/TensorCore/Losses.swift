import RealModule

// Fused losses over logits [N, V]: one pass computes each row's log-sum-exp, the backward writes
// softmax minus one-hot directly, so the [N, V] log-probabilities are never materialized.

/// Token ids below zero (such as -100, the Hugging Face convention) are ignored by the losses.
public let ignoreIndex: Int32 = -100

/// Mean cross-entropy of `logits` `[..., V]` against `targets` (one id per row), over the rows
/// whose target is not negative. No valid rows gives 0 (and a zero gradient), not NaN.
public func crossEntropy(logits: Tensor, targets: [Int32]) -> Tensor {
    let V = logits.lastDim, N = logits.count / Swift.max(V, 1)
    precondition(targets.count == N, "crossEntropy: \(targets.count) targets for logits \(logits.shape)")
    let lses = Tensor(uninitialized: [N])
    let xp = logits.data, lp = lses.data
    let perRow = Tensor(uninitialized: [N])
    let rp = perRow.data
    var valid = 0
    targets.withUnsafeBufferPointer { tp in
        nonisolated(unsafe) let tp = tp
        parallelFor(N, grain: rowGrain(V)) { _, lo, hi in
            for r in lo..<hi {
                let t = Int(tp[r])
                precondition(t < V, "crossEntropy: target \(t) outside vocabulary of \(V)")
                guard t >= 0 else { rp[r] = 0; continue }
                let lse = logSumExpRow(xp + r &* V, V)
                lp[r] = lse
                rp[r] = lse - xp[r &* V &+ t]
            }
        }
        for r in 0..<N where tp[r] >= 0 { valid += 1 }
    }
    var total: Double = 0
    for r in 0..<N where targets[r] >= 0 { total += Double(rp[r]) }
    let count = valid
    let out = Tensor(scalar: count == 0 ? 0 : Float(total / Double(count)))
    record(out, inputs: [logits]) { _, g in
        let (dx, acc) = logits.gradBuffer()
        let xp = logits.data, lp = lses.data
        let scale = count == 0 ? 0 : g.data[0] / Float(count)
        targets.withUnsafeBufferPointer { tp in
            nonisolated(unsafe) let tp = tp
            parallelFor(N, grain: rowGrain(V)) { _, lo, hi in
                for r in lo..<hi {
                    let d = dx + r &* V, x = xp + r &* V
                    let t = Int(tp[r])
                    if t < 0 {
                        if !acc { d.update(repeating: 0, count: V) }
                        continue
                    }
                    let lse = lp[r]
                    var j = 0
                    if acc {
                        while j < V { d[j] += fastExp(x[j] - lse) * scale; j &+= 1 }
                    } else {
                        while j < V { d[j] = fastExp(x[j] - lse) * scale; j &+= 1 }
                    }
                    d[t] -= scale
                }
            }
        }
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
    let xp = logits.data, op = out.data, lp = lses.data
    ids.withUnsafeBufferPointer { tp in
        nonisolated(unsafe) let tp = tp
        parallelFor(N, grain: rowGrain(V)) { _, lo, hi in
            for r in lo..<hi {
                let t = Int(tp[r])
                precondition(t < V, "gatherLogProbs: id \(t) outside vocabulary of \(V)")
                guard t >= 0 else { op[r] = 0; continue }
                let lse = logSumExpRow(xp + r &* V, V)
                lp[r] = lse
                op[r] = xp[r &* V &+ t] - lse
            }
        }
    }
    record(out, inputs: [logits]) { _, g in
        let (dx, acc) = logits.gradBuffer()
        let gp = g.data, xp = logits.data, lp = lses.data
        ids.withUnsafeBufferPointer { tp in
            nonisolated(unsafe) let tp = tp
            parallelFor(N, grain: rowGrain(V)) { _, lo, hi in
                for r in lo..<hi {
                    let d = dx + r &* V, x = xp + r &* V
                    let t = Int(tp[r])
                    if t < 0 {
                        if !acc { d.update(repeating: 0, count: V) }
                        continue
                    }
                    // d logp_t / dx_j = [j == t] - softmax_j
                    let lse = lp[r], gr = gp[r]
                    var j = 0
                    if acc {
                        while j < V { d[j] -= fastExp(x[j] - lse) * gr; j &+= 1 }
                    } else {
                        while j < V { d[j] = -fastExp(x[j] - lse) * gr; j &+= 1 }
                    }
                    d[t] += gr
                }
            }
        }
    }
    return out
}
