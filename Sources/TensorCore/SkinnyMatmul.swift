import Foundation

// Products with few rows (a decoding step: one row per sequence of the batch) are bound by reading
// the weights, not by arithmetic: Y[m×n] = X[m×k]·W reads k·n weights for 2·m·k·n flops.
// `cblas_sgemm` packs the whole weight matrix into its panel format on every call, so at m = 8 it
// moves each weight three times; these kernels read each weight once from memory for all m rows
// and keep the few rows of X in cache. Register tiles use SIMD8 (AVX2) or SIMD16 (AVX-512) lanes.

/// When linear layers take the few-row kernel instead of `cblas_sgemm`.
public enum SkinnyMatmul {
    /// Most rows that go through the few-row kernel (a decoding batch); more rows, prompt prefill
    /// and training, stay on BLAS, which is compute-bound there.
    public static let maxRows = 16

    /// False sends every product to BLAS, for comparisons: `SkinnyMatmul.$isEnabled.withValue(false) { ... }`
    /// (task-local, so a test's choice is its own); `REIN_SKINNY_MATMUL=0` makes false the default.
    @TaskLocal public static var isEnabled = ProcessInfo.processInfo.environment["REIN_SKINNY_MATMUL"] != "0"

    /// Whether a product with `rows` rows of X and a `k`×`n` weight takes the few-row kernel.
    public static func applies(rows: Int, k: Int, n: Int) -> Bool {
        isEnabled && rows >= 1 && rows <= maxRows && k > 0 && n > 0
    }
}

/// How a weight matrix W of a product X[m×k]·W is stored.
public enum WeightLayout: Sendable {
    /// W is `[n, k]`: row j holds output j's weights (torch `nn.Linear`, Rein's decoder layers and
    /// the tied LM head); the product is X·Wᵀ.
    case outputMajor
    /// W is `[k, n]` (GPT-2's Conv1D as stored by Hugging Face); the product is X·W.
    case inputMajor
}

/// Y[m×n] (row stride `ldy`) = X[m×k] (row stride `ldx`) · W (+ bias[n] on every row), with the
/// weights read once for all rows; parallel over output columns above a size threshold.
/// Inference only (no autodiff); `m` should be small (see ``SkinnyMatmul/maxRows``).
public func skinnyMatmul(m: Int, n: Int, k: Int, _ X: UnsafePointer<Float>, ldx: Int,
                         _ W: UnsafePointer<Float>, layout: WeightLayout, bias: UnsafePointer<Float>?,
                         _ Y: UnsafeMutablePointer<Float>, ldy: Int) {
    if Threads.cpuHasAVX512 {
        skinnyMatmul(SIMD16<Float>.self, m: m, n: n, k: k, X, ldx: ldx, W, layout: layout, bias: bias, Y, ldy: ldy)
    } else {
        skinnyMatmul(SIMD8<Float>.self, m: m, n: n, k: k, X, ldx: ldx, W, layout: layout, bias: bias, Y, ldy: ldy)
    }
}

/// The kernel at a given vector width (tests run both widths on any x86-64 CPU).
func skinnyMatmul<V: SIMD>(_: V.Type, m: Int, n: Int, k: Int, _ X: UnsafePointer<Float>, ldx: Int,
                           _ W: UnsafePointer<Float>, layout: WeightLayout, bias: UnsafePointer<Float>?,
                           _ Y: UnsafeMutablePointer<Float>, ldy: Int) where V.Scalar == Float {
    guard m > 0 && n > 0 else { return }
    guard k > 0 else {
        for r in 0..<m {
            if let bias { (Y + r &* ldy).update(from: bias, count: n) } else { (Y + r &* ldy).update(repeating: 0, count: n) }
        }
        return
    }
    // Output columns go out in groups (4 weight rows, or 2 vectors of weight columns); each chunk of
    // groups reads at least `skinnyChunkFloats` weights, so small products stay on one thread.
    let group = layout == .outputMajor ? 4 : 2 &* V.scalarCount
    let groups = (n &+ group &- 1) / group
    let grain = Swift.max(1, skinnyChunkFloats / (group &* k))
    parallelFor(groups, grain: grain) { _, lo, hi in
        let j0 = lo &* group, j1 = Swift.min(hi &* group, n)
        switch layout {
        case .outputMajor:
            skinnyOutputMajor(V.self, m: m, k: k, X, ldx, W, bias, Y, ldy, columns: j0, j1)
        case .inputMajor:
            skinnyInputMajor(V.self, m: m, n: n, k: k, X, ldx, W, bias, Y, ldy, columns: j0, j1)
        }
    }
}

