import RealModule

// Fused normalization layers over the last axis (llm.c's layernorm_forward/backward shape):
// the forward saves each row's mean and 1/std; the backward needs no second pass over statistics.

/// Rows per chunk for the row-parallel norm kernels, from the row width.
@inline(__always)
func rowGrain(_ C: Int) -> Int { Swift.max(1, elementGrain / Swift.max(C, 1)) }

/// Sums per-chunk partial parameter gradients into `dst` (= or += as `accumulate` says).
func reducePartials(_ partials: UnsafeMutablePointer<Float>, chunks: Int, _ C: Int,
                    into dst: UnsafeMutablePointer<Float>, accumulate: Bool) {
    if !accumulate { dst.update(from: partials, count: C) }
    for c in (accumulate ? 0 : 1)..<chunks {
        let p = partials + c &* C
        var j = 0
        while j < C { dst[j] += p[j]; j &+= 1 }
    }
}

/// Layer normalization over the last axis: (x - mean) / √(var + eps) · weight + bias.
public func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
    let C = x.lastDim, N = x.count / Swift.max(C, 1)
    precondition(weight.count == C && (bias?.count ?? C) == C,
                 "layerNorm: weight \(weight.shape) / bias \(bias?.shape ?? []) for input \(x.shape)")
    let out = Tensor(uninitialized: x.shape)
    let stats = Tensor(uninitialized: [N, 2])   // mean, rstd
    let xp = x.data, yp = out.data, wp = weight.data, bp = bias?.data, sp = stats.data
    parallelFor(N, grain: rowGrain(C)) { _, lo, hi in
        for r in lo..<hi {
            let xr = xp + r &* C, yr = yp + r &* C
            let mean = relaxedSum(xr, C) / Float(C)
            var v: Float = 0
            var j = 0
            while j < C { let d = xr[j] - mean; v = Relaxed.multiplyAdd(d, d, v); j &+= 1 }
            let rstd = 1 / (v / Float(C) + eps).squareRoot()
            sp[r &* 2] = mean
            sp[r &* 2 &+ 1] = rstd
            j = 0
            if let bp {
                while j < C { yr[j] = (xr[j] - mean) * rstd * wp[j] + bp[j]; j &+= 1 }
            } else {
                while j < C { yr[j] = (xr[j] - mean) * rstd * wp[j]; j &+= 1 }
            }
        }
    }
    let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
    record(out, inputs: inputs) { _, g in
        let gp = g.data, xp = x.data, wp = weight.data, sp = stats.data
        let chunks = workerCount(N, grain: rowGrain(C))
        // Per-chunk partial sums of the parameter gradients, reduced after the parallel pass.
        let dwParts = Tensor(shape: [chunks, C], repeating: 0), dbParts = Tensor(shape: [chunks, C], repeating: 0)
        let dwp = dwParts.data, dbp = dbParts.data
        let (dx, accX): (UnsafeMutablePointer<Float>?, Bool) =
            x.requiresGrad ? x.gradBuffer() : (nil, false)
        parallelFor(N, grain: rowGrain(C)) { c, lo, hi in
            let dw = dwp + c &* C, db = dbp + c &* C
            for r in lo..<hi {
                let xr = xp + r &* C, gr = gp + r &* C
                let mean = sp[r &* 2], rstd = sp[r &* 2 &+ 1]
                // dnorm = g·w; dx = rstd·(dnorm - mean(dnorm) - norm·mean(dnorm·norm))
                var sumD: Float = 0, sumDN: Float = 0
                var j = 0
                while j < C {
                    let norm = (xr[j] - mean) * rstd
                    let dn = gr[j] * wp[j]
                    sumD = Relaxed.sum(sumD, dn)
                    sumDN = Relaxed.multiplyAdd(dn, norm, sumDN)
                    dw[j] += gr[j] * norm
                    db[j] += gr[j]
                    j &+= 1
                }
                guard let dx else { continue }
                let mD = sumD / Float(C), mDN = sumDN / Float(C)
                let d = dx + r &* C
                j = 0
                while j < C {
                    let norm = (xr[j] - mean) * rstd
                    let v = (gr[j] * wp[j] - mD - norm * mDN) * rstd
                    d[j] = accX ? d[j] + v : v
                    j &+= 1
                }
            }
        }
        if weight.requiresGrad {
            let (dw, acc) = weight.gradBuffer()
            reducePartials(dwp, chunks: chunks, C, into: dw, accumulate: acc)
        }
        if let bias, bias.requiresGrad {
            let (db, acc) = bias.gradBuffer()
            reducePartials(dbp, chunks: chunks, C, into: db, accumulate: acc)
        }
    }
    return out
}

/// RMS normalization over the last axis: x / √(mean(x²) + eps) · weight (Llama's RMSNorm).
public func rmsNorm(_ x: Tensor, weight: Tensor, eps: Float = 1e-5) -> Tensor {
    let C = x.lastDim, N = x.count / Swift.max(C, 1)
    precondition(weight.count == C, "rmsNorm: weight \(weight.shape) for input \(x.shape)")
    let out = Tensor(uninitialized: x.shape)
    let rstds = Tensor(uninitialized: [N])
    let xp = x.data, yp = out.data, wp = weight.data, sp = rstds.data
    parallelFor(N, grain: rowGrain(C)) { _, lo, hi in
        for r in lo..<hi {
            let xr = xp + r &* C, yr = yp + r &* C
            let rstd = 1 / (relaxedDot(xr, xr, C) / Float(C) + eps).squareRoot()
            sp[r] = rstd
            var j = 0
            while j < C { yr[j] = xr[j] * rstd * wp[j]; j &+= 1 }
        }
    }
    record(out, inputs: [x, weight]) { _, g in
        let gp = g.data, xp = x.data, wp = weight.data, sp = rstds.data
        let chunks = workerCount(N, grain: rowGrain(C))
        let partials = Tensor(shape: [chunks, C], repeating: 0)
        let pp = partials.data
        let (dx, accX): (UnsafeMutablePointer<Float>?, Bool) =
            x.requiresGrad ? x.gradBuffer() : (nil, false)
        parallelFor(N, grain: rowGrain(C)) { c, lo, hi in
            let dw = pp + c &* C
            for r in lo..<hi {
                let xr = xp + r &* C, gr = gp + r &* C
                let rstd = sp[r]
                // dx = rstd·(g·w - norm·mean(g·w·norm))
                var sumDN: Float = 0
                var j = 0
                while j < C {
                    let norm = xr[j] * rstd
                    sumDN = Relaxed.multiplyAdd(gr[j] * wp[j], norm, sumDN)
                    dw[j] += gr[j] * norm
                    j &+= 1
                }
                guard let dx else { continue }
                let mDN = sumDN / Float(C)
                let d = dx + r &* C
                j = 0
                while j < C {
                    let v = (gr[j] * wp[j] - xr[j] * rstd * mDN) * rstd
                    d[j] = accX ? d[j] + v : v
                    j &+= 1
                }
            }
        }
        if weight.requiresGrad {
            let (dw, acc) = weight.gradBuffer()
            reducePartials(pp, chunks: chunks, C, into: dw, accumulate: acc)
        }
    }
    return out
}
