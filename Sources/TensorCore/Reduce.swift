import RealModule

// Sums and means, over everything or over one axis. An axis reduction views the tensor as
// [outer, n, inner] and reduces the middle.

extension Tensor {
    /// Sum of all elements, a scalar.
    public func sum() -> Tensor {
        let n = count, xp = data
        let chunks = workerCount(n, grain: elementGrain)
        var partial = [Double](repeating: 0, count: chunks)
        partial.withUnsafeMutableBufferPointer { pp in
            nonisolated(unsafe) let pp = pp
            parallelFor(n, grain: elementGrain) { c, lo, hi in
                // Float blocks summed relaxed, accumulated in Double across blocks.
                var acc: Double = 0
                var i = lo
                while i < hi {
                    let end = min(i &+ 256, hi)
                    acc += Double(relaxedSum(xp + i, end &- i))
                    i = end
                }
                pp[c] = acc
            }
        }
        let out = Tensor(scalar: Float(partial.reduce(0, +)))
        record(out, inputs: [self]) { _, g in
            let (dx, acc) = self.gradBuffer()
            let gv = g.data[0]
            parallelFor(n, grain: elementGrain) { _, lo, hi in
                var i = lo
                if acc { while i < hi { dx[i] += gv; i &+= 1 } } else { while i < hi { dx[i] = gv; i &+= 1 } }
            }
        }
        return out
    }

    /// Mean of all elements, a scalar.
    public func mean() -> Tensor { sum() * (1 / Float(Swift.max(count, 1))) }

    /// Sum over `axis` (negative counts from the end); the axis is removed unless `keepDim`.
    public func sum(axis: Int, keepDim: Bool = false) -> Tensor {
        let ax = axis < 0 ? rank + axis : axis
        precondition(ax >= 0 && ax < rank, "axis \(axis) out of range for shape \(shape)")
        let outer = shape[..<ax].reduce(1, *), n = shape[ax], inner = shape[(ax + 1)...].reduce(1, *)
        var outShape = shape
        if keepDim { outShape[ax] = 1 } else { outShape.remove(at: ax) }
        let out = Tensor(uninitialized: outShape)
        let xp = data, yp = out.data
        parallelFor(outer, grain: Swift.max(1, elementGrain / Swift.max(n &* inner, 1))) { _, lo, hi in
            for o in lo..<hi {
                let y = yp + o &* inner
                y.update(repeating: 0, count: inner)
                for k in 0..<n {
                    let x = xp + (o &* n &+ k) &* inner
                    var j = 0
                    while j < inner { y[j] += x[j]; j &+= 1 }
                }
            }
        }
        record(out, inputs: [self]) { _, g in
            let (dx, acc) = self.gradBuffer()
            let gp = g.data
            parallelFor(outer, grain: Swift.max(1, elementGrain / Swift.max(n &* inner, 1))) { _, lo, hi in
                for o in lo..<hi {
                    let gy = gp + o &* inner
                    for k in 0..<n {
                        let d = dx + (o &* n &+ k) &* inner
                        var j = 0
                        if acc { while j < inner { d[j] += gy[j]; j &+= 1 } } else { while j < inner { d[j] = gy[j]; j &+= 1 } }
                    }
                }
            }
        }
        return out
    }

    /// Mean over `axis`.
    public func mean(axis: Int, keepDim: Bool = false) -> Tensor {
        let ax = axis < 0 ? rank + axis : axis
        precondition(ax >= 0 && ax < rank, "axis \(axis) out of range for shape \(shape)")
        return sum(axis: ax, keepDim: keepDim) * (1 / Float(Swift.max(shape[ax], 1)))
    }
}

// MARK: Softmax

/// Softmax over the last axis.
public func softmax(_ x: Tensor) -> Tensor {
    let C = x.lastDim, N = x.count / Swift.max(C, 1)
    let out = Tensor(uninitialized: x.shape)
    let xp = x.data, yp = out.data
    parallelFor(N, grain: Swift.max(1, elementGrain / Swift.max(C, 1))) { _, lo, hi in
        for r in lo..<hi { softmaxRow(xp + r &* C, yp + r &* C, C) }
    }
    record(out, inputs: [x]) { out, g in
        let (dx, acc) = x.gradBuffer()
        let gp = g.data, yp = out.data
        parallelFor(N, grain: Swift.max(1, elementGrain / Swift.max(C, 1))) { _, lo, hi in
            for r in lo..<hi {
                // dx = y ⊙ (g - Σ g y)
                let y = yp + r &* C, gy = gp + r &* C, d = dx + r &* C
                let dot = relaxedDot(gy, y, C)
                var j = 0
                if acc { while j < C { d[j] += y[j] * (gy[j] - dot); j &+= 1 } } else { while j < C { d[j] = y[j] * (gy[j] - dot); j &+= 1 } }
            }
        }
    }
    return out
}

/// One softmax row: y = exp(x - max) / Σ.
@inline(__always)
func softmaxRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ C: Int) {
    let m = rowMax(x, C)
    var s: Float = 0
    var j = 0
    while j < C { let e = fastExp(x[j] - m); y[j] = e; s = Relaxed.sum(s, e); j &+= 1 }
    let inv = 1 / s
    j = 0
    while j < C { y[j] *= inv; j &+= 1 }
}

/// log Σ exp(x) over one row, stable.
@inline(__always)
func logSumExpRow(_ x: UnsafePointer<Float>, _ C: Int) -> Float {
    let m = rowMax(x, C)
    var s: Float = 0
    var j = 0
    while j < C { s = Relaxed.sum(s, fastExp(x[j] - m)); j &+= 1 }
    return m + Float.log(s)
}

/// Log-softmax over the last axis.
public func logSoftmax(_ x: Tensor) -> Tensor {
    let C = x.lastDim, N = x.count / Swift.max(C, 1)
    let out = Tensor(uninitialized: x.shape)
    let xp = x.data, yp = out.data
    parallelFor(N, grain: Swift.max(1, elementGrain / Swift.max(C, 1))) { _, lo, hi in
        for r in lo..<hi {
            let xr = xp + r &* C, yr = yp + r &* C
            let lse = logSumExpRow(xr, C)
            var j = 0
            while j < C { yr[j] = xr[j] - lse; j &+= 1 }
        }
    }
    record(out, inputs: [x]) { out, g in
        let (dx, acc) = x.gradBuffer()
        let gp = g.data, yp = out.data
        parallelFor(N, grain: Swift.max(1, elementGrain / Swift.max(C, 1))) { _, lo, hi in
            for r in lo..<hi {
                // dx = g - softmax · Σ g
                let y = yp + r &* C, gy = gp + r &* C, d = dx + r &* C
                let gs = relaxedSum(gy, C)
                var j = 0
                if acc { while j < C { d[j] += gy[j] - fastExp(y[j]) * gs; j &+= 1 } } else { while j < C { d[j] = gy[j] - fastExp(y[j]) * gs; j &+= 1 } }
            }
        }
    }
    return out
}