/// Weights per thread below which a few-row product is not split (about 256 KiB: a split costs a
/// few microseconds, reading 256 KiB takes about 13 µs at 20 GB/s).
let skinnyChunkFloats = 1 << 16

@inline(__always)
func loadVector<V: SIMD>(_ p: UnsafePointer<Float>, _: V.Type) -> V where V.Scalar == Float {
    UnsafeRawPointer(p).loadUnaligned(as: V.self)
}

/// Sum of the lanes as a tree of half-width adds (8 and 16 lanes), the order fixed by the width.
@inline(__always)
func laneSum<V: SIMD>(_ v: V) -> Float where V.Scalar == Float {
    if V.scalarCount == 16 {
        let w = unsafeBitCast(v, to: SIMD16<Float>.self)
        let h = w.lowHalf + w.highHalf
        let q = h.lowHalf + h.highHalf
        let p = q.lowHalf + q.highHalf
        return p[0] + p[1]
    }
    if V.scalarCount == 8 {
        let w = unsafeBitCast(v, to: SIMD8<Float>.self)
        let q = w.lowHalf + w.highHalf
        let p = q.lowHalf + q.highHalf
        return p[0] + p[1]
    }
    return v.sum()
}

/// W `[n, k]`, columns j0..<j1: each output is a dot product of an X row and a W row. Tiles of 4
/// weight rows × 2 X rows (8 accumulators); the 4 weight rows (16k bytes) stay in L1/L2 while every
/// row pair of X passes over them, so memory sees each weight once.
@inline(__always)
func skinnyOutputMajor<V: SIMD>(_: V.Type, m: Int, k: Int, _ X: UnsafePointer<Float>, _ ldx: Int,
                                _ W: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                                _ Y: UnsafeMutablePointer<Float>, _ ldy: Int, columns j0: Int, _ j1: Int)
where V.Scalar == Float {
    let L = V.scalarCount
    let kv = k &- k % L   // k covered by whole vectors
    var j = j0
    while j &+ 4 <= j1 {
        let w0 = W + j &* k, w1 = w0 + k, w2 = w1 + k, w3 = w2 + k
        let b0 = bias?[j] ?? 0, b1 = bias?[j &+ 1] ?? 0, b2 = bias?[j &+ 2] ?? 0, b3 = bias?[j &+ 3] ?? 0
        var r = 0
        while r &+ 2 <= m {
            let x0 = X + r &* ldx, x1 = x0 + ldx
            var a00 = V(), a01 = V(), a02 = V(), a03 = V()
            var a10 = V(), a11 = V(), a12 = V(), a13 = V()
            var i = 0
            while i < kv {
                let u0 = loadVector(x0 + i, V.self), u1 = loadVector(x1 + i, V.self)
                let v0 = loadVector(w0 + i, V.self), v1 = loadVector(w1 + i, V.self)
                let v2 = loadVector(w2 + i, V.self), v3 = loadVector(w3 + i, V.self)
                a00 = a00.addingProduct(u0, v0); a01 = a01.addingProduct(u0, v1)
                a02 = a02.addingProduct(u0, v2); a03 = a03.addingProduct(u0, v3)
                a10 = a10.addingProduct(u1, v0); a11 = a11.addingProduct(u1, v1)
                a12 = a12.addingProduct(u1, v2); a13 = a13.addingProduct(u1, v3)
                i &+= L
            }
            var s00 = laneSum(a00), s01 = laneSum(a01), s02 = laneSum(a02), s03 = laneSum(a03)
            var s10 = laneSum(a10), s11 = laneSum(a11), s12 = laneSum(a12), s13 = laneSum(a13)
            while i < k {
                let u0 = x0[i], u1 = x1[i]
                s00 += u0 * w0[i]; s01 += u0 * w1[i]; s02 += u0 * w2[i]; s03 += u0 * w3[i]
                s10 += u1 * w0[i]; s11 += u1 * w1[i]; s12 += u1 * w2[i]; s13 += u1 * w3[i]
                i &+= 1
            }
            let y0 = Y + (r &* ldy &+ j), y1 = y0 + ldy
            y0[0] = s00 + b0; y0[1] = s01 + b1; y0[2] = s02 + b2; y0[3] = s03 + b3
            y1[0] = s10 + b0; y1[1] = s11 + b1; y1[2] = s12 + b2; y1[3] = s13 + b3
            r &+= 2
        }
        if r < m {
            let x0 = X + r &* ldx
            var a0 = V(), a1 = V(), a2 = V(), a3 = V()
            var i = 0
            while i < kv {
                let u0 = loadVector(x0 + i, V.self)
                a0 = a0.addingProduct(u0, loadVector(w0 + i, V.self)); a1 = a1.addingProduct(u0, loadVector(w1 + i, V.self))
                a2 = a2.addingProduct(u0, loadVector(w2 + i, V.self)); a3 = a3.addingProduct(u0, loadVector(w3 + i, V.self))
                i &+= L
            }
            var s0 = laneSum(a0), s1 = laneSum(a1), s2 = laneSum(a2), s3 = laneSum(a3)
            while i < k {
                let u0 = x0[i]
                s0 += u0 * w0[i]; s1 += u0 * w1[i]; s2 += u0 * w2[i]; s3 += u0 * w3[i]
                i &+= 1
            }
            let y0 = Y + (r &* ldy &+ j)
            y0[0] = s0 + b0; y0[1] = s1 + b1; y0[2] = s2 + b2; y0[3] = s3 + b3
        }
        j &+= 4
    }
    // The last n mod 4 columns, one weight row at a time.
    while j < j1 {
        let w0 = W + j &* k
        let b0 = bias?[j] ?? 0
        for r in 0..<m {
            let x0 = X + r &* ldx
            var a0 = V()
            var i = 0
            while i < kv { a0 = a0.addingProduct(loadVector(x0 + i, V.self), loadVector(w0 + i, V.self)); i &+= L }
            var s0 = laneSum(a0)
            while i < k { s0 += x0[i] * w0[i]; i &+= 1 }
            Y[r &* ldy &+ j] = s0 + b0
        }
        j &+= 1
    }
}

/// W `[k, n]`, columns j0..<j1: each output row is a sum of weight rows scaled by X's entries.
/// Tiles of 2 vectors of columns × 4 X rows (8 accumulators), one weight row segment per step; the
/// k × 2L panel stays in L2 while the next rows of X pass over it.
@inline(__always)
func skinnyInputMajor<V: SIMD>(_: V.Type, m: Int, n: Int, k: Int, _ X: UnsafePointer<Float>, _ ldx: Int,
                               _ W: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                               _ Y: UnsafeMutablePointer<Float>, _ ldy: Int, columns j0: Int, _ j1: Int)
where V.Scalar == Float {
    let L = V.scalarCount
    var j = j0
    while j &+ 2 &* L <= j1 {
        let wj = W + j
        let c0 = bias.map { loadVector($0 + j, V.self) } ?? V(), c1 = bias.map { loadVector($0 + (j &+ L), V.self) } ?? V()
        var r = 0
        while r &+ 4 <= m {
            let x0 = X + r &* ldx, x1 = x0 + ldx, x2 = x1 + ldx, x3 = x2 + ldx
            var a00 = c0, a01 = c1, a10 = c0, a11 = c1, a20 = c0, a21 = c1, a30 = c0, a31 = c1
            var i = 0
            while i < k {
                let wi = wj + i &* n
                let v0 = loadVector(wi, V.self), v1 = loadVector(wi + L, V.self)
                let u0 = V(repeating: x0[i]), u1 = V(repeating: x1[i]), u2 = V(repeating: x2[i]), u3 = V(repeating: x3[i])
                a00 = a00.addingProduct(u0, v0); a01 = a01.addingProduct(u0, v1)
                a10 = a10.addingProduct(u1, v0); a11 = a11.addingProduct(u1, v1)
                a20 = a20.addingProduct(u2, v0); a21 = a21.addingProduct(u2, v1)
                a30 = a30.addingProduct(u3, v0); a31 = a31.addingProduct(u3, v1)
                i &+= 1
            }
            storeVector(a00, Y + (r &* ldy &+ j)); storeVector(a01, Y + (r &* ldy &+ j &+ L))
            storeVector(a10, Y + ((r &+ 1) &* ldy &+ j)); storeVector(a11, Y + ((r &+ 1) &* ldy &+ j &+ L))
            storeVector(a20, Y + ((r &+ 2) &* ldy &+ j)); storeVector(a21, Y + ((r &+ 2) &* ldy &+ j &+ L))
            storeVector(a30, Y + ((r &+ 3) &* ldy &+ j)); storeVector(a31, Y + ((r &+ 3) &* ldy &+ j &+ L))
            r &+= 4
        }
        while r < m {
            let x0 = X + r &* ldx
            var a00 = c0, a01 = c1
            var i = 0
            while i < k {
                let wi = wj + i &* n
                let u0 = V(repeating: x0[i])
                a00 = a00.addingProduct(u0, loadVector(wi, V.self)); a01 = a01.addingProduct(u0, loadVector(wi + L, V.self))
                i &+= 1
            }
            storeVector(a00, Y + (r &* ldy &+ j)); storeVector(a01, Y + (r &* ldy &+ j &+ L))
            r &+= 1
        }
        j &+= 2 &* L
    }
    // The last columns (fewer than 2L), one at a time with a strided walk down W.
    while j < j1 {
        let b0 = bias?[j] ?? 0
        for r in 0..<m {
            let x0 = X + r &* ldx
            var s: Float = 0
            var i = 0
            while i < k { s += x0[i] * W[i &* n &+ j]; i &+= 1 }
            Y[r &* ldy &+ j] = s + b0
        }
        j &+= 1
    }
}

@inline(__always)
func storeVector<V: SIMD>(_ v: V, _ p: UnsafeMutablePointer<Float>) where V.Scalar == Float {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
}

/// x · Wᵀ + bias for inference, x `[..., In]`, W `[Out, In]`, bias `[Out]`: at most
/// ``SkinnyMatmul/maxRows`` rows (a decoding step) go through the few-row kernel, more rows, and any
/// product whose gradient would be recorded, through ``linear(_:weight:bias:)``.
public func inferenceLinear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
    precondition(weight.rank == 2 && x.lastDim == weight.shape[1] && (bias == nil || bias!.count == weight.shape[0]),
                 "inferenceLinear: x \(x.shape), weight \(weight.shape), bias \(bias?.shape ?? [])")
    let In = weight.shape[1], Out = weight.shape[0], rows = x.count / Swift.max(In, 1)
    let records = Autograd.isEnabled && (x.requiresGrad || weight.requiresGrad || bias?.requiresGrad == true)
    guard !records, SkinnyMatmul.applies(rows: rows, k: In, n: Out) else { return linear(x, weight: weight, bias: bias) }
    let out = Tensor(uninitialized: Array(x.shape.dropLast()) + [Out])
    skinnyMatmul(m: rows, n: Out, k: In, x.data, ldx: In, weight.data, layout: .outputMajor, bias: bias?.data, out.data, ldy: Out)
    return out
}
